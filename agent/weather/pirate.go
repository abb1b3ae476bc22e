package weather

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// PirateWeatherURL is Pirate Weather's public base URL; --weather-url
// replaces it.
const PirateWeatherURL = "https://api.pirateweather.net"

// PirateWeather is the Dark Sky-compatible client the original design used.
// Its BaseURL is the part before /forecast/KEY/LAT,LON; empty means
// PirateWeatherURL.
type PirateWeather struct {
	// Key is the API key; it travels in the URL path and never in logs.
	Key Secret
	HTTP

	mu        sync.Mutex
	remaining int64
	calls     int64
	seen      bool
}

// Name implements Provider.
func (p *PirateWeather) Name() string { return "pirate-weather" }

// RateLimit implements RateLimiter: the last Ratelimit-Remaining and
// X-Forecast-API-Calls headers seen.
func (p *PirateWeather) RateLimit() (remaining, calls int64, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.remaining, p.calls, p.seen
}

// pirateResponse is the part of a Dark Sky-style answer we read.
type pirateResponse struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
	Timezone  string  `json:"timezone"`
	Offset    float64 `json:"offset"`
	Hourly    *struct {
		Data []struct {
			Time        *int64   `json:"time"`
			Temperature *float64 `json:"temperature"`
		} `json:"data"`
	} `json:"hourly"`
	Flags struct {
		Units string `json:"units"`
	} `json:"flags"`
	// Errors come as {"message": "..."} from the gateway or
	// {"code": 400, "error": "..."} from the service.
	Message string `json:"message"`
	Error   string `json:"error"`
}

// Forecast implements Provider.
func (p *PirateWeather) Forecast(ctx context.Context, lat, lon float64) (*Forecast, error) {
	key, err := needKey("pirate-weather", p.Key)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("units", "si")
	// Only the hourly block is used; the rest is bandwidth and parse time.
	q.Set("exclude", "currently,minutely,daily,alerts")
	u := p.root(PirateWeatherURL) + "/forecast/" + url.PathEscape(key) + "/" +
		coord(lat) + "," + coord(lon) + "?" + q.Encode()
	return request{
		HTTP: p.HTTP, provider: "pirate-weather", url: u, secret: key,
		answered: func(a *answer) { p.record(a.Header) },
		parse:    ParsePirateWeather,
		failed: func(a *answer, now time.Time) *StatusError {
			var e pirateResponse
			_ = json.Unmarshal(a.Body, &e)
			se := statusError("pirate-weather", a, redact(cmp.Or(e.Message, e.Error), key))
			if a.Status == http.StatusTooManyRequests {
				// The gateway's monthly quota: Ratelimit-Remaining reaches 0
				// and Ratelimit-Reset says how many seconds until it renews.
				if rem, ok := headerInt(a.Header, "Ratelimit-Remaining"); ok && rem <= 0 {
					se.Quota = true
					if s, ok := headerInt(a.Header, "Ratelimit-Reset"); ok && s > 0 {
						se.Reset = now.Add(time.Duration(s) * time.Second)
					}
				}
			}
			return se
		},
	}.forecast(ctx)
}

func (p *PirateWeather) record(h http.Header) {
	rem, ok1 := headerInt(h, "Ratelimit-Remaining")
	calls, ok2 := headerInt(h, "X-Forecast-API-Calls")
	if !ok1 && !ok2 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = true
	if ok1 {
		p.remaining = rem
	}
	if ok2 {
		p.calls = calls
	}
}

// ParsePirateWeather parses a Pirate Weather (Dark Sky-compatible) answer.
// Temperatures are converted only when flags.units says "us" (°F); si, ca
// and uk give °C.
func ParsePirateWeather(body []byte) (*Forecast, error) {
	var r pirateResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("pirate-weather: malformed answer: %w", err)
	}
	if r.Hourly == nil {
		return nil, errors.New("pirate-weather: answer has no hourly block")
	}
	var conv func(float64) float64
	switch r.Flags.Units {
	case "si", "ca", "uk", "uk2", "":
	case "us":
		conv = fahrenheitToCelsius
	default:
		return nil, fmt.Errorf("pirate-weather: flags.units %q unknown", r.Flags.Units)
	}
	pts := make([]point, 0, len(r.Hourly.Data))
	for i, d := range r.Hourly.Data {
		if d.Time == nil {
			return nil, fmt.Errorf("pirate-weather: hourly.data[%d] has no time", i)
		}
		p := point{t: *d.Time}
		if d.Temperature != nil {
			p.v, p.set = *d.Temperature, true
			if conv != nil {
				p.v = conv(p.v)
			}
		}
		pts = append(pts, p)
	}
	return buildHourly("pirate-weather", pts)
}
