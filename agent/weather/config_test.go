package weather

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestValidate(t *testing.T) {
	ok := DefaultConfig()
	tests := []struct {
		name string
		mod  func(*Config)
		want string // "" = valid
	}{
		{"default", func(*Config) {}, ""},
		{"unknown provider", func(c *Config) { c.Provider = "x" }, `weather: weather.provider (--weather): unknown provider "x": use open-meteo, met-norway, pirate-weather, openweathermap`},
		{"met without contact", func(c *Config) { c.Provider = NameMetNorway }, "weather.contact (--weather-contact) is required for met-norway"},
		{"met with contact", func(c *Config) { c.Provider, c.Contact = NameMetNorway, "ops@example.org" }, ""},
		{"bad url", func(c *Config) { c.URL = "ftp://x" }, "weather.url (--weather-url)"},
		{"url with query", func(c *Config) { c.URL = "http://127.0.0.1:1/?a=b" }, "without a query"},
		{"grid zero", func(c *Config) { c.Grid = 0 }, "weather.grid (--grid)"},
		{"grid huge", func(c *Config) { c.Grid = 2 }, "weather.grid (--grid)"},
		{"timeout", func(c *Config) { c.Timeout = 0 }, "weather.timeout"},
		{"concurrency", func(c *Config) { c.Concurrency = 0 }, "weather.concurrency"},
		{"attempts", func(c *Config) { c.Attempts = 11 }, "weather.attempts"},
		{"stale", func(c *Config) { c.StaleIfError = -time.Second }, "weather.stale_if_error"},
		{"hours", func(c *Config) { c.Hours = 12 }, "weather.hours"},
		{"contact newline", func(c *Config) { c.Contact = "a\nb" }, "one line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	credDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(credDir, CredentialName), []byte("from-credential"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name    string
		cfg     Config
		env     map[string]string
		want    string // provider name, or error text
		wantKey string
	}{
		{"open-meteo needs nothing", Config{Provider: NameOpenMeteo}, nil, "open-meteo", ""},
		{"met-norway", Config{Provider: NameMetNorway, Contact: "ops@example.org"}, nil, "met-norway", ""},
		{"met-norway no contact", Config{Provider: NameMetNorway}, nil, "weather.contact (--weather-contact)", ""},
		{"pirate key file", Config{Provider: NamePirateWeather, KeyFile: keyFile}, nil, "pirate-weather", testKey},
		{"pirate credential", Config{Provider: NamePirateWeather}, map[string]string{"CREDENTIALS_DIRECTORY": credDir, KeyEnv: "env"}, "pirate-weather", "from-credential"},
		{"owm env", Config{Provider: NameOpenWeatherMap}, map[string]string{KeyEnv: " from-env "}, "openweathermap", "from-env"},
		{"owm no key", Config{Provider: NameOpenWeatherMap}, nil, "needs an API key: set weather.key_file (--weather-key-file)", ""},
		{"missing key file", Config{Provider: NamePirateWeather, KeyFile: filepath.Join(dir, "nope")}, nil, "weather.key_file (--weather-key-file)", ""},
		{"empty key file", Config{Provider: NamePirateWeather, KeyFile: empty}, nil, "is empty", ""},
		{"unknown", Config{Provider: "darksky"}, nil, `unknown provider "darksky"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig().Override(tt.cfg)
			p, err := New(c, Options{Getenv: env(tt.env)})
			if err != nil {
				if !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("got %v, want %q", err, tt.want)
				}
				if strings.Contains(err.Error(), testKey) {
					t.Errorf("error shows the key: %v", err)
				}
				return
			}
			if p.Name() != tt.want {
				t.Fatalf("got provider %q, want %q", p.Name(), tt.want)
			}
			var key Secret
			switch p := p.(type) {
			case *PirateWeather:
				key = p.Key
			case *OpenWeatherMap:
				key = p.Key
			}
			if key.Reveal() != tt.wantKey {
				t.Errorf("got key %q, want %q", key.Reveal(), tt.wantKey)
			}
		})
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	s := NewSecret(testKey)
	p := &PirateWeather{Key: s}
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v", s, p, p), s.LogValue().String()} {
		if strings.Contains(out, testKey) {
			t.Errorf("got %q, want the key redacted", out)
		}
	}
}

func TestConfigYAML(t *testing.T) {
	doc := `
provider: met-norway
contact: ops@example.org
url: http://127.0.0.1:8080
grid: 0.05
timeout: 5s
stale_if_error: 2h
concurrency: 8
daily_quota: 500
`
	c := DefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Timeout != 5*time.Second || c.StaleIfError != 2*time.Hour || c.Grid != 0.05 || c.Quota() != 500 || c.Attempts != 3 {
		t.Errorf("got %+v", c)
	}
}

func TestOverrideAndQuota(t *testing.T) {
	agent := DefaultConfig()
	agent.Provider, agent.URL, agent.KeyFile = NamePirateWeather, "http://127.0.0.1:1", "/k"
	dev := agent.Override(Config{Provider: NameMetNorway, Contact: "dev@example.org"})
	if dev.URL != "" || dev.KeyFile != "" || dev.Contact != "dev@example.org" || dev.Grid != agent.Grid || dev.Provider != NameMetNorway {
		t.Errorf("got %+v, want met-norway without the agent's pirate URL and key", dev)
	}
	same := agent.Override(Config{Provider: NamePirateWeather, Grid: 0.5})
	if same.URL != agent.URL || same.KeyFile != agent.KeyFile || same.Grid != 0.5 {
		t.Errorf("got %+v, want the agent's URL and key kept for the same provider", same)
	}
	tests := []struct {
		c    Config
		want int
	}{
		{Config{Provider: NameOpenMeteo}, 10000},
		{Config{Provider: NameOpenMeteo, DailyQuota: 50}, 50},
		{Config{Provider: NameOpenMeteo, DailyQuota: -1}, 0},
		{Config{Provider: NameMetNorway}, 0},
	}
	for _, tt := range tests {
		if got := tt.c.Quota(); got != tt.want {
			t.Errorf("%+v: got %d, want %d", tt.c, got, tt.want)
		}
	}
	o := Config{Provider: NameOpenMeteo, DailyQuota: 7}.FetcherOptions(30 * time.Minute)
	if o.Quota(NameOpenMeteo) != 7 || o.Quota(NameOpenWeatherMap) != 1000 {
		t.Errorf("FetcherOptions quota: got %d and %d, want 7 and 1000", o.Quota(NameOpenMeteo), o.Quota(NameOpenWeatherMap))
	}
}
