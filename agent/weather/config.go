package weather

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Provider names, as given to --weather.
const (
	NameOpenMeteo      = "open-meteo"
	NameMetNorway      = "met-norway"
	NamePirateWeather  = "pirate-weather"
	NameOpenWeatherMap = "openweathermap"
	// NameSample is the bundled demo forecast, never real weather.
	NameSample = "sample"
)

// Names lists the providers --weather accepts.
var Names = []string{NameOpenMeteo, NameMetNorway, NamePirateWeather, NameOpenWeatherMap}

// KeyEnv is the environment variable holding the API key when no key file
// is configured.
const KeyEnv = "GLOWCAST_WEATHER_KEY"

// CredentialName is the systemd credential (LoadCredential=weather-key:...)
// read from $CREDENTIALS_DIRECTORY.
const CredentialName = "weather-key"

// Config selects and tunes the weather source. The agent reads it from the
// weather: block of its YAML and the --weather* flags; a device's block
// overrides the provider fields (see Override).
type Config struct {
	// Provider is one of Names (--weather).
	Provider string `yaml:"provider"`
	// URL replaces the provider's base URL, the part before its path
	// (--weather-url).
	URL string `yaml:"url"`
	// KeyFile holds the API key of pirate-weather and openweathermap
	// (--weather-key-file). Without it the key comes from
	// $CREDENTIALS_DIRECTORY/weather-key, then $GLOWCAST_WEATHER_KEY.
	KeyFile string `yaml:"key_file"`
	// Contact is the e-mail or URL in MET Norway's User-Agent
	// (--weather-contact).
	Contact string `yaml:"contact"`
	// Grid is the cache cell size in degrees (--grid): devices in one cell
	// share one request.
	Grid float64 `yaml:"grid"`
	// Hours is how many hours to ask Open-Meteo for; at least 24.
	Hours int `yaml:"hours"`
	// Timeout bounds one HTTP request.
	Timeout time.Duration `yaml:"timeout"`
	// StaleIfError is how long a cached forecast may still be served while
	// the provider fails.
	StaleIfError time.Duration `yaml:"stale_if_error"`
	// Concurrency is the most requests in flight to providers at once.
	Concurrency int `yaml:"concurrency"`
	// Jitter is the longest random delay before a request, spreading a
	// fleet's requests after a restart.
	Jitter time.Duration `yaml:"jitter"`
	// Attempts is how often one forecast is tried (1 = no retry).
	Attempts int `yaml:"attempts"`
	// DailyQuota is the most requests per UTC day per provider; 0 means the
	// provider's free-tier default (DefaultQuota), negative means no limit.
	DailyQuota int `yaml:"daily_quota"`
}

// DefaultConfig is the configuration without flags or file.
func DefaultConfig() Config {
	return Config{
		Provider:     NameOpenMeteo,
		Grid:         0.01,
		Hours:        48,
		Timeout:      defaultTimeout,
		StaleIfError: 3 * time.Hour,
		Concurrency:  4,
		Jitter:       2 * time.Second,
		Attempts:     3,
	}
}

// DefaultQuota is each provider's free-tier daily budget, used when
// daily_quota is 0. MET Norway counts no daily budget; 0 here means none.
func DefaultQuota(provider string) int {
	switch provider {
	case NameOpenMeteo:
		return 10000
	case NameOpenWeatherMap:
		return 1000
	case NamePirateWeather:
		// 10,000 a month on the free plan.
		return 330
	}
	return 0
}

// Quota is the effective daily budget of c's provider; 0 means unlimited.
func (c Config) Quota() int {
	switch {
	case c.DailyQuota < 0:
		return 0
	case c.DailyQuota > 0:
		return c.DailyQuota
	}
	return DefaultQuota(c.Provider)
}

// Override returns c with every field that o sets replacing c's: a device's
// weather block over the agent's.
func (c Config) Override(o Config) Config {
	if o.Provider != "" && o.Provider != c.Provider {
		c.Provider = o.Provider
		// A different provider does not inherit another's URL or key.
		c.URL, c.KeyFile = "", ""
	}
	override(&c.URL, o.URL)
	override(&c.KeyFile, o.KeyFile)
	override(&c.Contact, o.Contact)
	override(&c.Grid, o.Grid)
	override(&c.Hours, o.Hours)
	override(&c.Timeout, o.Timeout)
	override(&c.StaleIfError, o.StaleIfError)
	override(&c.Concurrency, o.Concurrency)
	override(&c.Jitter, o.Jitter)
	override(&c.Attempts, o.Attempts)
	override(&c.DailyQuota, o.DailyQuota)
	return c
}

// override sets *dst to v unless v is the zero value (the key was not
// set for the device).
func override[T comparable](dst *T, v T) {
	var zero T
	if v != zero {
		*dst = v
	}
}

// Validate checks c without reading the key; each error names the field
// and its flag.
func (c Config) Validate() error {
	if !slices.Contains(Names, c.Provider) && c.Provider != NameSample {
		return fmt.Errorf("weather: weather.provider (--weather): unknown provider %q: use %s (or sample for the bundled demo data)", c.Provider, strings.Join(Names, ", "))
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("weather: weather.url (--weather-url) %q is not an http(s) URL like https://api.example.org", c.URL)
		}
		if u.RawQuery != "" {
			return fmt.Errorf("weather: weather.url (--weather-url) %q must be the base URL without a query", c.URL)
		}
	}
	if c.Provider == NameMetNorway && strings.TrimSpace(c.Contact) == "" {
		return errors.New("weather: weather.contact (--weather-contact) is required for met-norway: MET Norway refuses clients without a contact (e-mail or URL) in the User-Agent")
	}
	if strings.ContainsAny(c.Contact, "\r\n") {
		return errors.New("weather: weather.contact (--weather-contact) must be one line")
	}
	if math.IsNaN(c.Grid) || c.Grid < 0.0001 || c.Grid > 1 {
		return fmt.Errorf("weather: weather.grid (--grid) %v out of range 0.0001…1 degrees", c.Grid)
	}
	if c.Hours != 0 && (c.Hours < 24 || c.Hours > 16*24) {
		return fmt.Errorf("weather: weather.hours %d out of range 24…384", c.Hours)
	}
	if c.Timeout <= 0 || c.Timeout > 5*time.Minute {
		return fmt.Errorf("weather: weather.timeout %v out of range (0, 5m]", c.Timeout)
	}
	if c.StaleIfError < 0 {
		return fmt.Errorf("weather: weather.stale_if_error %v is negative", c.StaleIfError)
	}
	if c.Concurrency < 1 || c.Concurrency > 256 {
		return fmt.Errorf("weather: weather.concurrency %d out of range 1…256", c.Concurrency)
	}
	if c.Jitter < 0 || c.Jitter > 10*time.Minute {
		return fmt.Errorf("weather: weather.jitter %v out of range 0…10m", c.Jitter)
	}
	if c.Attempts < 1 || c.Attempts > 10 {
		return fmt.Errorf("weather: weather.attempts %d out of range 1…10", c.Attempts)
	}
	return nil
}

// NeedsKey reports whether c's provider requires an API key.
func (c Config) NeedsKey() bool {
	return c.Provider == NamePirateWeather || c.Provider == NameOpenWeatherMap
}

// Secret is an API key. Its String and LogValue never show it, so it can be
// passed to fmt or slog without leaking.
type Secret struct{ v string }

// NewSecret wraps a key.
func NewSecret(v string) Secret { return Secret{v: v} }

// Reveal returns the key, for the one place that puts it on the wire.
func (s Secret) Reveal() string { return s.v }

// String implements fmt.Stringer without the key.
func (s Secret) String() string {
	if s.v == "" {
		return "(none)"
	}
	return "REDACTED"
}

// GoString keeps %#v from printing the key.
func (s Secret) GoString() string { return s.String() }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// LoadKey finds the API key: weather.key_file, else
// $CREDENTIALS_DIRECTORY/weather-key, else $GLOWCAST_WEATHER_KEY. getenv nil
// means os.Getenv. An empty Secret with a nil error means none was given.
func (c Config) LoadKey(getenv func(string) string) (Secret, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if c.KeyFile != "" {
		return readKey(c.KeyFile, "weather.key_file (--weather-key-file)")
	}
	if dir := getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		p := filepath.Join(dir, CredentialName)
		// The unit's SetCredential= fallback is blank when
		// /etc/glowcast/weather-key is absent: that means no key.
		if st, err := os.Stat(p); err == nil && st.Size() > 0 {
			if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == "" {
				return NewSecret(strings.TrimSpace(getenv(KeyEnv))), nil
			}
			return readKey(p, "systemd credential "+CredentialName)
		}
	}
	return NewSecret(strings.TrimSpace(getenv(KeyEnv))), nil
}

func readKey(path, field string) (Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Secret{}, fmt.Errorf("weather: %s: %w", field, err)
	}
	k := strings.TrimSpace(string(b))
	if k == "" {
		return Secret{}, fmt.Errorf("weather: %s: %s is empty", field, path)
	}
	if strings.ContainsAny(k, " \t\r\n/?#") {
		return Secret{}, fmt.Errorf("weather: %s: %s holds more than one key-like word; put only the key in it", field, path)
	}
	return NewSecret(k), nil
}

// Options are what New needs besides Config.
type Options struct {
	// Log receives provider warnings; nil means slog.Default().
	Log *slog.Logger
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// New builds the provider c names. Its errors are configuration errors:
// the agent must not start with one.
func New(c Config, o Options) (Provider, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	h := HTTP{BaseURL: c.URL, Client: &http.Client{Timeout: c.Timeout}, Now: o.Now}
	var key Secret
	if c.NeedsKey() {
		var err error
		if key, err = c.LoadKey(o.Getenv); err != nil {
			return nil, err
		}
		if key.Reveal() == "" {
			return nil, fmt.Errorf("weather: %s needs an API key: set weather.key_file (--weather-key-file), the systemd credential %s or $%s", c.Provider, CredentialName, KeyEnv)
		}
	}
	switch c.Provider {
	case NameSample:
		return Sample{Now: o.Now}, nil
	case NameOpenMeteo:
		return &OpenMeteo{Hours: c.Hours, HTTP: h}, nil
	case NameMetNorway:
		return &MetNorway{Contact: strings.TrimSpace(c.Contact), HTTP: h, Log: o.Log}, nil
	case NamePirateWeather:
		return &PirateWeather{Key: key, HTTP: h}, nil
	case NameOpenWeatherMap:
		return &OpenWeatherMap{Key: key, HTTP: h}, nil
	}
	return nil, fmt.Errorf("weather: unknown provider %q: use %s", c.Provider, strings.Join(Names, ", "))
}
