package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glowcast/glowcast/agent/statuspage"
	"github.com/glowcast/glowcast/mqttmsg"
	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func httpConfig(broker, stateDir string) Config {
	cfg := Default()
	cfg.Broker, cfg.StateDir, cfg.HTTP = broker, stateDir, "127.0.0.1:0"
	cfg.Weather.Provider, cfg.Location = "sample", "52.52,13.40"
	cfg.RestartGrace = 200 * time.Millisecond
	return cfg
}

// TestOperatorView checks /healthz, /metrics and the status page of a
// running agent serving two devices, then restarted.
func TestOperatorView(t *testing.T) {
	b := mqtttest.Start(t)
	state := t.TempDir()
	a, stop, _ := runAgent(t, httpConfig(b.URL(), state))
	d1 := startSimDevice(t, b.URL(), "kitchen")
	d2 := startSimDevice(t, b.URL(), "hall")
	waitUntil(t, 10*time.Second, "temps at both devices", func() bool { return d1.last() != nil && d2.last() != nil })
	waitUntil(t, 5*time.Second, "http", func() bool { return a.HTTPAddr() != "" })
	base := "http://" + a.HTTPAddr()

	t.Run("healthz", func(t *testing.T) {
		code, body := get(t, base+"/healthz")
		if code != 200 || !strings.Contains(body, "broker: connected") || !strings.Contains(body, "state_dir: writable") {
			t.Errorf("got %d %q, want 200 with broker connected and state_dir writable", code, body)
		}
	})
	t.Run("status page", func(t *testing.T) {
		code, body := get(t, base+"/")
		if code != 200 {
			t.Fatalf("got %d, want 200", code)
		}
		for _, d := range a.Devices() {
			if !strings.Contains(body, `data-device="`+d.ID+`"`) {
				t.Errorf("no row for %s", d.ID)
			}
			sw := statuspage.Swatches(statuspage.Device{ID: d.ID, Online: d.Online, Temps: d.LastTemps}, time.Now(), statuspage.Options{StaleAfter: 2 * a.cfg.Interval})
			for _, hex := range sw {
				if !strings.Contains(body, `data-rgb="`+hex+`"`) {
					t.Errorf("%s: swatch %s missing from the page", d.ID, hex)
				}
			}
		}
		for _, want := range []string{"52.520, 13.400", "(default)", "sample", `http-equiv="refresh"`} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %q", want)
			}
		}
	})

	t.Run("metrics before restart", func(t *testing.T) {
		_, body := get(t, base+"/metrics")
		for _, re := range []string{
			`(?m)^glowcast_agent_forecast_fetch_seconds_bucket\{le="[^"]+"\} \d`,
			`(?m)^glowcast_agent_forecast_fetches_total\{[^}]*result="ok"[^}]*\} [1-9]`,
			`(?m)^glowcast_weather_requests_total\{provider="sample",result="ok"\} 1$`,
			// Two devices in one cache cell: one request, shared.
			`(?m)^glowcast_weather_cache_total\{provider="sample",result="(shared|hit)"\} [1-9]`,
		} {
			if !regexp.MustCompile(re).MatchString(body) {
				t.Errorf("metrics lack %s", re)
			}
		}
		if t.Failed() {
			t.Logf("metrics:\n%s", grepGlowcast(body))
		}
	})

	// A restart resumes both cycles from saved state.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	a2, _, _ := runAgent(t, httpConfig(b.URL(), state))
	waitUntil(t, 10*time.Second, "both cycles resumed", func() bool {
		n := 0
		for _, c := range a2.Stats().Resumed() {
			n += c
		}
		return n >= 2
	})
	waitUntil(t, 5*time.Second, "http", func() bool { return a2.HTTPAddr() != "" })
	t.Run("metrics", func(t *testing.T) {
		_, body := get(t, "http://"+a2.HTTPAddr()+"/metrics")
		for _, re := range []string{
			`(?m)^glowcast_agent_devices_online 2$`,
			`(?m)^glowcast_agent_cycles_running 2$`,
			`(?m)^glowcast_agent_cycle_starts_total\{path="[a-z]+"\} [1-9]`,
			`(?m)^glowcast_agent_resume_seconds_bucket\{path="[a-z]+",le="[^"]+"\} \d`,
			`(?m)^glowcast_agent_broker_connected 1$`,
		} {
			if !regexp.MustCompile(re).MatchString(body) {
				t.Errorf("metrics lack %s", re)
			}
		}
		if t.Failed() {
			t.Logf("metrics:\n%s", grepGlowcast(body))
		}
	})
	t.Run("healthz state dir gone", func(t *testing.T) {
		os.RemoveAll(state)
		code, body := get(t, "http://"+a2.HTTPAddr()+"/healthz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "state_dir: not writable (state_dir, --state-dir)") {
			t.Errorf("got %d %q, want 503 naming state_dir", code, body)
		}
	})
}

// TestHomeAssistantDiscovery: each device's five temperatures become
// retained sensor configs, available while the device and the agent are.
func TestHomeAssistantDiscovery(t *testing.T) {
	b := mqtttest.Start(t)
	cfg := Default()
	cfg.Broker, cfg.Weather.Provider, cfg.Location = b.URL(), "sample", "52.52,13.40"
	runAgent(t, cfg)
	startSimDevice(t, b.URL(), "hall.1")

	// A subscriber that comes later gets them retained, as Home Assistant
	// does after its own restart.
	var got map[string]retainedMsg
	mqtttest.WaitFor(t, 10*time.Second, "seven retained discovery configs", func() bool {
		got = retainedUnder(t, b.URL(), HassPrefix+"/#")
		for _, m := range got {
			if !m.retained {
				return false // published live while we subscribed: look again
			}
		}
		return len(got) == 7 // five sensors, the light, the connectivity binary_sensor
	})
	for i, h := range protocol.Offsets {
		n := strconv.Itoa(i)
		topic := "homeassistant/sensor/glowcast_hall_1_" + n + "/config"
		m, ok := got[topic]
		if !ok {
			t.Errorf("no config at %s (got %v)", topic, got)
			continue
		}
		if !m.retained {
			t.Errorf("%s: not retained", topic)
		}
		var c map[string]any
		if err := json.Unmarshal(m.payload, &c); err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
		want := map[string]any{
			"state_topic":         "glowcast/v1/hall.1/agent/temps",
			"value_template":      "{{ value_json.temps_c[" + n + "] }}",
			"unit_of_measurement": "°C",
			"device_class":        "temperature",
			"availability_mode":   "all",
			"unique_id":           "glowcast_hall_1_" + n,
		}
		for k, v := range want {
			if c[k] != v {
				t.Errorf("%s: %s: got %v, want %v", topic, k, c[k], v)
			}
		}
		if av, _ := c["availability"].([]any); len(av) != 2 {
			t.Errorf("%s: availability %v, want the device's and the agent's status", topic, c["availability"])
		}
		if _, ok := c["state_class"]; ok {
			t.Errorf("%s: state_class set; forecasts must stay out of long-term statistics", topic)
		}
		dev, _ := c["device"].(map[string]any)
		if ids, _ := dev["identifiers"].([]any); len(ids) != 1 || ids[0] != "glowcast_hall_1" || dev["name"] != "glowcast hall.1" {
			t.Errorf("%s: device block %v, want identifiers [glowcast_hall_1] and name glowcast hall.1", topic, dev)
		}
		wantName := "Now"
		if h > 0 {
			wantName = "In " + strconv.Itoa(h) + " h"
		}
		if c["name"] != wantName {
			t.Errorf("%s: name: got %v, want %s", topic, c["name"], wantName)
		}
	}
}

type retainedMsg struct {
	payload  []byte
	retained bool
}

// retainedUnder subscribes to filter for a moment and returns what the
// broker holds retained there.
func retainedUnder(t *testing.T, broker, filter string) map[string]retainedMsg {
	t.Helper()
	var mu sync.Mutex
	got := map[string]retainedMsg{}
	cl, err := mqttmsg.New(mqttmsg.Options{Broker: broker, ClientID: "ha-test-" + protocol.RandomID()})
	if err != nil {
		t.Fatal(err)
	}
	cl.Handle(filter, func(m mqttmsg.Message) {
		mu.Lock()
		got[m.Topic] = retainedMsg{append([]byte(nil), m.Payload...), m.Retained}
		mu.Unlock()
	})
	cl.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err = cl.WaitUp(ctx, 1)
	cancel()
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	time.Sleep(200 * time.Millisecond) // retained messages follow the SUBACK
	cl.Close(context.Background())
	mu.Lock()
	defer mu.Unlock()
	return got
}

func grepGlowcast(metrics string) string {
	var out []string
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, "glowcast_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
