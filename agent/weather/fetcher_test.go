package weather

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// fakeClock is a manual clock whose Sleep advances time and records the
// delays asked for.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	slept []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.slept = append(c.slept, d)
	c.t = c.t.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}

// fakeProvider answers from a script of results, one per call.
type fakeProvider struct {
	name  string
	clock *fakeClock
	mu    sync.Mutex
	calls int
	// results[i] answers call i; past the end the last one repeats. A nil
	// error answers a forecast.
	results []error
	places  [][2]float64
	expires time.Duration
}

func (p *fakeProvider) Name() string { return p.name }

func (p *fakeProvider) Forecast(ctx context.Context, lat, lon float64) (*Forecast, error) {
	p.mu.Lock()
	i := p.calls
	p.calls++
	p.places = append(p.places, [2]float64{lat, lon})
	p.mu.Unlock()
	var err error
	if len(p.results) > 0 {
		err = p.results[min(i, len(p.results)-1)]
	}
	if err != nil {
		return nil, err
	}
	now := p.clock.Now()
	f := series(now.Truncate(time.Hour), 48)
	f.FetchedAt, f.Provider = now, p.name
	if p.expires > 0 {
		f.Expires = now.Add(p.expires)
	}
	return f, nil
}

func (p *fakeProvider) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

func newTestFetcher(t *testing.T, c *fakeClock, o FetcherOptions) (*Fetcher, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	o.Registerer = reg
	o.Now, o.Sleep = c.Now, c.Sleep
	if o.Rand == nil {
		o.Rand = func() float64 { return 0.5 }
	}
	f, err := NewFetcher(o)
	if err != nil {
		t.Fatal(err)
	}
	return f, reg
}

func TestFleetOneRequestPerCellPerInterval(t *testing.T) {
	// A real Open-Meteo client against a recorded answer: 200 devices
	// scattered inside one 0.01° cell cost one request per interval.
	rec, u := serve(t, canned{status: 200, body: fixture(t, "openmeteo_berlin.json")})
	c := &fakeClock{t: t0.Add(10 * time.Minute)}
	f, reg := newTestFetcher(t, c, FetcherOptions{Interval: 30 * time.Minute, Jitter: 2 * time.Second})
	p := &OpenMeteo{HTTP: HTTP{BaseURL: u, Now: c.Now}}
	ctx := context.Background()
	for cycle := range 3 {
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for d := range 200 {
			wg.Go(func() {
				lat := 52.516 + float64(d%10)*0.0008 // 52.516…52.5232, all round to 52.52
				lon := 13.416 + float64(d/10)*0.0004
				fc, err := f.Get(ctx, p, lat, lon)
				if err == nil && len(fc.Temps) == 0 {
					err = errors.New("empty forecast")
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got, want := rec.count(), cycle+1; got != want {
			t.Fatalf("cycle %d: got %d requests, want %d", cycle, got, want)
		}
		c.Advance(30 * time.Minute)
	}
	q := rec.last().URL.Query()
	if q.Get("latitude") != "52.5200" || q.Get("longitude") != "13.4200" {
		t.Errorf("asked for %s,%s, want the cell centre 52.5200,13.4200", q.Get("latitude"), q.Get("longitude"))
	}
	if got := gatheredValue(t, reg, "glowcast_weather_requests_total", "ok"); got != 3 {
		t.Errorf("glowcast_weather_requests_total{result=ok}: got %v, want 3", got)
	}
}

// value reads one counter or gauge.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// gatheredValue reads a counter as a scrape of reg shows it, by its result
// label.
func gatheredValue(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestCellsAndProvidersAreSeparate(t *testing.T) {
	c := &fakeClock{t: t0}
	f, _ := newTestFetcher(t, c, FetcherOptions{Grid: 0.1})
	a := &fakeProvider{name: "a", clock: c}
	b := &fakeProvider{name: "b", clock: c}
	ctx := context.Background()
	for _, pl := range [][2]float64{{52.51, 13.41}, {52.54, 13.44}, {52.56, 13.41}, {-52.51, 13.41}} {
		if _, err := f.Get(ctx, a, pl[0], pl[1]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.Get(ctx, b, 52.51, 13.41); err != nil {
		t.Fatal(err)
	}
	if got := a.Calls(); got != 3 {
		t.Errorf("provider a: got %d calls, want 3 (two places share the 52.5,13.4 cell)", got)
	}
	if got := b.Calls(); got != 1 {
		t.Errorf("provider b: got %d calls, want 1", got)
	}
	if got, want := a.places[0], [2]float64{52.5, 13.4}; got != want {
		t.Errorf("asked for %v, want the cell centre %v", got, want)
	}
}

func TestOneProviderAtTwoURLsIsTwoSources(t *testing.T) {
	// --weather-url per device: the same provider name at another URL must
	// never answer from the other's cache; two clients at one URL share it.
	body := fixture(t, "openmeteo_berlin.json")
	r1, u1 := serve(t, canned{status: 200, body: body})
	r2, u2 := serve(t, canned{status: 200, body: body})
	c := &fakeClock{t: t0.Add(10 * time.Minute)}
	f, _ := newTestFetcher(t, c, FetcherOptions{Interval: 30 * time.Minute})
	ctx := context.Background()
	for _, p := range []Provider{
		&OpenMeteo{HTTP: HTTP{BaseURL: u1, Now: c.Now}},
		&OpenMeteo{HTTP: HTTP{BaseURL: u1, Now: c.Now}},
		&OpenMeteo{HTTP: HTTP{BaseURL: u2, Now: c.Now}},
	} {
		if _, err := f.Get(ctx, p, 52.52, 13.42); err != nil {
			t.Fatal(err)
		}
	}
	if r1.count() != 1 || r2.count() != 1 {
		t.Errorf("requests: %d to the first URL, %d to the second; want 1 each", r1.count(), r2.count())
	}
}

func TestTTLFromExpires(t *testing.T) {
	c := &fakeClock{t: t0}
	f, _ := newTestFetcher(t, c, FetcherOptions{Interval: 30 * time.Minute})
	p := &fakeProvider{name: "met-norway", clock: c, expires: 50 * time.Minute}
	ctx := context.Background()
	for _, step := range []struct {
		advance time.Duration
		calls   int
	}{{0, 1}, {40 * time.Minute, 1}, {9 * time.Minute, 1}, {2 * time.Minute, 2}} {
		c.Advance(step.advance)
		if _, err := f.Get(ctx, p, 59.91, 10.75); err != nil {
			t.Fatal(err)
		}
		if got := p.Calls(); got != step.calls {
			t.Fatalf("after %v: got %d calls, want %d", c.Now().Sub(t0), got, step.calls)
		}
	}
}

func TestStaleIfError(t *testing.T) {
	c := &fakeClock{t: t0}
	boom := &StatusError{Provider: "p", Code: 500, Reason: "Internal Server Error"}
	p := &fakeProvider{name: "p", clock: c, results: []error{nil, boom}}
	f, reg := newTestFetcher(t, c, FetcherOptions{Interval: 30 * time.Minute, StaleIfError: 3 * time.Hour, Attempts: 1})
	ctx := context.Background()
	first, err := f.Get(ctx, p, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(2*time.Hour + 59*time.Minute)
	got, err := f.Get(ctx, p, 1, 2)
	if err != nil {
		t.Fatalf("within stale window: got %v, want the cached forecast", err)
	}
	if !got.FetchedAt.Equal(first.FetchedAt) {
		t.Errorf("stale FetchedAt: got %v, want %v (the age must show)", got.FetchedAt, first.FetchedAt)
	}
	c.Advance(2 * time.Minute)
	if _, err := f.Get(ctx, p, 1, 2); !errors.As(err, new(*StatusError)) {
		t.Errorf("past stale window: got %v, want the provider's error", err)
	}
	if got := value(t, f.m.cache.WithLabelValues("p", "stale")); got != 1 {
		t.Errorf("glowcast_weather_cache_total{result=stale}: got %v, want 1", got)
	}
	if got := gatheredValue(t, reg, "glowcast_weather_cache_total", "fetched"); got != 1 {
		t.Errorf("scraped glowcast_weather_cache_total{result=fetched}: got %v, want 1", got)
	}
}

func TestRetries(t *testing.T) {
	s500 := &StatusError{Provider: "p", Code: 500, Reason: "x"}
	tests := []struct {
		name      string
		results   []error
		wantCalls int
		wantSleep []time.Duration
		wantErr   bool
	}{
		// Rand is 0.5, so backoff d is 0.75·d: 1s→750ms, 2s→1.5s.
		{"5xx then ok", []error{s500, s500, nil}, 3, []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond}, false},
		{"network error retried", []error{fmt.Errorf("x: %w: refused", ErrUnreachable), nil}, 2, []time.Duration{750 * time.Millisecond}, false},
		{"429 retry-after honoured", []error{&StatusError{Code: 429, RetryAfter: "5"}, nil}, 2, []time.Duration{5 * time.Second}, false},
		{"429 without retry-after backs off", []error{&StatusError{Code: 429}, nil}, 2, []time.Duration{750 * time.Millisecond}, false},
		{"gives up after attempts", []error{s500}, 3, []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond}, true},
		{"400 not retried", []error{&StatusError{Code: 400}}, 1, nil, true},
		{"401 not retried", []error{&StatusError{Code: 401}}, 1, nil, true},
		{"403 not retried", []error{&StatusError{Code: 403}}, 1, nil, true},
		{"404 not retried", []error{&StatusError{Code: 404}}, 1, nil, true},
		{"501 not retried", []error{&StatusError{Code: 501}}, 1, nil, true},
		{"malformed not retried", []error{errors.New("p: malformed answer")}, 1, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeClock{t: t0}
			f, _ := newTestFetcher(t, c, FetcherOptions{Attempts: 3})
			p := &fakeProvider{name: "p", clock: c, results: tt.results}
			_, err := f.Get(context.Background(), p, 1, 2)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if got := p.Calls(); got != tt.wantCalls {
				t.Errorf("got %d calls, want %d", got, tt.wantCalls)
			}
			if got := c.Slept(); fmt.Sprint(got) != fmt.Sprint(tt.wantSleep) {
				t.Errorf("got sleeps %v, want %v", got, tt.wantSleep)
			}
		})
	}
}

func TestLongRetryAfterPausesProvider(t *testing.T) {
	c := &fakeClock{t: t0}
	f, _ := newTestFetcher(t, c, FetcherOptions{Attempts: 3, MaxRetryWait: time.Minute})
	p := &fakeProvider{name: "p", clock: c, results: []error{&StatusError{Code: 429, RetryAfter: "600"}, nil}}
	ctx := context.Background()
	if _, err := f.Get(ctx, p, 1, 2); err == nil {
		t.Fatal("got nil error, want the 429")
	}
	c.Advance(9 * time.Minute)
	_, err := f.Get(ctx, p, 1, 2)
	if !errors.Is(err, ErrQuota) || !strings.Contains(err.Error(), "paused until") {
		t.Errorf("during Retry-After: got %v, want a paused error", err)
	}
	if got := p.Calls(); got != 1 {
		t.Errorf("got %d calls during Retry-After, want 1", got)
	}
	c.Advance(time.Minute)
	if _, err := f.Get(ctx, p, 1, 2); err != nil {
		t.Errorf("after Retry-After: got %v, want success", err)
	}
}

func TestQuotaExhausted429WaitsForReset(t *testing.T) {
	c := &fakeClock{t: t0}
	reset := t0.Add(13 * time.Hour)
	p := &fakeProvider{name: "p", clock: c, results: []error{&StatusError{Code: 429, Quota: true, Reset: reset}, nil}}
	f, _ := newTestFetcher(t, c, FetcherOptions{Attempts: 3})
	ctx := context.Background()
	if _, err := f.Get(ctx, p, 1, 2); err == nil {
		t.Fatal("got nil error, want the quota 429")
	}
	if got := len(c.Slept()); got != 0 {
		t.Errorf("got %d sleeps, want none: a used-up quota is not retried", got)
	}
	c.Advance(12 * time.Hour)
	if _, err := f.Get(ctx, p, 3, 4); !errors.Is(err, ErrQuota) {
		t.Errorf("before reset: got %v, want ErrQuota", err)
	}
	if st := f.Stats().Providers["p"]; !st.PausedUntil.Equal(reset) {
		t.Errorf("Stats PausedUntil: got %v, want %v", st.PausedUntil, reset)
	}
	c.Advance(time.Hour)
	if _, err := f.Get(ctx, p, 1, 2); err != nil {
		t.Errorf("after reset: got %v, want success", err)
	}
	if got := p.Calls(); got != 2 {
		t.Errorf("got %d calls, want 2", got)
	}
}

func TestDailyBudget(t *testing.T) {
	c := &fakeClock{t: time.Date(2025, 11, 25, 23, 0, 0, 0, time.UTC)}
	f, _ := newTestFetcher(t, c, FetcherOptions{Quota: func(string) int { return 3 }})
	p := &fakeProvider{name: "open-meteo", clock: c}
	ctx := context.Background()
	for i := range 3 {
		if _, err := f.Get(ctx, p, float64(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.Get(ctx, p, 10, 0)
	if !errors.Is(err, ErrQuota) || !strings.Contains(err.Error(), "weather.daily_quota") {
		t.Errorf("got %v, want ErrQuota naming weather.daily_quota", err)
	}
	st := f.Stats().Providers["open-meteo"]
	if st.QuotaUsed != 3 || st.QuotaLimit != 3 {
		t.Errorf("Stats: got used %d limit %d, want 3 3", st.QuotaUsed, st.QuotaLimit)
	}
	if got := value(t, f.m.quotaUsed.WithLabelValues("open-meteo")); got != 3 {
		t.Errorf("glowcast_weather_quota_used: got %v, want 3", got)
	}
	if got := value(t, f.m.refused.WithLabelValues("open-meteo", "budget")); got != 1 {
		t.Errorf("glowcast_weather_refused_total{reason=budget}: got %v, want 1", got)
	}
	c.Advance(time.Hour) // a new UTC day
	if _, err := f.Get(ctx, p, 10, 0); err != nil {
		t.Errorf("new day: got %v, want success", err)
	}
}

// blockingProvider holds every call until released, to count how many run
// at once.
type blockingProvider struct {
	now     func() time.Time
	release chan struct{}
	cur     atomic.Int32
	peak    atomic.Int32
	started chan struct{}
}

func (b *blockingProvider) Name() string { return "block" }

func (b *blockingProvider) Forecast(ctx context.Context, lat, lon float64) (*Forecast, error) {
	n := b.cur.Add(1)
	defer b.cur.Add(-1)
	for {
		p := b.peak.Load()
		if n <= p || b.peak.CompareAndSwap(p, n) {
			break
		}
	}
	b.started <- struct{}{}
	<-b.release
	f := series(t0, 24)
	f.FetchedAt = b.now()
	return f, nil
}

func TestConcurrencyLimit(t *testing.T) {
	c := &fakeClock{t: t0}
	f, _ := newTestFetcher(t, c, FetcherOptions{Concurrency: 3})
	b := &blockingProvider{now: c.Now, release: make(chan struct{}), started: make(chan struct{}, 100)}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if _, err := f.Get(context.Background(), b, float64(i), 0); err != nil {
				t.Error(err)
			}
		})
	}
	for range 3 {
		<-b.started
	}
	select {
	case <-b.started:
		t.Fatal("a fourth request started while three were in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(b.release)
	wg.Wait()
	if got := b.peak.Load(); got != 3 {
		t.Errorf("got peak %d requests in flight, want 3", got)
	}
}

func TestJitterSpreadsRequests(t *testing.T) {
	c := &fakeClock{t: t0}
	draws := []float64{0.1, 0.9, 0.5}
	var i atomic.Int32
	f, _ := newTestFetcher(t, c, FetcherOptions{Jitter: 10 * time.Second, Rand: func() float64 { return draws[int(i.Add(1)-1)%len(draws)] }})
	p := &fakeProvider{name: "p", clock: c}
	for k := range 3 {
		if _, err := f.Get(context.Background(), p, float64(k), 0); err != nil {
			t.Fatal(err)
		}
	}
	want := []time.Duration{time.Second, 9 * time.Second, 5 * time.Second}
	if got := c.Slept(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got delays %v, want %v", got, want)
	}
}

func TestGetReturnsCopies(t *testing.T) {
	c := &fakeClock{t: t0}
	f, _ := newTestFetcher(t, c, FetcherOptions{})
	p := &fakeProvider{name: "p", clock: c}
	a, err := f.Get(context.Background(), p, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	a.Temps[0] = 99
	b, err := f.Get(context.Background(), p, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if b.Temps[0] == 99 {
		t.Error("a caller's change reached the cache")
	}
}

func TestPirateRateLimitMetrics(t *testing.T) {
	_, u := serve(t, canned{200, map[string]string{"Ratelimit-Remaining": "41", "X-Forecast-API-Calls": "9"}, fixture(t, "pirate_berlin.json")})
	c := &fakeClock{t: t0}
	f, _ := newTestFetcher(t, c, FetcherOptions{})
	p := &PirateWeather{Key: NewSecret(testKey), HTTP: HTTP{BaseURL: u, Now: c.Now}}
	if _, err := f.Get(context.Background(), p, 52.52, 13.4); err != nil {
		t.Fatal(err)
	}
	if got := value(t, f.m.remaining.WithLabelValues("pirate-weather")); got != 41 {
		t.Errorf("glowcast_weather_ratelimit_remaining: got %v, want 41", got)
	}
	if got := value(t, f.m.calls.WithLabelValues("pirate-weather")); got != 9 {
		t.Errorf("glowcast_weather_provider_calls: got %v, want 9", got)
	}
	st := f.Stats().Providers["pirate-weather"]
	if st.RateLimitRemaining != 41 || st.ProviderCalls != 9 || st.Requests != 1 {
		t.Errorf("Stats: got %+v, want remaining 41, calls 9, requests 1", st)
	}
}

func TestRetryOverHTTP(t *testing.T) {
	// 503, then 429 with Retry-After, then success: three requests, the
	// second wait exactly Retry-After.
	rec, u := serve(t,
		canned{status: 503},
		canned{status: 429, header: map[string]string{"Retry-After": "3"}},
		canned{status: 200, body: fixture(t, "openmeteo_berlin.json")},
	)
	c := &fakeClock{t: t0}
	f, _ := newTestFetcher(t, c, FetcherOptions{Attempts: 3})
	if _, err := f.Get(context.Background(), &OpenMeteo{HTTP: HTTP{BaseURL: u, Now: c.Now}}, 52.52, 13.42); err != nil {
		t.Fatal(err)
	}
	if rec.count() != 3 {
		t.Errorf("got %d requests, want 3", rec.count())
	}
	if got, want := fmt.Sprint(c.Slept()), fmt.Sprint([]time.Duration{750 * time.Millisecond, 3 * time.Second}); got != want {
		t.Errorf("got sleeps %s, want %s", got, want)
	}
	if got := value(t, f.m.requests.WithLabelValues("open-meteo", "server_error")); got != 1 {
		t.Errorf("requests_total{result=server_error}: got %v, want 1", got)
	}
	if got := value(t, f.m.requests.WithLabelValues("open-meteo", "rate_limited")); got != 1 {
		t.Errorf("requests_total{result=rate_limited}: got %v, want 1", got)
	}
}

func TestTimeoutPerRequest(t *testing.T) {
	// A server that never answers in time: the per-request timeout ends
	// each attempt and the error says the service was unreachable.
	done := make(chan struct{})
	rec := &recorder{answers: []canned{{status: 200}}}
	s := httptestServer(t, &slow{rec: rec, done: done})
	c := &fakeClock{t: t0}
	f, _ := newTestFetcher(t, c, FetcherOptions{Attempts: 2, Timeout: 50 * time.Millisecond})
	_, err := f.Get(context.Background(), &OpenMeteo{HTTP: HTTP{BaseURL: s}}, 1, 2)
	close(done)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("got %v, want ErrUnreachable", err)
	}
	if rec.count() != 2 {
		t.Errorf("got %d requests, want 2 (timeouts are retried)", rec.count())
	}
}

type slow struct {
	rec  *recorder
	done chan struct{}
}

func (s *slow) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.rec.mu.Lock()
	s.rec.reqs = append(s.rec.reqs, r)
	s.rec.mu.Unlock()
	select {
	case <-s.done:
	case <-r.Context().Done():
	}
}

// Regression (chaos, agent-clock-jump +40 min): a forecast fetched while the
// agent's clock ran ahead stayed "fresh" for the size of the step once NTP
// set the clock back, and every temps message went out with an issued_at
// 40 minutes in the future, fresh on the strip long after the agent might
// have stopped. A cached forecast fetched in our future is refreshed.
func TestClockSteppedBackRefreshes(t *testing.T) {
	c := &fakeClock{t: t0}
	f, _ := newTestFetcher(t, c, FetcherOptions{Interval: 30 * time.Minute})
	p := &fakeProvider{name: "open-meteo", clock: c}
	ctx := context.Background()
	c.Advance(40 * time.Minute) // ahead
	if _, err := f.Get(ctx, p, 52.52, 13.4); err != nil {
		t.Fatal(err)
	}
	c.Advance(-40*time.Minute + time.Minute) // NTP steps it back; a minute passed
	fc, err := f.Get(ctx, p, 52.52, 13.4)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Calls(); got != 2 {
		t.Fatalf("calls after the step back: got %d, want 2 (refreshed)", got)
	}
	if !fc.FetchedAt.Equal(c.Now()) {
		t.Fatalf("fetched_at after the step back: got %v, want now %v", fc.FetchedAt, c.Now())
	}
	// Seconds of difference are not a step: the cache still answers.
	c.Advance(30 * time.Second)
	if _, err := f.Get(ctx, p, 52.52, 13.4); err != nil {
		t.Fatal(err)
	}
	if got := p.Calls(); got != 2 {
		t.Fatalf("calls 30 s later: got %d, want 2 (cached)", got)
	}
}
