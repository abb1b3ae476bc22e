package device

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glowcast/glowcast/ledstrip"
	"github.com/glowcast/glowcast/ledstrip/ledstriptest"
	"github.com/glowcast/glowcast/mqttmsg"
	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
)

// settingsPeer plays the agent's side of settings: it retains desired
// settings and reads the device's reports.
type settingsPeer struct {
	cl      *mqttmsg.Client
	mu      sync.Mutex
	reports []protocol.Reported
}

func startSettingsPeer(t *testing.T, broker string) *settingsPeer {
	t.Helper()
	cl, err := mqttmsg.New(mqttmsg.Options{Broker: broker, ClientID: "settings-peer"})
	if err != nil {
		t.Fatal(err)
	}
	p := &settingsPeer{cl: cl}
	cl.Handle(protocol.DeviceTopic("+", protocol.SideDevice, protocol.MsgSettings), func(m mqttmsg.Message) {
		r, err := protocol.ParseReported(m.Payload)
		if err != nil {
			t.Errorf("report: %v", err)
			return
		}
		p.mu.Lock()
		p.reports = append(p.reports, *r)
		p.mu.Unlock()
	})
	cl.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.WaitUp(ctx, 1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close(context.Background()) })
	return p
}

func (p *settingsPeer) desire(t *testing.T, dev, payload string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.cl.Publish(ctx, protocol.DeviceTopic(dev, protocol.SideAgent, protocol.MsgSettings), []byte(payload), true); err != nil {
		t.Fatal(err)
	}
}

func (p *settingsPeer) last() (protocol.Reported, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.reports) == 0 {
		return protocol.Reported{}, false
	}
	return p.reports[len(p.reports)-1], true
}

func TestSettingsAppliedAllOrNothingAndSaved(t *testing.T) {
	b := mqtttest.Start(t)
	peer := startSettingsPeer(t, b.URL())
	cfg := Default()
	cfg.Broker, cfg.DeviceID, cfg.StateDir = b.URL(), "kitchen", t.TempDir()
	strip := &recStrip{}
	_, stop := runDevice(t, cfg, strip, nil)

	// A device that has never seen settings reports its local ones.
	waitFor(t, "first report", func() bool { r, ok := peer.last(); return ok && r.Version == 0 })
	if r, _ := peer.last(); *r.Applied.Brightness != 100 || !*r.Applied.On || r.Applied.Unit != "C" {
		t.Errorf("first report: %+v, want local defaults (on, 100 %%, C)", r.Applied)
	}

	peer.desire(t, "kitchen", `{"version":3,"brightness":40}`)
	waitFor(t, "version 3 applied", func() bool { r, _ := peer.last(); return r.Version == 3 })
	waitFor(t, "frame at 40 %", func() bool { return strip.last().BrightnessPercent() == 40 })

	// One bad field: nothing of the message applies.
	peer.desire(t, "kitchen", `{"version":4,"brightness":10,"unit":"K"}`)
	waitFor(t, "version 4 refused", func() bool { r, _ := peer.last(); return r.Version == 4 })
	r, _ := peer.last()
	if r.Errors["unit"] == "" || len(r.Errors) != 1 || *r.Applied.Brightness != 40 {
		t.Errorf("report of a bad message: %+v, want a unit error and brightness still 40", r)
	}
	if got := strip.last().BrightnessPercent(); got != 40 {
		t.Errorf("brightness after a refused message: %d, want 40", got)
	}

	peer.desire(t, "kitchen", `{"version":5,"on":false}`)
	waitFor(t, "off", func() bool { return strip.last().State == ledstrip.StateOff })
	// An older version is ignored.
	peer.desire(t, "kitchen", `{"version":2,"on":true}`)
	time.Sleep(200 * time.Millisecond)
	if strip.last().State != ledstrip.StateOff {
		t.Errorf("an older version switched the device back on")
	}
	stop()

	// Saved: a restart without any agent comes up with version 5, off.
	raw, err := os.ReadFile(filepath.Join(cfg.StateDir, settingsFile))
	if err != nil {
		t.Fatal(err)
	}
	var saved protocol.Desired
	if err := json.Unmarshal(raw, &saved); err != nil || saved.Version != 5 || saved.On == nil || *saved.On {
		t.Fatalf("saved settings %s (%v), want version 5, off", raw, err)
	}
	cfg.Broker = "tcp://127.0.0.1:1" // no broker
	strip2 := &recStrip{}
	_, stop2 := runDevice(t, cfg, strip2, nil)
	waitFor(t, "first frame", func() bool { return strip2.last().State != "" })
	if f := strip2.last(); f.State != ledstrip.StateOff {
		t.Errorf("after restart without the agent: state %q, want off", f.State)
	}
	stop2()
}

func TestSettingsClearedFallBackToLocal(t *testing.T) {
	b := mqtttest.Start(t)
	peer := startSettingsPeer(t, b.URL())
	cfg := Default()
	cfg.Broker, cfg.DeviceID, cfg.StateDir = b.URL(), "hall", t.TempDir()
	strip := &recStrip{}
	peer.desire(t, "hall", `{"version":9,"brightness":20}`)
	_, stop := runDevice(t, cfg, strip, nil)
	waitFor(t, "retained settings applied", func() bool { return strip.last().BrightnessPercent() == 20 })
	peer.desire(t, "hall", ``)
	waitFor(t, "local brightness", func() bool { return strip.last().BrightnessPercent() == 100 })
	waitFor(t, "clear reported", func() bool {
		r, _ := peer.last()
		return r.Version == 9 && r.Applied.Brightness != nil && *r.Applied.Brightness == 100
	})
	stop()
}

// TestSettingsFadeOnTheStrip drives a real SPI strip (recorded) from the
// device: fade_ms from the agent makes the change of brightness a fade
// over many transfers; fade_ms 0 makes the next one a jump.
func TestSettingsFadeOnTheStrip(t *testing.T) {
	b := mqtttest.Start(t)
	peer := startSettingsPeer(t, b.URL())
	cfg := Default()
	cfg.Broker, cfg.DeviceID, cfg.StateDir = b.URL(), "porch", t.TempDir()
	// Linear output, no cap and no fade of its own: a transfer's LED 0
	// is the waiting look (160) times the brightness in force.
	cfg.Strip.Gamma, cfg.Strip.Brightness, cfg.Strip.CurrentLimitMA, cfg.Strip.Fade = 1, 100, 100000, 0
	port := &ledstriptest.Port{MaxTx: 1 << 16}
	strip, err := ledstrip.OpenSPI(port, cfg.StripOptions())
	if err != nil {
		t.Fatal(err)
	}
	_, stop := runDevice(t, cfg, strip, nil)
	defer stop()
	led0 := func(frame []byte) int {
		leds, err := ledstriptest.Decode(frame, cfg.LEDs, 3)
		if err != nil {
			t.Fatalf("decoding a transfer: %v", err)
		}
		return int(leds[0][0])
	}
	lastLED0 := func() int {
		if f := port.Last(); f != nil {
			return led0(f)
		}
		return -1
	}
	// between counts the distinct LED 0 levels strictly between lo and hi
	// in the transfers from the from'th on.
	between := func(from, lo, hi int) int {
		seen := map[int]bool{}
		for _, f := range port.Frames()[from:] {
			if v := led0(f); v > lo && v < hi {
				seen[v] = true
			}
		}
		return len(seen)
	}
	waitFor(t, "the waiting look at full brightness", func() bool { r, ok := peer.last(); return ok && lastLED0() == 160 && r.Version == 0 })

	from := len(port.Frames())
	peer.desire(t, "porch", `{"version":1,"brightness":10,"fade_ms":1500}`)
	waitFor(t, "dimmed to 10 %", func() bool { return lastLED0() == 16 })
	waitFor(t, "version 1 reported", func() bool { r, _ := peer.last(); return r.Version == 1 })
	if n := between(from, 16, 160); n < 10 {
		t.Errorf("fade_ms 1500: %d levels between full and 10 %%, want a fade (at least 10)", n)
	}
	if r, _ := peer.last(); r.Applied.FadeMS == nil || *r.Applied.FadeMS != 1500 {
		t.Errorf("reported fade_ms %v, want 1500", r.Applied.FadeMS)
	}

	from = len(port.Frames())
	peer.desire(t, "porch", `{"version":2,"brightness":100,"fade_ms":0}`)
	waitFor(t, "back to full", func() bool { return lastLED0() == 160 })
	if n := between(from, 16, 160); n != 0 {
		t.Errorf("fade_ms 0: %d levels between 10 %% and full, want a jump", n)
	}
}

// TestSettingsUnitAndFadeInFrames: the jsonl frames of a device carry the
// unit and fade_ms in force, local first, then the agent's.
func TestSettingsUnitAndFadeInFrames(t *testing.T) {
	b := mqtttest.Start(t)
	peer := startSettingsPeer(t, b.URL())
	leds := filepath.Join(t.TempDir(), "leds.jsonl")
	cfg := Default()
	cfg.Broker, cfg.DeviceID, cfg.StateDir, cfg.LED = b.URL(), "den", t.TempDir(), "jsonl:"+leds
	cfg.Strip.Fade = 250 * time.Millisecond
	strip, err := ledstrip.Open(cfg.LED, cfg.StripOptions())
	if err != nil {
		t.Fatal(err)
	}
	_, stop := runDevice(t, cfg, strip, nil)
	defer stop()
	type rec struct {
		State  string `json:"state"`
		Unit   string `json:"unit"`
		FadeMS *int   `json:"fade_ms"`
	}
	last := func() rec {
		raw, _ := os.ReadFile(leds)
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		var r rec
		json.Unmarshal([]byte(lines[len(lines)-1]), &r)
		return r
	}
	waitFor(t, "first report", func() bool { _, ok := peer.last(); return ok })
	if r := last(); r.Unit != "" || r.FadeMS == nil || *r.FadeMS != 250 {
		t.Errorf("local settings: frame unit %q fade_ms %v, want °C (left out) and strip.fade's 250", r.Unit, r.FadeMS)
	}
	peer.desire(t, "den", `{"version":1,"unit":"F","fade_ms":2000}`)
	waitFor(t, "°F frames", func() bool { r := last(); return r.Unit == "F" && r.FadeMS != nil && *r.FadeMS == 2000 })
	waitFor(t, "version 1 reported in °F", func() bool { r, _ := peer.last(); return r.Version == 1 && r.Applied.Unit == "F" })
}

// offsetClock is the system clock moved by d: the device's own timers run
// in real time, its idea of the hour is the moved one.
type offsetClock struct{ d time.Duration }

func (c offsetClock) Now() time.Time { return time.Now().Add(c.d) }

// TestSettingsQuietHoursFromTheAgent: quiet hours set by the agent take
// effect at the window's start without another message.
func TestSettingsQuietHoursFromTheAgent(t *testing.T) {
	b := mqtttest.Start(t)
	peer := startSettingsPeer(t, b.URL())
	cfg := Default()
	cfg.Broker, cfg.DeviceID, cfg.StateDir = b.URL(), "bedroom", t.TempDir()
	strip := &recStrip{}
	d, err := New(cfg, strip, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Four seconds before 22:00 on the device's clock.
	now := time.Now()
	start := time.Date(now.Year(), now.Month(), now.Day(), 22, 0, 0, 0, now.Location())
	if !start.After(now.Add(5 * time.Second)) {
		start = start.AddDate(0, 0, 1)
	}
	d.Clock = offsetClock{start.Add(-4 * time.Second).Sub(now)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()

	peer.desire(t, "bedroom", `{"version":1,"brightness":80,"quiet_hours":{"start":"22:00","end":"07:00","brightness":5}}`)
	waitFor(t, "80 % before the window", func() bool { return strip.last().BrightnessPercent() == 80 })
	if got := d.Clock.Now(); !got.Before(start) {
		t.Fatalf("test set-up: the device's clock reached %v before the first check", got)
	}
	waitFor(t, "5 % inside the window", func() bool { return strip.last().BrightnessPercent() == 5 })
	if got := d.Clock.Now(); got.Before(start) {
		t.Errorf("dimmed at %v, before the window's start %v", got, start)
	}
	waitFor(t, "the quiet hours reported", func() bool {
		r, _ := peer.last()
		return r.Version == 1 && r.Applied.QuietHours != nil && r.Applied.QuietHours.Start == "22:00"
	})
}

// TestLocalQuietHoursDimOnce: the YAML's quiet hours, applied by the
// device as a setting on a strip opened with DaemonStripOptions, light
// the LEDs as the strip's own quiet-hours cap did, not twice as dim.
func TestLocalQuietHoursDimOnce(t *testing.T) {
	inWindow := time.Date(2026, 1, 10, 23, 0, 0, 0, time.Local)
	for _, tc := range []struct {
		name  string
		quiet ledstrip.QuietHours
	}{
		{"cap 10 under 40", ledstrip.QuietHours{Start: "22:00", End: "07:00", Brightness: 10}},
		{"cap 25 under 40", ledstrip.QuietHours{Start: "22:00", End: "07:00", Brightness: 25}},
		{"cap above the normal one", ledstrip.QuietHours{Start: "22:00", End: "07:00", Brightness: 80}},
		{"off", ledstrip.QuietHours{Start: "22:00", End: "07:00", Off: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			cfg.DeviceID, cfg.Strip.Quiet = "kitchen", tc.quiet
			cfg.Strip.Fade, cfg.Strip.CurrentLimitMA = 0, 100000
			show := func(o ledstrip.Options, f ledstrip.Frame) [][]byte {
				o.Now = func() time.Time { return inWindow }
				port := &ledstriptest.Port{MaxTx: 1 << 16}
				s, err := ledstrip.OpenSPI(port, o)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if err := s.Show(f); err != nil {
					t.Fatal(err)
				}
				leds, err := ledstriptest.Decode(port.Last(), cfg.LEDs, 3)
				if err != nil {
					t.Fatal(err)
				}
				return leds
			}
			fr := ledstrip.Frame{State: ledstrip.StateFresh, Temps: []float64{-20, 0, 12, 25, 40}}
			// Before: the strip capped itself in the window.
			want := show(cfg.StripOptions(), fr)
			// Now: the device composes the frame from its settings.
			v := view{cur: nil, set: localSettings(cfg)}
			f := compose(inWindow, v, time.Hour)
			fr.Brightness = f.Brightness
			got := show(cfg.DaemonStripOptions(), fr)
			for i := range want {
				for c := range want[i] {
					if d := int(got[i][c]) - int(want[i][c]); d < -3 || d > 3 {
						t.Errorf("LED %d channel %d: %d, the strip's own quiet hours gave %d", i, c, got[i][c], want[i][c])
					}
				}
			}
		})
	}
}
