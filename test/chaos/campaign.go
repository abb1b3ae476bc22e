package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const sigterm = syscall.SIGTERM

// Config is one campaign.
type Config struct {
	// Seed makes the schedule; the same seed replays the same faults in
	// the same order at the same offsets.
	Seed uint64
	// Devices is how many device processes run.
	Devices int
	// Interval is the agent's forecast interval (compressed time).
	Interval time.Duration
	// Rounds is how many faults to inject; 0 means each fault once.
	Rounds int
	// Duration, if set, runs faults at random until it has passed (the
	// soak) instead of Rounds.
	Duration time.Duration
	// Faults names the faults to draw from; empty means all but the long
	// ones when Long is false.
	Faults []string
	// Long allows the faults that take a minute each (half-open links,
	// hanging weather).
	Long bool
	// BinDir holds glowcastd and glowcast-agent (see Build).
	BinDir string
	// Out receives the schedule, progress and report.
	Out io.Writer
	// Every is how often the soak prints resources; default 1 minute.
	Every time.Duration
	// Fleet is how many simulated devices the fleet faults run (on a
	// broker and agent of their own); 0 leaves those faults out.
	Fleet int
}

// Report is the campaign's outcome.
type Report struct {
	Seed       uint64
	Took       time.Duration
	Rows       []Row
	Violations []string
	Samples    []Sample
}

// Row is one fault's line in the reliability table.
type Row struct {
	Fault         string
	Injected      int
	Recovered     int
	WorstRecovery time.Duration
	Violations    int
}

// Sample is one line of the soak's resource log.
type Sample struct {
	At               time.Duration
	AgentPID         int
	AgentAge         time.Duration
	AgentHeap        float64
	AgentGoroutines  float64
	AgentFDs         float64
	DeviceRSSMax     int64
	DeviceThreadsMax int
	DeviceFDsMax     int
	WeatherRequests  int
	TempsMessages    int
}

// defaultBound is how soon after a fault clears every device must show
// fresh temps: the longest reconnect backoff (30 s) plus two intervals
// and slack for a loaded machine.
func defaultBound(e *env) time.Duration { return 40*time.Second + 2*e.cfg.Interval }

type campaign struct {
	*env
	r    *rand.Rand
	mu   sync.Mutex
	rows map[string]*Row
	viol []string
}

func (e *env) violation(fault, what string) {
	if e.onViolation != nil {
		e.onViolation(fault, what)
	}
}

// Run runs a campaign and returns its report; violations are also test
// errors on t.
func Run(t testing.TB, cfg Config) *Report {
	if cfg.Devices <= 0 {
		cfg.Devices = 3
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Minute
	}
	pool := cfg.Faults
	if len(pool) == 0 {
		for _, f := range faults {
			if (cfg.Long || !f.long) && (cfg.Fleet > 0 || !f.fleet) {
				pool = append(pool, f.name)
			}
		}
	}
	for _, n := range pool {
		if _, ok := faultByName(n); !ok {
			t.Fatalf("chaos: unknown fault %q", n)
		}
	}
	c := &campaign{r: rand.New(rand.NewPCG(cfg.Seed, 0x676c6f77)), rows: map[string]*Row{}}
	for _, n := range pool {
		c.rows[n] = &Row{Fault: n}
	}
	fmt.Fprintf(cfg.Out, "chaos: seed=%d devices=%d interval=%v faults=%s (replay: make chaos SEED=%d)\n",
		cfg.Seed, cfg.Devices, cfg.Interval, strings.Join(pool, ","), cfg.Seed)
	began := time.Now()

	c.env = newEnv(t, cfg)
	c.env.onViolation = c.record
	c.startAgent(c.dir + "/agent-state-0")
	for i := range cfg.Devices {
		c.addDevice(i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.watchMetrics(ctx) }()
	defer func() {
		cancel()
		wg.Wait()
		if c.rig != nil {
			c.rig.close()
		}
		for _, d := range c.devices {
			if err := d.proc.signal(sigterm, 10*time.Second); err != nil {
				c.record("shutdown", err.Error())
			}
		}
		for _, a := range c.agents {
			if a.alive() {
				if err := a.signal(sigterm, 10*time.Second); err != nil {
					c.record("shutdown", err.Error())
				}
			}
		}
	}()

	start := time.Now()
	if !c.waitFresh("startup", start, defaultBound(c.env)) {
		c.dump()
		t.Fatalf("chaos: devices never showed fresh temps at startup")
	}
	fmt.Fprintf(cfg.Out, "chaos: startup: all %d devices fresh after %v\n", cfg.Devices, time.Since(start).Round(time.Millisecond))

	var sched []string
	if cfg.Duration == 0 {
		n := cfg.Rounds
		if n == 0 {
			n = len(pool)
		}
		for len(sched) < n {
			batch := slices.Clone(pool)
			c.r.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
			sched = append(sched, batch...)
		}
		sched = sched[:n]
	}
	nextSample := time.Now()
	for i := 0; ; i++ {
		var name string
		if cfg.Duration > 0 {
			if time.Since(began) >= cfg.Duration {
				break
			}
			name = pool[c.r.IntN(len(pool))]
		} else {
			if i >= len(sched) {
				break
			}
			name = sched[i]
		}
		c.round(ctx, i, name)
		if cfg.Duration > 0 {
			if time.Now().After(nextSample) {
				c.sample(began)
				nextSample = time.Now().Add(cfg.Every)
			}
			sleep(ctx, jitter(c.r, 5*time.Second))
		}
		if t.Failed() && cfg.Duration == 0 && len(c.viol) > 20 {
			break
		}
	}
	if cfg.Duration > 0 {
		c.sample(began)
		c.checkGrowth()
	}
	rep := c.report(began)
	fmt.Fprint(cfg.Out, rep.Table())
	for _, v := range rep.Violations {
		t.Errorf("chaos (seed %d): %s", cfg.Seed, v)
	}
	return rep
}

func (c *campaign) record(fault, what string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.viol = append(c.viol, fault+": "+what)
	if r := c.rows[fault]; r != nil {
		r.Violations++
	}
	fmt.Fprintf(c.cfg.Out, "chaos: VIOLATION %s: %s\n", fault, what)
}

// round injects one fault and checks every invariant after it.
func (c *campaign) round(ctx context.Context, i int, name string) {
	f, _ := faultByName(name)
	rd := &round{}
	corruptBefore := len(c.corruptFiles())
	began := time.Now()
	note := f.inject(ctx, c.env, c.r, rd)
	cleared := time.Now()
	fmt.Fprintf(c.cfg.Out, "chaos: round %d: %s %s (took %v)\n", i, name, note, cleared.Sub(began).Round(time.Millisecond))

	bound := rd.bound
	if bound == 0 {
		bound = defaultBound(c.env)
	}
	row := c.rows[name]
	row.Injected++
	if c.waitFresh(name, cleared, bound) {
		row.Recovered++
		row.WorstRecovery = max(row.WorstRecovery, time.Since(cleared))
	} else {
		c.dump()
	}
	c.quietWindow(name)
	if !rd.strictFrom.IsZero() {
		c.strictCheck(name, rd.strictFrom, time.Now())
	}
	for _, p := range c.allProcs() {
		for _, cr := range p.takeCrashes() {
			c.record(name, "crash: "+cr)
		}
	}
	for _, b := range c.checkStateFiles() {
		c.record(name, "state file unreadable: "+b)
	}
	if st := c.staleTemps(); len(st) > 0 {
		c.record(name, fmt.Sprintf("temporary files of interrupted saves left after a restart: %v", st))
	}
	if n := len(c.corruptFiles()); n > corruptBefore && !rd.corruptOK {
		c.record(name, fmt.Sprintf("%d state files moved aside as corrupt without the fault damaging any", n-corruptBefore))
	}
}

func (c *campaign) allProcs() []*proc {
	var ps []*proc
	for _, a := range c.agents {
		ps = append(ps, a.proc)
	}
	for _, d := range c.devices {
		ps = append(ps, d.proc)
	}
	return ps
}

// waitFresh waits until every device shows fresh temps issued since from.
func (c *campaign) waitFresh(fault string, from time.Time, bound time.Duration) bool {
	deadline := from.Add(bound)
	for {
		var stale, why []string
		for _, d := range c.devices {
			r := d.staleReason(from)
			if r == "" && len(c.watch.between(d.id, from, time.Now())) == 0 {
				// Saved temps dated after the fault can come from a clock
				// that ran ahead: only a message sent since counts.
				r = "no temps sent since the fault cleared"
			}
			if r != "" {
				stale = append(stale, d.id)
				why = append(why, d.id+": "+r)
			}
		}
		if len(stale) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			c.record(fault, fmt.Sprintf("devices %v showed no fresh temps within %v of the fault clearing (%s)", stale, bound, strings.Join(why, "; ")))
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// quietWindow watches 4 intervals after recovery: each device gets about
// one temps message and one weather request per interval — never the
// double rate of two cycles, never none (a stalled cycle; fewer than
// expected is not an error, since a loaded CI machine delays timers).
func (c *campaign) quietWindow(fault string) {
	const n = 4
	before := c.weatherCounts()
	from := time.Now()
	time.Sleep(n * c.cfg.Interval)
	to := time.Now()
	after := c.weatherCounts()
	for i, d := range c.devices {
		got := len(c.watch.between(d.id, from, to))
		if got > n+1 {
			c.record(fault, fmt.Sprintf("%s got %d temps in %d intervals: more than one cycle", d.id, got, n))
		}
		if got == 0 {
			c.record(fault, fmt.Sprintf("%s got %d temps in %d intervals: its cycle stalled", d.id, got, n))
		}
		if req := after[i] - before[i]; req > n+1 {
			c.record(fault, fmt.Sprintf("%s's place got %d weather requests in %d intervals: more than one cycle", d.id, req, n))
		}
	}
}

// strictCheck: after from, two temps for one device closer than half an
// interval are two cycles.
func (c *campaign) strictCheck(fault string, from, to time.Time) {
	for _, d := range c.devices {
		ts := c.watch.between(d.id, from, to)
		seqs := c.watch.seqsBetween(d.id, from, to)
		for i := 1; i < len(ts); i++ {
			if i < len(seqs) && seqs[i-1].refused && seqs[i].seq > seqs[i-1].seq {
				// The device dropped the first (numbered below what it
				// showed) and asked for it again: one cycle re-sending.
				continue
			}
			if gap := ts[i].Sub(ts[i-1]); gap < c.cfg.Interval/2 {
				c.record(fault, fmt.Sprintf("%s got two temps %v apart (seqs %v): two cycles", d.id, gap.Round(time.Millisecond), seqs))
				break
			}
		}
	}
}

func (c *campaign) weatherCounts() []int {
	out := make([]int, len(c.devices))
	for i, d := range c.devices {
		out[i] = c.weather.Count(d.lat, d.lon)
	}
	return out
}

// watchMetrics scrapes every live agent twice a second for the one-cycle
// metrics.
func (c *campaign) watchMetrics(ctx context.Context) {
	reported := map[string]bool{}
	for ctx.Err() == nil {
		sleep(ctx, 500*time.Millisecond)
		c.amu.Lock()
		agents := slices.Clone(c.agents)
		c.amu.Unlock()
		for _, a := range agents {
			m, ok := c.metrics(a)
			if !ok {
				continue
			}
			key := fmt.Sprintf("%s-%d", a.name, a.pid())
			if v := m["glowcast_agent_parallel_cycle_violations_total"]; v > 0 && !reported[key+"p"] {
				reported[key+"p"] = true
				c.record("metrics", fmt.Sprintf("%s reports %v parallel cycle runs", a.name, v))
			}
			if v := m["glowcast_agent_cycles_running"]; v > float64(len(c.devices)) && !reported[key+"c"] {
				reported[key+"c"] = true
				c.record("metrics", fmt.Sprintf("%s reports %v cycles for %d devices", a.name, v, len(c.devices)))
			}
		}
	}
}

// dump prints the tails of every log, for a failed recovery.
func (c *campaign) dump() {
	for _, p := range c.allProcs() {
		fmt.Fprintf(c.cfg.Out, "--- %s (alive=%v) ---\n%s\n", p.name, p.alive(), tail(p.logText(), 15))
	}
}

func (c *campaign) sample(began time.Time) {
	a := c.agent()
	s := Sample{At: time.Since(began).Round(time.Second), AgentPID: a.pid(), AgentAge: time.Since(a.started).Round(time.Second),
		WeatherRequests: c.weather.Total(), TempsMessages: c.watch.total()}
	if m, ok := c.metrics(a); ok {
		s.AgentHeap, s.AgentGoroutines, s.AgentFDs = m["go_memstats_heap_alloc_bytes"], m["go_goroutines"], m["process_open_fds"]
	}
	for _, d := range c.devices {
		if ps, err := readProcStats(d.proc.pid()); err == nil {
			s.DeviceRSSMax = max(s.DeviceRSSMax, ps.RSS)
			s.DeviceThreadsMax = max(s.DeviceThreadsMax, ps.Threads)
			s.DeviceFDsMax = max(s.DeviceFDsMax, ps.FDs)
		}
	}
	c.mu.Lock()
	c.samples = append(c.samples, s)
	c.mu.Unlock()
	fmt.Fprintf(c.cfg.Out, "soak: t=%v agent(pid %d, up %v): heap=%.1fMiB goroutines=%.0f fds=%.0f; devices max: rss=%.1fMiB threads=%d fds=%d; weather requests=%d temps=%d\n",
		s.At, s.AgentPID, s.AgentAge, s.AgentHeap/(1<<20), s.AgentGoroutines, s.AgentFDs,
		float64(s.DeviceRSSMax)/(1<<20), s.DeviceThreadsMax, s.DeviceFDsMax, s.WeatherRequests, s.TempsMessages)
}

// checkGrowth fails on resource growth: within one agent process, and for
// the devices across the whole soak. Goroutines and fds must come back to
// their level; heap and RSS may wobble but not double.
func (c *campaign) checkGrowth() {
	c.mu.Lock()
	ss := slices.Clone(c.samples)
	c.mu.Unlock()
	byAgent := map[int][]Sample{}
	for _, s := range ss {
		if s.AgentGoroutines > 0 && s.AgentAge >= 30*time.Second {
			byAgent[s.AgentPID] = append(byAgent[s.AgentPID], s)
		}
	}
	for pid, l := range byAgent {
		if len(l) < 3 {
			continue
		}
		first, last := l[0], l[len(l)-1]
		if last.AgentGoroutines > first.AgentGoroutines*1.5+20 {
			c.record("soak", fmt.Sprintf("agent pid %d goroutines grew %v → %v", pid, first.AgentGoroutines, last.AgentGoroutines))
		}
		if last.AgentFDs > first.AgentFDs+20 {
			c.record("soak", fmt.Sprintf("agent pid %d open fds grew %v → %v", pid, first.AgentFDs, last.AgentFDs))
		}
		if last.AgentHeap > first.AgentHeap*2+16<<20 {
			c.record("soak", fmt.Sprintf("agent pid %d heap grew %.1f → %.1f MiB", pid, first.AgentHeap/(1<<20), last.AgentHeap/(1<<20)))
		}
	}
	if len(ss) >= 3 {
		first, last := ss[1], ss[len(ss)-1]
		if last.DeviceThreadsMax > first.DeviceThreadsMax+10 {
			c.record("soak", fmt.Sprintf("device threads grew %d → %d", first.DeviceThreadsMax, last.DeviceThreadsMax))
		}
		if last.DeviceFDsMax > first.DeviceFDsMax+10 {
			c.record("soak", fmt.Sprintf("device open fds grew %d → %d", first.DeviceFDsMax, last.DeviceFDsMax))
		}
		if last.DeviceRSSMax > first.DeviceRSSMax*2+16<<20 {
			c.record("soak", fmt.Sprintf("device RSS grew %.1f → %.1f MiB", float64(first.DeviceRSSMax)/(1<<20), float64(last.DeviceRSSMax)/(1<<20)))
		}
	}
}

func (c *campaign) report(began time.Time) *Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	rep := &Report{Seed: c.cfg.Seed, Took: time.Since(began), Violations: slices.Clone(c.viol), Samples: slices.Clone(c.samples)}
	for _, f := range faults {
		if r := c.rows[f.name]; r != nil {
			rep.Rows = append(rep.Rows, *r)
		}
	}
	return rep
}

// Table is the report as a Markdown table.
func (r *Report) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nchaos: seed %d, %v, %d violations\n\n", r.Seed, r.Took.Round(time.Second), len(r.Violations))
	b.WriteString("| fault | injected | recovered | worst recovery | violations |\n|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %v | %d |\n", row.Fault, row.Injected, row.Recovered, row.WorstRecovery.Round(10*time.Millisecond), row.Violations)
	}
	return b.String()
}
