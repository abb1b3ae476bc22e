// Command glowcast holds glowcast's tools: the one-process demo and helpers
// for installation and testing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/glowcast/glowcast/cmd/glowcast/demo"
	"github.com/glowcast/glowcast/device"
	"github.com/glowcast/glowcast/internal/cliconf"
	"github.com/glowcast/glowcast/internal/manpage"
	"github.com/glowcast/glowcast/ledstrip"

	// Registers periph's host drivers (spidev) for ledstrip's spi backend.
	_ "periph.io/x/host/v3"
)

const usage = `usage: glowcast <command> [flags]

commands:
  forecast fetch one forecast for --location LAT,LON and show the five slots
  devices  list the agent's devices (--agent URL, --json)
  show     show one device: glowcast show DEVICE
  set      change a device's settings: glowcast set DEVICE brightness=40 on=false
  rebirth  ask a device to announce itself again
  demo     run a broker, the agent and one device in this terminal
  scale    render the temperature colour scale to a PNG (--png FILE)
  sim      run simulated devices against a broker (--devices N), for load tests
  man      print the manual page
`

var manPage = manpage.Page{
	Name: "glowcast", Section: "1", Summary: "glowcast tools: the one-process demo, the colour scale, the device simulator",
	Synopsis: []string{"glowcast demo [flags]", "glowcast scale -png FILE [flags]", "glowcast sim [flags]"},
	Description: []string{
		"glowcast holds the tools around glowcastd and glowcast-agent. Each command takes -h for its flags.",
	},
	Commands: [][2]string{
		{"demo", "run an embedded broker, the agent and one device drawing in this terminal; -weather sample uses a bundled forecast, labelled as such"},
		{"scale", "render the temperature colour scale (the built-in one, or -config FILE's strip.scale) to a PNG"},
		{"sim", "run simulated devices against a broker, for load tests"},
		{"man", "print this manual page"},
	},
	SeeAlso: []string{"glowcastd(8)", "glowcast-agent(8)"},
}

func main() { cliconf.Main("glowcast", run) }

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return cliconf.Usage(errors.New("no command given"))
	}
	if _, ok := clientCommands[args[0]]; ok {
		return runClient(ctx, args[0], args[1:], os.Stdout)
	}
	switch args[0] {
	case "demo":
		cfg := demo.Default()
		fs := flag.NewFlagSet("glowcast demo", flag.ContinueOnError)
		fs.StringVar(&cfg.Weather, "weather", cfg.Weather, "weather `provider`: open-meteo, or sample (bundled, labelled SAMPLE)")
		fs.StringVar(&cfg.WeatherURL, "weather-url", cfg.WeatherURL, "replace the provider's base `URL`")
		fs.StringVar(&cfg.Location, "location", cfg.Location, "`LAT,LON` to forecast for")
		fs.DurationVar(&cfg.Interval, "interval", cfg.Interval, "time between forecasts")
		fs.StringVar(&cfg.LED, "led", cfg.LED, "LED backend `SPEC`: term, jsonl:PATH or none")
		fs.StringVar(&cfg.StateDir, "state-dir", cfg.StateDir, "keep state in `DIR` (default: a temporary directory)")
		if err := fs.Parse(args[1:]); err != nil {
			return cliconf.Usage(err)
		}
		return demo.Run(ctx, cfg, os.Stdin, os.Stdout)
	case "scale":
		fs := flag.NewFlagSet("glowcast scale", flag.ContinueOnError)
		png := fs.String("png", "", "write the scale to this PNG `file`")
		width := fs.Int("width", 720, "image width in pixels")
		height := fs.Int("height", 72, "image height in pixels")
		unit := fs.String("unit", ledstrip.UnitC, "`unit` of the ticks and labels: C or F (the colours are the same)")
		config := fs.String("config", "", "device config `file` whose strip.scale to render (default: the built-in scale)")
		if err := fs.Parse(args[1:]); err != nil {
			return cliconf.Usage(err)
		}
		if *png == "" {
			return cliconf.Usage(errors.New("scale: --png FILE is required"))
		}
		sc := ledstrip.DefaultScale()
		if *config != "" {
			cfg := device.Default()
			if err := cliconf.LoadFile(*config, &cfg); err != nil {
				return err
			}
			sc = cfg.Strip.Scale
		}
		f, err := os.Create(*png)
		if err != nil {
			return err
		}
		if err := ledstrip.WriteScalePNGIn(f, sc, *width, *height, *unit); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	case "forecast":
		return runForecast(ctx, args[1:], forecastEnv{stdout: os.Stdout, now: time.Now, terminal: stdoutIsTerminal()})
	case "sim":
		return runSim(ctx, args[1:])
	case "man":
		return manpage.Write(os.Stdout, manPage, nil)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(os.Stdout, usage)
		return nil
	default:
		fmt.Fprint(os.Stderr, usage)
		return cliconf.Usage(fmt.Errorf("unknown command %q", args[0]))
	}
}
