// Command glowcastd is the glowcast device daemon: it shows the agent's
// temperature forecast on a WS2812 strip.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/glowcast/glowcast/device"
	"github.com/glowcast/glowcast/internal/cliconf"
	"github.com/glowcast/glowcast/internal/logging"
	"github.com/glowcast/glowcast/ledstrip"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "glowcastd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "version" {
		fmt.Println("glowcastd", device.Version)
		return nil
	}
	cfg := device.Default()
	fs := flag.NewFlagSet("glowcastd", flag.ContinueOnError)
	var off, version bool
	if err := cliconf.Load(fs, args, &cfg, func(fs *flag.FlagSet) {
		cfg.Bind(fs)
		fs.BoolVar(&off, "off", false, "turn the LEDs off and exit (the systemd unit's ExecStopPost)")
		fs.BoolVar(&version, "version", false, "print the version and exit")
	}); err != nil {
		return err
	}
	if version {
		fmt.Println("glowcastd", device.Version)
		return nil
	}
	opts := ledstrip.DefaultOptions()
	opts.LEDs = cfg.LEDs
	if off {
		s, err := ledstrip.Open(cfg.LED, opts)
		if err != nil {
			return err
		}
		return s.Close()
	}
	level, err := logging.ParseLevel(cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("log_level (--log-level): %w", err)
	}
	log := logging.New(os.Stderr, level)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("configuration:\n%w\n(see glowcastd -h, or pass -config FILE)", err)
	}
	strip, err := ledstrip.Open(cfg.LED, opts)
	if err != nil {
		return err
	}
	d, err := device.New(cfg, strip, log)
	if err != nil {
		strip.Close()
		return err
	}
	return d.Run(ctx)
}
