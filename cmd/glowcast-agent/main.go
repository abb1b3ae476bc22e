// Command glowcast-agent serves glowcast devices: it locates each one,
// fetches its forecast every interval and sends it the five temperatures.
package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/glowcast/glowcast/internal/clock"
	"os"

	"github.com/glowcast/glowcast/agent"
	"github.com/glowcast/glowcast/agent/doctor"
	"github.com/glowcast/glowcast/internal/cliconf"
	"github.com/glowcast/glowcast/internal/logging"
)

// A newer process owning this agent id is a clean exit, so a supervisor
// with Restart=on-failure does not start a takeover war.
func main() { cliconf.Main("glowcast-agent", run, agent.ErrSupplanted) }

func run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "doctor" {
		return doctor.Main(ctx, args[1:], os.Stdout)
	}
	if len(args) > 0 && args[0] == "version" {
		fmt.Println("glowcast-agent", agent.Version)
		return nil
	}
	cfg := agent.Default()
	fs := flag.NewFlagSet("glowcast-agent", flag.ContinueOnError)
	var version bool
	if err := cliconf.Load(fs, args, &cfg, func(fs *flag.FlagSet) {
		cfg.Bind(fs)
		fs.BoolVar(&version, "version", false, "print the version and exit")
	}); err != nil {
		return err
	}
	if version {
		fmt.Println("glowcast-agent", agent.Version)
		return nil
	}
	level, err := logging.ParseLevel(cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("log_level (--log-level): %w", err)
	}
	a, err := agent.New(cfg, logging.New(os.Stderr, level))
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	// The fault campaign moves the clock by a file named in the environment.
	a.Clock = clock.FromEnv()
	return a.Run(ctx)
}
