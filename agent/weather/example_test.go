package weather_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/glowcast/glowcast/agent/weather"
)

// The agent's wiring: a Config from flags and YAML, the provider it names,
// one Fetcher shared by all devices, and the five slots per device.
func Example() {
	body, _ := os.ReadFile("testdata/openmeteo_berlin.json")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer srv.Close()

	cfg := weather.DefaultConfig()
	cfg.URL = srv.URL // --weather-url
	p, err := weather.New(cfg, weather.Options{})
	if err != nil {
		fmt.Println(err) // a configuration error: do not start
		return
	}
	now := time.Date(2025, 11, 25, 12, 59, 59, 0, time.UTC)
	opts := cfg.FetcherOptions(30 * time.Minute)
	opts.Jitter = 0
	opts.Now = func() time.Time { return now }
	f, err := weather.NewFetcher(opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	fc, err := f.Get(context.Background(), p, 52.5186, 13.4221)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(fc.Provider, fc.Select(now, []int{0, 3, 6, 9, 12}))
	// Output: open-meteo [7 7.2 5.5 2.7 0.4]
}

func ExampleConfig_Validate() {
	cfg := weather.DefaultConfig()
	cfg.Provider = "met-norway"
	fmt.Println(cfg.Validate())
	// Output: weather: weather.contact (--weather-contact) is required for met-norway: MET Norway refuses clients without a contact (e-mail or URL) in the User-Agent
}
