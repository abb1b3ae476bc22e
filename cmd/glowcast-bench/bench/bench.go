// Package bench is glowcast's multi-process benchmark: it starts Mosquitto,
// the real glowcast-agent and glowcastd binaries and simulated devices, and
// prints one table of what users feel (resume after an agent migration,
// message to light) and what operators pay (agent memory and CPU per
// device, forecast requests, device footprint), with the original design's
// resume strategy measured alongside glowcast's in the same run.
//
// Figures are reported, never asserted: a slow machine prints slow numbers.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/glowcast/glowcast/agent"
	"github.com/glowcast/glowcast/cmd/glowcast/sim"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
	"github.com/glowcast/glowcast/test/kit/weathertest"
)

// Config selects what to measure and how long.
type Config struct {
	// Bin holds the glowcast-agent and glowcastd binaries.
	Bin string
	// Module is the source tree, for the cross build of glowcastd.
	Module string
	// Parts to run: resume, fleet, device, light.
	Parts []string
	// Trials is the number of migrations per resume strategy.
	Trials int
	// TimerParallel runs that many timer-only trials at once: each waits
	// the restart grace, so in sequence they would take Trials × grace.
	TimerParallel int
	// ResumeInterval is the agent's interval in the resume trials.
	ResumeInterval time.Duration
	// RestartGrace is the agent's restart timer (the original's 30 s).
	RestartGrace time.Duration
	// Fleets are the simulated fleet sizes.
	Fleets []int
	// LiveMax is how many devices of a fleet hold a connection of their
	// own; the rest are retained state only (one process, and one
	// Mosquitto, stop at the open-file limit).
	LiveMax int
	// Places spreads each fleet over this many places.
	Places int
	// FleetInterval is the agent's interval in the fleet runs.
	FleetInterval time.Duration
	// SteadyWindow is how long CPU and memory are sampled at steady state.
	SteadyWindow time.Duration
	// AfterWindow counts forecast requests after an agent restart.
	AfterWindow time.Duration
	// Starts is how many glowcastd starts are timed.
	Starts int
	// IdleWindow is how long glowcastd's idle CPU is measured.
	IdleWindow time.Duration
	// Messages is how many temps messages are timed to the strip.
	Messages int
	// Dir keeps logs and state; empty means a temporary directory.
	Dir string
	// Progress receives one line per step; nil discards them.
	Progress io.Writer
}

// Default is the full campaign that BENCHMARKS.md records.
func Default() Config {
	return Config{
		Bin: "bin", Module: ".", Parts: []string{"resume", "fleet", "device", "light"},
		Trials: 30, TimerParallel: 30, ResumeInterval: 2 * time.Second, RestartGrace: 30 * time.Second,
		Fleets: []int{10000}, LiveMax: 10000, Places: 100, FleetInterval: 30 * time.Minute,
		SteadyWindow: 30 * time.Second, AfterWindow: time.Minute,
		Starts: 20, IdleWindow: time.Minute, Messages: 500,
	}
}

type runner struct {
	cfg Config
	dir string
	// shipped is configs/mosquitto/glowcast.conf: every broker runs it.
	shipped []byte
	weather *weathertest.Server
}

func (r *runner) logf(format string, a ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "bench: "+format+"\n", a...)
	}
}

// Report is everything one run measured; nil parts were not run.
type Report struct {
	Resume    map[string][]resumeResult
	Fleets    []*fleetResult
	Footprint *footprintResult
	Light     []time.Duration
}

// Run measures the configured parts and returns the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Trials < 1 || len(cfg.Parts) == 0 {
		return nil, errors.New("bench: nothing to run: give --parts and --trials ≥ 1")
	}
	r := &runner{cfg: cfg}
	var err error
	if r.shipped, err = os.ReadFile(filepath.Join(cfg.Module, "configs", "mosquitto", "glowcast.conf")); err != nil {
		return nil, fmt.Errorf("bench: the shipped broker config (run from the source tree or set --module): %w", err)
	}
	if _, err = mqtttest.Binary(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if _, err := sim.RaiseFileLimit(); err != nil {
		return nil, err
	}
	r.dir = cfg.Dir
	if r.dir == "" {
		if r.dir, err = os.MkdirTemp("", "glowcast-bench-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(r.dir)
	}
	r.weather = weathertest.New()
	defer r.weather.Close()

	rep := &Report{}
	for _, part := range cfg.Parts {
		switch part {
		case "resume":
			rep.Resume = map[string][]resumeResult{}
			for _, s := range []struct {
				strategy string
				par      int
			}{{agent.ResumeFast, 1}, {agent.ResumeTimerOnly, cfg.TimerParallel}} {
				r.logf("resume %s: %d trials", s.strategy, cfg.Trials)
				res, err := r.resume(ctx, s.strategy, s.par)
				if err != nil {
					return nil, err
				}
				rep.Resume[s.strategy] = res
			}
		case "fleet":
			for _, n := range cfg.Fleets {
				r.logf("fleet: %d devices over %d places", n, cfg.Places)
				res, err := r.fleet(ctx, n)
				if err != nil {
					return nil, err
				}
				rep.Fleets = append(rep.Fleets, res)
			}
		case "device":
			r.logf("device footprint")
			if rep.Footprint, err = r.footprint(ctx); err != nil {
				return nil, err
			}
		case "light":
			r.logf("message to light: %d messages", cfg.Messages)
			b, err := r.startBroker(r.dir)
			if err != nil {
				return nil, err
			}
			rep.Light, err = MessageToLight(ctx, b.URL(), cfg.Messages)
			b.Kill()
			if err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("bench: unknown part %q in --parts: use resume, fleet, device, light", part)
		}
	}
	return rep, nil
}

// pct is the p-th percentile of sorted ds (nearest rank).
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := (p*len(ds) + 99) / 100
	return ds[min(max(i-1, 0), len(ds)-1)]
}

func sorted[T any](rs []T, f func(T) time.Duration) []time.Duration {
	out := make([]time.Duration, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	slices.Sort(out)
	return out
}

func ms(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	case d < 10*time.Second:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
}

func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f×", float64(a)/float64(b))
}

// rearmVerdict is the re-arm time as a multiple of the broker's own
// delivery of the same retained state; the goal is 2×.
func rearmVerdict(rearmed, broker time.Duration) string {
	if broker <= 0 {
		return "-"
	}
	r := float64(rearmed) / float64(broker)
	return fmt.Sprintf("%.1f× %s", r, goal(r <= 2))
}

func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

func goal(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// Print writes the report as one table: measure, glowcast, comparison or
// goal.
func (rep *Report) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	row := func(cols ...string) { fmt.Fprintln(tw, "| "+strings.Join(cols, "\t| ")+"\t|") }
	row("measure", "glowcast", "original / goal", "ratio / verdict")
	row("---", "---", "---", "---")
	if rs := rep.Resume; rs != nil {
		fast, timer := rs[agent.ResumeFast], rs[agent.ResumeTimerOnly]
		for _, m := range []struct {
			name string
			f    func(resumeResult) time.Duration
		}{
			{"re-armed", func(r resumeResult) time.Duration { return r.armed }},
			{"next temps on device", func(r resumeResult) time.Duration { return r.temps }},
			{"temps later than due", func(r resumeResult) time.Duration { return r.late }},
		} {
			a, b := sorted(fast, m.f), sorted(timer, m.f)
			for _, p := range []int{50, 99} {
				row(fmt.Sprintf("resume after SIGKILL (n=%d): %s p%d", len(a), m.name, p), ms(pct(a, p)), ms(pct(b, p)), ratio(pct(b, p), pct(a, p)))
			}
		}
		a := sorted(fast, func(r resumeResult) time.Duration { return r.armed })
		row("resume goal: re-armed p99 < 1 s", ms(pct(a, 99)), "< 1 s", goal(pct(a, 99) < time.Second))
	}
	for _, f := range rep.Fleets {
		n := fmt.Sprintf("fleet %d devices / %d places", f.devices, f.places)
		if f.live < f.devices {
			n = fmt.Sprintf("fleet %d devices (%d live) / %d places", f.devices, f.live, f.places)
		}
		row(n+": sim connect + ready", ms(f.connect), "-", "-")
		row(n+": agent live heap per idle device", fmt.Sprintf("%.0f B (%s)", f.heapPerDev, mib(f.heap)), "≤ 4096 B", goal(f.heapPerDev <= 4096))
		row(n+": agent RSS per device (total)", fmt.Sprintf("%.0f B (%s)", f.rssPerDev, mib(float64(f.rss))), "-", "-")
		row(n+": agent CPU at steady state", fmt.Sprintf("%.2f %% of a core", 100*f.cpu), "< 2 %", goal(f.cpu < 0.02))
		row(n+fmt.Sprintf(": Mosquitto RSS (%d connections)", f.live), mib(float64(f.brokerRSS)), "-", "-")
		row(n+": forecast requests, first interval", fmt.Sprint(f.requests), fmt.Sprintf("= %d places", f.places), goal(f.requests == f.places))
		row(n+": cold start, all devices have temps", ms(f.coldTemps), "-", "-")
		row(n+": cold start, every device's state saved", ms(f.saved), "-", "-")
		row(n+": cold start, Home Assistant discovery published (7 configs a device)", ms(f.discovery), "-", "-")
		row(n+fmt.Sprintf(": broker alone, %d retained (status, ready, claim) to a fresh wildcard subscriber", f.brokerMsgs), ms(f.broker), "-", "-")
		row(n+": SIGKILL + restart, all cycles re-armed (from its SUBSCRIBE)", ms(f.rearmed), "≤ 2× broker", rearmVerdict(f.rearmed, f.broker))
		row(n+": SIGKILL + restart, all cycles re-armed, from exec (state read)", ms(f.rearmedExec), "-", "-")
		row(n+": requests in the first minute after restart", fmt.Sprint(f.restartRequests), fmt.Sprintf("≤ %d overdue places", f.overdue), goal(f.restartRequests <= f.overdue))
	}
	if f := rep.Footprint; f != nil {
		row("glowcastd RSS", mib(float64(f.rss)), "≤ 12 MiB", goal(f.rss <= 12<<20))
		row(fmt.Sprintf("glowcastd idle CPU over %v", f.idle), fmt.Sprintf("%.3f %%", 100*f.idleCPU), "≤ 0.1 %", goal(f.idleCPU <= 0.001))
		row(fmt.Sprintf("glowcastd start → ready p50 (n=%d)", f.starts), ms(f.startP50), "≤ 100 ms", goal(f.startP50 <= 100*time.Millisecond))
		row(fmt.Sprintf("glowcastd start → ready p99 (n=%d)", f.starts), ms(f.startP99), "-", "-")
		row("glowcastd linux/arm GOARM=6 stripped", mib(float64(f.armBinary)), "≤ 10 MiB", goal(f.armBinary <= 10<<20))
	}
	if len(rep.Light) > 0 {
		l := slices.Clone(rep.Light)
		slices.Sort(l)
		row(fmt.Sprintf("message → SPI write, fade off, p50 (n=%d)", len(l)), ms(pct(l, 50)), "-", "-")
		row(fmt.Sprintf("message → SPI write, fade off, p99 (n=%d)", len(l)), ms(pct(l, 99)), "-", "-")
	}
	tw.Flush()
}
