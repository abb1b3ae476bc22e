package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/glowcast/glowcast/agent"
	"github.com/glowcast/glowcast/cmd/glowcast/sim"
	"github.com/glowcast/glowcast/ledstrip"
	"github.com/glowcast/glowcast/ledstrip/backend"
	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/metrics"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
	"github.com/glowcast/glowcast/test/kit/mqttwatch"
	"github.com/glowcast/glowcast/test/kit/proc"
	"github.com/glowcast/glowcast/test/kit/weathertest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// env is one broker, the proxy in front of it, the local weather, the agent
// and the devices.
type env struct {
	t        testing.TB
	cfg      Config
	dir      string
	broker   *mqtttest.Broker
	toxi     *toxiproxy.ApiServer
	proxy    *toxiproxy.Proxy
	weather  *weathertest.Server
	watch    *mqttwatch.Watcher
	skewFile string

	amu      sync.Mutex   // guards agents against the metrics watcher
	agents   []*agentProc // agents[len-1] is the current one
	agentSeq int
	devices  []*device
	samples  []Sample
	rig      *fleetRig // the fleet faults' own broker, agent and devices, once started

	onViolation func(fault, what string)
}

type agentProc struct {
	*proc.Proc
	stateDir string
	// httpAddr is read from the log on the first scrape after a start;
	// the fault goroutine and the metrics watcher both scrape.
	addrMu   sync.Mutex
	httpAddr string
}

type device struct {
	id       string
	lat, lon float64
	proc     *proc.Proc
	jsonl    string
	stateDir string
	// skewFile moves this device's wall clock (internal/clock), as the
	// agent's skewFile moves the agent's.
	skewFile string
}

func newEnv(t testing.TB, cfg Config) *env {
	dir := t.TempDir()
	e := &env{t: t, cfg: cfg, dir: dir, skewFile: filepath.Join(dir, "agent-clock-skew")}
	if cfg.Fleet > 0 {
		// The broker inherits the limit: thousands of connections.
		if _, err := sim.RaiseFileLimit(); err != nil {
			t.Fatalf("chaos: raising the open-file limit for a fleet of %d: %v", cfg.Fleet, err)
		}
	}
	e.broker = mqtttest.Start(t, mqtttest.WithPersistence())
	e.weather = weathertest.New()
	t.Cleanup(e.weather.Close)

	e.toxi = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	e.proxy = toxiproxy.NewProxy(e.toxi, "broker", "127.0.0.1:0", e.broker.Addr())
	if err := e.toxi.Collection.Add(e.proxy, true); err != nil {
		t.Fatalf("chaos: starting the broker proxy: %v", err)
	}
	t.Cleanup(func() { e.toxi.Collection.Clear() })
	// The watcher connects to the broker itself, not through the proxy.
	w, err := mqttwatch.Start(e.broker.URL(), "chaos-watcher-"+protocol.RandomID(), tempsFilter)
	if err != nil {
		t.Fatalf("chaos: %v", err)
	}
	t.Cleanup(w.Close)
	e.watch = w
	if err := os.WriteFile(e.skewFile, []byte("0s"), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// proxyURL is where the programs connect: through the fault proxy.
func (e *env) proxyURL() string { return "tcp://" + e.proxy.Listen }

// agentConfig scales the weather client's real-time budgets to the
// compressed interval: a day's request quota is used up in minutes at an
// interval of a second, and a 2 s jitter would exceed the interval.
func (e *env) agentConfig() string {
	p := filepath.Join(e.dir, "agent.yaml")
	yaml := fmt.Sprintf("weather:\n  daily_quota: -1\n  jitter: %v\n", e.cfg.Interval/10)
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) agentArgs(stateDir string) []string {
	a := []string{
		"-config", e.agentConfig(),
		"--broker", e.proxyURL(), "--agent-id", "main", "--weather", "open-meteo",
		"--weather-url", e.weather.URL, "--interval", e.cfg.Interval.String(),
		"--restart-grace", (2 * e.cfg.Interval).String(), "--offline-park", "1h",
		"--http", "127.0.0.1:0", "--log-level", "info",
	}
	if stateDir != "" {
		a = append(a, "--state-dir", stateDir)
	}
	return a
}

// startAgent starts a new agent process (a new host in a migration) with
// its own state dir; "" means none.
func (e *env) startAgent(stateDir string) *agentProc {
	e.t.Helper()
	e.agentSeq++
	name := fmt.Sprintf("agent-%d", e.agentSeq)
	p := proc.New(name, filepath.Join(e.cfg.BinDir, "glowcast-agent"), filepath.Join(e.dir, name+".log"),
		e.agentArgs(stateDir), "GLOWCAST_TEST_CLOCK_SKEW_FILE="+e.skewFile)
	a := &agentProc{Proc: p, stateDir: stateDir}
	if err := p.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.amu.Lock()
	e.agents = append(e.agents, a)
	e.amu.Unlock()
	return a
}

func (e *env) agent() *agentProc { return e.agents[len(e.agents)-1] }

// restartAgent starts the current agent's process again with the same args.
func (e *env) restartAgent(a *agentProc, stateDir string) {
	e.t.Helper()
	a.stateDir = stateDir
	a.SetArgs(e.agentArgs(stateDir))
	a.setHTTPAddr("")
	if err := a.Start(); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) addDevice(i int) *device {
	e.t.Helper()
	d := &device{
		id:  fmt.Sprintf("dev%02d", i),
		lat: 10 + float64(i)*0.25, lon: 20 + float64(i)*0.25,
	}
	d.jsonl = filepath.Join(e.dir, d.id+".jsonl")
	d.stateDir = filepath.Join(e.dir, d.id+"-state")
	conf := filepath.Join(e.dir, d.id+".yaml")
	yaml := fmt.Sprintf("location:\n  lat: %v\n  lon: %v\n", d.lat, d.lon)
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		e.t.Fatal(err)
	}
	args := []string{"-config", conf, "--broker", e.proxyURL(), "--device-id", d.id, "--led", "jsonl:" + d.jsonl,
		"--state-dir", d.stateDir, "--stale-after", (10 * e.cfg.Interval).String(), "--log-level", "info"}
	d.skewFile = filepath.Join(e.dir, d.id+"-clock-skew")
	if err := os.WriteFile(d.skewFile, []byte("0s"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	d.proc = proc.New(d.id, filepath.Join(e.cfg.BinDir, "glowcastd"), filepath.Join(e.dir, d.id+".log"), args,
		"GLOWCAST_TEST_CLOCK_SKEW_FILE="+d.skewFile)
	if err := d.proc.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.devices = append(e.devices, d)
	return d
}

var httpRE = regexp.MustCompile(`http_addr=(\S+)`)

func (a *agentProc) setHTTPAddr(v string) {
	a.addrMu.Lock()
	a.httpAddr = v
	a.addrMu.Unlock()
}

// metrics scrapes the agent's /metrics; ok is false while it is not up.
func (e *env) metrics(a *agentProc) (metrics.Samples, bool) {
	if !a.Alive() {
		return nil, false
	}
	a.addrMu.Lock()
	if a.httpAddr == "" {
		if m := httpRE.FindAllStringSubmatch(a.Log(), -1); len(m) > 0 {
			a.httpAddr = m[len(m)-1][1]
		}
	}
	addr := a.httpAddr
	a.addrMu.Unlock()
	if addr == "" {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m, err := metrics.Scrape(ctx, "http://"+addr+"/metrics")
	return m, err == nil
}

// savedIssued reads the issued_at of the temps a device keeps on disk.
func (d *device) savedIssued() (time.Time, error) {
	b, err := os.ReadFile(filepath.Join(d.stateDir, "temps.json"))
	if err != nil {
		return time.Time{}, err
	}
	t, err := protocol.ParseTemps(b)
	if err != nil {
		return time.Time{}, err
	}
	return t.IssuedAt, nil
}

// freshSince reports whether d shows fresh, correct temps issued at or
// after since.
func (d *device) freshSince(since time.Time) bool { return d.staleReason(since) == "" }

// staleReason says why d does not show fresh, correct temps issued at or
// after since ("" when it does), for the campaign's violation report.
func (d *device) staleReason(since time.Time) string {
	issued, err := d.savedIssued()
	if err != nil {
		return "saved temps: " + err.Error()
	}
	if issued.Before(since) {
		return fmt.Sprintf("saved temps issued %s, before %s", issued.UTC().Format(time.RFC3339Nano), since.UTC().Format(time.RFC3339Nano))
	}
	fr, ok, err := backend.LastJSONL(d.jsonl)
	if err != nil {
		return "strip: " + err.Error()
	}
	if !ok {
		return "no frame drawn"
	}
	if fr.State != ledstrip.StateFresh {
		return "frame state " + string(fr.State)
	}
	now := time.Now()
	if !weathertest.SameTemps(fr.Temps, weathertest.Shown(now)) && !weathertest.SameTemps(fr.Temps, weathertest.Shown(now.Add(-5*time.Second))) {
		return fmt.Sprintf("frame temps %v, want %v", fr.Temps, weathertest.Shown(now))
	}
	return ""
}

// checkStateFiles parses every state file; the error names the bad one.
func (e *env) checkStateFiles() []string {
	var bad []string
	for _, a := range e.agents {
		if a.stateDir == "" {
			continue
		}
		dir := filepath.Join(a.stateDir, "devices")
		ents, _ := os.ReadDir(dir)
		for _, en := range ents {
			n := en.Name()
			if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".json") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, n))
			if err == nil {
				_, err = agent.ParseSaved(strings.TrimSuffix(n, ".json"), b)
			}
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s/%s: %v", a.Name(), n, err))
			}
		}
	}
	for _, d := range e.devices {
		if _, err := d.savedIssued(); err != nil && !os.IsNotExist(err) {
			bad = append(bad, fmt.Sprintf("%s/temps.json: %v", d.id, err))
		}
	}
	return bad
}

// staleTemps lists temporary files of interrupted saves that outlived a
// restart (a save in progress lives milliseconds, not seconds).
func (e *env) staleTemps() []string {
	var globs []string
	for _, a := range e.agents {
		if a.stateDir != "" {
			globs = append(globs, filepath.Join(a.stateDir, "devices", ".*.tmp-*"))
		}
	}
	for _, d := range e.devices {
		globs = append(globs, filepath.Join(d.stateDir, ".*.tmp-*"))
	}
	var out []string
	for _, g := range globs {
		m, _ := filepath.Glob(g)
		for _, p := range m {
			if fi, err := os.Stat(p); err == nil && time.Since(fi.ModTime()) > 5*time.Second {
				out = append(out, p)
			}
		}
	}
	return out
}

// corruptFiles lists the files the programs moved aside as unreadable.
func (e *env) corruptFiles() []string {
	var out []string
	for _, a := range e.agents {
		if a.stateDir != "" {
			m, _ := filepath.Glob(filepath.Join(a.stateDir, "devices", "*.corrupt"))
			out = append(out, m...)
		}
	}
	for _, d := range e.devices {
		m, _ := filepath.Glob(filepath.Join(d.stateDir, "*.corrupt"))
		out = append(out, m...)
	}
	return out
}

// tempsFilter matches every device's temps.
var tempsFilter = protocol.DeviceTopic("+", protocol.SideAgent, protocol.MsgTemps)

// tempsBetween returns the arrival times of live temps for dev in
// [from, to).
func (e *env) tempsBetween(dev string, from, to time.Time) []time.Time {
	var out []time.Time
	for _, t := range e.watch.Arrivals(protocol.DeviceTopic(dev, protocol.SideAgent, protocol.MsgTemps)) {
		if !t.Before(from) && t.Before(to) {
			out = append(out, t)
		}
	}
	return out
}

// arrivalSeq is a temps message's seq, and whether a device would have
// dropped it (a lower seq than one sent before it).
type arrivalSeq struct {
	seq     uint64
	refused bool
}

// seqsBetween returns the seqs of dev's live temps that arrived in
// [from, to), in order.
func (e *env) seqsBetween(dev string, from, to time.Time) []arrivalSeq {
	var out []arrivalSeq
	var top uint64
	for _, m := range e.watch.Messages(protocol.DeviceTopic(dev, protocol.SideAgent, protocol.MsgTemps)) {
		var seq uint64
		if t, err := protocol.ParseTemps(m.Payload); err == nil {
			seq = t.Seq
		}
		prev := top
		top = max(top, seq)
		if m.Retained {
			// A replay of the last one on (re)subscribe: not a new message,
			// but its seq is what devices show if the watcher missed it live.
			continue
		}
		a := arrivalSeq{seq: seq, refused: seq != 0 && seq < prev}
		if !m.At.Before(from) && m.At.Before(to) {
			out = append(out, a)
		}
	}
	return out
}

// tempsTotal counts the live temps seen for every device.
func (e *env) tempsTotal() int { return len(e.watch.Arrivals(tempsFilter)) }

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
