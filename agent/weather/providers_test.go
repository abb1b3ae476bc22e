package weather

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is an httptest handler that serves canned answers in turn and
// records the requests.
type recorder struct {
	mu      sync.Mutex
	reqs    []*http.Request
	answers []canned
}

type canned struct {
	status int
	header map[string]string
	body   []byte
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Clone(context.Background()))
	a := r.answers[min(len(r.reqs)-1, len(r.answers)-1)]
	r.mu.Unlock()
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(a.status)
	w.Write(a.body)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

func (r *recorder) last() *http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqs[len(r.reqs)-1]
}

func serve(t *testing.T, answers ...canned) (*recorder, string) {
	t.Helper()
	r := &recorder{answers: answers}
	s := httptest.NewServer(r)
	t.Cleanup(s.Close)
	return r, s.URL
}

func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

func TestOpenMeteoRequest(t *testing.T) {
	rec, u := serve(t, canned{status: 200, body: fixture(t, "openmeteo_berlin.json")})
	now := t0.Add(17 * time.Minute)
	o := &OpenMeteo{Hours: 12, HTTP: HTTP{BaseURL: u, Now: fixed(now)}}
	f, err := o.Forecast(context.Background(), 52.52, 13.419998)
	if err != nil {
		t.Fatal(err)
	}
	r := rec.last()
	q := r.URL.Query()
	checks := []struct{ name, got, want string }{
		{"path", r.URL.Path, "/v1/forecast"},
		{"timeformat", q.Get("timeformat"), "unixtime"},
		{"timezone", q.Get("timezone"), ""},
		{"forecast_hours", q.Get("forecast_hours"), "24"},
		{"hourly", q.Get("hourly"), "temperature_2m"},
		{"latitude", q.Get("latitude"), "52.5200"},
		{"longitude", q.Get("longitude"), "13.4200"},
		{"user agent", r.Header.Get("User-Agent"), UserAgent},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
	if !f.FetchedAt.Equal(now) || f.Provider != "open-meteo" {
		t.Errorf("got FetchedAt %v provider %q, want %v open-meteo", f.FetchedAt, f.Provider, now)
	}
}

func TestStatusAnswers(t *testing.T) {
	now := time.Date(2025, 11, 25, 11, 20, 0, 0, time.UTC)
	midnight := time.Date(2025, 11, 26, 0, 0, 0, 0, time.UTC)
	type want struct {
		code       int
		temporary  bool
		quota      bool
		reset      time.Time
		retryAfter time.Duration // -1: none
		reason     string
	}
	tests := []struct {
		name string
		p    func(url string) Provider
		a    canned
		want want
	}{
		{"open-meteo daily limit", om, canned{429, nil, fixture(t, "openmeteo_daily_limit.json")}, want{429, false, true, midnight, -1, "Daily API request limit"}},
		{"open-meteo minutely limit", om, canned{429, nil, fixture(t, "openmeteo_minutely_limit.json")}, want{429, true, false, time.Time{}, time.Minute, "Minutely"}},
		{"open-meteo 429 retry-after", om, canned{429, map[string]string{"Retry-After": "7"}, nil}, want{429, true, false, time.Time{}, 7 * time.Second, "Too Many Requests"}},
		{"open-meteo 429 retry-after date", om, canned{429, map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, nil}, want{429, true, false, time.Time{}, 90 * time.Second, "Too Many Requests"}},
		{"open-meteo 400", om, canned{400, nil, fixture(t, "openmeteo_error.json")}, want{400, false, false, time.Time{}, -1, "Latitude must be"}},
		{"open-meteo 502", om, canned{502, nil, []byte("<html>Bad Gateway</html>")}, want{502, true, false, time.Time{}, -1, "Bad Gateway"}},
		{"open-meteo 501", om, canned{501, nil, nil}, want{501, false, false, time.Time{}, -1, "Not Implemented"}},
		{"met-norway 429", mn, canned{429, nil, []byte("Too many requests")}, want{429, true, false, time.Time{}, -1, "Too many requests"}},
		{"met-norway 403", mn, canned{403, nil, []byte("<html>Forbidden</html>")}, want{403, false, false, time.Time{}, -1, "Forbidden"}},
		{"met-norway 500", mn, canned{500, nil, []byte("Internal Server Error\n")}, want{500, true, false, time.Time{}, -1, "Internal Server Error"}},
		{"pirate-weather 403", pw, canned{403, nil, fixture(t, "pirate_403.json")}, want{403, false, false, time.Time{}, -1, "Forbidden"}},
		{"pirate-weather 429 quota", pw, canned{429, map[string]string{"Ratelimit-Remaining": "0", "Ratelimit-Reset": "3600"}, fixture(t, "pirate_429.json")}, want{429, false, true, now.Add(time.Hour), -1, "API rate limit exceeded"}},
		{"pirate-weather 429 burst", pw, canned{429, map[string]string{"Ratelimit-Remaining": "12", "Retry-After": "2"}, fixture(t, "pirate_429.json")}, want{429, true, false, time.Time{}, 2 * time.Second, "API rate limit exceeded"}},
		{"pirate-weather 503", pw, canned{503, nil, nil}, want{503, true, false, time.Time{}, -1, "Service Unavailable"}},
		{"openweathermap 401", ow, canned{401, nil, fixture(t, "owm_401.json")}, want{401, false, false, time.Time{}, -1, "Invalid API key"}},
		{"openweathermap 429 blocked", ow, canned{429, nil, fixture(t, "owm_429.json")}, want{429, false, true, midnight, -1, "temporary blocked"}},
		{"openweathermap 404", ow, canned{404, nil, []byte(`{"cod":"404","message":"Internal error"}`)}, want{404, false, false, time.Time{}, -1, "Internal error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, u := serve(t, tt.a)
			p := tt.p(u)
			setNow(p, now)
			_, err := p.Forecast(context.Background(), 52.52, 13.41)
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a *StatusError", err)
			}
			if se.Code != tt.want.code || se.Temporary() != tt.want.temporary || se.Quota != tt.want.quota || !se.Reset.Equal(tt.want.reset) {
				t.Errorf("got code %d temporary %v quota %v reset %v, want %d %v %v %v", se.Code, se.Temporary(), se.Quota, se.Reset, tt.want.code, tt.want.temporary, tt.want.quota, tt.want.reset)
			}
			d, ok := se.RetryDelay(now)
			if (tt.want.retryAfter < 0) == ok || (ok && d != tt.want.retryAfter) {
				t.Errorf("got retry delay %v %v, want %v", d, ok, tt.want.retryAfter)
			}
			if !strings.Contains(se.Reason, tt.want.reason) {
				t.Errorf("got reason %q, want it to contain %q", se.Reason, tt.want.reason)
			}
			if strings.Contains(err.Error(), testKey) {
				t.Errorf("error %q shows the key", err)
			}
		})
	}
}

const testKey = "s3cr3t-key-123"

func om(u string) Provider { return &OpenMeteo{HTTP: HTTP{BaseURL: u}} }
func mn(u string) Provider { return &MetNorway{Contact: "ops@example.org", HTTP: HTTP{BaseURL: u}} }
func pw(u string) Provider { return &PirateWeather{Key: NewSecret(testKey), HTTP: HTTP{BaseURL: u}} }
func ow(u string) Provider { return &OpenWeatherMap{Key: NewSecret(testKey), HTTP: HTTP{BaseURL: u}} }

func setNow(p Provider, now time.Time) {
	switch p := p.(type) {
	case *OpenMeteo:
		p.Now = fixed(now)
	case *MetNorway:
		p.Now = fixed(now)
	case *PirateWeather:
		p.Now = fixed(now)
	case *OpenWeatherMap:
		p.Now = fixed(now)
	}
}

func TestMalformedAnswers(t *testing.T) {
	for _, mk := range []func(string) Provider{om, mn, pw, ow} {
		_, u := serve(t, canned{status: 200, body: fixture(t, "malformed.json")})
		p := mk(u)
		t.Run(p.Name(), func(t *testing.T) {
			_, err := p.Forecast(context.Background(), 1, 2)
			if err == nil || !strings.Contains(err.Error(), "malformed answer") {
				t.Fatalf("got %v, want a malformed answer error", err)
			}
			if errors.Is(err, ErrUnreachable) {
				t.Errorf("got ErrUnreachable for a bad body: %v", err)
			}
		})
	}
}

func TestUnreachableHidesKey(t *testing.T) {
	s := httptest.NewServer(http.NotFoundHandler())
	u := s.URL
	s.Close()
	for _, p := range []Provider{pw(u), ow(u), om(u)} {
		t.Run(p.Name(), func(t *testing.T) {
			_, err := p.Forecast(context.Background(), 1, 2)
			if !errors.Is(err, ErrUnreachable) {
				t.Fatalf("got %v, want ErrUnreachable", err)
			}
			if strings.Contains(err.Error(), testKey) {
				t.Errorf("error %q shows the key", err)
			}
		})
	}
}

func TestMetNorway(t *testing.T) {
	lastMod := "Tue, 25 Nov 2025 10:31:07 GMT"
	body := fixture(t, "metno_oslo.json")
	now := t0.Add(5 * time.Minute)
	exp1 := now.Add(30 * time.Minute)
	exp2 := now.Add(75 * time.Minute)
	rec, u := serve(t,
		canned{200, map[string]string{"Expires": exp1.Format(http.TimeFormat), "Last-Modified": lastMod}, body},
		canned{304, map[string]string{"Expires": exp2.Format(http.TimeFormat)}, nil},
		canned{203, map[string]string{"Expires": exp2.Add(time.Hour).Format(http.TimeFormat), "Last-Modified": "Tue, 25 Nov 2025 12:00:00 GMT"}, body},
		canned{422, nil, []byte("422 Unprocessable Entity")},
	)
	var logs bytes.Buffer
	clock := now
	m := &MetNorway{Contact: "ops@example.org", HTTP: HTTP{BaseURL: u, Now: func() time.Time { return clock }},
		Log: slog.New(slog.NewTextHandler(&logs, nil))}
	ctx := context.Background()

	f, err := m.Forecast(ctx, 59.913999, 10.752299)
	if err != nil {
		t.Fatal(err)
	}
	r := rec.last()
	if got, want := r.URL.Path, "/weatherapi/locationforecast/2.0/compact"; got != want {
		t.Errorf("path: got %q, want %q", got, want)
	}
	if got, want := r.URL.RawQuery, "lat=59.9139&lon=10.7522"; got != want {
		t.Errorf("query: got %q, want %q (truncated to 4 decimals)", got, want)
	}
	if ua := r.Header.Get("User-Agent"); !strings.HasPrefix(ua, "glowcast/") || !strings.Contains(ua, "ops@example.org") {
		t.Errorf("User-Agent: got %q, want glowcast/<version> with the contact", ua)
	}
	if r.Header.Get("If-Modified-Since") != "" {
		t.Errorf("first request sent If-Modified-Since %q", r.Header.Get("If-Modified-Since"))
	}
	if !f.Expires.Equal(exp1) || !f.FetchedAt.Equal(now) {
		t.Errorf("got Expires %v FetchedAt %v, want %v %v", f.Expires, f.FetchedAt, exp1, now)
	}

	// Before Expires: no request at all.
	clock = now.Add(29 * time.Minute)
	if _, err := m.Forecast(ctx, 59.91391, 10.75221); err != nil {
		t.Fatal(err)
	}
	if got := rec.count(); got != 1 {
		t.Fatalf("requests before Expires: got %d, want 1", got)
	}

	// After Expires: a conditional request; 304 reuses the data.
	clock = now.Add(31 * time.Minute)
	f2, err := m.Forecast(ctx, 59.9139, 10.7522)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.last().Header.Get("If-Modified-Since"); got != lastMod {
		t.Errorf("If-Modified-Since: got %q, want %q", got, lastMod)
	}
	if !f2.Expires.Equal(exp2) || !f2.FetchedAt.Equal(clock) || len(f2.Temps) != len(f.Temps) || f2.Temps[0] != f.Temps[0] {
		t.Errorf("304: got Expires %v FetchedAt %v, %d temps; want %v %v, %d", f2.Expires, f2.FetchedAt, len(f2.Temps), exp2, clock, len(f.Temps))
	}

	// 203: data used, deprecation logged.
	clock = exp2.Add(time.Second)
	if _, err := m.Forecast(ctx, 59.9139, 10.7522); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "deprecated") || !strings.Contains(logs.String(), "status=203") {
		t.Errorf("203: got log %q, want a deprecation warning with status=203", logs.String())
	}

	// 422: not covered, said plainly.
	_, err = m.Forecast(ctx, -89.5, 0)
	if !errors.Is(err, ErrNotCovered) || !strings.Contains(err.Error(), "location not covered") {
		t.Errorf("422: got %v, want ErrNotCovered", err)
	}
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 422 {
		t.Errorf("422: got %v, want a StatusError with code 422", err)
	}
}

func TestMetNorwayTruncatesNegative(t *testing.T) {
	rec, u := serve(t, canned{200, nil, fixture(t, "metno_oslo.json")})
	m := &MetNorway{Contact: "https://example.org/contact", HTTP: HTTP{BaseURL: u}}
	if _, err := m.Forecast(context.Background(), -33.867899, 151.20729); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.last().URL.RawQuery, "lat=-33.8678&lon=151.2072"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestMetNorwayRefusesWithoutContact(t *testing.T) {
	rec, u := serve(t, canned{200, nil, fixture(t, "metno_oslo.json")})
	m := &MetNorway{HTTP: HTTP{BaseURL: u}}
	_, err := m.Forecast(context.Background(), 1, 2)
	if err == nil || !strings.Contains(err.Error(), "--weather-contact") {
		t.Errorf("got %v, want an error naming --weather-contact", err)
	}
	if rec.count() != 0 {
		t.Errorf("got %d requests, want none without a contact", rec.count())
	}
}

func TestPirateWeatherRequest(t *testing.T) {
	rec, u := serve(t, canned{200, map[string]string{"Ratelimit-Remaining": "9876", "X-Forecast-API-Calls": "124"}, fixture(t, "pirate_berlin.json")})
	p := &PirateWeather{Key: NewSecret(testKey), HTTP: HTTP{BaseURL: u, Now: fixed(t0)}}
	f, err := p.Forecast(context.Background(), 52.52, 13.405)
	if err != nil {
		t.Fatal(err)
	}
	r := rec.last()
	if got, want := r.URL.Path, "/forecast/"+testKey+"/52.5200,13.4050"; got != want {
		t.Errorf("path: got %q, want %q", got, want)
	}
	q := r.URL.Query()
	if q.Get("units") != "si" || !strings.Contains(q.Get("exclude"), "minutely") || strings.Contains(q.Get("exclude"), "hourly") {
		t.Errorf("query: got %q, want units=si and exclude without hourly", r.URL.RawQuery)
	}
	rem, calls, ok := p.RateLimit()
	if !ok || rem != 9876 || calls != 124 {
		t.Errorf("RateLimit: got %d %d %v, want 9876 124 true", rem, calls, ok)
	}
	if len(f.Temps) != 48 || !f.FetchedAt.Equal(t0) {
		t.Errorf("got %d temps fetched %v, want 48 at %v", len(f.Temps), f.FetchedAt, t0)
	}
}

func TestOpenWeatherMapRequest(t *testing.T) {
	rec, u := serve(t, canned{200, nil, fixture(t, "owm_berlin.json")})
	o := &OpenWeatherMap{Key: NewSecret(testKey), HTTP: HTTP{BaseURL: u + "/"}}
	if _, err := o.Forecast(context.Background(), 52.52, 13.405); err != nil {
		t.Fatal(err)
	}
	r := rec.last()
	q := r.URL.Query()
	if r.URL.Path != "/data/3.0/onecall" || q.Get("units") != "metric" || q.Get("appid") != testKey || q.Get("lat") != "52.5200" {
		t.Errorf("got %s?%s, want /data/3.0/onecall with units=metric, appid and lat", r.URL.Path, r.URL.RawQuery)
	}
}

func TestProvidersWithoutKey(t *testing.T) {
	for _, p := range []Provider{&PirateWeather{}, &OpenWeatherMap{}} {
		t.Run(p.Name(), func(t *testing.T) {
			_, err := p.Forecast(context.Background(), 1, 2)
			if err == nil || !strings.Contains(err.Error(), "--weather-key-file") {
				t.Errorf("got %v, want an error naming --weather-key-file", err)
			}
		})
	}
}

func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}
