// Command glowcastd is the glowcast device daemon: it shows the agent's
// temperature forecast on a WS2812 strip.
//
//	glowcastd [flags]           run the daemon
//	glowcastd --off [flags]     turn the LEDs off and exit (ExecStopPost)
//	glowcastd ledtest [flags]   light each LED in turn, sweep the scale, turn off
//	glowcastd init [flags]      write a commented configuration from a few questions
//	glowcastd doctor [flags]    check SPI, permissions, clocks, broker and agent
//	glowcastd version           print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/glowcast/glowcast/internal/clock"
	"os"
	"time"

	"github.com/glowcast/glowcast/device"
	"github.com/glowcast/glowcast/device/doctor"
	"github.com/glowcast/glowcast/device/initcfg"
	"github.com/glowcast/glowcast/internal/cliconf"
	"github.com/glowcast/glowcast/internal/logging"
	"github.com/glowcast/glowcast/internal/manpage"

	// Registers periph's host drivers (spidev) for ledstrip's spi backend.
	"github.com/glowcast/glowcast/ledstrip/backend"
	_ "periph.io/x/host/v3"
)

func main() { cliconf.Main("glowcastd", run) }

const commands = `usage: glowcastd [command] [flags]

commands:
  (none)    run the daemon
  init      write a commented configuration from a few questions (glowcastd init -h);
            init -local: Mosquitto, the agent and this device on one machine
  doctor    check SPI, permissions, clocks, broker and agent (glowcastd doctor -h)
  ledtest   light each LED in turn, sweep the colour scale, turn off
  version   print the version
  man       print the manual page

flags (the daemon and ledtest; every one is also a key in the -config file):
`

// bindFlags registers the daemon's flags: the man page lists the same set.
func bindFlags(fs *flag.FlagSet, cfg *device.Config, off, version *bool) {
	cfg.Bind(fs)
	fs.BoolVar(off, "off", false, "turn the LEDs off and exit (the systemd unit's ExecStopPost)")
	fs.BoolVar(version, "version", false, "print the version and exit")
}

var manPage = manpage.Page{
	Name: "glowcastd", Section: "8", Summary: "glowcast device daemon: a temperature forecast on five LEDs",
	Synopsis: []string{"glowcastd [flags]", "glowcastd init|doctor|ledtest [flags]", "glowcastd version"},
	Description: []string{
		"glowcastd drives a WS2812 strip over SPI and shows the temperature now and at +3, +6, +9 and +12 hours, as sent by a glowcast-agent over MQTT. It announces itself with a retained ready message and keeps the display right hour by hour on its own.",
		"Every flag is also a key of the -config file (flags given explicitly win). The packaged unit runs it as the system user glowcast with /etc/glowcast/glowcastd.yaml; the MQTT password and client key come from the systemd credentials mqtt-password and mqtt-key.",
	},
	Commands: [][2]string{
		{"init", "write a commented configuration from a few questions or flags (glowcastd init -h); with -local also Mosquitto's and the agent's, with a password for each, for a machine that runs all three"},
		{"doctor", "check SPI, permissions, clocks, broker and agent (glowcastd doctor -h)"},
		{"ledtest", "light each LED in turn, sweep the colour scale, turn off"},
		{"version", "print the version"},
		{"man", "print this manual page"},
	},
	Files: [][2]string{
		{"/etc/glowcast/glowcastd.yaml", "configuration (a conffile)"},
		{"/etc/glowcast/mqtt-password", "MQTT password, root-only; handed over as the credential mqtt-password"},
		{"/etc/glowcast/glowcastd-mqtt-password", "MQTT password written by init -local, readable by group glowcast"},
		{"/var/lib/glowcast", "state: the last temperatures, kept across restarts"},
	},
	SeeAlso: []string{"glowcast-agent(8)", "glowcast(1)", "systemd.exec(5)"},
}

// usage prints the commands before the flags, so -h shows everything.
func usage(fs *flag.FlagSet) func() {
	return func() {
		fmt.Fprint(fs.Output(), commands)
		fs.PrintDefaults()
	}
}

func run(ctx context.Context, args []string) error {
	cmd := ""
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version":
		fmt.Println("glowcastd", device.Version)
		return nil
	case "doctor":
		return doctor.Main(ctx, args, os.Stdout)
	case "init":
		return initcfg.Main(args, os.Stdin, os.Stdout)
	case "man":
		fs := flag.NewFlagSet("glowcastd", flag.ContinueOnError)
		fs.String("config", "", "YAML configuration `file`; flags given explicitly override it")
		cfg := device.Default()
		var off, version bool
		bindFlags(fs, &cfg, &off, &version)
		return manpage.Write(os.Stdout, manPage, fs)
	case "help":
		fs := flag.NewFlagSet("glowcastd", flag.ContinueOnError)
		cfg := device.Default()
		cfg.Bind(fs)
		usage(fs)()
		return nil
	case "", "ledtest":
	default:
		return cliconf.Usage(fmt.Errorf("unknown command %q: use init, doctor, ledtest, version, or flags only to run the daemon (glowcastd -h)", cmd))
	}
	cfg := device.Default()
	fs := flag.NewFlagSet("glowcastd", flag.ContinueOnError)
	fs.Usage = usage(fs)
	var off, version bool
	if err := cliconf.Load(fs, args, &cfg, func(fs *flag.FlagSet) {
		bindFlags(fs, &cfg, &off, &version)
	}); err != nil {
		return err
	}
	if version {
		fmt.Println("glowcastd", device.Version)
		return nil
	}
	if off {
		return backend.Off(cfg.LED, cfg.StripOptions())
	}
	level, err := logging.ParseLevel(cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("log_level (--log-level): %w", err)
	}
	log := logging.New(os.Stderr, level)
	opts := cfg.DaemonStripOptions()
	opts.Logger = log.With("component", "strip")
	if cmd == "ledtest" {
		s, err := backend.Open(cfg.LED, opts)
		if err != nil {
			return err
		}
		defer s.Close()
		if err := backend.LEDTest(ctx, s, 700*time.Millisecond); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	}
	if err := cfg.Validate(); err != nil {
		return initcfg.Explain(cfg, fs.Lookup("config").Value.String(), err)
	}
	strip, err := backend.Open(cfg.LED, opts)
	if err != nil {
		return err
	}
	d, err := device.New(cfg, strip, log)
	if err != nil {
		strip.Close()
		return err
	}
	// The fault campaign moves the clock by a file named in the environment.
	d.Clock = clock.FromEnv()
	return d.Run(ctx)
}
