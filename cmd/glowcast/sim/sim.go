// Package sim runs simulated glowcast devices for load tests. A live device
// has its own MQTT connection and speaks the device side of the protocol —
// retained status with a last will, a retained ready with a location hint,
// a subscription to its temps and rebirth messages — but draws nothing.
//
// A live device costs one connection, one reader goroutine and a small
// buffer, so ten thousand fit in one process: it encodes MQTT packets with
// paho's packets package directly instead of running a full client per
// device. Keepalive pings for all connections come from one goroutine.
//
// One process cannot hold a hundred thousand connections (nor can one
// Mosquitto: both stop at the open-file limit), so Config.Retained more
// devices can be retained state only: a few publisher connections publish
// their retained online status and ready, and one of them subscribes to the
// agent's messages for every device, counting temps and answering rebirth
// requests for them. That is what an agent sees of a fleet it (re)connects
// to: the broker's retained state, plus the live traffic of the devices
// that talk.
//
// It owns only its connections; it never touches the agent.
package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"golang.org/x/sync/errgroup"

	"github.com/glowcast/glowcast/protocol"
)

// Config describes a simulated fleet.
type Config struct {
	// Broker is the broker URL, tcp://host:port.
	Broker string
	// Devices is how many devices to run.
	Devices int
	// Prefix starts every device id: <prefix>-<index>.
	Prefix string
	// First is the index of the first device, so several sim processes
	// can share one broker.
	First int
	// Places spreads the devices over this many places (ready location
	// hints), round robin; 0 sends no location.
	Places int
	// KeepAlive is each connection's MQTT keepalive.
	KeepAlive time.Duration
	// Dialers bounds connects in flight.
	Dialers int
	// Retained adds this many devices, numbered after the live ones, that
	// exist only as retained state — an online status and a ready,
	// published by Publishers connections — without a connection of their
	// own: a fleet larger than one process's open files (100,000), as an
	// agent sees it after a restart. One publisher counts the temps sent
	// to them and answers their rebirth requests.
	Retained int
	// Publishers is how many connections publish the retained-only
	// devices' state and stand in for them.
	Publishers int
	// Logger receives connection errors; nil discards them.
	Logger *slog.Logger
}

// Default returns a fleet of 100 devices over 100 places.
func Default() Config {
	return Config{Broker: "tcp://127.0.0.1:1883", Devices: 100, Prefix: "sim", Places: 100, KeepAlive: 2 * time.Minute, Dialers: 64, Publishers: 4}
}

// connections is how many connections the fleet opens.
func (c Config) connections() int {
	n := c.Devices
	if c.Retained > 0 {
		n += min(c.Publishers, c.Retained)
	}
	return n
}

// Validate checks the configuration; errors name the flag.
func (c Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.Broker)
	if err != nil || (u.Scheme != "tcp" && u.Scheme != "mqtt") || u.Host == "" {
		errs = append(errs, fmt.Errorf("sim: broker (--broker) %q: use tcp://host:port", c.Broker))
	}
	if c.Devices < 1 {
		errs = append(errs, fmt.Errorf("sim: devices (--devices) %d: must be at least 1", c.Devices))
	}
	if c.Retained < 0 || c.Retained > 10_000_000 {
		errs = append(errs, fmt.Errorf("sim: retained-only devices (--retained-only) %d: must be between 0 and 10000000", c.Retained))
	}
	if err := protocol.ValidID(c.Prefix); err != nil {
		errs = append(errs, fmt.Errorf("sim: prefix (--prefix): %w", err))
	}
	if c.Places < 0 || c.Places > 10000 {
		errs = append(errs, fmt.Errorf("sim: places (--places) %d: must be between 0 and 10000", c.Places))
	}
	if c.KeepAlive < time.Second || c.KeepAlive > 18*time.Hour {
		errs = append(errs, fmt.Errorf("sim: keepalive (--keepalive) %v: must be between 1s and 18h", c.KeepAlive))
	}
	if c.Retained < 0 || c.Retained > 10_000_000 {
		errs = append(errs, fmt.Errorf("sim: retained-only devices (--retained-only) %d: must be between 0 and 10000000", c.Retained))
	}
	if c.Publishers < 1 || c.Publishers > 256 {
		errs = append(errs, fmt.Errorf("sim: publishers (--publishers) %d: must be between 1 and 256", c.Publishers))
	}
	return errors.Join(errs...)
}

// ID is the id of device i of a fleet with this prefix.
func ID(prefix string, i int) string { return fmt.Sprintf("%s-%05d", prefix, i) }

// Place is the location hint of place p: distinct cells half a degree
// apart, so no two places share a forecast cache entry.
func Place(p int) protocol.Location {
	return protocol.Location{Lat: 40 + float64(p/20)*0.5, Lon: float64(p%20) * 0.5}
}

// Device is one simulated device.
type Device struct {
	ID     string
	BootID string
	// Location is its ready hint; nil when the fleet has no places.
	Location *protocol.Location

	// proxy publishes a retained-only device's state and receives its
	// messages; nil for a live device.
	proxy *proxy

	conn    net.Conn
	wmu     sync.Mutex // serialises writes
	nextID  uint16     // packet ids, under wmu
	readyID uint16

	ready     chan struct{}
	readyOnce sync.Once
	temps     atomic.Int64 // valid temps received
	lastTemps atomic.Int64 // unix nanos of the last valid temps
	bad       atomic.Int64 // invalid temps received
	down      atomic.Bool
}

// Live reports whether the device has a connection of its own.
func (d *Device) Live() bool { return d.proxy == nil }

func (d *Device) isDown() bool {
	if d.proxy != nil {
		return d.proxy.down.Load()
	}
	return d.down.Load()
}

// gotTemps counts a temps message for d.
func (d *Device) gotTemps(payload []byte) {
	if _, err := protocol.ParseTemps(payload); err != nil {
		d.bad.Add(1)
		return
	}
	d.lastTemps.Store(time.Now().UnixNano())
	d.temps.Add(1)
}

// Temps is how many valid temps messages the device received.
func (d *Device) Temps() int64 { return d.temps.Load() }

// LastTemps is when the last valid temps arrived (zero if none).
func (d *Device) LastTemps() time.Time {
	n := d.lastTemps.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Fleet is a running set of simulated devices.
type Fleet struct {
	cfg  Config
	log  *slog.Logger
	Devs []*Device

	// RetainedDevs are the retained-only devices, numbered after Devs.
	RetainedDevs []*Device

	// The connections that stand in for retained-only devices, and
	// those devices by id.
	proxies []*proxy
	standIn map[string]*Device

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start connects every device and waits until each has published ready.
// On error the devices connected so far are closed.
func Start(ctx context.Context, cfg Config) (*Fleet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Dialers <= 0 {
		cfg.Dialers = 64
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := checkFileLimit(cfg); err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.Broker)
	f := &Fleet{cfg: cfg, log: log, Devs: make([]*Device, cfg.Devices), RetainedDevs: make([]*Device, cfg.Retained)}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	for i := range cfg.Devices + cfg.Retained {
		d := &Device{ID: ID(cfg.Prefix, cfg.First+i), BootID: protocol.RandomID(), ready: make(chan struct{})}
		if cfg.Places > 0 {
			l := Place((cfg.First + i) % cfg.Places)
			d.Location = &l
		}
		if i < cfg.Devices {
			f.Devs[i] = d
		} else {
			f.RetainedDevs[i-cfg.Devices] = d
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Dialers)
	live := f.Devs
	for _, d := range live {
		g.Go(func() error { return f.connect(gctx, u.Host, d) })
	}
	err := g.Wait()
	if err == nil {
		for _, d := range live {
			select {
			case <-d.ready:
			case <-ctx.Done():
				err = fmt.Errorf("sim: waiting for ready acknowledgements: %w", ctx.Err())
			case <-time.After(30 * time.Second):
				err = fmt.Errorf("sim: device %s: no acknowledgement of its ready within 30s", d.ID)
			}
			if err != nil {
				break
			}
		}
	}
	if err == nil && len(f.RetainedDevs) > 0 {
		err = f.startProxies(ctx, u.Host, f.RetainedDevs)
	}
	if err != nil {
		f.Kill()
		return nil, err
	}
	f.wg.Add(1)
	go f.pinger()
	return f, nil
}

// checkFileLimit refuses a fleet whose connections would not fit under the
// open-file limit, before the broker sees any of them.
func checkFileLimit(cfg Config) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return fmt.Errorf("sim: reading the open-file limit: %w", err)
	}
	// Room for the process's own files and a benchmark's clients.
	const spare = 64
	if need := uint64(cfg.connections() + spare); need > rl.Cur {
		return fmt.Errorf("sim: %d devices with connections need %d open files and the limit is %d: lower --devices and add the rest as --retained-only, or raise ulimit -n",
			cfg.Devices, need, rl.Cur)
	}
	return nil
}

func (f *Fleet) readyPayload(d *Device) []byte {
	b, _ := json.Marshal(protocol.Ready{BootID: d.BootID, Version: "sim", LEDs: 5, Location: d.Location})
	return b
}

func (f *Fleet) statusPayload(d *Device, online bool) []byte {
	b, _ := json.Marshal(protocol.DeviceStatus{Online: online, BootID: d.BootID, TS: time.Now().UTC()})
	return b
}

func (f *Fleet) connect(ctx context.Context, addr string, d *Device) error {
	var dl net.Dialer
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := dl.DialContext(cctx, "tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EMFILE) {
			return fmt.Errorf("sim: device %s: out of file descriptors: raise the limit (ulimit -n) or use fewer --devices: %w", d.ID, err)
		}
		return fmt.Errorf("sim: device %s: dial %s: %w", d.ID, addr, err)
	}
	d.conn = conn
	status := protocol.DeviceTopic(d.ID, protocol.SideDevice, protocol.MsgStatus)
	cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	cp.ProtocolName, cp.ProtocolVersion = "MQTT", 4
	cp.CleanSession = true
	cp.ClientIdentifier = "glowcastd-" + d.ID
	cp.Keepalive = uint16(f.cfg.KeepAlive / time.Second)
	cp.WillFlag, cp.WillQos, cp.WillRetain = true, 1, true
	cp.WillTopic, cp.WillMessage = status, f.statusPayload(d, false)
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if err := cp.Write(conn); err != nil {
		conn.Close()
		return fmt.Errorf("sim: device %s: connect: %w", d.ID, err)
	}
	r := bufio.NewReaderSize(conn, 512)
	p, err := packets.ReadPacket(r)
	if err != nil {
		conn.Close()
		return fmt.Errorf("sim: device %s: waiting for connack: %w", d.ID, err)
	}
	if ca, ok := p.(*packets.ConnackPacket); !ok || ca.ReturnCode != 0 {
		conn.Close()
		return fmt.Errorf("sim: device %s: broker refused the connection: %v", d.ID, p)
	}
	conn.SetDeadline(time.Time{})
	// One connection orders everything: the subscription is in place
	// before the broker sees status and ready, as with the real daemon.
	sub := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	sub.Topics = []string{protocol.DeviceTopic(d.ID, protocol.SideAgent, "+")}
	sub.Qoss = []byte{1}
	d.wmu.Lock()
	d.nextID++
	sub.MessageID = d.nextID
	err = sub.Write(conn)
	d.wmu.Unlock()
	if err == nil {
		err = f.announce(d)
	}
	if err != nil {
		conn.Close()
		return fmt.Errorf("sim: device %s: subscribe and announce: %w", d.ID, err)
	}
	f.wg.Add(1)
	go f.read(d, r)
	return nil
}

// announce publishes the online status and ready, as on connect and on a
// rebirth request.
func (f *Fleet) announce(d *Device) error {
	ready := f.readyPayload(d)
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if err := f.publish(d, protocol.DeviceTopic(d.ID, protocol.SideDevice, protocol.MsgStatus), f.statusPayload(d, true)); err != nil {
		return err
	}
	if err := f.publish(d, protocol.DeviceTopic(d.ID, protocol.SideDevice, protocol.MsgReady), ready); err != nil {
		return err
	}
	d.readyID = d.nextID
	return nil
}

// publish writes a retained QoS 1 publish. Called with d.wmu held.
func (f *Fleet) publish(d *Device, topic string, payload []byte) error {
	pp := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pp.Qos, pp.Retain = 1, true
	d.nextID++
	if d.nextID == 0 {
		d.nextID = 1
	}
	pp.TopicName, pp.MessageID, pp.Payload = topic, d.nextID, payload
	d.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return pp.Write(d.conn)
}

func (f *Fleet) write(d *Device, p packets.ControlPacket) error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return p.Write(d.conn)
}

// read handles what the broker sends d until the connection ends.
func (f *Fleet) read(d *Device, r *bufio.Reader) {
	defer f.wg.Done()
	temps := protocol.DeviceTopic(d.ID, protocol.SideAgent, protocol.MsgTemps)
	rebirth := protocol.DeviceTopic(d.ID, protocol.SideAgent, protocol.MsgRebirth)
	for {
		p, err := packets.ReadPacket(r)
		if err != nil {
			if d.down.CompareAndSwap(false, true) && f.ctx.Err() == nil {
				f.log.Warn("simulated device lost its connection", "device", d.ID, "err", err)
			}
			return
		}
		switch p := p.(type) {
		case *packets.PublishPacket:
			if p.Qos > 0 {
				ack := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
				ack.MessageID = p.MessageID
				f.write(d, ack)
			}
			switch p.TopicName {
			case temps:
				d.gotTemps(p.Payload)
			case rebirth:
				f.announce(d)
			}
		case *packets.PubackPacket:
			d.wmu.Lock()
			isReady := p.MessageID == d.readyID
			d.wmu.Unlock()
			if isReady {
				d.readyOnce.Do(func() { close(d.ready) })
			}
		}
	}
}

// pinger keeps every connection alive from one goroutine.
func (f *Fleet) pinger() {
	defer f.wg.Done()
	t := time.NewTicker(f.cfg.KeepAlive / 2)
	defer t.Stop()
	ping := packets.NewControlPacket(packets.Pingreq)
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-t.C:
		}
		for _, d := range f.Devs {
			if f.ctx.Err() != nil {
				return
			}
			if d.conn != nil && !d.down.Load() {
				f.write(d, ping)
			}
		}
		for _, p := range f.proxies {
			p.write(ping)
		}
	}
}

// RetainedID is the id of retained-only device j.
func (f *Fleet) RetainedID(j int) string { return ID(f.cfg.Prefix, f.cfg.First+f.cfg.Devices+j) }

// All is every device, live ones first.
func (f *Fleet) All() []*Device {
	return append(f.Devs[:len(f.Devs):len(f.Devs)], f.RetainedDevs...)
}

// Stats summarises the fleet.
type Stats struct {
	Devices   int
	Live      int // devices with a connection of their own
	Retained  int // retained-only devices
	Down      int // devices whose connection (or stand-in's) was lost
	WithTemps int // devices with at least one valid temps
	Temps     int64
	BadTemps  int64
}

// Stats counts what the devices saw.
func (f *Fleet) Stats() Stats {
	s := Stats{Devices: len(f.Devs) + len(f.RetainedDevs)}
	for _, d := range f.All() {
		if d.Live() {
			s.Live++
		} else {
			s.Retained++
		}
		if d.isDown() {
			s.Down++
		}
		n := d.temps.Load()
		if n > 0 {
			s.WithTemps++
		}
		s.Temps += n
		s.BadTemps += d.bad.Load()
	}
	return s
}

// AllTempsSince reports whether every device received valid temps at or
// after t, and when the last of them did.
func (f *Fleet) AllTempsSince(t time.Time) (bool, time.Time) {
	var last time.Time
	for _, d := range f.All() {
		lt := d.LastTemps()
		if lt.Before(t) {
			return false, time.Time{}
		}
		if lt.After(last) {
			last = lt
		}
	}
	return true, last
}

// Close ends every device the way the daemon stops: offline status, then
// a clean disconnect.
func (f *Fleet) Close() {
	g := errgroup.Group{}
	g.SetLimit(64)
	for _, d := range f.Devs {
		if d.conn == nil || d.down.Load() {
			continue
		}
		g.Go(func() error {
			d.wmu.Lock()
			f.publish(d, protocol.DeviceTopic(d.ID, protocol.SideDevice, protocol.MsgStatus), f.statusPayload(d, false))
			d.wmu.Unlock()
			f.write(d, packets.NewControlPacket(packets.Disconnect))
			return nil
		})
	}
	for _, p := range f.proxies {
		g.Go(func() error {
			ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
			defer cancel()
			for _, d := range p.devs {
				if p.publish(ctx, protocol.DeviceTopic(d.ID, protocol.SideDevice, protocol.MsgStatus), f.statusPayload(d, false)) != nil {
					return nil
				}
			}
			p.drain(ctx)
			p.write(packets.NewControlPacket(packets.Disconnect))
			return nil
		})
	}
	g.Wait()
	f.Kill()
}

// Kill drops every connection without a word, as a power cut would; the
// broker publishes the live devices' wills. Retained-only devices keep
// their online status: they have no will of their own.
func (f *Fleet) Kill() {
	f.cancel()
	for _, d := range f.Devs {
		if d.conn != nil {
			d.down.Store(true)
			d.conn.Close()
		}
	}
	for _, p := range f.proxies {
		p.down.Store(true)
		p.conn.Close()
	}
	f.wg.Wait()
}

// RaiseFileLimit lifts the soft limit on open files to the hard one, so one
// process can hold ten thousand connections. Setting it explicitly also
// passes it on to child processes (a broker started by a benchmark).
func RaiseFileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("sim: reading the open-file limit: %w", err)
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("sim: raising the open-file limit to %d: %w", rl.Max, err)
	}
	return rl.Cur, nil
}

// Run starts the fleet, reports its state every report interval on out
// until ctx ends, then stops the devices as daemons do.
func Run(ctx context.Context, cfg Config, report time.Duration, out io.Writer) error {
	if _, err := RaiseFileLimit(); err != nil {
		return err
	}
	start := time.Now()
	f, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "sim: %d devices ready, %d retained-only, in %v\n", len(f.Devs), len(f.RetainedDevs), time.Since(start).Round(time.Millisecond))
	t := time.NewTicker(report)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			f.Close()
			s := f.Stats()
			fmt.Fprintf(out, "sim: stopped: %d devices (%d retained-only), %d with temps, %d temps, %d invalid, %d connections lost\n", s.Devices, s.Retained, s.WithTemps, s.Temps, s.BadTemps, s.Down)
			return nil
		case <-t.C:
			s := f.Stats()
			fmt.Fprintf(out, "sim: %d devices (%d retained-only), %d with temps, %d temps, %d invalid, %d connections lost\n", s.Devices, s.Retained, s.WithTemps, s.Temps, s.BadTemps, s.Down)
		}
	}
}
