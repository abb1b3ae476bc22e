// Package demo runs glowcast in one process for a first look: an embedded
// MQTT broker (mochi), the agent and one device drawing its strip in the
// terminal. A key press migrates the agent — it is killed without a word
// and started again — so the user can watch the strip carry on.
package demo

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/glowcast/glowcast/agent"
	"github.com/glowcast/glowcast/agent/weather"
	"github.com/glowcast/glowcast/device"
	"github.com/glowcast/glowcast/ledstrip"
)

// Config is what the demo can be told.
type Config struct {
	Weather    string
	WeatherURL string
	Location   string
	Interval   time.Duration
	LED        string
	StateDir   string
	LogFile    string
}

// Default is the demo as `make demo` runs it.
func Default() Config {
	return Config{Weather: "open-meteo", Location: "52.52,13.40", Interval: 30 * time.Minute, LED: "term"}
}

// Run runs the demo until ctx ends or the user types q. Each line read
// from in migrates the agent.
func Run(ctx context.Context, cfg Config, in io.Reader, out io.Writer) error {
	if cfg.StateDir == "" {
		d, err := os.MkdirTemp("", "glowcast-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		cfg.StateDir = d
	}
	logPath := cfg.LogFile
	if logPath == "" {
		logPath = filepath.Join(cfg.StateDir, "demo.log")
	}
	lf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer lf.Close()
	log := slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelInfo}))

	// The embedded broker.
	srv := mochi.New(&mochi.Options{InlineClient: false, Logger: log.With("component", "broker")})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return err
	}
	tcp := listeners.NewTCP(listeners.Config{Type: "tcp", ID: "demo", Address: "127.0.0.1:0"})
	if err := srv.AddListener(tcp); err != nil {
		return fmt.Errorf("demo: embedded broker: %w", err)
	}
	if err := srv.Serve(); err != nil {
		return fmt.Errorf("demo: embedded broker: %w", err)
	}
	defer srv.Close()
	broker := "tcp://" + tcp.Address()
	say := func(format string, a ...any) { fmt.Fprintf(out, "\r\x1b[2K"+format+"\n", a...) }
	say("glowcast demo — broker %s, logs in %s", broker, logPath)

	acfg := agent.Default()
	acfg.Broker, acfg.StateDir = broker, filepath.Join(cfg.StateDir, "agent")
	acfg.Weather.Provider, acfg.Weather.URL, acfg.Location, acfg.Interval = cfg.Weather, cfg.WeatherURL, cfg.Location, cfg.Interval
	if err := acfg.Validate(); err != nil {
		return err
	}
	if acfg.Weather.Provider != weather.NameSample {
		probe, err := weather.New(acfg.Weather, weather.Options{})
		if err != nil {
			return err
		}
		loc, _ := agent.ParseLocation(acfg.Location)
		pctx, cancel := context.WithTimeout(ctx, 8*time.Second)
		_, err = probe.Forecast(pctx, loc.Lat, loc.Lon)
		cancel()
		if err != nil {
			say("The weather service (%s) cannot be reached: %v", probe.Name(), err)
			say("The strip will wait for real data and the agent keeps trying. For a bundled sample")
			say("forecast (shown as SAMPLE, not real weather) run:  make demo WEATHER=sample")
		}
	} else {
		say("weather: bundled SAMPLE forecast — not real weather")
	}

	dcfg := device.Default()
	dcfg.Broker, dcfg.DeviceID, dcfg.StateDir, dcfg.LED = broker, "demo", filepath.Join(cfg.StateDir, "device"), cfg.LED
	strip, err := ledstrip.Open(dcfg.LED, dcfg.DaemonStripOptions())
	if err != nil {
		return err
	}
	dev, err := device.New(dcfg, strip, log.With("component", "device"))
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	dctx, stopDev := context.WithCancel(ctx)
	defer func() { stopDev(); wg.Wait() }()
	wg.Add(1)
	go func() { defer wg.Done(); dev.Run(dctx) }()

	// The agent, restartable.
	startAgent := func() (stop func(abrupt bool), a *agent.Agent, err error) {
		a, err = agent.New(acfg, log.With("component", "agent"))
		if err != nil {
			return nil, nil, err
		}
		cd := &connDialer{}
		a.Dial = cd.dial
		actx, cancel := context.WithCancelCause(ctx)
		done := make(chan struct{})
		go func() { defer close(done); a.Run(actx) }()
		return func(abrupt bool) {
			if abrupt {
				cd.cut() // the broker sees the connection die, as at a crash
				cancel(agent.ErrAbrupt)
			} else {
				cancel(nil)
			}
			<-done
		}, a, nil
	}
	stopAgent, a, err := startAgent()
	if err != nil {
		return err
	}
	defer func() { stopAgent(false) }()
	say("press Enter to migrate the agent (kill it and start it again), q then Enter to quit")

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		close(lines)
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case l, ok := <-lines:
			if !ok {
				<-ctx.Done()
				return nil
			}
			if strings.TrimSpace(l) == "q" {
				return nil
			}
			before := a.Stats().Resumed()
			stopAgent(true)
			say("agent killed (no goodbye, as in a migration); starting a new one…")
			t0 := time.Now()
			stopAgent, a, err = startAgent()
			if err != nil {
				return err
			}
			go report(ctx, a, before, t0, say)
		}
	}
}

// report tells how the new agent picked the device up.
func report(ctx context.Context, a *agent.Agent, _ map[string]int, t0 time.Time, say func(string, ...any)) {
	for ctx.Err() == nil && time.Since(t0) < 2*time.Minute {
		for _, d := range a.Devices() {
			if d.Cycle {
				say("new agent resumed the device's cycle after %v (path: %s); next forecast due %s",
					time.Since(t0).Round(time.Millisecond), pathOf(a.Stats().Resumed()), d.Due.Local().Format("15:04:05"))
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func pathOf(m map[string]int) string {
	var ps []string
	for k := range m {
		ps = append(ps, k)
	}
	return strings.Join(ps, ",")
}

// connDialer remembers its connections so the demo can cut them.
type connDialer struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (c *connDialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.conns = append(c.conns, conn)
	c.mu.Unlock()
	return conn, nil
}

func (c *connDialer) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}
