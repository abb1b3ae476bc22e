package agent

import (
	"context"
	"fmt"
	"github.com/glowcast/glowcast/internal/clock"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glowcast/glowcast/agent/geo"
	"github.com/glowcast/glowcast/agent/verify"
	"github.com/glowcast/glowcast/agent/weather"
	"github.com/glowcast/glowcast/protocol"
	"github.com/prometheus/client_golang/prometheus"
)

// sources are where the agent's facts come from: the weather providers
// (one per distinct configuration, behind one shared cache) and the
// location resolver.
type sources struct {
	log       *slog.Logger
	fetcher   *weather.Fetcher
	def       weather.Provider
	perDevice map[string]weather.Provider
	resolver  *geo.Resolver
	devLocs   map[string]*protocol.Location
	defLoc    *protocol.Location
	// clock is the agent's, set before Run starts anything.
	clock clock.Clock
	// verify is nil without a state directory.
	verify *verify.Store
	// budget bounds each device's relocations.
	budget *relocationBudget
}

func (s *sources) now() time.Time { return s.clock.Now() }

func newSources(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*sources, error) {
	weather.UserAgent = "glowcast/" + Version
	geo.UserAgent = "glowcast/" + Version
	s := &sources{log: log, perDevice: map[string]weather.Provider{}, devLocs: map[string]*protocol.Location{}, clock: clock.System{},
		budget: newRelocationBudget(relocationBurst, relocationRefill, log, reg)}
	now := s.now
	var err error
	if s.def, err = weather.New(cfg.Weather, weather.Options{Log: log, Now: now}); err != nil {
		return nil, err
	}
	for id, d := range cfg.Devices {
		if d.Location != "" {
			s.devLocs[id], _ = ParseLocation(d.Location)
		}
		if d.Weather != (weather.Config{}) {
			p, err := weather.New(cfg.Weather.Override(d.Weather), weather.Options{Log: log, Now: now})
			if err != nil {
				return nil, fmt.Errorf("devices.%s: %w", id, err)
			}
			s.perDevice[id] = p
		}
	}
	opts := cfg.Weather.FetcherOptions(cfg.Interval)
	// A cached answer must be older than one cycle when the next cycle of
	// the same device asks, or a device would see a new forecast only
	// every other interval; cells shared by several devices still cost
	// one request per interval.
	opts.Interval = cfg.Interval * 8 / 10
	// Spread requests, but never by more than a tenth of the cycle.
	opts.Jitter = min(opts.Jitter, cfg.Interval/10)
	opts.Registerer, opts.Log, opts.Now = reg, log, now
	if s.fetcher, err = weather.NewFetcher(opts); err != nil {
		return nil, err
	}

	if cfg.StateDir != "" {
		s.verify, err = verify.New(verify.Options{Dir: filepath.Join(cfg.StateDir, "verification"), History: cfg.VerifyHistory, Registerer: reg, Log: log})
		if err != nil {
			return nil, err
		}
	}

	if cfg.Location != "" {
		s.defLoc, _ = ParseLocation(cfg.Location)
	}
	s.resolver = &geo.Resolver{Log: log, Now: now, LogGrid: cfg.Weather.Grid}
	if s.defLoc != nil {
		s.resolver.Default = *s.defLoc
	}
	if cfg.Geo.GeolocateURL != "" {
		g := &geo.Geolocate{URL: cfg.Geo.GeolocateURL}
		if cfg.Geo.GeolocateKeyFile != "" {
			b, err := os.ReadFile(cfg.Geo.GeolocateKeyFile)
			if err != nil {
				return nil, fmt.Errorf("geo.geolocate_key_file (--geolocate-key-file): %w", err)
			}
			g.Key = strings.TrimSpace(string(b))
		}
		s.resolver.WiFi = g
	}
	if cfg.Geo.IPURL != "" {
		s.resolver.IP = &geo.IPAPI{URL: cfg.Geo.IPURL}
	}
	return s, nil
}

func (s *sources) provider(device string) weather.Provider {
	if p := s.perDevice[device]; p != nil {
		return p
	}
	return s.def
}

// Forecast implements Forecaster through the shared cache.
func (s *sources) Forecast(ctx context.Context, device string, lat, lon float64) (*weather.Forecast, error) {
	f, err := s.fetcher.Get(ctx, s.provider(device), lat, lon)
	if err == nil && s.verify != nil {
		// The agent's clock decides which hour the LEDs promised; devices
		// in one cache cell are one place.
		if verr := s.verify.Forecast(s.placeKey(lat, lon), f.Provider, s.now(), f); verr != nil {
			s.log.Warn("forecast verification not saved", "err", verr)
		}
	}
	return f, err
}

// placeKey is the verification place of a location: its forecast cache
// cell, so a sensor's readings meet the forecasts fetched for that cell.
func (s *sources) placeKey(lat, lon float64) string {
	clat, clon := s.fetcher.Cell(lat, lon)
	return verify.PlaceKey(clat, clon)
}

// Sensor files a device's thermometer reading, received at at, as the
// observation of its place.
func (s *sources) Sensor(lat, lon float64, at time.Time, tempC float64) error {
	return s.verify.Sensor(s.placeKey(lat, lon), at, tempC)
}

// Locate chooses a device's location: config, the device's hint, WiFi, IP,
// then the agent's default. A choice is kept until the device boots anew or
// the configuration changes.
func (s *sources) Locate(ctx context.Context, id string, in locateInput) (*geo.Saved, error) {
	var hint *protocol.Location
	if in.Ready != nil {
		hint = in.Ready.Location
	}
	gin := geo.Input{Static: s.devLocs[id], Hint: hint, Scan: in.Scan}
	key := geo.ConfigKey(s.devLocs[id], s.resolver.Default)
	if !in.Prev.Outdated(in.Boot, key, gin) {
		return in.Prev, nil
	}
	// A device already placed under this configuration moves only within
	// its budget: a new place can cost a geolocation request and a
	// forecast request from the fleet's shared quota. Over budget it keeps
	// its previous place. The operator's configuration is never budgeted.
	budgeted := in.Prev != nil && in.Prev.ConfigKey == key && gin.Static == nil
	paid := gin.Hint == nil && (gin.Scan != nil || s.resolver.IP != nil)
	if budgeted && paid && !s.budget.take(id, s.now()) {
		return in.Prev, nil
	}
	res := s.resolver.Resolve(ctx, id, gin)
	if res.Source == geo.SourceDefault && s.defLoc == nil {
		return nil, ErrNoLocation
	}
	if budgeted && !paid && s.cell(res.Location) != s.cell(in.Prev.Location) && !s.budget.take(id, s.now()) {
		return in.Prev, nil
	}
	saved := geo.Save(res, in.Boot, key, gin)
	return &saved, nil
}

// cell is the weather cell of a place: moving within one costs nothing.
func (s *sources) cell(l protocol.Location) [2]float64 {
	lat, lon := s.fetcher.Cell(l.Lat, l.Lon)
	return [2]float64{lat, lon}
}
