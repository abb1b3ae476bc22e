// Package e2e runs the real binaries against a real Mosquitto and a local
// Open-Meteo, and checks what a user would see: the device's frames, the
// retained topics, and the agent's metrics.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/binaries"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
	"github.com/glowcast/glowcast/test/kit/weathertest"
)

var binDir string

func TestMain(m *testing.M) { binaries.Main(m, &binDir) }

// proc is one of our binaries running as its own process.
type proc struct {
	t      *testing.T
	offset int64 // where this run's log starts
	name   string
	args   []string
	log    string
	cmd    *exec.Cmd
	done   chan struct{}
	err    error
}

func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, args: args, log: filepath.Join(t.TempDir(), name+".log")}
	p.start()
	t.Cleanup(func() { p.stop(syscall.SIGTERM) })
	return p
}

func (p *proc) start() {
	p.t.Helper()
	lf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	if fi, err := lf.Stat(); err == nil {
		p.offset = fi.Size()
	}
	p.cmd = exec.Command(filepath.Join(binDir, p.name), p.args...)
	p.cmd.Stdout, p.cmd.Stderr = lf, lf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func() { p.err = p.cmd.Wait(); lf.Close(); close(p.done) }()
}

// stop ends the process with sig and waits; it reports a crash (any exit
// other than by our signal or a clean 0).
func (p *proc) stop(sig syscall.Signal) {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Errorf("%s did not stop within 10s of %v\n%s", p.name, sig, p.logText())
	}
	if sig == syscall.SIGTERM && p.err != nil {
		p.t.Errorf("%s exited with %v after SIGTERM\n%s", p.name, p.err, p.logText())
	}
	p.cmd = nil
}

func (p *proc) kill()    { p.stop(syscall.SIGKILL) }
func (p *proc) restart() { p.start() }

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// logText is the log of the current run.
func (p *proc) logText() string {
	b, _ := os.ReadFile(p.log)
	if int64(len(b)) >= p.offset {
		b = b[p.offset:]
	}
	return string(b)
}

// frame is one line of the jsonl strip.
type frame struct {
	TS    time.Time  `json:"ts"`
	RGB   []string   `json:"rgb"`
	Temps []*float64 `json:"temps_c"`
	State string     `json:"state"`
}

func readFrames(t *testing.T, path string) []frame {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []frame
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var fr frame
		if err := json.Unmarshal(sc.Bytes(), &fr); err != nil {
			t.Fatalf("jsonl line %q: %v", sc.Text(), err)
		}
		out = append(out, fr)
	}
	return out
}

// env is one broker, one weather server and helpers around them.
type env struct {
	t       *testing.T
	broker  *mqtttest.Broker
	weather *weathertest.Server
	watch   *watcher
}

func newEnv(t *testing.T, opts ...mqtttest.Option) *env {
	e := &env{t: t, broker: mqtttest.Start(t, opts...), weather: weathertest.New()}
	t.Cleanup(e.weather.Close)
	e.watch = newWatcher(t, e.broker.URL())
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

// watcher subscribes to everything glowcast and records it.
type watcher struct {
	t  *testing.T
	c  mqtt.Client
	mu sync.Mutex
	// temps arrivals (non-retained) per device
	temps    map[string][]time.Time
	retained map[string][]byte
}

func newWatcher(t *testing.T, broker string) *watcher {
	w := &watcher{t: t, temps: map[string][]time.Time{}, retained: map[string][]byte{}}
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID("e2e-watcher-" + strconv.Itoa(os.Getpid())).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond).
		SetMaxReconnectInterval(200 * time.Millisecond).SetCleanSession(true)
	opts.SetOnConnectHandler(func(c mqtt.Client) {
		c.Subscribe(protocol.Prefix+"/#", 1, w.onMsg)
	})
	w.c = mqtt.NewClient(opts)
	tok := w.c.Connect()
	tok.WaitTimeout(5 * time.Second)
	t.Cleanup(func() { w.c.Disconnect(50) })
	return w
}

func (w *watcher) onMsg(_ mqtt.Client, m mqtt.Message) {
	w.mu.Lock()
	defer w.mu.Unlock()
	parts := strings.Split(m.Topic(), "/")
	if len(parts) == 5 && parts[3] == "agent" && parts[4] == "temps" && !m.Retained() {
		w.temps[parts[2]] = append(w.temps[parts[2]], time.Now())
	}
	w.retained[m.Topic()] = append([]byte(nil), m.Payload()...)
}

func (w *watcher) tempsTimes(dev string) []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Time(nil), w.temps[dev]...)
}

func (w *watcher) last(topic string) []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.retained[topic]
}

func (w *watcher) publish(topic string, payload []byte, retained bool) {
	w.t.Helper()
	tok := w.c.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		w.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool, logs ...func() string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			var extra []string
			for _, l := range logs {
				extra = append(extra, l())
			}
			t.Fatalf("timed out after %v waiting for %s\n%s", timeout, what, strings.Join(extra, "\n---\n"))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// httpAddr finds the agent's HTTP address in its log.
var httpRE = regexp.MustCompile(`http_addr=(\S+)`)

func agentHTTP(t *testing.T, p *proc) string {
	t.Helper()
	var addr string
	waitFor(t, 5*time.Second, "agent http address in log", func() bool {
		m := httpRE.FindAllStringSubmatch(p.logText(), -1)
		if len(m) == 0 {
			return false
		}
		addr = m[len(m)-1][1]
		return true
	})
	return addr
}

// metric reads one sample from the agent's /metrics.
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, name)), 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	return 0
}

func lastFrame(t *testing.T, path string) (frame, bool) {
	fs := readFrames(t, path)
	if len(fs) == 0 {
		return frame{}, false
	}
	return fs[len(fs)-1], true
}
