package geo

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strconv"
	"time"

	"github.com/glowcast/glowcast/protocol"
)

// Sources, in the order they are tried.
const (
	SourceConfig  = "config"
	SourceDevice  = "device"
	SourceWiFi    = "wifi"
	SourceIP      = "ip"
	SourceDefault = "default"
)

// rank orders sources; lower is better.
func rank(source string) int {
	switch source {
	case SourceConfig:
		return 1
	case SourceDevice:
		return 2
	case SourceWiFi:
		return 3
	case SourceIP:
		return 4
	}
	return 5
}

// WiFiLocator resolves usable access points.
type WiFiLocator interface {
	Locate(ctx context.Context, aps []protocol.AccessPoint) (Fix, error)
}

// IPLocator resolves a public address.
type IPLocator interface {
	LocateIP(ctx context.Context, addr netip.Addr) (Fix, error)
}

// Resolver picks a device's location in the package's order.
type Resolver struct {
	// WiFi resolves scans; nil skips step 3.
	WiFi WiFiLocator
	// IP resolves public addresses; nil skips step 4.
	IP IPLocator
	// Default is the agent's --location.
	Default protocol.Location
	// Log receives why steps were skipped; nil means slog.Default().
	Log *slog.Logger
	// Now is the clock for Result.ResolvedAt; nil means time.Now.
	Now func() time.Time
	// LogGrid is the cell size in degrees that coordinates are rounded to
	// in logs (the weather grid): a log line should not pin down a home.
	// 0 means 0.01 (about a kilometre).
	LogGrid float64
}

// Input is what is known about one device.
type Input struct {
	// Static is the device's lat/lon in the agent's configuration, or nil.
	Static *protocol.Location
	// Hint is the location in the device's ready message, or nil.
	Hint *protocol.Location
	// Scan is the device's last wifi message this boot, or nil.
	Scan *protocol.WiFiScan
}

// Result is a resolved location and where it came from.
type Result struct {
	Location protocol.Location `json:"location"`
	// Source is one of the Source* names.
	Source string `json:"source"`
	// AccuracyM is the service's accuracy radius for wifi and ip, else 0.
	AccuracyM  float64   `json:"accuracy_m,omitempty"`
	ResolvedAt time.Time `json:"resolved_at"`
}

// Resolve returns the first source that answers. It never fails: the
// default is the last resort. Services are only asked when the better
// sources are absent.
func (r *Resolver) Resolve(ctx context.Context, device string, in Input) Result {
	log := r.Log
	if log == nil {
		log = slog.Default()
	}
	// No log.With here: it formats the attribute at once, whatever the
	// level, and a cold start resolves every device (a tenth of its CPU
	// at 100,000 devices). The slow paths below, which ask services, get one.
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	done := func(loc protocol.Location, source string, acc float64) Result {
		res := Result{Location: loc, Source: source, AccuracyM: acc, ResolvedAt: now()}
		g := r.LogGrid
		if g <= 0 {
			g = 0.01
		}
		if log.Enabled(ctx, slog.LevelInfo) {
			log.Info("geo: location resolved", "device", device, "source", source, "lat", roundTo(loc.Lat, g), "lon", roundTo(loc.Lon, g), "accuracy_m", acc)
		}
		return res
	}
	if in.Static != nil {
		err := in.Static.Validate()
		if err == nil {
			return done(*in.Static, SourceConfig, 0)
		}
		log.Warn("geo: configured location ignored", "device", device, "err", err)
	}
	if in.Hint != nil {
		err := in.Hint.Validate()
		if err == nil {
			return done(*in.Hint, SourceDevice, 0)
		}
		log.Warn("geo: device's location hint ignored", "device", device, "err", err)
	}
	if in.Scan != nil {
		log := log.With("device", device)
		if fix, ok := r.wifi(ctx, log, in.Scan.AccessPoints); ok {
			return done(fix.Location, SourceWiFi, fix.AccuracyM)
		}
		if fix, ok := r.ip(ctx, log, in.Scan.PublicIP); ok {
			return done(fix.Location, SourceIP, fix.AccuracyM)
		}
	} else {
		log.Debug("geo: no wifi message; wifi and ip steps skipped", "device", device)
	}
	return done(r.Default, SourceDefault, 0)
}

func (r *Resolver) wifi(ctx context.Context, log *slog.Logger, aps []protocol.AccessPoint) (Fix, bool) {
	if r.WiFi == nil {
		if len(aps) > 0 {
			log.Info("geo: wifi geolocation not configured; scan ignored")
		}
		return Fix{}, false
	}
	use := protocol.UsableAccessPoints(aps)
	if len(use) < MinAccessPoints {
		log.Info("geo: wifi step skipped", "reason", ErrTooFewAccessPoints.Error(), "scanned", len(aps), "usable", len(use))
		return Fix{}, false
	}
	fix, err := r.WiFi.Locate(ctx, use)
	if err != nil {
		log.Warn("geo: wifi geolocation failed", "access_points", len(use), "err", err)
		return Fix{}, false
	}
	return fix, true
}

func (r *Resolver) ip(ctx context.Context, log *slog.Logger, ip string) (Fix, bool) {
	if ip == "" {
		log.Debug("geo: ip step skipped: the wifi message has no public_ip")
		return Fix{}, false
	}
	if r.IP == nil {
		log.Info("geo: ip geolocation not configured; public_ip ignored")
		return Fix{}, false
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		log.Warn("geo: ip step skipped", "public_ip", ip, "err", err)
		return Fix{}, false
	}
	if !Public(a) {
		log.Warn("geo: ip step skipped", "public_ip", ip, "err", ErrPrivateAddress.Error())
		return Fix{}, false
	}
	fix, err := r.IP.LocateIP(ctx, a)
	if err != nil {
		log.Warn("geo: ip geolocation failed", "public_ip", ip, "err", err)
		return Fix{}, false
	}
	return fix, true
}

// Saved is a device's resolved location as the agent keeps it in its state.
type Saved struct {
	Result
	// BootID is the device boot the location was resolved for.
	BootID string `json:"boot_id"`
	// ConfigKey is ConfigKey of the configuration it was resolved with.
	ConfigKey string `json:"config_key"`
	// ScanTried is true once a wifi message was part of the resolution, so
	// a failing service is not asked again every cycle.
	ScanTried bool `json:"scan_tried,omitempty"`
}

// ConfigKey summarises the configuration a resolution depends on: the
// device's static location and the agent's default.
func ConfigKey(static *protocol.Location, def protocol.Location) string {
	s := "-"
	if static != nil {
		s = fmtLoc(*static)
	}
	return s + "|" + fmtLoc(def)
}

func fmtLoc(l protocol.Location) string {
	return strconv.FormatFloat(l.Lat, 'f', -1, 64) + "," + strconv.FormatFloat(l.Lon, 'f', -1, 64)
}

// Outdated reports whether s must be resolved again for a device now on
// bootID with configuration configKey and inputs in: a new boot, a changed
// configuration, or a first scan this boot that could beat an ip or default
// result.
func (s *Saved) Outdated(bootID, configKey string, in Input) bool {
	if s == nil || s.BootID != bootID || s.ConfigKey != configKey {
		return true
	}
	return in.Scan != nil && !s.ScanTried && rank(s.Source) > rank(SourceWiFi)
}

// Save wraps a Result for the agent's state.
func Save(res Result, bootID, configKey string, in Input) Saved {
	return Saved{Result: res, BootID: bootID, ConfigKey: configKey, ScanTried: in.Scan != nil}
}

// String is the status page's line: "52.52,13.405 (wifi, ±30 m)".
func (r Result) String() string {
	s := fmtLoc(r.Location) + " (" + r.Source
	if r.AccuracyM > 0 {
		s += fmt.Sprintf(", ±%.0f m", r.AccuracyM)
	}
	return s + ")"
}

// roundTo rounds v to a multiple of g, without float noise in the log.
func roundTo(v, g float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(math.Round(v/g)*g, 'f', 6, 64), 64)
	return r
}
