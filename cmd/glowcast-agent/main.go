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
	"github.com/glowcast/glowcast/internal/manpage"
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
	if len(args) > 0 && args[0] == "man" {
		fs.String("config", "", "YAML configuration `file`; flags given explicitly override it")
		bindFlags(fs, &cfg, &version)
		return manpage.Write(os.Stdout, manPage, fs)
	}
	fs.Usage = usage(fs)
	if err := cliconf.Load(fs, args, &cfg, func(fs *flag.FlagSet) {
		bindFlags(fs, &cfg, &version)
	}); err != nil {
		return err
	}
	// A word the agent does not know is a mistake, not a reason to start
	// serving with the defaults.
	if fs.NArg() > 0 {
		return cliconf.Usage(fmt.Errorf("unknown command %q: use doctor, version, man, or flags only to run the agent (glowcast-agent -h)", fs.Arg(0)))
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

const commands = `usage: glowcast-agent [command] [flags]

commands:
  (none)    run the agent
  doctor    check broker, TLS, credentials, ACL, weather and state dir (glowcast-agent doctor -h)
  version   print the version
  man       print the manual page

flags (every one is also a key in the -config file):
`

// usage prints the commands before the flags, so -h shows everything.
func usage(fs *flag.FlagSet) func() {
	return func() {
		fmt.Fprint(fs.Output(), commands)
		fs.PrintDefaults()
	}
}

// bindFlags registers the agent's flags: the man page lists the same set.
func bindFlags(fs *flag.FlagSet, cfg *agent.Config, version *bool) {
	cfg.Bind(fs)
	fs.BoolVar(version, "version", false, "print the version and exit")
}

var manPage = manpage.Page{
	Name: "glowcast-agent", Section: "8", Summary: "glowcast agent: forecasts for many glowcast devices over MQTT",
	Synopsis: []string{"glowcast-agent [flags]", "glowcast-agent doctor [flags]", "glowcast-agent version"},
	Description: []string{
		"glowcast-agent serves many glowcast devices through an MQTT broker: it locates each one, fetches an hourly forecast every interval (one fetch per place) and sends each device its five temperatures. It can be restarted or moved at any moment: it resumes every device's cycle from retained presence, ready messages and its saved state.",
		"Every flag is also a key of the -config file (flags given explicitly win). The packaged unit runs it as the system user glowcast-agent with /etc/glowcast/agent.yaml; the MQTT password, client key and weather API key come from the systemd credentials mqtt-password, mqtt-key and weather-key.",
	},
	Commands: [][2]string{
		{"doctor", "check broker, TLS, credentials, ACL, weather and state dir, one line each with the fix (glowcast-agent doctor -h)"},
		{"version", "print the version"},
		{"man", "print this manual page"},
	},
	Files: [][2]string{
		{"/etc/glowcast/agent.yaml", "configuration (a conffile)"},
		{"/etc/glowcast/weather-key", "the weather provider's API key, root-only; handed over as the credential weather-key"},
		{"/var/lib/glowcast-agent", "saved device state"},
	},
	SeeAlso: []string{"glowcastd(8)", "glowcast(1)", "mosquitto(8)"},
}
