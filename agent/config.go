package agent

import (
	"errors"
	"flag"
	"fmt"
	"github.com/glowcast/glowcast/agent/geo"
	"github.com/glowcast/glowcast/agent/verify"
	"github.com/glowcast/glowcast/agent/weather"
	"github.com/glowcast/glowcast/internal/brokerconf"
	"github.com/glowcast/glowcast/mqttmsg"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/glowcast/glowcast/protocol"
)

// Config is the agent's configuration: YAML fields and flags of the same
// meaning. Flags given explicitly override the file.
type Config struct {
	Broker   string `yaml:"broker"`
	AgentID  string `yaml:"agent_id"`
	StateDir string `yaml:"state_dir"`
	// VerifyHistory is how long forecast verification keeps finished
	// hours per place (--verify-history); it needs StateDir.
	VerifyHistory time.Duration `yaml:"verify_history"`

	// Weather selects and tunes the forecast provider and the shared cache.
	Weather weather.Config `yaml:"weather"`
	// Geo configures the geolocation services used for devices that send
	// WiFi scans.
	Geo GeoConfig `yaml:"geo"`

	// Location is the default "LAT,LON" for devices without their own.
	Location string `yaml:"location"`
	// Devices holds per-device settings, keyed by device id.
	Devices map[string]DeviceConfig `yaml:"devices"`

	Interval     time.Duration `yaml:"interval"`
	RestartGrace time.Duration `yaml:"restart_grace"`
	OfflinePark  time.Duration `yaml:"offline_park"`
	// Resume is "fast" (glowcast) or "timer-only" (the original design,
	// kept for comparison).
	Resume string `yaml:"resume"`
	// Shard is this agent's index in a set of agents sharing a fleet,
	// "i/N": the live indices split the devices by rendezvous hashing;
	// 0/1 serves every device. See docs/SCALING.md.
	Shard string `yaml:"shard"`

	HTTP string `yaml:"http"`
	// HassDiscovery publishes Home Assistant MQTT discovery for the
	// devices this agent owns.
	HassDiscovery bool `yaml:"hass_discovery"`
	// HTTPPublicURL is how people reach the status page (e.g.
	// http://agent.example:9120/); Home Assistant links to it as the
	// device's configuration_url.
	HTTPPublicURL string `yaml:"http_public_url"`
	// APITokenFile holds the bearer token that allows writes through the
	// HTTP API; without it (and without the systemd credential api-token)
	// the API is read-only.
	APITokenFile string `yaml:"api_token_file"`
	// MQTT holds credentials and TLS files for the broker.
	MQTT brokerconf.Config `yaml:"mqtt"`

	LogLevel string `yaml:"log_level"`
}

// DeviceConfig is what the agent's config may say of one device.
type DeviceConfig struct {
	// Location is "LAT,LON".
	Location string `yaml:"location"`
	// Weather overrides the agent's provider settings for this device.
	Weather weather.Config `yaml:"weather"`
}

// GeoConfig locates devices by the WiFi access points (and public address)
// they report, like the original platform did.
type GeoConfig struct {
	// GeolocateURL is a Google-Geolocation-API-compatible endpoint
	// (BeaconDB by default); empty disables WiFi geolocation.
	GeolocateURL string `yaml:"geolocate_url"`
	// GeolocateKeyFile holds the endpoint's API key, if it needs one.
	GeolocateKeyFile string `yaml:"geolocate_key_file"`
	// IPURL is an ip-api.com-compatible endpoint; empty (the default)
	// disables IP geolocation. It is off by default because the free
	// ip-api.com service answers over plain HTTP only, which would send a
	// device's public address and place across the network in clear.
	IPURL string `yaml:"ip_geolocation_url"`
}

// Default returns the built-in configuration.
func Default() Config {
	return Config{
		Broker:        "tcp://127.0.0.1:1883",
		AgentID:       "main",
		Weather:       weather.DefaultConfig(),
		Geo:           GeoConfig{GeolocateURL: geo.BeaconDBURL},
		Interval:      30 * time.Minute,
		RestartGrace:  30 * time.Second,
		OfflinePark:   6 * time.Hour,
		Resume:        ResumeFast,
		Shard:         "0/1",
		VerifyHistory: verify.DefaultHistory,
		LogLevel:      "info",
		HassDiscovery: true,
	}
}

// Bind registers the agent's flags on fs, with cfg's values as defaults.
func (c *Config) Bind(fs *flag.FlagSet) {
	fs.StringVar(&c.Broker, "broker", c.Broker, "MQTT broker `URL` (tcp://, mqtts://, ssl://, ws://, wss://); several, comma-separated, for the nodes of a clustered broker: tried in order on every (re)connect")
	fs.StringVar(&c.AgentID, "agent-id", c.AgentID, "agent `ID`; agents sharing an id are one agent (a migration)")
	fs.StringVar(&c.StateDir, "state-dir", c.StateDir, "`DIR` for saved device state (location, last temps, next due time)")
	fs.DurationVar(&c.VerifyHistory, "verify-history", c.VerifyHistory, "how long forecast verification keeps per place (saved under --state-dir/verification)")
	fs.StringVar(&c.Weather.Provider, "weather", c.Weather.Provider, "weather `provider`: open-meteo, met-norway, pirate-weather, openweathermap, or sample (bundled demo data, labelled as such)")
	fs.StringVar(&c.Weather.URL, "weather-url", c.Weather.URL, "replace the provider's base `URL` (the part before its path)")
	fs.StringVar(&c.Weather.KeyFile, "weather-key-file", c.Weather.KeyFile, "`file` holding the provider's API key (pirate-weather, openweathermap)")
	fs.StringVar(&c.Weather.Contact, "weather-contact", c.Weather.Contact, "contact (e-mail or URL) for MET Norway's User-Agent; required for met-norway")
	fs.Float64Var(&c.Weather.Grid, "grid", c.Weather.Grid, "cache cell size in `degrees`: devices in one cell share one forecast request")
	fs.StringVar(&c.Geo.GeolocateURL, "geolocate-url", c.Geo.GeolocateURL, "Google-Geolocation-API-compatible `URL` for WiFi scans; empty disables")
	fs.StringVar(&c.Geo.GeolocateKeyFile, "geolocate-key-file", c.Geo.GeolocateKeyFile, "`file` holding the geolocation API key, if the service needs one")
	fs.StringVar(&c.Geo.IPURL, "ip-geolocation-url", c.Geo.IPURL, "ip-api.com-compatible `URL` for IP geolocation, https:// (e.g. https://pro.ip-api.com with a key); empty (default) disables")
	fs.StringVar(&c.Location, "location", c.Location, "default location `LAT,LON` for devices without their own")
	fs.DurationVar(&c.Interval, "interval", c.Interval, "time between forecasts for a device")
	fs.DurationVar(&c.RestartGrace, "restart-grace", c.RestartGrace, "after start, resume every online device without a cycle after this long")
	fs.DurationVar(&c.OfflinePark, "offline-park", c.OfflinePark, "park an offline device's cycle after this long")
	fs.StringVar(&c.Resume, "resume", c.Resume, "resume `strategy` after a restart: fast, or timer-only (the original design, for comparison)")
	fs.StringVar(&c.Shard, "shard", c.Shard, "serve as index `i` of a shard set of N agents: devices are split by rendezvous hashing over the indices whose agents are online; 0/1 serves all")
	fs.StringVar(&c.HTTP, "http", c.HTTP, "serve the status page (/), /healthz and /metrics on this `ADDR` (e.g. 127.0.0.1:9120); empty disables")
	fs.BoolVar(&c.HassDiscovery, "hass-discovery", c.HassDiscovery, "publish Home Assistant MQTT discovery (light, connectivity, five forecast sensors) for the devices this agent owns")
	fs.StringVar(&c.HTTPPublicURL, "http-public-url", c.HTTPPublicURL, "the status page's `URL` as people reach it; Home Assistant links devices to it")
	fs.StringVar(&c.APITokenFile, "api-token-file", c.APITokenFile, "`file` holding the bearer token for writes through /api/v1/ (default: the systemd credential "+CredentialAPIToken+"); without one the API is read-only")
	c.MQTT.Bind(fs)
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log `level`: debug, info, warn, error")
}

// Validate checks the configuration; errors name the field and flag.
func (c *Config) Validate() error {
	var errs []error
	if c.VerifyHistory < time.Hour || c.VerifyHistory > 366*24*time.Hour {
		errs = append(errs, fmt.Errorf("verify_history (--verify-history) %v out of range 1h…8784h (366 days)", c.VerifyHistory))
	}
	if c.Broker == "" {
		errs = append(errs, errors.New("broker (--broker) is empty: give the MQTT broker URL, e.g. tcp://127.0.0.1:1883"))
	} else if _, err := mqttmsg.ParseBrokers(c.Broker); err != nil {
		errs = append(errs, fmt.Errorf("broker (--broker): %w; several nodes of a clustered broker are separated by commas", err))
	}
	if err := protocol.ValidID(c.AgentID); err != nil {
		errs = append(errs, fmt.Errorf("agent_id (--agent-id): %w", err))
	} else if c.AgentID == protocol.SideDevice {
		errs = append(errs, fmt.Errorf("agent_id (--agent-id): %q is reserved", c.AgentID))
	}
	if c.Weather.Provider != weather.NameSample {
		if err := c.Weather.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if u, err := url.Parse(c.Geo.IPURL); c.Geo.IPURL != "" && (err != nil || u.Scheme != "https" && !isLoopback(u.Hostname())) {
		errs = append(errs, fmt.Errorf("geo.ip_geolocation_url (--ip-geolocation-url) %q is not https: a device's public address and place would cross the network in clear; use an https:// endpoint or leave it empty", c.Geo.IPURL))
	}
	if c.Location != "" {
		if _, err := ParseLocation(c.Location); err != nil {
			errs = append(errs, fmt.Errorf("location (--location): %w", err))
		}
	}
	for id, d := range c.Devices {
		if err := protocol.ValidDeviceID(id); err != nil {
			errs = append(errs, fmt.Errorf("devices.%s: %w", id, err))
		}
		if d.Location != "" {
			if _, err := ParseLocation(d.Location); err != nil {
				errs = append(errs, fmt.Errorf("devices.%s.location: %w", id, err))
			}
		}
		if w := c.Weather.Override(d.Weather); w.Provider != weather.NameSample {
			if err := w.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("devices.%s.%w", id, err))
			}
		}
	}
	if c.Interval < time.Second {
		errs = append(errs, fmt.Errorf("interval (--interval) %v: must be at least 1s", c.Interval))
	}
	if c.RestartGrace < 0 {
		errs = append(errs, fmt.Errorf("restart_grace (--restart-grace) %v: must not be negative", c.RestartGrace))
	}
	if c.OfflinePark <= 0 {
		errs = append(errs, fmt.Errorf("offline_park (--offline-park) %v: must be positive", c.OfflinePark))
	}
	switch c.Resume {
	case ResumeFast, ResumeTimerOnly:
	default:
		errs = append(errs, fmt.Errorf("resume (--resume) %q: use fast or timer-only", c.Resume))
	}
	if _, err := ParseShard(c.Shard); c.Shard != "" && err != nil {
		errs = append(errs, fmt.Errorf("shard (--shard): %w", err))
	}
	if err := c.MQTT.Validate(c.Broker); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ParseLocation parses "LAT,LON" in decimal degrees.
func ParseLocation(s string) (*protocol.Location, error) {
	a, b, ok := strings.Cut(s, ",")
	if !ok {
		return nil, fmt.Errorf("%q is not LAT,LON (e.g. 52.52,13.40)", s)
	}
	lat, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
	lon, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%q is not LAT,LON in decimal degrees (e.g. 52.52,13.40)", s)
	}
	l := &protocol.Location{Lat: lat, Lon: lon}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return l, nil
}

// isLoopback reports whether host is this machine (local test services).
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
