// Package e2e runs the real binaries against a real Mosquitto and a local
// Open-Meteo, and checks what a user would see: the device's frames, the
// retained topics, and the agent's metrics.
package e2e

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/glowcast/glowcast/ledstrip/backend"
	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/binaries"
	"github.com/glowcast/glowcast/test/kit/metrics"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
	"github.com/glowcast/glowcast/test/kit/mqttwatch"
	"github.com/glowcast/glowcast/test/kit/proc"
	"github.com/glowcast/glowcast/test/kit/weathertest"
)

var binDir string

func TestMain(m *testing.M) { binaries.Main(m, &binDir) }

// start runs one of our binaries for the test (binaries.Start).
func start(t *testing.T, name string, args ...string) *proc.Proc {
	t.Helper()
	return binaries.Start(t, binDir, name, nil, args...)
}

// restart starts p again after a kill.
func restart(t *testing.T, p *proc.Proc) {
	t.Helper()
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
}

func readFrames(t *testing.T, path string) []backend.Record {
	t.Helper()
	recs, err := backend.ReadJSONL(path)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// env is one broker, one weather server and helpers around them.
type env struct {
	t       *testing.T
	broker  *mqtttest.Broker
	weather *weathertest.Server
	watch   *mqttwatch.Watcher
}

func newEnv(t *testing.T, opts ...mqtttest.Option) *env {
	e := &env{t: t, broker: mqtttest.Start(t, opts...), weather: weathertest.New()}
	t.Cleanup(e.weather.Close)
	w, err := mqttwatch.Start(e.broker.URL(), "e2e-watcher-"+protocol.RandomID(), protocol.Prefix+"/#")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	e.watch = w
	return e
}

const (
	lat, lon = 52.52, 13.40
	interval = 3 * time.Second
)

func (e *env) agentArgs(stateDir string, extra ...string) []string {
	args := []string{
		"--broker", e.broker.URL(), "--agent-id", "main", "--weather", "open-meteo",
		"--weather-url", e.weather.URL, "--location", fmt.Sprintf("%v,%v", lat, lon),
		"--interval", interval.String(), "--restart-grace", "60s", "--http", "127.0.0.1:0", "--log-level", "debug",
	}
	if stateDir != "" {
		args = append(args, "--state-dir", stateDir)
	}
	return append(args, extra...)
}

func (e *env) deviceArgs(id, jsonl, stateDir string) []string {
	return []string{"--broker", e.broker.URL(), "--device-id", id, "--led", "jsonl:" + jsonl,
		"--state-dir", stateDir, "--stale-after", "1h", "--log-level", "debug"}
}

// tempsTimes are the arrivals of live temps for dev.
func (e *env) tempsTimes(dev string) []time.Time {
	return e.watch.Arrivals(protocol.DeviceTopic(dev, protocol.SideAgent, protocol.MsgTemps))
}

func (e *env) publish(topic string, payload []byte, retained bool) {
	e.t.Helper()
	if err := e.watch.Publish(topic, payload, retained); err != nil {
		e.t.Fatal(err)
	}
}

// httpAddr finds the agent's HTTP address in its log.
var httpRE = regexp.MustCompile(`http_addr=(\S+)`)

func agentHTTP(t *testing.T, p *proc.Proc) string {
	t.Helper()
	var addr string
	mqtttest.WaitFor(t, 5*time.Second, "agent http address in log", func() bool {
		m := httpRE.FindAllStringSubmatch(p.Log(), -1)
		if len(m) == 0 {
			return false
		}
		addr = m[len(m)-1][1]
		return true
	})
	return addr
}

// metric reads one sample from the agent's /metrics; 0 when absent.
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	m, err := metrics.Scrape(context.Background(), "http://"+addr+"/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	return m[name]
}

func lastFrame(t *testing.T, path string) (backend.Record, bool) {
	t.Helper()
	r, ok, err := backend.LastJSONL(path)
	if err != nil {
		t.Fatal(err)
	}
	return r, ok
}

// lastFrameOrZero is the newest frame, or a zero one before the first.
func lastFrameOrZero(t *testing.T, path string) backend.Record {
	t.Helper()
	f, _ := lastFrame(t, path)
	return f
}
