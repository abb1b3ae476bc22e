package main

import (
	"context"
	"flag"
	"os"
	"time"

	"github.com/glowcast/glowcast/cmd/glowcast/sim"
	"github.com/glowcast/glowcast/internal/cliconf"
)

// runSim is `glowcast sim`: simulated devices until interrupted.
func runSim(ctx context.Context, args []string) error {
	cfg := sim.Default()
	fs := flag.NewFlagSet("glowcast sim", flag.ContinueOnError)
	fs.StringVar(&cfg.Broker, "broker", cfg.Broker, "MQTT broker `URL` (tcp:// only)")
	fs.IntVar(&cfg.Devices, "devices", cfg.Devices, "number of simulated devices, one connection each")
	fs.StringVar(&cfg.Prefix, "prefix", cfg.Prefix, "device ids are `PREFIX`-00000, -00001, ...")
	fs.IntVar(&cfg.First, "first", cfg.First, "index of the first device (to share a broker between sim processes)")
	fs.IntVar(&cfg.Places, "places", cfg.Places, "spread the devices over this many places (ready location hints); 0 sends none")
	fs.DurationVar(&cfg.KeepAlive, "keepalive", cfg.KeepAlive, "MQTT keepalive of each connection")
	fs.IntVar(&cfg.Dialers, "dialers", cfg.Dialers, "connects in flight at once")
	fs.IntVar(&cfg.Retained, "retained-only", cfg.Retained, "add `N` devices that exist only as retained status and ready, without connections (fleets past one process's open files)")
	fs.IntVar(&cfg.Publishers, "publishers", cfg.Publishers, "connections that publish the retained-only devices' status and ready and receive their temps and rebirth requests")
	report := fs.Duration("report", 10*time.Second, "print the fleet's state this often")
	if err := fs.Parse(args); err != nil {
		return cliconf.Usage(err)
	}
	return sim.Run(ctx, cfg, *report, os.Stdout)
}
