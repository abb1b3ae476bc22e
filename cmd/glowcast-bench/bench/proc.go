package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/metrics"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
	"github.com/glowcast/glowcast/test/kit/mqttwatch"
	"github.com/glowcast/glowcast/test/kit/proc"
)

// startProc runs bin with args, its output in log.
func startProc(bin, log string, args ...string) (*proc.Proc, error) {
	p := proc.New(filepath.Base(bin), bin, log, args)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return p, nil
}

var (
	timeRE = regexp.MustCompile(`^time=(\S+) `)
	httpRE = regexp.MustCompile(`http_addr=(\S+)`)
)

// logTimes returns the times of p's log lines whose message is msg.
func logTimes(p *proc.Proc, msg string) []time.Time {
	var out []time.Time
	sc := bufio.NewScanner(strings.NewReader(p.Log()))
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
func httpAddr(ctx context.Context, p *proc.Proc) (string, error) {
	var addr string
	err := poll(ctx, 10*time.Second, 10*time.Millisecond, func() bool {
		if m := httpRE.FindStringSubmatch(p.Log()); m != nil {
			addr = m[1]
			return true
		}
		return false
	})
	if err != nil {
		return "", fmt.Errorf("bench: %s printed no http address: %w\n%s", p.Name(), err, tail(p.Log()))
	}
	return addr, nil
}

func tail(s string) string { return proc.Tail(s, 15) }

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

// startBroker runs Mosquitto with the shipped config, only its port
// swapped (plain and anonymous on loopback: the benchmark measures the
// limits, not TLS), in a folder of its own below dir.
func (r *runner) startBroker(dir string) (*mqtttest.Broker, error) {
	bdir, err := os.MkdirTemp(dir, "mosquitto-")
	if err != nil {
		return nil, err
	}
	b, err := mqtttest.Run(bdir, mqtttest.WithShipped(r.shipped))
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
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

// watch records the agents' statuses and whatever else filters name.
func watch(brokerURL, id string, filters ...string) (*mqttwatch.Watcher, error) {
	w, err := mqttwatch.Start(brokerURL, "bench-watch-"+id, append([]string{protocol.AgentStatusFilter}, filters...)...)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return w, nil
}

// agentUpAfter is when the first online status of a new agent session
// arrived after t.
func agentUpAfter(w *mqttwatch.Watcher, t time.Time) (time.Time, bool) {
	seen := map[string]bool{}
	for _, m := range w.Messages(protocol.AgentStatusFilter) {
		st, err := protocol.ParseAgentStatus(m.Payload)
		if err != nil || !st.Online || seen[st.Session] {
			continue
		}
		seen[st.Session] = true
		if m.At.After(t) {
			return m.At, true
		}
	}
	return time.Time{}, false
}

// readyAfter is when the first ready of a new boot arrived after t.
func readyAfter(w *mqttwatch.Watcher, t time.Time) (time.Time, bool) {
	seen := map[string]bool{}
	for _, m := range w.Messages(protocol.DeviceTopic("+", protocol.SideDevice, protocol.MsgReady)) {
		rd, err := protocol.ParseReady(m.Payload)
		if err != nil || seen[rd.BootID] {
			continue
		}
		seen[rd.BootID] = true
		if m.At.After(t) {
			return m.At, true
		}
	}
	return time.Time{}, false
}

// scrape reads the agent's /metrics.
func scrape(ctx context.Context, addr string) (metrics.Samples, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return metrics.Scrape(ctx, "http://"+addr+"/metrics")
}

// cpuRSS reads p's CPU time (user+system) and resident memory.
func cpuRSS(p *proc.Proc) (time.Duration, int64, error) {
	st, err := p.Stats()
	return st.CPU, st.RSS, err
}
