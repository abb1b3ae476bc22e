package doctor

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/glowcast/glowcast/agent"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
)

func find(t *testing.T, rs []Result, check string) Result {
	t.Helper()
	for _, r := range rs {
		if r.Check == check {
			return r
		}
	}
	t.Fatalf("no %q check in %+v", check, rs)
	return Result{}
}

func weatherServer(t *testing.T, status int, hdr map[string]string, body []byte) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range hdr {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// aclBroker runs Mosquitto with the ACL file acl (anonymous clients are
// user-less, so the rules are written for "topic" lines without a user).
func aclBroker(t *testing.T, acl string) *mqtttest.Broker {
	// Mosquitto drops root to its own user, which must read the file.
	dir, err := os.MkdirTemp("", "glowcast-doctor-acl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	p := filepath.Join(dir, "acl")
	if err = os.WriteFile(p, []byte(acl), 0o644); err != nil {
		t.Fatal(err)
	}
	return mqtttest.Start(t, mqtttest.WithConfig("acl_file "+p))
}

func TestChecks(t *testing.T) {
	body, err := os.ReadFile("../weather/testdata/openmeteo_berlin.json")
	if err != nil {
		t.Fatal(err)
	}
	ok := weatherServer(t, 200, nil, body)
	limited := weatherServer(t, 429, map[string]string{"Retry-After": "30"}, nil)
	allowed := aclBroker(t, "topic readwrite glowcast/v1/#\n")
	refused := aclBroker(t, "topic read glowcast/v1/+/device/#\n")
	writeOnly := aclBroker(t, "topic readwrite glowcast/v1/+/device/#\ntopic readwrite glowcast/v1/+/owner\ntopic readwrite glowcast/v1/agent/+/status\ntopic readwrite glowcast/v1/agent/main/sync\ntopic read glowcast/v1/agent/main/doctor\n")

	base := func() agent.Config {
		c := agent.Default()
		c.StateDir = t.TempDir()
		c.Weather.URL = ok
		c.Geo.GeolocateURL, c.Geo.IPURL = "", ""
		return c
	}
	tests := []struct {
		name   string
		cfg    func(c *agent.Config)
		check  string
		ok     bool
		detail string
	}{
		{"all good broker", func(c *agent.Config) { c.Broker = allowed.URL() }, "acl", true, "round trip"},
		{"all good weather", func(c *agent.Config) { c.Broker = allowed.URL() }, "weather", true, "open-meteo answered"},
		// Mosquitto's acl_file grants every SUBSCRIBE and filters delivery,
		// so a read refusal shows as a lost round trip, not as 0x80.
		{"read refused", func(c *agent.Config) { c.Broker = refused.URL() }, "acl", false, "never came back"},
		{"publish dropped", func(c *agent.Config) { c.Broker = writeOnly.URL() }, "acl", false, "never came back"},
		{"no broker", func(c *agent.Config) { c.Broker = "tcp://127.0.0.1:" + itoa(mqtttest.FreePort(t)) }, "broker", false, "cannot connect"},
		{"429", func(c *agent.Config) { c.Broker = allowed.URL(); c.Weather.URL = limited }, "weather", false, "HTTP 429"},
		{"missing key", func(c *agent.Config) {
			c.Broker = allowed.URL()
			c.Weather.Provider = "pirate-weather"
			c.Weather.URL = ""
		}, "weather", false, "needs an API key"},
		{"state dir", func(c *agent.Config) { c.Broker = allowed.URL(); c.StateDir = "/proc/nonexistent" }, "state dir", false, "no such file"},
		// The running agent holds the identity's one session.
		{"agent running", func(c *agent.Config) { c.Broker = allowed.URL(); c.MQTT.Username = "running-agent" }, "broker", false, `identity "running-agent" is running on this host`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.cfg(&c)
			rs := Run(context.Background(), c, Options{Timeout: 2 * time.Second, Getenv: func(string) string { return "" }, Now: func() time.Time { return time.Date(2025, 11, 25, 12, 30, 0, 0, time.UTC) },
				Running: func(_, id string) bool { return id == "running-agent" }})
			r := find(t, rs, tc.check)
			if r.OK != tc.ok || !strings.Contains(r.Detail, tc.detail) {
				t.Errorf("got %+v, want ok=%v detail containing %q", r, tc.ok, tc.detail)
			}
			if !r.OK && !r.Skip && r.Fix == "" {
				t.Errorf("failure without a fix: %+v", r)
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestProcess runs the installed command: exit 0 only when every check
// passes.
func TestProcess(t *testing.T) {
	bin := agentBin
	body, _ := os.ReadFile("../weather/testdata/openmeteo_berlin.json")
	ok := weatherServer(t, 200, nil, body)
	allowed := aclBroker(t, "topic readwrite glowcast/v1/#\n")
	refused := aclBroker(t, "topic read glowcast/v1/+/device/#\n")
	for _, tc := range []struct {
		name   string
		broker string
		code   int
		want   string
	}{
		{"pass", allowed.URL(), 0, "✓ acl"},
		{"refused", refused.URL(), 1, "✗ acl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := filepath.Join(t.TempDir(), "agent.yaml")
			// Read exactly as the agent reads it: the file, then flags.
			if err := os.WriteFile(conf, []byte("geo:\n  geolocate_url: \"\"\n  ip_geolocation_url: \"\"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "doctor", "--config", conf, "--broker", tc.broker, "--weather-url", ok, "--state-dir", t.TempDir())
			cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != tc.code || !strings.Contains(string(out), tc.want) {
				t.Errorf("exit %d (want %d), output:\n%s", code, tc.code, out)
			}
		})
	}
}
