// Command glowcast-bench runs glowcast's multi-process benchmark (make
// bench) and prints one table; see BENCHMARKS.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/glowcast/glowcast/internal/cliconf"
	"os"
	"strconv"
	"strings"

	"github.com/glowcast/glowcast/cmd/glowcast-bench/bench"
)

func main() { cliconf.Main("glowcast-bench", run) }

func run(ctx context.Context, args []string) error {
	cfg := bench.Default()
	fs := flag.NewFlagSet("glowcast-bench", flag.ContinueOnError)
	parts := fs.String("parts", strings.Join(cfg.Parts, ","), "comma-separated `parts` to run: resume, fleet, device, light")
	fleets := fs.String("fleets", "10000", "comma-separated simulated fleet `sizes` (make bench-100k: 10000,100000)")
	fs.IntVar(&cfg.LiveMax, "live", cfg.LiveMax, "devices of a fleet with a connection of their own; the rest are retained state only")
	fs.StringVar(&cfg.Bin, "bin", cfg.Bin, "`DIR` holding glowcast-agent and glowcastd (make build)")
	fs.StringVar(&cfg.Module, "module", cfg.Module, "source `DIR`, for the linux/arm cross build")
	fs.IntVar(&cfg.Trials, "trials", cfg.Trials, "migrations per resume strategy")
	fs.IntVar(&cfg.TimerParallel, "timer-parallel", cfg.TimerParallel, "timer-only trials run at once (each waits the restart grace)")
	fs.DurationVar(&cfg.RestartGrace, "restart-grace", cfg.RestartGrace, "the agent's restart timer in the resume trials")
	fs.DurationVar(&cfg.ResumeInterval, "resume-interval", cfg.ResumeInterval, "the agent's interval in the resume trials")
	fs.IntVar(&cfg.Places, "places", cfg.Places, "places a fleet is spread over")
	fs.DurationVar(&cfg.SteadyWindow, "steady", cfg.SteadyWindow, "steady-state sampling window")
	fs.DurationVar(&cfg.AfterWindow, "after", cfg.AfterWindow, "window counting forecast requests after an agent restart")
	fs.IntVar(&cfg.Starts, "starts", cfg.Starts, "timed glowcastd starts")
	fs.DurationVar(&cfg.IdleWindow, "idle", cfg.IdleWindow, "glowcastd idle CPU window")
	fs.IntVar(&cfg.Messages, "messages", cfg.Messages, "temps messages timed to the strip")
	fs.StringVar(&cfg.Dir, "dir", "", "keep logs and state in `DIR` (default: a temporary directory, removed)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Parts = strings.Split(*parts, ",")
	cfg.Fleets = nil
	for _, s := range strings.Split(*fleets, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("--fleets: %q is not a positive number", s)
		}
		cfg.Fleets = append(cfg.Fleets, n)
	}
	cfg.Progress = os.Stderr
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	rep.Print(os.Stdout)
	return nil
}
