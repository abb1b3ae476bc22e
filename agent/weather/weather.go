// Package weather owns the agent's view of forecast providers: one small
// net/http client per provider behind the Provider interface (Open-Meteo,
// MET Norway, Pirate Weather, OpenWeatherMap), their configuration
// (Config, New), the selection of the hourly slots glowcast shows, and the
// Fetcher that lets a fleet share requests: grid cells, singleflight, TTL,
// stale-if-error, a concurrency limit, jitter, retries and daily budgets.
//
// Every series is normalised to UTC hours and every value is placed by its
// own timestamp, so a gap stays a gap (NaN) and never shifts a neighbour
// into its slot. Units are converted only where the answer names them.
//
// It knows nothing of MQTT, devices or cycles; the agent asks it for a
// forecast at a place and gets an hourly series back.
//
// # Keys
//
// Pirate Weather and OpenWeatherMap need an API key, read from
// weather.key_file (--weather-key-file), else the systemd credential
// "weather-key" ($CREDENTIALS_DIRECTORY/weather-key), else the environment
// variable GLOWCAST_WEATHER_KEY. Keys are held in a Secret, which never
// prints, and are removed from every error text.
package weather

import (
	"context"
	"errors"
	"math"
	"time"
)

// Forecast is an hourly temperature series as a provider returned it,
// normalised to UTC hours.
type Forecast struct {
	// Start is the UTC hour of Temps[0]; it is always on an hour boundary.
	Start time.Time
	// Temps holds one value per hour from Start, in °C; NaN marks a value
	// the provider did not give.
	Temps []float64
	// FetchedAt is when the provider answered.
	FetchedAt time.Time
	// Expires is when the provider says the data may be asked for again;
	// zero when it says nothing.
	Expires time.Time
	// Provider names the source, e.g. "open-meteo" or "sample".
	Provider string
}

// At returns the temperature of the hourly slot that starts at t, matched by
// timestamp (never by index), or NaN when the series has no such slot.
func (f *Forecast) At(t time.Time) float64 {
	if f == nil || t.Before(f.Start) {
		return math.NaN()
	}
	d := t.Sub(f.Start)
	if d%time.Hour != 0 {
		return math.NaN()
	}
	i := int(d / time.Hour)
	if i >= len(f.Temps) {
		return math.NaN()
	}
	return f.Temps[i]
}

// Select returns the temperatures at floor(now, hour) + offsets[i] hours.
func (f *Forecast) Select(now time.Time, offsetsH []int) []float64 {
	base := now.UTC().Truncate(time.Hour)
	out := make([]float64, len(offsetsH))
	for i, h := range offsetsH {
		out[i] = f.At(base.Add(time.Duration(h) * time.Hour))
	}
	return out
}

// Hourly returns n consecutive hourly values starting at floor(now, hour),
// NaN where the series has none.
func (f *Forecast) Hourly(now time.Time, n int) (start time.Time, temps []float64) {
	start = now.UTC().Truncate(time.Hour)
	temps = make([]float64, n)
	for i := range temps {
		temps[i] = f.At(start.Add(time.Duration(i) * time.Hour))
	}
	return start, temps
}

// Provider fetches an hourly forecast for a place.
type Provider interface {
	// Name is the provider's fixed name, as given to --weather.
	Name() string
	// Forecast fetches the hourly temperatures at lat, lon.
	Forecast(ctx context.Context, lat, lon float64) (*Forecast, error)
}

// ErrUnreachable wraps errors where the provider could not be reached at all
// (DNS, connection refused, timeout), as opposed to an answer we rejected.
var ErrUnreachable = errors.New("weather service unreachable")

// clockOr is now, or time.Now when a provider was given no clock.
func clockOr(now func() time.Time) func() time.Time {
	if now != nil {
		return now
	}
	return time.Now
}

// needKey reveals a keyed provider's API key, or says how to set one.
func needKey(provider string, k Secret) (string, error) {
	key := k.Reveal()
	if key == "" {
		return "", errors.New(provider + ": no API key: set weather.key_file (--weather-key-file) or " + KeyEnv)
	}
	return key, nil
}
