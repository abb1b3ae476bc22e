package device

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/glowcast/glowcast/agent/geo"
	"github.com/glowcast/glowcast/device/wifiscan"
	"github.com/glowcast/glowcast/ledstrip"
	"github.com/glowcast/glowcast/mqttmsg"
	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func temps(issued time.Time, validFor time.Duration) *protocol.Temps {
	start := issued.UTC().Truncate(time.Hour)
	h := make(protocol.TempList, 48)
	for i := range h {
		h[i] = float64(i)
	}
	t := &protocol.Temps{
		OffsetsH: protocol.Offsets, IssuedAt: issued, ValidUntil: issued.Add(validFor),
		Location: protocol.Location{Lat: 1, Lon: 2}, Hourly: protocol.Hourly{Start: start, TempsC: h},
	}
	t.TempsC, _ = t.Slot(issued)
	return t
}

func TestCompose(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 20, 0, 0, time.UTC)
	tests := []struct {
		name      string
		now       time.Time
		v         view
		wantState ledstrip.State
		wantFirst float64 // NaN: no temps
	}{
		{"starting", t0, view{started: t0}, ledstrip.StateStarting, math.NaN()},
		{"broker down after grace", t0.Add(brokerGrace), view{started: t0}, ledstrip.StateBrokerDown, math.NaN()},
		{"waiting", t0, view{started: t0, connected: true}, ledstrip.StateWaiting, math.NaN()},
		{"agent offline", t0, view{started: t0, connected: true, agentsSeen: true}, ledstrip.StateAgentOffline, math.NaN()},
		{"fresh", t0.Add(time.Minute), view{cur: temps(t0, time.Hour), connected: true}, ledstrip.StateFresh, 0},
		{"re-slotted at the next hour", t0.Add(45 * time.Minute), view{cur: temps(t0, time.Hour), connected: true}, ledstrip.StateFresh, 1},
		{"stale past valid_until", t0.Add(61 * time.Minute), view{cur: temps(t0, time.Hour), connected: true}, ledstrip.StateStale, 1},
		{"stale past stale_after", t0.Add(59 * time.Minute), view{cur: temps(t0, 10*time.Hour), connected: true}, ledstrip.StateFresh, 1},
		{"stale past stale_after", t0.Add(2 * time.Hour), view{cur: temps(t0, 10*time.Hour), connected: true}, ledstrip.StateStale, 2},
		{"saved temps are stale until confirmed", t0, view{cur: temps(t0, time.Hour), fromSaved: true}, ledstrip.StateStale, 0},
		{"past the hourly series", t0.Add(60 * time.Hour), view{cur: temps(t0, time.Hour)}, ledstrip.StateStale, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := compose(tt.now, tt.v, time.Hour)
			if f.State != tt.wantState {
				t.Errorf("state: got %q, want %q", f.State, tt.wantState)
			}
			var first = math.NaN()
			if len(f.Temps) > 0 {
				first = f.Temps[0]
			}
			if !(first == tt.wantFirst || math.IsNaN(first) && math.IsNaN(tt.wantFirst)) {
				t.Errorf("first temp: got %v, want %v", first, tt.wantFirst)
			}
		})
	}
}

func TestNextChange(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 20, 0, 0, time.UTC)
	tests := []struct {
		name string
		v    view
		want time.Duration
	}{
		{"next hour", view{cur: temps(t0.Add(-5*time.Minute), 2*time.Hour)}, 40 * time.Minute},
		{"valid_until first", view{cur: temps(t0.Add(-5*time.Minute), 10*time.Minute)}, 5 * time.Minute},
		{"broker grace", view{started: t0.Add(-time.Second)}, brokerGrace - time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextChange(t0, tt.v, time.Hour); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// recStrip records frames.
type recStrip struct {
	mu     sync.Mutex
	frames []ledstrip.Frame
	closed bool
}

func (r *recStrip) Show(f ledstrip.Frame) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames = append(r.frames, f)
	return nil
}

func (r *recStrip) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.frames = append(r.frames, ledstrip.Frame{State: ledstrip.StateOff})
	return nil
}

func (r *recStrip) last() ledstrip.Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.frames) == 0 {
		return ledstrip.Frame{}
	}
	return r.frames[len(r.frames)-1]
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeAgent answers ready with temps at once, as fast as it can: the device
// must already listen.
type fakeAgent struct {
	hub   *mqttmsg.Hub
	cl    *mqttmsg.Client
	mu    sync.Mutex
	ready []protocol.Ready
	wifi  [][]byte
}

func startFakeAgent(t *testing.T, broker string, payload func() []byte) *fakeAgent {
	cl, err := mqttmsg.New(mqttmsg.Options{Broker: broker, ClientID: "fake-agent"})
	if err != nil {
		t.Fatal(err)
	}
	a := &fakeAgent{cl: cl, hub: mqttmsg.NewHub(cl, protocol.Prefix, protocol.SideAgent, protocol.SideDevice)}
	a.hub.On(protocol.MsgReady, func(id string, m mqttmsg.Message) {
		var r protocol.Ready
		if json.Unmarshal(m.Payload, &r) != nil || m.Retained {
			return
		}
		a.mu.Lock()
		a.ready = append(a.ready, r)
		a.mu.Unlock()
		go a.hub.Send(context.Background(), id, protocol.MsgTemps, payload())
	})
	a.hub.On(protocol.MsgStatus, func(string, mqttmsg.Message) {})
	a.hub.On(geo.MsgWiFi, func(_ string, m mqttmsg.Message) {
		a.mu.Lock()
		a.wifi = append(a.wifi, m.Payload)
		a.mu.Unlock()
	})
	cl.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.WaitUp(ctx, 1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close(context.Background()) })
	return a
}

func (a *fakeAgent) readies() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.ready)
}

func runDevice(t *testing.T, cfg Config, strip ledstrip.Strip, scan func(context.Context) ([]wifiscan.AccessPoint, error)) (*Device, func()) {
	t.Helper()
	d, err := New(cfg, strip, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Scan = scan
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	return d, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func TestDeviceShowsTempsSentRightAfterReady(t *testing.T) {
	b := mqtttest.Start(t)
	payload := func() []byte {
		tp := temps(time.Now(), time.Hour)
		out, _ := json.Marshal(tp)
		return out
	}
	agent := startFakeAgent(t, b.URL(), payload)
	cfg := Default()
	cfg.Broker, cfg.DeviceID, cfg.StateDir = b.URL(), "kitchen", t.TempDir()
	cfg.WiFi.Scan = true
	strip := &recStrip{}
	scans := 0
	var smu sync.Mutex
	scan := func(context.Context) ([]wifiscan.AccessPoint, error) {
		smu.Lock()
		scans++
		smu.Unlock()
		return []wifiscan.AccessPoint{{BSSID: "00:11:22:33:44:55", SignalDBm: -50}, {BSSID: "00:11:22:33:44:66", SignalDBm: -70}}, nil
	}
	_, stop := runDevice(t, cfg, strip, scan)
	waitFor(t, "fresh temps", func() bool { return strip.last().State == ledstrip.StateFresh })
	waitFor(t, "wifi scan at the agent", func() bool {
		agent.mu.Lock()
		defer agent.mu.Unlock()
		return len(agent.wifi) == 1
	})
	agent.mu.Lock()
	ws, err := geo.ParseWiFi(agent.wifi[0])
	agent.mu.Unlock()
	if err != nil || len(ws.AccessPoints) != 2 {
		t.Fatalf("wifi message: %+v, %v", ws, err)
	}

	// Rebirth: the device announces itself again, same boot.
	before := agent.readies()
	if err := agent.hub.Send(context.Background(), "kitchen", protocol.MsgRebirth, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready again after rebirth", func() bool { return agent.readies() > before })
	agent.mu.Lock()
	if a, b := agent.ready[0].BootID, agent.ready[len(agent.ready)-1].BootID; a != b {
		t.Errorf("boot id changed on rebirth: %q → %q", a, b)
	}
	agent.mu.Unlock()

	// Temps issued before those shown are ignored (a stale agent's late
	// publish); invalid ones too.
	shown := strip.last()
	old, _ := json.Marshal(temps(time.Now().Add(-2*time.Hour), 10*time.Hour))
	agent.hub.Send(context.Background(), "kitchen", protocol.MsgTemps, old)
	agent.hub.Send(context.Background(), "kitchen", protocol.MsgTemps, []byte(`{"temps_c":[1,2,3,4,500]}`))
	time.Sleep(300 * time.Millisecond)
	if got := strip.last(); got.State != shown.State || got.Temps[0] != shown.Temps[0] {
		t.Errorf("frame changed by old or invalid temps: %+v → %+v", shown, got)
	}
	stop()
	if f := strip.last(); f.State != ledstrip.StateOff {
		t.Errorf("last frame after stop: %q, want off", f.State)
	}
	smu.Lock()
	defer smu.Unlock()
	if scans != 1 {
		t.Errorf("scans: got %d, want 1 per boot", scans)
	}
}

func TestSavedTempsShownStaleAtStart(t *testing.T) {
	b := mqtttest.Start(t)
	dir := t.TempDir()
	tp := temps(time.Now(), time.Hour)
	raw, _ := json.Marshal(tp)
	cfg := Default()
	cfg.Broker, cfg.DeviceID, cfg.StateDir = b.URL(), "kitchen", dir
	d, _ := New(cfg, &recStrip{}, nil)
	d.save(raw)

	strip := &recStrip{}
	_, stop := runDevice(t, cfg, strip, nil)
	waitFor(t, "first frame", func() bool { return strip.last().State != "" })
	strip.mu.Lock()
	first := strip.frames[0]
	strip.mu.Unlock()
	if first.State != ledstrip.StateStale || first.Temps[0] != tp.TempsC[0] {
		t.Errorf("first frame: %+v, want the saved temps as stale", first)
	}
	stop()
}

func TestCorruptSavedTempsMovedAside(t *testing.T) {
	dir := t.TempDir()
	cfg := Default()
	cfg.Broker, cfg.DeviceID, cfg.StateDir = "tcp://127.0.0.1:1", "kitchen", dir
	d, _ := New(cfg, &recStrip{}, nil)
	d.save([]byte(`{"temps_c":[1,2`)) // a torn write from an older, non-atomic version
	if got := d.loadSaved(); got != nil {
		t.Fatalf("loaded %+v from a corrupt file", got)
	}
	if _, err := os.ReadFile(dir + "/temps.json.corrupt"); err != nil {
		t.Errorf("corrupt file not kept aside: %v", err)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no device id", func(c *Config) { c.DeviceID = "" }, "device_id (--device-id) is not set"},
		{"wildcard id", func(c *Config) { c.DeviceID = "a/+" }, "device_id (--device-id)"},
		{"reserved id", func(c *Config) { c.DeviceID = "agent" }, "reserved"},
		{"no broker", func(c *Config) { c.Broker = "" }, "broker (--broker)"},
		{"bad node in broker list", func(c *Config) { c.Broker = "tcp://a:1883,b" }, "broker (--broker)"},
		{"no leds", func(c *Config) { c.LEDs = 0 }, "leds (--leds)"},
		{"bad wifi tool", func(c *Config) { c.WiFi.Tool = "airport" }, "wifi.tool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.DeviceID = "kitchen"
			tt.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// An agent that lost the device's seq (its state and the retained temps)
// numbers below what the strip shows; the device drops those temps and
// re-publishes its ready with the seq it shows, so the agent can number
// above it — once per renumberEvery, not once per dropped message.
func TestLowerSeqTempsMakeTheDeviceAnnounceItsSeq(t *testing.T) {
	b := mqtttest.Start(t)
	payload := func() []byte {
		tp := temps(time.Now(), time.Hour)
		tp.Seq = 50
		out, _ := json.Marshal(tp)
		return out
	}
	agent := startFakeAgent(t, b.URL(), payload)
	cfg := Default()
	cfg.Broker, cfg.DeviceID, cfg.StateDir = b.URL(), "kitchen", t.TempDir()
	strip := &recStrip{}
	_, stop := runDevice(t, cfg, strip, nil)
	defer stop()
	waitFor(t, "fresh temps", func() bool { return strip.last().State == ledstrip.StateFresh })
	if n := agent.readies(); n != 1 {
		t.Fatalf("readies before: got %d, want 1", n)
	}
	for seq := uint64(3); seq <= 5; seq++ {
		tp := temps(time.Now(), time.Hour)
		tp.Seq = seq
		low, _ := json.Marshal(tp)
		if err := agent.hub.Send(context.Background(), "kitchen", protocol.MsgTemps, low); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "a ready naming the shown seq", func() bool { return agent.readies() >= 2 })
	time.Sleep(300 * time.Millisecond)
	agent.mu.Lock()
	defer agent.mu.Unlock()
	if len(agent.ready) != 2 {
		t.Fatalf("readies after three low temps: got %d, want 2", len(agent.ready))
	}
	if r := agent.ready[1]; r.TempsSeq != 50 || r.BootID != agent.ready[0].BootID {
		t.Errorf("re-published ready: boot %q temps_seq %d, want boot %q temps_seq 50", r.BootID, r.TempsSeq, agent.ready[0].BootID)
	}
}
