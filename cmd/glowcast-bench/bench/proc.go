package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
)

// proc is one process the benchmark runs and measures.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startProc(bin, log string, args ...string) (*proc, error) {
	lf, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("bench: start %s: %w", bin, err)
	}
	p := &proc{name: filepath.Base(bin), cmd: cmd, log: log, done: make(chan struct{})}
	go func() { cmd.Wait(); lf.Close(); close(p.done) }()
	return p, nil
}

// stop signals the process and waits for it (SIGKILL after 10s).
func (p *proc) stop(sig syscall.Signal) {
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) logText() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

var (
	timeRE = regexp.MustCompile(`^time=(\S+) `)
	httpRE = regexp.MustCompile(`http_addr=(\S+)`)
)

// logTimes returns the times of the log lines whose message is msg.
func (p *proc) logTimes(msg string) []time.Time {
	var out []time.Time
	sc := bufio.NewScanner(strings.NewReader(p.logText()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.Contains(l, "msg="+strconv.Quote(msg)) && !strings.Contains(l, "msg="+msg+" ") {
			continue
		}
		if m := timeRE.FindStringSubmatch(l); m != nil {
			if t, err := time.Parse(time.RFC3339Nano, m[1]); err == nil {
				out = append(out, t)
			}
		}
	}
	return out
}

// httpAddr waits for the agent's HTTP address in its log.
func (p *proc) httpAddr(ctx context.Context) (string, error) {
	var addr string
	err := poll(ctx, 10*time.Second, 10*time.Millisecond, func() bool {
		if m := httpRE.FindStringSubmatch(p.logText()); m != nil {
			addr = m[1]
			return true
		}
		return false
	})
	if err != nil {
		return "", fmt.Errorf("bench: %s printed no http address: %w\n%s", p.name, err, tail(p.logText()))
	}
	return addr, nil
}

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}

// poll checks cond every step until it holds, ctx ends or timeout passes.
func poll(ctx context.Context, timeout, step time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(step):
		}
	}
	return nil
}

// broker is a Mosquitto process for one measurement.
type broker struct {
	*proc
	port int
	dir  string
}

// startBroker runs Mosquitto with the shipped config, only its port
// swapped (plain and anonymous on loopback: the benchmark measures the
// limits, not TLS).
func (r *runner) startBroker(dir string) (*broker, error) {
	mosquitto := r.mosquitto
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf, err := mqtttest.ShippedConfig(r.shipped, port, nil)
	if err != nil {
		return nil, err
	}
	conf += "persistence false\n"
	path := filepath.Join(dir, fmt.Sprintf("mosquitto-%d.conf", port))
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	p, err := startProc(mosquitto, filepath.Join(dir, fmt.Sprintf("mosquitto-%d.log", port)), "-c", path)
	if err != nil {
		return nil, err
	}
	b := &broker{proc: p, port: port, dir: dir}
	err = poll(context.Background(), 10*time.Second, 10*time.Millisecond, func() bool {
		c, err := net.DialTimeout("tcp", b.addr(), 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil || p.exited()
	})
	if err != nil || p.exited() {
		p.stop(syscall.SIGKILL)
		return nil, fmt.Errorf("bench: mosquitto did not start: %v\n%s", err, tail(p.logText()))
	}
	return b, nil
}

// freeAddr is a loopback address whose port was free a moment ago.
func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer l.Close()
	return l.Addr().String()
}

func (b *broker) addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }
func (b *broker) url() string  { return "tcp://" + b.addr() }

// findMosquitto looks where Debian and the tests look.
func findMosquitto() (string, error) {
	for _, p := range []string{os.Getenv("MOSQUITTO"), "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	return "", errors.New("bench: mosquitto not found: install it (apt-get install -y mosquitto) or set $MOSQUITTO")
}

// watcher notes when retained statuses and readies arrive.
type watcher struct {
	c  mqtt.Client
	mu sync.Mutex
	// agentUp is when each agent session's online status arrived.
	agentUp map[string]time.Time
	// ready is when each boot's ready arrived.
	ready map[string]time.Time
}

func watch(brokerURL, id string, filters ...string) (*watcher, error) {
	w := &watcher{agentUp: map[string]time.Time{}, ready: map[string]time.Time{}}
	opts := mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID("bench-watch-" + id).SetCleanSession(true).SetOrderMatters(false)
	w.c = mqtt.NewClient(opts)
	if tok := w.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("bench: watcher connect: %v", tok.Error())
	}
	subs := map[string]byte{protocol.AgentStatusFilter: 1}
	for _, f := range filters {
		subs[f] = 1
	}
	if tok := w.c.SubscribeMultiple(subs, w.onMsg); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("bench: watcher subscribe: %v", tok.Error())
	}
	return w, nil
}

func (w *watcher) onMsg(_ mqtt.Client, m mqtt.Message) {
	now := time.Now()
	parts := strings.Split(m.Topic(), "/")
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case len(parts) == 5 && parts[2] == "agent" && parts[4] == "status":
		if st, err := protocol.ParseAgentStatus(m.Payload()); err == nil && st.Online {
			if _, seen := w.agentUp[st.Session]; !seen {
				w.agentUp[st.Session] = now
			}
		}
	case len(parts) == 5 && parts[4] == protocol.MsgReady:
		if r, err := protocol.ParseReady(m.Payload()); err == nil {
			if _, seen := w.ready[r.BootID]; !seen {
				w.ready[r.BootID] = now
			}
		}
	}
}

// agentUpAfter is the first online status of a session that arrived after t.
func (w *watcher) agentUpAfter(t time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first time.Time
	for _, at := range w.agentUp {
		if at.After(t) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first, !first.IsZero()
}

func (w *watcher) readyAfter(t time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, at := range w.ready {
		if at.After(t) {
			return at, true
		}
	}
	return time.Time{}, false
}

func (w *watcher) close() { w.c.Disconnect(50) }

// metrics reads the agent's /metrics as name{labels} → value.
func metrics(addr string) (map[string]float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, l := range strings.Split(string(b), "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err == nil {
			out[l[:i]] = v
		}
	}
	return out, nil
}

// procStat reads a process's CPU time (user+system) and resident memory.
func procStat(pid int) (cpu time.Duration, rss int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// Fields after the command: state is f[0]; utime f[11], stime f[12],
	// rss (pages) f[21].
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	pages, _ := strconv.ParseInt(f[21], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz, pages * int64(os.Getpagesize()), nil
}
