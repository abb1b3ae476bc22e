package weather

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// OpenMeteoURL is Open-Meteo's public base URL; --weather-url replaces it.
const OpenMeteoURL = "https://api.open-meteo.com"

// OpenMeteo is the default provider: no key, hourly temperature_2m.
type OpenMeteo struct {
	// BaseURL is the part before /v1/forecast.
	BaseURL string
	// Client is the HTTP client; nil means one with a 10 s timeout.
	Client *http.Client
	// Hours is how many hours to ask for (forecast_hours); at least 24 so a
	// cached answer still covers now+12h.
	Hours int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
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
	base := o.BaseURL
	if base == "" {
		base = OpenMeteoURL
	}
	hours := max(o.Hours, 24)
	q := url.Values{}
	q.Set("latitude", strconv.FormatFloat(lat, 'f', 4, 64))
	q.Set("longitude", strconv.FormatFloat(lon, 'f', 4, 64))
	q.Set("hourly", "temperature_2m")
	// Unix times are UTC by definition; without them Open-Meteo's hourly
	// array starts at local midnight of the place.
	q.Set("timeformat", "unixtime")
	q.Set("forecast_hours", strconv.Itoa(hours))
	q.Set("past_hours", "1")
	u := base + "/v1/forecast?" + q.Encode()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("open-meteo: bad --weather-url %q: %w", base, err)
	}
	req.Header.Set("User-Agent", UserAgent)
	c := o.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("open-meteo: %w: %w", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("open-meteo: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e openMeteoResponse
		if json.Unmarshal(body, &e) == nil && e.Reason != "" {
			return nil, &StatusError{Provider: "open-meteo", Code: resp.StatusCode, Reason: e.Reason, RetryAfter: resp.Header.Get("Retry-After")}
		}
		return nil, &StatusError{Provider: "open-meteo", Code: resp.StatusCode, Reason: http.StatusText(resp.StatusCode), RetryAfter: resp.Header.Get("Retry-After")}
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	f, err := ParseOpenMeteo(body)
	if err != nil {
		return nil, err
	}
	f.FetchedAt = now()
	return f, nil
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
		return nil, errors.New("open-meteo: answer has no hourly times")
	}
	if len(r.Hourly.Time) != len(r.Hourly.Temperature) {
		return nil, fmt.Errorf("open-meteo: %d hourly times but %d temperatures", len(r.Hourly.Time), len(r.Hourly.Temperature))
	}
	fahrenheit := r.HourlyUnits.Temperature == "°F"
	start := time.Unix(r.Hourly.Time[0], 0).UTC()
	if start.Truncate(time.Hour) != start {
		return nil, fmt.Errorf("open-meteo: first hourly time %s is not on the hour", start)
	}
	f := &Forecast{Start: start, Provider: "open-meteo"}
	// Place every value by its own timestamp so a gap in the series can never
	// shift a later value into an earlier slot.
	last := r.Hourly.Time[len(r.Hourly.Time)-1]
	n := int((last-r.Hourly.Time[0])/3600) + 1
	if n <= 0 || n > 24*32 {
		return nil, fmt.Errorf("open-meteo: hourly times span %d hours", n)
	}
	f.Temps = make([]float64, n)
	for i := range f.Temps {
		f.Temps[i] = math.NaN()
	}
	for i, ts := range r.Hourly.Time {
		d := ts - r.Hourly.Time[0]
		if d < 0 || d%3600 != 0 {
			return nil, fmt.Errorf("open-meteo: hourly time %d out of order or off the hour", ts)
		}
		v := r.Hourly.Temperature[i]
		if v == nil {
			continue
		}
		t := *v
		if fahrenheit {
			t = (t - 32) * 5 / 9
		}
		f.Temps[d/3600] = t
	}
	return f, nil
}

// StatusError is a provider's answer with a non-success HTTP status.
type StatusError struct {
	Provider   string
	Code       int
	Reason     string
	RetryAfter string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: HTTP %d: %s", e.Provider, e.Code, e.Reason)
}

// UserAgent identifies glowcast to weather services.
var UserAgent = "glowcast/dev"
