package weather

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParsers(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name    string
		parse   func([]byte) (*Forecast, error)
		file    string
		start   time.Time
		n       int
		want    map[int]float64 // index -> value (NaN = missing)
		wantErr string
	}{
		{"open-meteo", ParseOpenMeteo, "openmeteo_berlin.json", t0, 49, map[int]float64{0: 6.5, 3: 7.4, 48: 4.6}, ""},
		{"open-meteo nulls stay in their hour", ParseOpenMeteo, "openmeteo_nulls.json", t0, 49, map[int]float64{2: 7.3, 3: nan, 4: 7.2, 7: nan}, ""},
		{"open-meteo short", ParseOpenMeteo, "openmeteo_short.json", t0, 6, map[int]float64{5: 7.0}, ""},
		{"open-meteo fahrenheit converted", ParseOpenMeteo, "openmeteo_fahrenheit.json", t0, 24, map[int]float64{0: 0, 1: 5, 2: 10}, ""},
		{"open-meteo local times refused", ParseOpenMeteo, "openmeteo_kolkata_local.json", time.Time{}, 0, nil, "not on a UTC hour"},
		{"open-meteo error body", ParseOpenMeteo, "openmeteo_error.json", time.Time{}, 0, nil, "Latitude must be in range"},
		{"open-meteo malformed", ParseOpenMeteo, "malformed.json", time.Time{}, 0, nil, "malformed answer"},
		{"met-norway", ParseMetNorway, "metno_oslo.json", t0, 211, map[int]float64{0: -1.1, 59: 3.6, 60: 3.1, 61: nan, 65: nan, 66: -1.1, 67: nan}, ""},
		{"met-norway missing temperature and hour", ParseMetNorway, "metno_missing.json", t0, 30, map[int]float64{3: nan, 6: nan, 5: 2.5}, ""},
		{"met-norway malformed", ParseMetNorway, "malformed.json", time.Time{}, 0, nil, "malformed answer"},
		{"pirate-weather", ParsePirateWeather, "pirate_berlin.json", t0, 48, map[int]float64{0: 2.2, 3: 5.0, 9: 9.0}, ""},
		{"pirate-weather nulls", ParsePirateWeather, "pirate_nulls.json", t0, 48, map[int]float64{4: nan, 5: nan, 6: 7.8}, ""},
		{"pirate-weather us units converted", ParsePirateWeather, "pirate_us.json", t0, 48, map[int]float64{0: 0, 1: 10, 2: 20}, ""},
		{"pirate-weather adelaide over DST", ParsePirateWeather, "pirate_adelaide_dst.json", time.Date(2025, 10, 4, 12, 0, 0, 0, time.UTC), 48, map[int]float64{0: 10.5, 47: 9.7}, ""},
		{"pirate-weather error body", ParsePirateWeather, "pirate_403.json", time.Time{}, 0, nil, "no hourly block"},
		{"pirate-weather malformed", ParsePirateWeather, "malformed.json", time.Time{}, 0, nil, "malformed answer"},
		{"openweathermap", ParseOpenWeatherMap, "owm_berlin.json", t0, 48, map[int]float64{0: 2.2, 3: 5.0}, ""},
		{"openweathermap kolkata", ParseOpenWeatherMap, "owm_kolkata.json", t0, 48, map[int]float64{3: 22.0}, ""},
		{"openweathermap error body", ParseOpenWeatherMap, "owm_401.json", time.Time{}, 0, nil, "Invalid API key"},
		{"openweathermap string cod", ParseOpenWeatherMap, "owm_400.json", time.Time{}, 0, nil, "error 400: wrong latitude"},
		{"openweathermap malformed", ParseOpenWeatherMap, "malformed.json", time.Time{}, 0, nil, "malformed answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := tt.parse(fixture(t, tt.file))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !f.Start.Equal(tt.start) {
				t.Errorf("got start %v, want %v", f.Start, tt.start)
			}
			if len(f.Temps) != tt.n {
				t.Errorf("got %d hours, want %d", len(f.Temps), tt.n)
			}
			for i, w := range tt.want {
				if got := f.Temps[i]; !same(got, w) {
					t.Errorf("Temps[%d]: got %v, want %v", i, got, w)
				}
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name, body, want string
		parse            func([]byte) (*Forecast, error)
	}{
		{"open-meteo length mismatch", `{"hourly_units":{"time":"unixtime"},"hourly":{"time":[1764068400,1764072000],"temperature_2m":[1]}}`, "2 hourly times but 1", ParseOpenMeteo},
		{"open-meteo iso times", `{"hourly_units":{"time":"iso8601"},"hourly":{"time":[],"temperature_2m":[]}}`, "want unixtime", ParseOpenMeteo},
		{"open-meteo duplicate hour", `{"hourly":{"time":[1764068400,1764068400],"temperature_2m":[1,2]}}`, "appears twice", ParseOpenMeteo},
		{"open-meteo kelvin", `{"hourly_units":{"temperature_2m":"K"},"hourly":{"time":[1764068400],"temperature_2m":[280]}}`, "want °C", ParseOpenMeteo},
		{"open-meteo absurd value", `{"hourly":{"time":[1764068400],"temperature_2m":[1e9]}}`, "not plausible", ParseOpenMeteo},
		{"open-meteo huge span", `{"hourly":{"time":[0,3600000000],"temperature_2m":[1,2]}}`, "span", ParseOpenMeteo},
		{"met-norway fahrenheit", `{"properties":{"meta":{"units":{"air_temperature":"fahrenheit"}},"timeseries":[{"time":"2025-11-25T11:00:00Z"}]}}`, "want celsius", ParseMetNorway},
		{"met-norway bad time", `{"properties":{"timeseries":[{"time":"yesterday"}]}}`, "timeseries time", ParseMetNorway},
		{"met-norway empty", `{"properties":{"timeseries":[]}}`, "no properties.timeseries", ParseMetNorway},
		{"pirate-weather unknown units", `{"hourly":{"data":[{"time":1764068400,"temperature":1}]},"flags":{"units":"kelvin"}}`, "unknown", ParsePirateWeather},
		{"pirate-weather missing time", `{"hourly":{"data":[{"temperature":1}]},"flags":{"units":"si"}}`, "no time", ParsePirateWeather},
		{"openweathermap missing dt", `{"hourly":[{"temp":1}]}`, "no dt", ParseOpenWeatherMap},
		{"openweathermap no hourly", `{"lat":1,"lon":2}`, "no hourly", ParseOpenWeatherMap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.parse([]byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
