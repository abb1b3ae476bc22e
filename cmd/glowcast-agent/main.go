// Command glowcast-agent serves glowcast devices: it locates each one,
// fetches its forecast every interval and sends it the five temperatures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/glowcast/glowcast/agent"
	"github.com/glowcast/glowcast/internal/cliconf"
	"github.com/glowcast/glowcast/internal/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, agent.ErrSupplanted):
		// A newer process owns this agent id: exit cleanly so a supervisor
		// with Restart=on-failure does not start a takeover war.
		fmt.Fprintln(os.Stderr, "glowcast-agent:", err)
	default:
		if !strings.HasPrefix(err.Error(), "flag ") {
			// flag has already printed its own complaints.
			fmt.Fprintln(os.Stderr, "glowcast-agent:", err)
		}
		os.Exit(cliconf.ExitCode(err))
	}
}

func run(ctx context.Context, args []string) error {
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
	return a.Run(ctx)
}
