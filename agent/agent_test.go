package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glowcast/glowcast/agent/weather"
	"github.com/glowcast/glowcast/mqttmsg"
	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
	"github.com/glowcast/glowcast/test/kit/weathertest"
)

// simDevice speaks the device side of the protocol with mqttmsg and records
// the temps it gets.
type simDevice struct {
	id   string
	cl   *mqttmsg.Client
	node *mqttmsg.Node
	mu   sync.Mutex
	got  []*protocol.Temps
}

func startSimDevice(t *testing.T, broker, id string) *simDevice {
	t.Helper()
	boot := protocol.RandomID()
	d := &simDevice{id: id}
	ready, _ := json.Marshal(protocol.Ready{BootID: boot, LEDs: 5})
	cl, err := mqttmsg.New(mqttmsg.Options{
		Broker: broker, ClientID: "sim-" + id,
		Presence: &mqttmsg.Presence{Topic: protocol.DeviceTopic(id, protocol.SideDevice, protocol.MsgStatus), ID: boot, Status: protocol.DeviceStatus{BootID: boot, TS: time.Now()}},
		OnUp:     []func(context.Context){func(ctx context.Context) { d.node.SendRetained(ctx, protocol.MsgReady, ready) }},
	})
	if err != nil {
		t.Fatal(err)
	}
	d.cl = cl
	d.node = mqttmsg.NewNode(cl, protocol.Prefix, id, protocol.SideDevice, protocol.SideAgent)
	d.node.On(protocol.MsgTemps, func(b []byte) {
		tp, err := protocol.ParseTemps(b)
		if err != nil {
			t.Errorf("device %s got invalid temps: %v", id, err)
			return
		}
		d.mu.Lock()
		d.got = append(d.got, tp)
		d.mu.Unlock()
	})
	d.node.On(protocol.MsgRebirth, func([]byte) {})
	cl.Connect()
	t.Cleanup(func() { cl.Close(context.Background()) })
	return d
}

func (d *simDevice) last() *protocol.Temps {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.got) == 0 {
		return nil
	}
	return d.got[len(d.got)-1]
}

func runAgent(t *testing.T, cfg Config) (*Agent, func() error, <-chan error) {
	t.Helper()
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ended := make(chan error, 1)
	go func() { err := a.Run(ctx); done <- err; ended <- err }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { stop() })
	return a, stop, ended
}

func (a *Agent) connectedForTest() bool {
	a.mu.Lock()
	cl := a.cl
	a.mu.Unlock()
	return cl != nil && cl.Connected()
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLocatesByWiFiScanAndPerDeviceProvider(t *testing.T) {
	b := mqtttest.Start(t)
	ws := weathertest.New()
	defer ws.Close()
	var geoReq map[string]any
	var gmu sync.Mutex
	geoSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gmu.Lock()
		json.NewDecoder(r.Body).Decode(&geoReq)
		gmu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"location":{"lat":48.8566,"lng":2.3522},"accuracy":32.0}`))
	}))
	defer geoSrv.Close()

	cfg := Default()
	cfg.Broker, cfg.AgentID, cfg.Interval, cfg.RestartGrace = b.URL(), "t", time.Hour, time.Hour
	cfg.Weather.URL = ws.URL
	cfg.Geo.GeolocateURL, cfg.Geo.IPURL = geoSrv.URL, ""
	cfg.Devices = map[string]DeviceConfig{"demo": {Location: "10,10", Weather: weatherSample()}}
	a, _, _ := runAgent(t, cfg)

	paris := startSimDevice(t, b.URL(), "paris")
	demo := startSimDevice(t, b.URL(), "demo")
	waitUntil(t, 5*time.Second, "sample temps for the demo device", func() bool { return demo.last() != nil })
	if p := demo.last().Provider; p != "sample" {
		t.Errorf("demo device provider: got %q, want sample (per-device override)", p)
	}
	// No --location and no hint: nothing to forecast for until the scan.
	time.Sleep(300 * time.Millisecond)
	if paris.last() != nil {
		t.Fatalf("temps without any location: %+v", paris.last())
	}
	scan := `{"access_points":[{"bssid":"00:11:22:33:44:55","signal_dbm":-50},{"bssid":"00:11:22:33:44:66","signal_dbm":-60},{"bssid":"02:00:00:00:00:01","signal_dbm":-40}]}`
	if err := paris.node.Send(context.Background(), "wifi", []byte(scan)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "temps located by wifi", func() bool { return paris.last() != nil })
	if loc := paris.last().Location; loc.Lat != 48.8566 || loc.Lon != 2.3522 {
		t.Errorf("location: got %+v, want the geolocation answer", loc)
	}
	gmu.Lock()
	aps, _ := geoReq["wifiAccessPoints"].([]any)
	consider := geoReq["considerIp"]
	gmu.Unlock()
	if len(aps) != 2 || consider != false {
		t.Errorf("geolocate request: %d access points (want 2, the locally administered one dropped), considerIp=%v", len(aps), consider)
	}
	// The agent records the choice right after publishing.
	waitUntil(t, 5*time.Second, "location source wifi in the agent's view", func() bool {
		for _, v := range a.Devices() {
			if v.ID == "paris" {
				return v.LocationSource == "wifi"
			}
		}
		return false
	})
	if ws.Total() != 1 {
		t.Errorf("weather requests: got %d, want 1 (the demo device uses the sample)", ws.Total())
	}
}

func TestOlderAgentYields(t *testing.T) {
	b := mqtttest.Start(t)
	cfg := Default()
	cfg.Broker, cfg.AgentID, cfg.Location = b.URL(), "main", "1,1"
	cfg.Weather.Provider = "sample"
	older, _, olderEnded := runAgent(t, cfg)
	waitUntil(t, 5*time.Second, "older agent connected", older.connectedForTest)
	time.Sleep(50 * time.Millisecond)
	newer, _, newerEnded := runAgent(t, cfg)
	select {
	case err := <-olderEnded:
		if !errors.Is(err, ErrSupplanted) {
			t.Fatalf("older agent ended with %v, want ErrSupplanted", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("older agent did not yield")
	}
	waitUntil(t, 10*time.Second, "newer agent connected", newer.connectedForTest)
	// The newer one stays: no takeover war.
	select {
	case err := <-newerEnded:
		t.Fatalf("newer agent ended: %v", err)
	case <-time.After(time.Second):
	}
	if !newer.connectedForTest() {
		t.Fatal("newer agent lost its connection")
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"unknown provider", func(c *Config) { c.Weather.Provider = "darksky" }, "weather.provider (--weather)"},
		{"met without contact", func(c *Config) { c.Weather.Provider = "met-norway" }, "weather.contact (--weather-contact)"},
		{"bad location", func(c *Config) { c.Location = "north" }, "location (--location)"},
		{"bad device location", func(c *Config) { c.Devices = map[string]DeviceConfig{"k": {Location: "99,0"}} }, "devices.k.location"},
		{"bad device id", func(c *Config) { c.Devices = map[string]DeviceConfig{"a/b": {}} }, "devices.a/b"},
		{"reserved agent id", func(c *Config) { c.AgentID = "device" }, "reserved"},
		{"short interval", func(c *Config) { c.Interval = time.Millisecond }, "interval (--interval)"},
		{"resume", func(c *Config) { c.Resume = "later" }, "resume (--resume)"},
		{"bad node in broker list", func(c *Config) { c.Broker = "tcp://a:1883,http://b:1" }, "broker (--broker)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mod(&c)
			_, err := New(c, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	c := Default()
	c.Weather.Provider = "pirate-weather"
	t.Setenv("GLOWCAST_WEATHER_KEY", "")
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	if _, err := New(c, nil); err == nil || !strings.Contains(err.Error(), "--weather-key-file") {
		t.Fatalf("missing key: got %v, want an error naming --weather-key-file", err)
	}
}

func weatherSample() (w weather.Config) {
	w.Provider = "sample"
	return w
}

// Regression: a retained last will on the agent's own status topic whose ts
// lay ahead of the new process's start (the previous host's clock was fast)
// made the new agent decide a newer process owned its id: it yielded and
// exited 0 within 0.1s, and no agent served the fleet. An offline status is
// never a reason to yield, whatever its ts says.
func TestFutureDatedOwnWillDoesNotStopTheAgent(t *testing.T) {
	b := mqtttest.Start(t)
	pub, err := mqttmsg.New(mqttmsg.Options{Broker: b.URL(), ClientID: "operator"})
	if err != nil {
		t.Fatal(err)
	}
	pub.Connect()
	defer pub.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pub.WaitUp(ctx, 1); err != nil {
		t.Fatal(err)
	}
	will := fmt.Sprintf(`{"online":false,"session":"previous","ts":%q}`, time.Now().Add(2*time.Hour).UTC().Format(time.RFC3339Nano))
	if err := pub.Publish(ctx, protocol.AgentStatusTopic("main"), []byte(will), true); err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	cfg.Broker, cfg.AgentID, cfg.Location = b.URL(), "main", "1,1"
	cfg.Weather.Provider = "sample"
	a, _, ended := runAgent(t, cfg)
	waitUntil(t, 10*time.Second, "agent connected", a.connectedForTest)
	d := startSimDevice(t, b.URL(), "dev-a")
	select {
	case err := <-ended:
		t.Fatalf("agent ended with %v; want it to keep serving", err)
	case <-time.After(2 * time.Second):
	}
	waitUntil(t, 10*time.Second, "temps for the device", func() bool { return d.last() != nil })
}

// A retained will on a device's status topic dated hours ahead (the
// device's previous boot had a clock set fast) changes nothing: the
// broker's order decides, and a live birth is newer than what was retained.
// (The agent used to drop that birth as "stale" by its ts; the live ready
// that follows it hid the bug, which this guards against returning.)
func TestFutureDatedDeviceWillChangesNothing(t *testing.T) {
	b := mqtttest.Start(t)
	pub, err := mqttmsg.New(mqttmsg.Options{Broker: b.URL(), ClientID: "operator"})
	if err != nil {
		t.Fatal(err)
	}
	pub.Connect()
	defer pub.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pub.WaitUp(ctx, 1); err != nil {
		t.Fatal(err)
	}
	will := fmt.Sprintf(`{"online":false,"boot_id":"previous","ts":%q}`, time.Now().Add(3*time.Hour).UTC().Format(time.RFC3339Nano))
	if err := pub.Publish(ctx, protocol.DeviceTopic("dev-f", protocol.SideDevice, protocol.MsgStatus), []byte(will), true); err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	cfg.Broker, cfg.AgentID, cfg.Location = b.URL(), "main", "1,1"
	cfg.Weather.Provider = "sample"
	a, _, _ := runAgent(t, cfg)
	waitUntil(t, 10*time.Second, "agent connected", a.connectedForTest)
	time.Sleep(200 * time.Millisecond) // the agent has seen the retained will
	d := startSimDevice(t, b.URL(), "dev-f")
	waitUntil(t, 5*time.Second, "temps for the device", func() bool { return d.last() != nil })
}
