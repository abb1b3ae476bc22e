package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/glowcast/glowcast/agent"
	"github.com/glowcast/glowcast/agent/weather"
	"github.com/glowcast/glowcast/internal/cliconf"
	"github.com/glowcast/glowcast/ledstrip"
)

// leadsH are the strip's five slots, hours after the current hour.
var leadsH = []int{0, 3, 6, 9, 12}

// forecastJSON is the fixed --json shape.
type forecastJSON struct {
	Provider string       `json:"provider"`
	Location locationJSON `json:"location"`
	Fetched  time.Time    `json:"fetched"`
	Expires  *time.Time   `json:"expires"`
	Slots    []slotJSON   `json:"slots"`
}

type locationJSON struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

type slotJSON struct {
	LeadH  int       `json:"lead_h"`
	Time   time.Time `json:"time"`
	TempC  *float64  `json:"temp_c"`
	Colour string    `json:"colour"`
}

// forecastEnv is what runForecast takes from the process, so tests can
// replace it.
type forecastEnv struct {
	stdout   io.Writer
	getenv   func(string) string
	now      func() time.Time
	terminal bool
}

// runForecast fetches one forecast through the agent's own provider code
// (the agent's config file, flags, key lookup, User-Agent and cache rules)
// and prints the five slots the strip would show.
func runForecast(ctx context.Context, args []string, env forecastEnv) error {
	cfg := agent.Default()
	var location string
	var asJSON bool
	fs := flag.NewFlagSet("glowcast forecast", flag.ContinueOnError)
	err := cliconf.Load(fs, args, &cfg, func(fs *flag.FlagSet) {
		fs.StringVar(&location, "location", "", "`LAT,LON` to forecast for (required)")
		fs.StringVar(&cfg.Weather.Provider, "weather", cfg.Weather.Provider, "weather `provider`: "+strings.Join(weather.Names, ", ")+", or sample (bundled, offline)")
		fs.StringVar(&cfg.Weather.URL, "weather-url", cfg.Weather.URL, "replace the provider's base `URL`")
		fs.StringVar(&cfg.Weather.KeyFile, "weather-key-file", cfg.Weather.KeyFile, "`file` holding the provider's API key (pirate-weather, openweathermap)")
		fs.StringVar(&cfg.Weather.Contact, "weather-contact", cfg.Weather.Contact, "contact (e-mail or URL) for MET Norway's User-Agent")
		fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	})
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("forecast: unexpected argument %q", fs.Arg(0))
	}
	lat, lon, err := parseLatLon(location)
	if err != nil {
		return err
	}
	weather.UserAgent = "glowcast/" + agent.Version
	p, err := weather.New(cfg.Weather, weather.Options{Getenv: env.getenv, Now: env.now})
	if err != nil {
		return fmt.Errorf("forecast: %w", err)
	}
	opts := cfg.Weather.FetcherOptions(cfg.Interval)
	// One request, now: no fleet jitter, and a refusal is reported rather
	// than waited out.
	opts.Jitter = 0
	opts.Attempts = 1
	opts.Now = env.now
	// The one failure is explained below; the fetcher's own log line would
	// say it twice.
	opts.Log = slog.New(slog.DiscardHandler)
	f, err := weather.NewFetcher(opts)
	if err != nil {
		return fmt.Errorf("forecast: %w", err)
	}
	fc, err := f.Get(ctx, p, lat, lon)
	if err != nil {
		return explainWeatherError(cfg.Weather, err, env.now())
	}
	now := env.now()
	sc := ledstrip.DefaultScale()
	base := now.UTC().Truncate(time.Hour)
	out := forecastJSON{Provider: fc.Provider, Location: locationJSON{lat, lon}, Fetched: fc.FetchedAt.UTC()}
	if !fc.Expires.IsZero() {
		e := fc.Expires.UTC()
		out.Expires = &e
	}
	for _, h := range leadsH {
		at := base.Add(time.Duration(h) * time.Hour)
		s := slotJSON{LeadH: h, Time: at}
		if v := fc.At(at); !math.IsNaN(v) {
			s.TempC = &v
			s.Colour = ledstrip.Hex(sc.Color(v))
		}
		out.Slots = append(out.Slots, s)
	}
	if asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	w := env.stdout
	label := out.Provider
	if label == weather.NameSample {
		label += " (SAMPLE: bundled demo data, not real weather)"
	}
	fmt.Fprintf(w, "provider  %s\nlocation  %.4f,%.4f\n", label, lat, lon)
	fmt.Fprintf(w, "fetched   %s (%s old)\n", out.Fetched.Local().Format(time.RFC3339), now.Sub(out.Fetched).Round(time.Second))
	if out.Expires != nil {
		fmt.Fprintf(w, "expires   %s\n", out.Expires.Local().Format(time.RFC3339))
	} else {
		fmt.Fprintf(w, "expires   (the provider gave none)\n")
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "lead  local time        temp     colour")
	for _, s := range out.Slots {
		temp, colour := "    —", "(no value: the LED stays dark)"
		if s.TempC != nil {
			temp = fmt.Sprintf("%5.1f°C", *s.TempC)
			colour = s.Colour
			if env.terminal {
				c := sc.Color(*s.TempC)
				colour += fmt.Sprintf("  \x1b[48;2;%d;%d;%dm    \x1b[0m", c.R, c.G, c.B)
			}
		}
		fmt.Fprintf(w, "+%-3s  %s  %s  %s\n", strconv.Itoa(s.LeadH)+"h", s.Time.Local().Format("Mon 15:04 MST"), temp, colour)
	}
	return nil
}

func parseLatLon(s string) (lat, lon float64, err error) {
	if s == "" {
		return 0, 0, errors.New("forecast: --location LAT,LON is required, e.g. --location 59.91,10.75")
	}
	a, b, ok := strings.Cut(s, ",")
	if ok {
		lat, err = strconv.ParseFloat(strings.TrimSpace(a), 64)
	}
	if ok && err == nil {
		lon, err = strconv.ParseFloat(strings.TrimSpace(b), 64)
	}
	if !ok || err != nil || math.IsNaN(lat) || math.IsNaN(lon) || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return 0, 0, fmt.Errorf("forecast: --location %q: want LAT,LON in degrees, latitude -90…90 and longitude -180…180, e.g. 59.91,10.75", s)
	}
	return lat, lon, nil
}

// explainWeatherError turns a provider failure into cause and fix.
func explainWeatherError(c weather.Config, err error, now time.Time) error {
	var se *weather.StatusError
	switch {
	case errors.As(err, &se) && se.Code == http.StatusTooManyRequests:
		wait := "later"
		if d, ok := se.RetryDelay(now); ok {
			wait = "in " + d.String() + " (Retry-After)"
		}
		return fmt.Errorf("forecast: %w\ncause: %s refused the request: too many requests\nfix: try again %s; for a fleet, raise --grid so devices share requests, or use a plan with a larger quota", err, c.Provider, wait)
	case errors.As(err, &se) && se.Code == http.StatusForbidden && c.Provider == weather.NameMetNorway:
		return fmt.Errorf("forecast: %w\ncause: MET Norway refused the User-Agent %q\nfix: set weather.contact (--weather-contact) to a real e-mail address or URL where MET Norway can reach you", err, weather.UserAgent+" "+c.Contact)
	case errors.As(err, &se) && (se.Code == http.StatusUnauthorized || se.Code == http.StatusForbidden):
		return fmt.Errorf("forecast: %w\ncause: %s refused the API key\nfix: put a valid key in weather.key_file (--weather-key-file), the systemd credential %s or $%s", err, c.Provider, weather.CredentialName, weather.KeyEnv)
	case errors.As(err, &se):
		return fmt.Errorf("forecast: %w\ncause: %s answered HTTP %d\nfix: check weather.url (--weather-url) and the provider's status page; try --weather sample to check the rest offline", err, c.Provider, se.Code)
	case errors.Is(err, weather.ErrUnreachable):
		return fmt.Errorf("forecast: %w\ncause: no connection to %s\nfix: check this host's network, DNS and proxy, and weather.url (--weather-url); --weather sample works offline", err, c.Provider)
	case errors.Is(err, weather.ErrQuota):
		return fmt.Errorf("forecast: %w\ncause: the daily request budget for %s is used up\nfix: wait for the next UTC day or raise weather.daily_quota", err, c.Provider)
	}
	return fmt.Errorf("forecast: %w", err)
}

func stdoutIsTerminal() bool {
	fi, err := os.Stdout.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}
