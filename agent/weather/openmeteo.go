package weather

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// OpenMeteoURL is Open-Meteo's public base URL; --weather-url replaces it.
const OpenMeteoURL = "https://api.open-meteo.com"

// OpenMeteo is the default provider: no key, hourly temperature_2m. Its
// BaseURL is the part before /v1/forecast; empty means OpenMeteoURL.
type OpenMeteo struct {
	HTTP
	// Hours is how many hours to ask for (forecast_hours); at least 24 so a
	// cached answer still covers now+12h.
	Hours int
}

// Name implements Provider.
func (o *OpenMeteo) Name() string { return "open-meteo" }

// openMeteoResponse is the part of Open-Meteo's /v1/forecast answer we read.
type openMeteoResponse struct {
	Latitude         float64 `json:"latitude"`
	Longitude        float64 `json:"longitude"`
	UTCOffsetSeconds int     `json:"utc_offset_seconds"`
	HourlyUnits      struct {
		Time        string `json:"time"`
		Temperature string `json:"temperature_2m"`
	} `json:"hourly_units"`
	Hourly struct {
		Time        []int64    `json:"time"`
		Temperature []*float64 `json:"temperature_2m"`
	} `json:"hourly"`
	Error  bool   `json:"error"`
	Reason string `json:"reason"`
}

// Forecast implements Provider.
func (o *OpenMeteo) Forecast(ctx context.Context, lat, lon float64) (*Forecast, error) {
	hours := max(o.Hours, 24)
	q := url.Values{}
	q.Set("latitude", coord(lat))
	q.Set("longitude", coord(lon))
	q.Set("hourly", "temperature_2m")
	// Unix times are UTC by definition; without them Open-Meteo's hourly
	// array starts at local midnight of the place.
	q.Set("timeformat", "unixtime")
	q.Set("forecast_hours", strconv.Itoa(hours))
	q.Set("past_hours", "1")
	return request{
		HTTP: o.HTTP, provider: "open-meteo", url: o.root(OpenMeteoURL) + "/v1/forecast?" + q.Encode(),
		parse: ParseOpenMeteo,
		failed: func(a *answer, now time.Time) *StatusError {
			var e openMeteoResponse
			_ = json.Unmarshal(a.Body, &e)
			se := statusError("open-meteo", a, e.Reason)
			openMeteoQuota(se, now)
			return se
		},
	}.forecast(ctx)
}

// openMeteoQuota reads Open-Meteo's 429 reasons: its free tier counts
// minutely, hourly, daily and monthly budgets and says which one ran out.
func openMeteoQuota(e *StatusError, now time.Time) {
	if e.Code != http.StatusTooManyRequests {
		return
	}
	r := strings.ToLower(e.Reason)
	switch {
	case strings.Contains(r, "minutely"):
		if e.RetryAfter == "" {
			e.RetryAfter = "60"
		}
	case strings.Contains(r, "hourly"):
		e.Quota, e.Reset = true, now.UTC().Truncate(time.Hour).Add(time.Hour)
	case strings.Contains(r, "daily"):
		e.Quota, e.Reset = true, nextUTCMidnight(now)
	case strings.Contains(r, "monthly"):
		y, m, _ := now.UTC().Date()
		e.Quota, e.Reset = true, time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
	}
}

// ParseOpenMeteo parses an Open-Meteo /v1/forecast answer requested with
// timeformat=unixtime.
func ParseOpenMeteo(body []byte) (*Forecast, error) {
	var r openMeteoResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("open-meteo: malformed answer: %w", err)
	}
	if r.Error {
		return nil, fmt.Errorf("open-meteo: %s", r.Reason)
	}
	if r.HourlyUnits.Time != "" && r.HourlyUnits.Time != "unixtime" {
		return nil, fmt.Errorf("open-meteo: hourly times in %q, want unixtime", r.HourlyUnits.Time)
	}
	if len(r.Hourly.Time) == 0 {
		return nil, fmt.Errorf("open-meteo: answer has no hourly times")
	}
	if len(r.Hourly.Time) != len(r.Hourly.Temperature) {
		return nil, fmt.Errorf("open-meteo: %d hourly times but %d temperatures", len(r.Hourly.Time), len(r.Hourly.Temperature))
	}
	if r.Hourly.Time[0]%3600 != 0 {
		return nil, fmt.Errorf("open-meteo: first hourly time %s is not on a UTC hour; request without a timezone", time.Unix(r.Hourly.Time[0], 0).UTC().Format(time.RFC3339))
	}
	var conv func(float64) float64
	switch r.HourlyUnits.Temperature {
	case "", "°C":
	case "°F":
		conv = fahrenheitToCelsius
	default:
		return nil, fmt.Errorf("open-meteo: temperature unit %q, want °C", r.HourlyUnits.Temperature)
	}
	pts := make([]point, len(r.Hourly.Time))
	for i, ts := range r.Hourly.Time {
		pts[i].t = ts
		if v := r.Hourly.Temperature[i]; v != nil {
			pts[i].v, pts[i].set = *v, true
			if conv != nil {
				pts[i].v = conv(*v)
			}
		}
	}
	return buildHourly("open-meteo", pts)
}

func fahrenheitToCelsius(f float64) float64 { return (f - 32) * 5 / 9 }
