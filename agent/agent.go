// Package agent is glowcast's server side: one process serving many devices.
// It owns each device's forecast cycle — locate, fetch, publish temps, arm
// the next — and the resumption of those cycles after the agent itself was
// restarted or moved ("agent migration"), with at most one cycle per device.
//
// It talks to devices only through the mqttmsg layer and to weather services
// only through the weather package.
package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/glowcast/glowcast/agent/weather"
	"github.com/glowcast/glowcast/internal/clock"
	"github.com/glowcast/glowcast/internal/instance"
	"github.com/glowcast/glowcast/internal/sdnotify"
	"github.com/glowcast/glowcast/mqttmsg"
	"github.com/glowcast/glowcast/protocol"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Version is the agent's version, set at build time.
var Version = "dev"

// Agent is one running agent process.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	stats   *Stats
	session string
	since   time.Time
	src     *sources
	limit   *deviceLimiter

	// Dial replaces the network dial to the broker (tests).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// Clock tells the wall time (set before Run); nil is the system clock.
	Clock clock.Clock

	mu    sync.Mutex
	fleet *fleet
	cl    *mqttmsg.Client
	book  *settingsBook
	// HTTPAddr is the address the HTTP server listens on, once started.
	httpAddr string
}

// New checks cfg and prepares an agent; Run starts it.
func New(cfg Config, log *slog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("agent_id", cfg.AgentID)
	stats := newStats()
	src, err := newSources(cfg, log, stats.Registry)
	if err != nil {
		return nil, err
	}
	// A device sends a status, a ready and a wifi scan per boot, a
	// settings report now and then and a sensor reading every 5 minutes:
	// 10 a second is far above any honest
	// device and far below a flood. The window is this host's own time.
	limit := newDeviceLimiter(10, time.Minute, time.Now, log, stats.Registry)
	return &Agent{cfg: cfg, log: log, stats: stats, session: protocol.RandomID(), src: src, limit: limit}, nil
}

// SetProvider replaces the default weather provider (before Run).
func (a *Agent) SetProvider(p weather.Provider) { a.src.def = p }

// Stats returns the agent's metrics.
func (a *Agent) Stats() *Stats { return a.stats }

// Session is this process's random session id.
func (a *Agent) Session() string { return a.session }

// Devices returns a snapshot of every device the agent knows.
func (a *Agent) Devices() []DeviceView {
	a.mu.Lock()
	f := a.fleet
	a.mu.Unlock()
	if f == nil {
		return nil
	}
	return f.snapshot()
}

// HTTPAddr is where the HTTP server listens, once Run started it.
func (a *Agent) HTTPAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.httpAddr
}

// ErrAbrupt, as the cause of Run's context, stops the agent the way a crash
// would: no offline status, no goodbye. The demo uses it to show a migration.
var ErrAbrupt = errors.New("agent: stopped abruptly")

// ErrSupplanted ends Run when another process took over this agent id.
var ErrSupplanted = errors.New("agent: another agent process with the same agent id took over; this one yields")

// Run serves devices until ctx ends. It returns nil on a normal stop and
// ErrSupplanted when a newer agent with the same id took over.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	if a.Clock == nil {
		a.Clock = clock.System{}
	}
	a.since = a.Clock.Now()
	a.src.clock = a.Clock
	st, err := openStore(a.cfg.StateDir, a.log)
	if err != nil {
		return err
	}
	token, err := readAPIToken(a.cfg.APITokenFile)
	if err != nil {
		return err
	}
	var sender hubSender
	runCtx, stopRuns := context.WithCancel(context.Background())
	defer stopRuns()
	f := newFleet(runCtx, fleetConfig{
		Interval: a.cfg.Interval, RestartGrace: a.cfg.RestartGrace, OfflinePark: a.cfg.OfflinePark,
		Resume: a.cfg.Resume, Locate: a.src.Locate, Retry: min(5*time.Second, a.cfg.Interval/4), Clock: a.Clock,
	}, a.log, &sender, a.src, st, a.stats)
	own := newOwnership(f, a.cfg.Shard, a.cfg.AgentID, a.session, a.stats.Registry)
	f.registerInventory(a.stats.Registry)

	opts := mqttmsg.Options{
		Broker: a.cfg.Broker,
		// Per process, not per agent id: a reconnect of this process takes
		// its own old connection over, but a second process with the same
		// agent id (a migration whose old host still runs) must not push
		// this one off the broker and back in a takeover war. Both stay
		// connected for the moment it takes the older to see the newer's
		// status and yield.
		ClientID: "glowcast-agent-" + a.cfg.AgentID + "-" + a.session,
		Presence: &mqttmsg.Presence{Topic: protocol.AgentStatusTopic(a.cfg.AgentID), ID: a.session,
			Status: protocol.AgentStatus{Session: a.session, TS: a.since, Shard: own.shard.String()}},
		OnUp: []func(context.Context){func(context.Context) {
			a.stats.connected.Set(1)
			a.stats.brokerConns.Inc()
			f.connected()
		}},
		OnDown:       []func(error){func(error) { a.stats.connected.Set(0) }},
		OnSupplanted: []func(string){func(string) { cancel(ErrSupplanted) }},
		Dial:         a.Dial,
		Logger:       a.log,
	}
	opts.OnUp = append(opts.OnUp, own.up)
	if err := a.cfg.MQTT.Apply(a.cfg.Broker, &opts); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	// Marks this host as running the identity's one broker session, so
	// glowcast-agent doctor stays off the broker instead of pushing us off.
	if mark, err := instance.Hold(a.cfg.Broker, a.cfg.MQTT.Identity("")); err != nil {
		a.log.Warn("another process on this host holds the agent's broker identity: the broker keeps one connection per identity, so the two push each other off; give each agent its own (docs/SECURITY.md)", "identity", a.cfg.MQTT.Identity(""), "err", err)
	} else {
		defer mark.Close()
	}
	cl, err := mqttmsg.New(opts)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	hub := mqttmsg.NewHub(cl, protocol.Prefix, protocol.SideAgent, protocol.SideDevice)
	sensors := newSensorInbox()
	book := newSettingsBook(cl.Publish, a.log)
	own.onSettled = append(own.onSettled, book.settle)
	// Home Assistant's light commands become desired settings.
	cl.Handle(protocol.LightSetTopic("+"), func(m mqttmsg.Message) {
		id, ok := protocol.DeviceOfLightSetTopic(m.Topic)
		if !ok || m.Retained || !own.OwnsLocked(id) {
			return
		}
		s, clear, err := protocol.ParsePatch(m.Payload)
		if err != nil {
			a.log.Warn("home assistant light command refused", "device", id, "err", err)
			return
		}
		// Off the delivery goroutine: change waits for the broker's ack.
		go func() {
			ctx, cancel := context.WithTimeout(runCtx, 10*time.Second)
			defer cancel()
			if _, err := book.change(ctx, id, s, clear); err != nil {
				a.log.Warn("home assistant light command not applied", "device", id, "err", err)
			}
		}()
	})
	hub.On(protocol.MsgSettings, func(id string, m mqttmsg.Message) {
		if a.validDevice(id, m) {
			book.onReported(id, m.Payload)
		}
	})
	// The retained desired settings: a previous agent's, then our own.
	cl.Handle(protocol.DeviceTopic("+", protocol.SideAgent, protocol.MsgSettings), func(m mqttmsg.Message) {
		if id, _, _, ok := protocol.ParseDeviceTopic(m.Topic); ok {
			book.onDesired(id, m.Payload)
		}
	})
	var hassFile string
	if a.cfg.StateDir != "" {
		hassFile = filepath.Join(a.cfg.StateDir, HassFile)
		if !a.cfg.HassDiscovery {
			// Whatever happens to the configs while discovery is off
			// (cleared by hand, say), switching it on publishes them all.
			if err := os.Remove(hassFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
				a.log.Warn("removing the home assistant discovery record", "file", hassFile, "err", err)
			}
			hassFile = ""
		}
	}
	ha := startHass(runCtx, a.cfg.AgentID, a.cfg.HTTPPublicURL, hassFile, cl.Publish, a.log, a.cfg.RestartGrace, a.stats.Registry)
	own.onSettled = append(own.onSettled, ha.settle)
	sender.h = hub
	own.attach(cl)
	hub.On(protocol.MsgStatus, func(id string, m mqttmsg.Message) {
		if !a.validDevice(id, m) {
			return
		}
		if len(m.Payload) == 0 {
			return // a retained status being cleared
		}
		s, err := protocol.ParseDeviceStatus(m.Payload)
		if err != nil {
			a.log.Warn("malformed device status dropped", "device", id, "err", err)
			return
		}
		f.onStatus(id, s, m.Retained)
	})
	hub.On(protocol.MsgReady, func(id string, m mqttmsg.Message) {
		if !a.validDevice(id, m) {
			return
		}
		if len(m.Payload) == 0 {
			// A retained ready being cleared: the device was deleted.
			a.stats.certExpiry.set(id, nil)
			if a.cfg.HassDiscovery && own.OwnsLocked(id) && !m.Retained {
				ha.forget(id)
			}
			return
		}
		r, err := protocol.ParseReady(m.Payload)
		if err != nil {
			a.log.Warn("malformed ready dropped", "device", id, "err", err)
			return
		}
		f.onReady(id, r, m.Retained)
		book.onReady(id, r.Version)
		// Only the shard that owns a device announces it to Home Assistant.
		if a.cfg.HassDiscovery && own.OwnsLocked(id) {
			ha.seen(id, r.Version, m.Retained)
		}
		a.stats.deviceVersion(id, r.Version)
		a.stats.certExpiry.set(id, r.CertExpires)
	})
	// Sensor readings score the forecasts of the device's place. Parsing
	// is cheap and done here; filing may write and goes to a worker.
	var sensorsDone sync.WaitGroup
	if a.src.verify != nil {
		sensorsDone.Add(1)
		go func() {
			defer sensorsDone.Done()
			sensors.run(runCtx, a.log, f.location, a.src.Sensor)
		}()
	}
	hub.On(protocol.MsgSensor, func(id string, m mqttmsg.Message) {
		if !a.validDevice(id, m) || len(m.Payload) == 0 {
			return
		}
		s, err := protocol.ParseSensor(m.Payload)
		if err != nil {
			a.log.Warn("malformed sensor reading dropped", "device", id, "err", err)
			return
		}
		// A retained reading is of an unknown age: its time of arrival
		// would lie. Another shard's device is scored by that shard.
		if m.Retained || a.src.verify == nil || !own.OwnsLocked(id) {
			return
		}
		sensors.put(id, sensorReading{at: a.Clock.Now(), tempC: s.TempC})
	})
	hub.On(protocol.MsgWiFi, func(id string, m mqttmsg.Message) {
		if !a.validDevice(id, m) || len(m.Payload) == 0 {
			return
		}
		scan, err := protocol.ParseWiFi(m.Payload)
		if err != nil {
			a.log.Warn("malformed wifi scan dropped", "device", id, "err", err)
			return
		}
		f.onWiFi(id, scan)
	})
	a.mu.Lock()
	a.fleet, a.cl, a.book = f, cl, book
	a.mu.Unlock()

	var srv *http.Server
	if a.cfg.HTTP != "" {
		ln, err := net.Listen("tcp", a.cfg.HTTP)
		if err != nil {
			return fmt.Errorf("agent: http (--http %s): %w", a.cfg.HTTP, err)
		}
		a.mu.Lock()
		a.httpAddr = ln.Addr().String()
		a.mu.Unlock()
		a.log.Info("http listening", "http_addr", ln.Addr().String())
		mux := a.handler(cl)
		p := &api{a: a, book: book, write: token != "", token: sha256.Sum256([]byte(token)), now: time.Now}
		p.routes(mux)
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
	}

	a.log.Info("agent starting", "version", Version, "session", a.session, "broker", a.cfg.Broker,
		"weather", a.src.def.Name(), "interval", a.cfg.Interval, "resume", a.cfg.Resume)
	cl.Connect()
	// HTTP and the broker client are set up: ready for systemd. The
	// watchdog is pinged only while the fleet's state can be read, so a
	// wedged scheduler gets the agent restarted.
	sdnotify.Ready("serving devices; broker " + a.cfg.Broker)
	wd := sdnotify.NewWatchdog()
	defer wd.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-wd.C:
			devs := f.snapshot()
			online := 0
			for _, d := range devs {
				if d.Online {
					online++
				}
			}
			wd.Ping()
			sdnotify.Status(fmt.Sprintf("%d devices, %d online; broker connected: %v", len(devs), online, cl.Connected()))
		}
	}
	sdnotify.Stopping()
	cause := context.Cause(ctx)

	stopRuns()
	sensorsDone.Wait()
	ha.wait()
	f.close()
	if srv != nil {
		sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
		srv.Shutdown(sctx)
		c()
	}
	if errors.Is(cause, ErrAbrupt) {
		cl.Abandon()
		return nil
	}
	if errors.Is(cause, ErrSupplanted) {
		// Our offline status would overwrite the newer agent's online one.
		cl.Abandon()
		a.log.Warn("yielded to a newer agent with the same id")
		return ErrSupplanted
	}
	cctx, c := context.WithTimeout(context.Background(), 3*time.Second)
	defer c()
	if err := cl.Close(cctx); err != nil {
		a.log.Warn("publishing offline status at shutdown", "err", err)
	}
	a.log.Info("agent stopped")
	return nil
}

func (a *Agent) validDevice(id string, m mqttmsg.Message) bool {
	if err := protocol.ValidDeviceID(id); err != nil {
		a.log.Warn("message from invalid device id dropped", "topic", m.Topic, "err", err)
		return false
	}
	return a.limit.allow(id)
}

func (a *Agent) handler(cl *mqttmsg.Client) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", a.healthz(cl))
	mux.Handle("/metrics", promhttp.HandlerFor(a.stats.Registry, promhttp.HandlerOpts{}))
	if v := a.src.verify; v != nil {
		h := v.Handler(a.Clock.Now)
		mux.Handle("/verification", h)
		mux.Handle("/verification.csv", h)
	}
	mux.Handle("/", a.statusPage())
	return mux
}

// hubSender adapts the hub to the fleet's Sender.
type hubSender struct{ h *mqttmsg.Hub }

func (s *hubSender) Send(ctx context.Context, id, name string, b []byte) error {
	return s.h.Send(ctx, id, name, b)
}

func (s *hubSender) SendRetained(ctx context.Context, id, name string, b []byte) error {
	return s.h.SendRetained(ctx, id, name, b)
}
