package weather

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// OpenWeatherMapURL is OpenWeatherMap's public base URL; --weather-url
// replaces it.
const OpenWeatherMapURL = "https://api.openweathermap.org"

// OpenWeatherMap is the One Call 3.0 client. Its BaseURL is the part
// before /data/3.0/onecall; empty means OpenWeatherMapURL.
type OpenWeatherMap struct {
	// Key is the appid; it travels in the query and never in logs.
	Key Secret
	HTTP
}

// Name implements Provider.
func (o *OpenWeatherMap) Name() string { return "openweathermap" }

// owmResponse is the part of a One Call 3.0 answer we read.
type owmResponse struct {
	Lat            float64 `json:"lat"`
	Lon            float64 `json:"lon"`
	Timezone       string  `json:"timezone"`
	TimezoneOffset int     `json:"timezone_offset"`
	Hourly         []struct {
		Dt   *int64   `json:"dt"`
		Temp *float64 `json:"temp"`
	} `json:"hourly"`
	// Errors: {"cod": 401, "message": "..."}; cod is a number or a string.
	Cod     json.RawMessage `json:"cod"`
	Message string          `json:"message"`
}

// Forecast implements Provider.
func (o *OpenWeatherMap) Forecast(ctx context.Context, lat, lon float64) (*Forecast, error) {
	key, err := needKey("openweathermap", o.Key)
	if err != nil {
		return nil, err
	}
	q := url.Values{
		"lat": {coord(lat)}, "lon": {coord(lon)}, "units": {"metric"},
		"exclude": {"current,minutely,daily,alerts"}, "appid": {key},
	}
	return request{
		provider: "openweathermap", url: o.root(OpenWeatherMapURL) + "/data/3.0/onecall?" + q.Encode(), secret: key,
		HTTP: o.HTTP, parse: ParseOpenWeatherMap,
		failed: func(a *answer, now time.Time) *StatusError {
			var e owmResponse
			_ = json.Unmarshal(a.Body, &e)
			se := statusError("openweathermap", a, redact(e.Message, key))
			// OWM blocks an account that exceeds its subscription's calls
			// ("account is temporary blocked"); the daily count renews at
			// UTC midnight.
			if a.Status == http.StatusTooManyRequests && strings.Contains(strings.ToLower(e.Message), "blocked") {
				se.Quota, se.Reset = true, nextUTCMidnight(now)
			}
			return se
		},
	}.forecast(ctx)
}

// ParseOpenWeatherMap parses a One Call 3.0 answer requested with
// units=metric. The answer does not name its units, so none are converted.
func ParseOpenWeatherMap(body []byte) (*Forecast, error) {
	var r owmResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("openweathermap: malformed answer: %w", err)
	}
	if len(r.Cod) > 0 && r.Message != "" {
		return nil, fmt.Errorf("openweathermap: error %s: %s", strings.Trim(string(r.Cod), `"`), r.Message)
	}
	if len(r.Hourly) == 0 {
		return nil, errors.New("openweathermap: answer has no hourly block")
	}
	pts := make([]point, 0, len(r.Hourly))
	for i, h := range r.Hourly {
		if h.Dt == nil {
			return nil, fmt.Errorf("openweathermap: hourly[%d] has no dt", i)
		}
		p := point{t: *h.Dt}
		if h.Temp != nil {
			p.v, p.set = *h.Temp, true
		}
		pts = append(pts, p)
	}
	return buildHourly("openweathermap", pts)
}
