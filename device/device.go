// Package device is the glowcast daemon on the Raspberry Pi: it announces
// itself to the agent, shows the temperatures the agent sends on the LED
// strip, re-slots them at each hour from the hourly series, and keeps the
// last ones across restarts.
//
// It talks to the agent only through the mqttmsg layer and to the LEDs only
// through ledstrip.
package device

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glowcast/glowcast/device/sensor"
	"github.com/glowcast/glowcast/device/wifiscan"
	"github.com/glowcast/glowcast/internal/atomicfile"
	"github.com/glowcast/glowcast/internal/clock"
	"github.com/glowcast/glowcast/internal/instance"
	"github.com/glowcast/glowcast/internal/sdnotify"
	"github.com/glowcast/glowcast/ledstrip"
	"github.com/glowcast/glowcast/ledstrip/backend"
	"github.com/glowcast/glowcast/mqttmsg"
	"github.com/glowcast/glowcast/protocol"
)

// Version is the daemon's version, set at build time.
var Version = "dev"

// brokerGrace is how long the strip shows "starting" before it shows
// "broker unreachable" when there is nothing else to show.
const brokerGrace = 5 * time.Second

// maxClockAhead is how far in the future an issued_at may lie before the
// device stops trusting it for ordering.
const maxClockAhead = 5 * time.Minute

// Device is one running device daemon.
type Device struct {
	cfg    Config
	log    *slog.Logger
	strip  backend.Strip
	bootID string
	since  time.Time

	// Dial replaces the network dial to the broker (tests).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// Clock tells the wall time (set before Run); nil is the system clock.
	Clock clock.Clock

	temps mailbox[[]byte]
	// desired is the newest desired-settings payload; reportDue asks the
	// loop to publish the settings report.
	desired   mailbox[settingsMsg]
	reportDue reportFlag
	rebirth   chan struct{}
	wake      chan struct{}
	// Scan replaces the WiFi scan (tests).
	Scan func(ctx context.Context) ([]protocol.AccessPoint, error)
	// Sensor replaces the thermometer named by the sensor setting (tests);
	// nil opens that one, if any.
	Sensor  sensor.Reader
	scanned atomic.Bool
	bg      sync.WaitGroup

	mu          sync.Mutex
	connected   bool
	agents      map[string]protocol.AgentStatus
	cl          *mqttmsg.Client
	lastFrame   *ledstrip.Frame
	life        context.Context // ends when Run returns
	shownIssued time.Time

	// ready is this boot's ready; its temps_seq is raised to shownSeq,
	// the seq of the temps on the strip, each time it is published.
	ready    protocol.Ready
	shownSeq atomic.Uint64
	// renumberAt is when the device last re-published its ready because
	// it dropped temps numbered below those it shows (loop only).
	renumberAt time.Time
}

// renumberEvery bounds how often a device re-announces its shown seq to an
// agent whose temps it drops: once is enough for the agent to number above
// it; the bound keeps a confused agent from turning it into a flood.
const renumberEvery = 30 * time.Second

// New checks cfg and prepares a device that shows frames on strip.
func New(cfg Config, strip backend.Strip, log *slog.Logger) (*Device, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Device{
		cfg: cfg, log: log.With("device", cfg.DeviceID), strip: strip,
		bootID:  protocol.RandomID(),
		rebirth: make(chan struct{}, 1), wake: make(chan struct{}, 1),
		agents: map[string]protocol.AgentStatus{},
	}, nil
}

// BootID is this process's random boot id.
func (d *Device) BootID() string { return d.bootID }

// Connected reports whether the device is connected and announced.
func (d *Device) Connected() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.connected
}

// Run connects, announces and shows temps until ctx ends; then it turns the
// LEDs off and publishes its offline status.
func (d *Device) Run(ctx context.Context) error {
	if d.Clock == nil {
		d.Clock = clock.System{}
	}
	d.since = d.Clock.Now()
	var stop context.CancelFunc
	d.life, stop = context.WithCancel(context.Background())
	defer stop()
	saved := d.loadSaved()
	bootSeq := d.nextBootSeq()
	d.ready = protocol.Ready{BootID: d.bootID, Version: Version, LEDs: d.cfg.LEDs, Location: d.cfg.Location, BootSeq: bootSeq}
	if saved != nil {
		d.shownSeq.Store(saved.Seq)
	}
	if cert, err := d.cfg.MQTT.ClientCert(); err == nil && cert != nil {
		exp := cert.NotAfter.UTC()
		d.ready.CertExpires = &exp
	}
	var node *mqttmsg.Node
	opts := mqttmsg.Options{
		Broker:   d.cfg.Broker,
		ClientID: "glowcastd-" + d.cfg.DeviceID,
		Presence: &mqttmsg.Presence{
			Topic: protocol.DeviceTopic(d.cfg.DeviceID, protocol.SideDevice, protocol.MsgStatus), ID: d.bootID,
			Status: protocol.DeviceStatus{BootID: d.bootID, BootSeq: bootSeq, TS: d.since},
		},
		OnUp: []func(context.Context){func(ctx context.Context) {
			// Subscriptions and status are in place: now say ready.
			if err := d.sendReady(ctx, node); err != nil {
				// Up without ready, the agent would never serve us.
				d.cl.Reconnect(fmt.Errorf("device: publishing ready: %w", err))
				return
			}
			d.reportDue.Store(true)
			d.setConnected(true)
			d.log.Info("ready published", "boot_id", d.bootID)
			if d.cfg.WiFi.Scan && d.scanned.CompareAndSwap(false, true) {
				d.bg.Add(1)
				go d.sendScan(node)
			}
		}},
		OnDown: []func(error){func(error) { d.setConnected(false) }},
		Dial:   d.Dial,
		Logger: d.log,
	}
	mq := d.cfg.MQTT
	if mq.Username == "" {
		// The broker's ACL knows a device by its id.
		mq.Username = d.cfg.DeviceID
	}
	if err := mq.Apply(d.cfg.Broker, &opts); err != nil {
		return d.fail(fmt.Errorf("device: %w", err))
	}
	// Marks this host as running the identity's one broker session, so
	// glowcastd doctor stays off the broker instead of pushing us off.
	if mark, err := instance.Hold(d.cfg.Broker, mq.Identity(d.cfg.DeviceID)); err != nil {
		d.log.Warn("another process on this host holds this device's broker identity: the broker keeps one connection per identity, so the two push each other off", "identity", mq.Identity(d.cfg.DeviceID), "err", err)
	} else {
		defer mark.Close()
	}
	cl, err := mqttmsg.New(opts)
	if err != nil {
		return d.fail(fmt.Errorf("device: %w", err))
	}
	node = mqttmsg.NewNode(cl, protocol.Prefix, d.cfg.DeviceID, protocol.SideDevice, protocol.SideAgent)
	// Every handler is registered before Connect.
	node.On(protocol.MsgTemps, func(b []byte) { d.temps.put(slices.Clone(b)); d.kick() })
	node.On(protocol.MsgSettings, func(b []byte) { d.desired.put(settingsMsg{slices.Clone(b)}); d.kick() })
	node.On(protocol.MsgRebirth, func([]byte) {
		select {
		case d.rebirth <- struct{}{}:
		default:
		}
	})
	cl.Handle(protocol.AgentStatusFilter, d.onAgentStatus)
	d.mu.Lock()
	d.cl = cl
	d.mu.Unlock()

	d.log.Info("device starting", "version", Version, "boot_id", d.bootID, "broker", d.cfg.Broker, "led", d.cfg.LED, "sensor", d.cfg.Sensor)
	cl.Connect()
	d.startSensor(cl, node)
	err = d.loop(ctx, saved, node)
	stop()
	d.bg.Wait()

	cctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if cerr := cl.Close(cctx); cerr != nil {
		d.log.Warn("publishing offline status at shutdown", "err", cerr)
	}
	d.log.Info("device stopped")
	return err
}

// fail turns the LEDs off before Run gives up: a fatal error must not
// leave the strip lit.
func (d *Device) fail(err error) error {
	if cerr := d.strip.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("device: turning LEDs off: %w", cerr))
	}
	return err
}

// sendScan scans the access points once and sends them as the wifi message.
func (d *Device) sendScan(node *mqttmsg.Node) {
	defer d.bg.Done()
	ctx, cancel := context.WithTimeout(d.life, 30*time.Second)
	defer cancel()
	scan := d.Scan
	if scan == nil {
		sc := &wifiscan.Scanner{Tool: d.cfg.WiFi.Tool, Interface: d.cfg.WiFi.Interface}
		scan = sc.Scan
	}
	aps, err := scan(ctx)
	if err != nil {
		d.log.Warn("wifi scan failed; the agent locates this device another way", "err", err)
		d.scanned.Store(false) // try again on the next connect
		return
	}
	b, err := wifiscan.Message(aps, d.cfg.WiFi.PublicIP)
	if err != nil {
		d.log.Warn("wifi scan not sent", "err", err)
		return
	}
	if err := node.Send(ctx, protocol.MsgWiFi, b); err != nil {
		d.log.Warn("sending wifi scan failed; retrying on the next connect", "err", err)
		d.scanned.Store(false)
		return
	}
	d.log.Info("wifi scan sent", "access_points", len(aps))
}

// startSensor reads the outdoor thermometer, if one is configured, on a
// goroutine of its own until Run ends: a slow or failing sensor never
// holds up the strip. Readings start with the first connection, so the
// first one is not lost to a broker not yet reached.
func (d *Device) startSensor(cl *mqttmsg.Client, node *mqttmsg.Node) {
	r := d.Sensor
	if r == nil {
		spec, _ := sensor.ParseSpec(d.cfg.Sensor) // Validate checked it
		if spec.Kind == "" {
			return
		}
		r = &sensor.Reopening{Spec: spec, Opener: sensor.Opener{Root: "/"}}
	}
	log := d.log.With("component", "sensor")
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		if c, ok := r.(interface{ Close() error }); ok {
			defer c.Close()
		}
		if cl.WaitUp(d.life, 1) != nil {
			return
		}
		sensor.Run(d.life, r, func(ctx context.Context, b []byte) error {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			err := node.SendQoS0(ctx, protocol.MsgSensor, b)
			if errors.Is(err, mqttmsg.ErrNotConnected) {
				// QoS 0: a reading missed while offline is replaced by
				// the next one, never queued.
				log.Debug("sensor reading skipped while the broker is unreachable")
				return nil
			}
			return err
		}, log, nil)
	}()
}

func (d *Device) setConnected(v bool) {
	d.mu.Lock()
	d.connected = v
	d.mu.Unlock()
	d.kick()
}

func (d *Device) kick() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *Device) onAgentStatus(m mqttmsg.Message) {
	s, err := protocol.ParseAgentStatus(m.Payload)
	if err != nil {
		d.log.Warn("malformed agent status dropped", "topic", m.Topic, "err", err)
		return
	}
	d.mu.Lock()
	// The broker's order decides, not ts: only a will of an older
	// session after a newer session's birth is ignored.
	prev, seen := d.agents[m.Topic]
	if !seen || s.Online || !prev.Online || s.Session == prev.Session {
		d.agents[m.Topic] = *s
	}
	d.mu.Unlock()
	d.kick()
}

// view is what the loop knows when it composes a frame.
type view struct {
	cur        *protocol.Temps
	fromSaved  bool
	connected  bool
	agentsSeen bool
	agentUp    bool
	started    time.Time
	// set is the settings in force.
	set protocol.Settings
}

func (d *Device) loop(ctx context.Context, saved *protocol.Temps, node *mqttmsg.Node) error {
	st := settings{local: localSettings(d.cfg), desired: d.loadSettings()}
	v := view{cur: saved, fromSaved: saved != nil, started: d.Clock.Now(), set: st.applied()}
	d.show(compose(d.Clock.Now(), v, d.cfg.StaleAfter))
	// The strip is open and showing: ready for systemd, without waiting for
	// the network. The watchdog is pinged from this loop only.
	sdnotify.Ready("strip open; connecting to " + d.cfg.Broker)
	wd := sdnotify.NewWatchdog()
	defer wd.Stop()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var shutdownErr error
	for {
		select {
		case <-ctx.Done():
			sdnotify.Stopping()
			if err := d.strip.Close(); err != nil {
				shutdownErr = fmt.Errorf("device: turning LEDs off: %w", err)
			}
			return shutdownErr
		case <-d.rebirth:
			d.log.Info("agent asked for rebirth; re-announcing")
			d.mu.Lock()
			cl := d.cl
			d.mu.Unlock()
			cl.RepublishPresence()
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := d.sendReady(pctx, node); err != nil {
				d.log.Warn("re-publishing ready failed", "err", err)
			}
			cancel()
		case <-d.wake:
		case <-timer.C:
		case <-wd.C:
			wd.Ping()
		}
		if b, ok := d.temps.take(); ok && d.accept(&v, b) == refusedLowSeq {
			d.askRenumber(node)
		}
		if m, ok := d.desired.take(); ok && d.takeSettings(&st, m.b) {
			v.set = st.applied()
			d.reportDue.Store(true)
		}
		d.mu.Lock()
		v.connected = d.connected
		v.agentsSeen = len(d.agents) > 0
		v.agentUp = false
		for _, s := range d.agents {
			v.agentUp = v.agentUp || s.Online
		}
		d.mu.Unlock()
		if v.connected && d.reportDue.Swap(false) && !d.report(ctx, node, &st) {
			d.reportDue.Store(true) // the next connect or change repeats it
		}
		now := d.Clock.Now()
		d.show(compose(now, v, d.cfg.StaleAfter))
		timer.Reset(nextChange(now, v, d.cfg.StaleAfter))
	}
}

// Outcomes of accept.
const (
	accepted = iota
	refused
	// refusedLowSeq: an agent numbers its temps below those shown, so it
	// does not know the device's seq (its state and the retained temps
	// were lost, or it read an old copy of them).
	refusedLowSeq
)

// accept validates a temps payload and makes it current.
func (d *Device) accept(v *view, b []byte) int {
	t, err := protocol.ParseTemps(b)
	if err != nil {
		d.log.Warn("invalid temps dropped; last valid kept", "err", err)
		return refused
	}
	if v.cur != nil && t.Seq != 0 && v.cur.Seq != 0 {
		// Both numbered by agents: the seq orders them, not issued_at,
		// which is the fetch time of a forecast that may have been cached
		// or fetched on a host whose clock was wrong.
		if t.Seq < v.cur.Seq {
			d.log.Info("temps with a lower seq than those shown dropped", "seq", t.Seq, "shown_seq", v.cur.Seq)
			return refusedLowSeq
		}
	} else if v.cur != nil && t.IssuedAt.Before(v.cur.IssuedAt) {
		// Temps "issued" in our future came from a clock that was wrong
		// (an agent before its NTP correction): trusting their date would
		// refuse every correct forecast until that future arrives.
		if !v.cur.IssuedAt.After(d.now().Add(maxClockAhead)) {
			d.log.Info("temps older than those shown dropped", "issued_at", t.IssuedAt, "shown", v.cur.IssuedAt)
			return refused
		}
		d.log.Warn("shown temps were issued in the future (the agent's clock was wrong); replaced", "issued_at", t.IssuedAt, "shown", v.cur.IssuedAt)
	}
	changed := v.cur == nil || !t.IssuedAt.Equal(v.cur.IssuedAt) || t.Seq != v.cur.Seq
	v.cur, v.fromSaved = t, false
	if t.Seq > 0 {
		d.shownSeq.Store(t.Seq)
	}
	d.log.Info("temps received", "temps_c", []float64(t.TempsC), "issued_at", t.IssuedAt.Format(time.RFC3339), "seq", t.Seq)
	if changed {
		d.save(b)
	}
	return accepted
}

// sendReady publishes this boot's ready with the seq of the temps shown.
func (d *Device) sendReady(ctx context.Context, node *mqttmsg.Node) error {
	r := d.ready
	r.TempsSeq = d.shownSeq.Load()
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return node.SendRetained(ctx, protocol.MsgReady, b)
}

// askRenumber re-publishes the ready, which carries the shown seq, so the
// agent numbers its next temps above it and sends them again: without it
// the strip would keep temps the agent has replaced until they go stale.
// Called from the loop.
func (d *Device) askRenumber(node *mqttmsg.Node) {
	now := d.Clock.Now()
	if !d.renumberAt.IsZero() && now.Sub(d.renumberAt) < renumberEvery && now.After(d.renumberAt) {
		return
	}
	d.renumberAt = now
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		ctx, cancel := context.WithTimeout(d.life, 10*time.Second)
		defer cancel()
		if err := d.sendReady(ctx, node); err != nil {
			d.log.Warn("re-announcing the shown seq failed", "err", err)
			return
		}
		d.log.Info("ready re-published: the agent numbers its temps below those shown", "temps_seq", d.shownSeq.Load())
	}()
}

// compose decides what the strip shows now: the look, at the brightness
// the settings give for now, or off.
func compose(now time.Time, v view, staleAfter time.Duration) ledstrip.Frame {
	f := composeLook(now, v, staleAfter)
	// An off frame keeps the brightness it will come back on at: the
	// state says it is dark.
	lit := v.set
	lit.On = nil
	b := lit.BrightnessAt(now)
	f.Brightness = &b
	// The unit labels the frame; fade_ms says how the strip moves to it.
	f.Unit = v.set.Unit
	if v.set.FadeMS != nil {
		fade := time.Duration(*v.set.FadeMS) * time.Millisecond
		f.Fade = &fade
	}
	if v.set.On != nil && !*v.set.On {
		f.State, f.Temps, f.Source = ledstrip.StateOff, nil, ""
	}
	return f
}

func composeLook(now time.Time, v view, staleAfter time.Duration) ledstrip.Frame {
	f := ledstrip.Frame{TS: now}
	if v.cur != nil {
		temps, _ := v.cur.Slot(now)
		f.Temps = temps
		if v.cur.Sample() {
			f.Source = protocol.ProviderSample
		}
		if v.cur.Fresh(now, staleAfter) && !v.fromSaved {
			f.State = ledstrip.StateFresh
		} else {
			f.State = ledstrip.StateStale
		}
		return f
	}
	switch {
	case !v.connected && now.Sub(v.started) >= brokerGrace:
		f.State = ledstrip.StateBrokerDown
	case !v.connected:
		f.State = ledstrip.StateStarting
	case v.agentsSeen && !v.agentUp:
		f.State = ledstrip.StateAgentOffline
	default:
		f.State = ledstrip.StateWaiting
	}
	return f
}

// nextChange is how long until the frame may change by itself: the next
// hour boundary (re-slot), the moment the temps go stale, or the end of the
// broker grace.
func nextChange(now time.Time, v view, staleAfter time.Duration) time.Duration {
	next := now.Truncate(time.Hour).Add(time.Hour)
	if v.cur != nil {
		for _, t := range []time.Time{v.cur.ValidUntil, v.cur.IssuedAt.Add(staleAfter)} {
			if t.After(now) && t.Before(next) {
				next = t
			}
		}
	} else if g := v.started.Add(brokerGrace); g.After(now) && g.Before(next) {
		next = g
	}
	if v.set.QuietHours != nil {
		// Quiet hours start and end on a minute.
		if m := now.Truncate(time.Minute).Add(time.Minute); m.Before(next) {
			next = m
		}
	}
	return max(next.Sub(now), time.Millisecond)
}

// show writes f unless it equals the frame already shown.
func (d *Device) show(f ledstrip.Frame) {
	if d.lastFrame != nil && sameFrame(*d.lastFrame, f) {
		return
	}
	if err := d.strip.Show(f); err != nil {
		d.log.Error("writing to the LED strip", "err", err)
		return
	}
	if d.lastFrame == nil || d.lastFrame.State != f.State {
		sdnotify.Status("showing " + string(f.State))
	}
	d.lastFrame = &f
}

func sameFrame(a, b ledstrip.Frame) bool {
	if a.State != b.State || a.Source != b.Source || len(a.Temps) != len(b.Temps) || a.BrightnessPercent() != b.BrightnessPercent() ||
		a.Unit != b.Unit || !sameFade(a.Fade, b.Fade) {
		return false
	}
	for i := range a.Temps {
		x, y := a.Temps[i], b.Temps[i]
		if x != y && !(math.IsNaN(x) && math.IsNaN(y)) {
			return false
		}
	}
	return true
}

func sameFade(a, b *time.Duration) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

func (d *Device) statePath() string {
	if d.cfg.StateDir == "" {
		return ""
	}
	return filepath.Join(d.cfg.StateDir, "temps.json")
}

// loadSaved reads the last temps kept in the state dir. A damaged file is
// moved aside and reported; the device then starts as if new.
func (d *Device) loadSaved() *protocol.Temps {
	p := d.statePath()
	if p == "" {
		return nil
	}
	// A crash or power cut between creating and renaming a temporary
	// file leaves it behind; one per crash would fill the SD card.
	if tmps, _ := filepath.Glob(filepath.Join(d.cfg.StateDir, ".temps.json.tmp-*")); len(tmps) > 0 {
		for _, t := range tmps {
			os.Remove(t)
		}
		d.log.Info("removed temporary files left by an interrupted save", "files", len(tmps))
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil {
		var t *protocol.Temps
		if t, err = protocol.ParseTemps(b); err == nil {
			d.log.Info("showing saved temps until fresh ones arrive", "issued_at", t.IssuedAt.Format(time.RFC3339))
			return t
		}
	}
	d.log.Error("saved temps unreadable; moved aside", "file", p, "err", err)
	os.Rename(p, p+".corrupt")
	return nil
}

// nextBootSeq raises the boot counter kept in the state dir and saves it
// (atomically, synced) before the first connect, so every will and birth
// of this boot carries a number above the last boot's, power cuts
// included. Without a state dir, or when the file cannot be written, it
// is 0: the broker's order still decides (see docs/PROTOCOL.md).
func (d *Device) nextBootSeq() uint64 {
	if d.cfg.StateDir == "" {
		return 0
	}
	p := filepath.Join(d.cfg.StateDir, "boot_seq")
	var n uint64
	if b, err := os.ReadFile(p); err == nil {
		if _, err := fmt.Sscan(string(b), &n); err != nil {
			d.log.Warn("boot counter unreadable; starting again from 1", "file", p, "err", err)
			n = 0
		}
	}
	n++
	if err := os.MkdirAll(d.cfg.StateDir, 0o750); err != nil {
		d.log.Error("state dir (--state-dir)", "err", err)
		return 0
	}
	if err := atomicfile.Write(p, []byte(fmt.Sprintf("%d\n", n)), 0o640); err != nil {
		d.log.Error("saving boot counter", "file", p, "err", err)
		return 0
	}
	return n
}

func (d *Device) save(b []byte) {
	p := d.statePath()
	if p == "" {
		return
	}
	if err := os.MkdirAll(d.cfg.StateDir, 0o750); err != nil {
		d.log.Error("state dir (--state-dir)", "err", err)
		return
	}
	if err := atomicfile.Write(p, b, 0o640); err != nil {
		d.log.Error("saving temps", "err", err)
	}
}

// mailbox holds the newest value only: a burst of messages costs the
// owner one render.
type mailbox[T any] struct {
	mu  sync.Mutex
	v   T
	set bool
}

func (m *mailbox[T]) put(v T) {
	m.mu.Lock()
	m.v, m.set = v, true
	m.mu.Unlock()
}

func (m *mailbox[T]) take() (T, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.v, m.set
	var zero T
	m.v, m.set = zero, false
	return v, ok
}

func (d *Device) now() time.Time {
	if d.Clock == nil {
		return time.Now()
	}
	return d.Clock.Now()
}
