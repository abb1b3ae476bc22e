package weather

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MetNorwayURL is MET Norway's public base URL; --weather-url replaces it.
const MetNorwayURL = "https://api.met.no"

// metNorwayPath is the Locationforecast 2.0 compact product.
const metNorwayPath = "/weatherapi/locationforecast/2.0/compact"

// MetNorway is the Locationforecast 2.0 client. MET's terms, which it
// follows: an identifying User-Agent with a contact, at most 4 decimals in
// coordinates, no request before the last answer's Expires, and
// If-Modified-Since afterwards. It remembers the last answer per place
// itself so those rules hold whatever cache sits in front of it. Its
// BaseURL is the part before /weatherapi/...; empty means MetNorwayURL.
type MetNorway struct {
	// Contact is an e-mail address or URL MET can reach the operator at
	// (--weather-contact); required.
	Contact string
	HTTP
	// Log receives the deprecation warning of a 203 answer; nil means
	// slog.Default().
	Log *slog.Logger

	mu   sync.Mutex
	memo map[string]*metMemo
}

// metMemo is the last answer for one place.
type metMemo struct {
	f            *Forecast
	lastModified string
	expires      time.Time
}

// metMemoMax bounds the remembered places; past it expired ones are dropped.
const metMemoMax = 10000

// Name implements Provider.
func (m *MetNorway) Name() string { return "met-norway" }

// userAgent is the identifying header MET requires.
func (m *MetNorway) userAgent() string {
	return UserAgent + " " + m.Contact
}

// ErrNotCovered is returned when MET Norway answers 422: the place lies
// outside the product's area.
var ErrNotCovered = errors.New("location not covered by this provider")

// truncate4 cuts a coordinate to 4 decimals (about 11 m) as MET asks; more
// decimals only defeat its caches.
func truncate4(v float64) string {
	return strconv.FormatFloat(math.Trunc(v*1e4)/1e4, 'f', -1, 64)
}

// Forecast implements Provider.
func (m *MetNorway) Forecast(ctx context.Context, lat, lon float64) (*Forecast, error) {
	if strings.TrimSpace(m.Contact) == "" {
		return nil, errors.New("met-norway: weather.contact (--weather-contact) is required")
	}
	now := clockOr(m.Now)
	la, lo := truncate4(lat), truncate4(lon)
	key := la + "," + lo

	m.mu.Lock()
	memo := m.memo[key]
	m.mu.Unlock()
	if memo != nil && now().Before(memo.expires) {
		return memo.f.clone(), nil
	}

	hdr := http.Header{}
	hdr.Set("User-Agent", m.userAgent())
	if memo != nil && memo.lastModified != "" {
		// MET asks for the exact Last-Modified string back.
		hdr.Set("If-Modified-Since", memo.lastModified)
	}
	a, err := get(ctx, m.Client, "met-norway", m.root(MetNorwayURL)+metNorwayPath+"?lat="+la+"&lon="+lo, "", hdr)
	if err != nil {
		return nil, err
	}
	t := now()
	expires := parseHTTPTime(a.Header.Get("Expires"))
	var f *Forecast
	switch a.Status {
	case http.StatusOK, http.StatusNonAuthoritativeInfo:
		if a.Status == http.StatusNonAuthoritativeInfo {
			m.log().Warn("met-norway answered 203: this product version is deprecated; check MET's changelog", "provider", "met-norway", "status", a.Status)
		}
		f, err = ParseMetNorway(a.Body)
		if err != nil {
			return nil, err
		}
		memo = &metMemo{f: f, lastModified: a.Header.Get("Last-Modified")}
	case http.StatusNotModified:
		if memo == nil {
			return nil, statusError("met-norway", a, "304 Not Modified without a cached answer")
		}
		memo = &metMemo{f: memo.f, lastModified: memo.lastModified}
		if lm := a.Header.Get("Last-Modified"); lm != "" {
			memo.lastModified = lm
		}
	case http.StatusUnprocessableEntity:
		return nil, fmt.Errorf("met-norway: %w: %s,%s: %w", ErrNotCovered, la, lo, statusError("met-norway", a, metReason(a.Body)))
	default:
		return nil, statusError("met-norway", a, metReason(a.Body))
	}
	out := memo.f.clone()
	out.FetchedAt = t
	out.Expires = expires
	memo.f = out.clone()
	memo.expires = expires
	m.remember(key, memo, t)
	return out, nil
}

func (m *MetNorway) remember(key string, memo *metMemo, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.memo == nil {
		m.memo = map[string]*metMemo{}
	}
	if len(m.memo) >= metMemoMax {
		for k, v := range m.memo {
			if now.Sub(v.expires) > 24*time.Hour {
				delete(m.memo, k)
			}
		}
	}
	if len(m.memo) < metMemoMax {
		m.memo[key] = memo
	}
}

func (m *MetNorway) log() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.Default()
}

// metReason extracts a short reason from an error body, which MET sends as
// plain text or HTML.
func metReason(body []byte) string {
	s := strings.TrimSpace(string(body))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if strings.HasPrefix(s, "<") {
		return ""
	}
	return s
}

func parseHTTPTime(v string) time.Time {
	if v == "" {
		return time.Time{}
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// metNorwayResponse is the part of a compact answer we read.
type metNorwayResponse struct {
	Type       string `json:"type"`
	Properties struct {
		Meta struct {
			UpdatedAt string `json:"updated_at"`
			Units     struct {
				AirTemperature string `json:"air_temperature"`
			} `json:"units"`
		} `json:"meta"`
		Timeseries []struct {
			Time string `json:"time"`
			Data struct {
				Instant struct {
					Details struct {
						AirTemperature *float64 `json:"air_temperature"`
					} `json:"details"`
				} `json:"instant"`
			} `json:"data"`
		} `json:"timeseries"`
	} `json:"properties"`
}

// ParseMetNorway parses a Locationforecast 2.0 compact answer (GeoJSON).
// Its series is hourly for about two days, then 6-hourly: the hours in
// between are missing, not interpolated.
func ParseMetNorway(body []byte) (*Forecast, error) {
	var r metNorwayResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("met-norway: malformed answer: %w", err)
	}
	if u := r.Properties.Meta.Units.AirTemperature; u != "" && u != "celsius" {
		return nil, fmt.Errorf("met-norway: air_temperature in %q, want celsius", u)
	}
	if len(r.Properties.Timeseries) == 0 {
		return nil, errors.New("met-norway: answer has no properties.timeseries")
	}
	pts := make([]point, 0, len(r.Properties.Timeseries))
	for _, s := range r.Properties.Timeseries {
		t, err := time.Parse(time.RFC3339, s.Time)
		if err != nil {
			return nil, fmt.Errorf("met-norway: timeseries time %q: %w", s.Time, err)
		}
		p := point{t: t.Unix()}
		if v := s.Data.Instant.Details.AirTemperature; v != nil {
			p.v, p.set = *v, true
		}
		pts = append(pts, p)
	}
	// MET's series reaches 9-10 days; keep what fits the bound, from the start.
	f, err := buildHourly("met-norway", clip(pts))
	if err != nil {
		return nil, err
	}
	return f, nil
}

// clip drops points more than maxHours-1 hours after the earliest one.
func clip(pts []point) []point {
	if len(pts) == 0 {
		return pts
	}
	first := pts[0].t
	for _, p := range pts {
		first = min(first, p.t)
	}
	out := pts[:0:0]
	for _, p := range pts {
		if p.t-first < int64(maxHours)*3600 {
			out = append(out, p)
		}
	}
	return out
}

// clone copies f so cached series are never shared with callers.
func (f *Forecast) clone() *Forecast {
	c := *f
	c.Temps = append([]float64(nil), f.Temps...)
	return &c
}
