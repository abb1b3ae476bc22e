package weather

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/glowcast/glowcast/internal/clock"
)

// Keyed is implemented by providers whose cache entries must not be shared
// with another instance of the same name (a different --weather-url):
// CacheKey tells such instances apart.
type Keyed interface {
	CacheKey() string
}

// RateLimiter is implemented by providers that report their service's own
// counters (Pirate Weather's Ratelimit-Remaining and X-Forecast-API-Calls).
type RateLimiter interface {
	RateLimit() (remaining, calls int64, ok bool)
}

// ErrQuota is returned when the daily request budget of a provider is used
// up, or the provider said its own quota is, and no cached forecast is left.
var ErrQuota = errors.New("weather: request budget used up")

// FetcherOptions tune a Fetcher. Zero values take the defaults shown.
type FetcherOptions struct {
	// Grid is the cache cell in degrees (0.01).
	Grid float64
	// Interval is how long a forecast without Expires is fresh (30m).
	Interval time.Duration
	// StaleIfError is how long past its fetch a cached forecast is served
	// while the provider fails (3h); negative means never.
	StaleIfError time.Duration
	// Timeout bounds one request (10s).
	Timeout time.Duration
	// Concurrency is the most requests in flight (4).
	Concurrency int
	// Jitter is the longest random delay before a request (0: none).
	Jitter time.Duration
	// Attempts is how often one fetch is tried (3).
	Attempts int
	// Backoff is the first retry's delay, doubled each time (1s), up to
	// MaxBackoff (30s).
	Backoff, MaxBackoff time.Duration
	// MaxRetryWait is the longest Retry-After waited inside one fetch (1m);
	// a longer one pauses the provider until then instead.
	MaxRetryWait time.Duration
	// Quota is the daily budget per provider name, 0 for none; nil means
	// DefaultQuota.
	Quota func(provider string) int
	// Registerer receives the glowcast_weather_* metrics; nil registers
	// none.
	Registerer prometheus.Registerer
	// Log receives one line per failed request; nil means slog.Default().
	Log *slog.Logger
	// Now, Sleep and Rand replace the clock, waiting and randomness in
	// tests. Rand returns a value in [0, 1).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	Rand  func() float64
}

// FetcherOptions turns the fleet fields of c into FetcherOptions; interval
// is the agent's forecast cycle.
func (c Config) FetcherOptions(interval time.Duration) FetcherOptions {
	return FetcherOptions{
		Grid:         c.Grid,
		Interval:     interval,
		StaleIfError: c.StaleIfError,
		Timeout:      c.Timeout,
		Concurrency:  c.Concurrency,
		Jitter:       c.Jitter,
		Attempts:     c.Attempts,
		Quota: func(provider string) int {
			if provider == c.Provider {
				return c.Quota()
			}
			return DefaultQuota(provider)
		},
	}
}

// Fetcher is the agent's shared weather cache: devices in one grid cell
// share one forecast, concurrent misses share one request (singleflight),
// requests are limited in number and spread in time, failures are retried
// with backoff and bridged with stale data, and each provider's daily
// budget is kept. It is safe for concurrent use; call Get from each
// device's cycle.
type Fetcher struct {
	// Immutable.
	o   FetcherOptions
	log *slog.Logger
	sem chan struct{}
	m   *metrics

	// Mutable.
	group singleflight.Group
	mu    sync.Mutex
	cache map[string]*entry
	prov  map[string]*provState
	swept time.Time
}

type entry struct {
	f          *Forecast
	freshUntil time.Time
}

// fresh reports whether e may be served without asking the provider. A
// forecast fetched in our future means the clock was stepped back since
// (it ran ahead until NTP answered): it is refreshed, or the agent would
// keep sending a future issued_at, fresh for as long as the step was.
func (e *entry) fresh(now time.Time) bool {
	return e != nil && now.Before(e.freshUntil) && !e.f.FetchedAt.After(now.Add(time.Minute))
}

// provState is the per-provider bookkeeping.
type provState struct {
	day         time.Time // UTC day of used
	used        int
	pausedUntil time.Time
	pauseReason string
	requests    int
	failures    int
	lastError   string
	rlSeen      bool
	rlRemaining int64
	rlCalls     int64
}

// NewFetcher builds a Fetcher and registers its metrics.
func NewFetcher(o FetcherOptions) (*Fetcher, error) {
	if o.Grid <= 0 {
		o.Grid = 0.01
	}
	if o.Interval <= 0 {
		o.Interval = 30 * time.Minute
	}
	if o.StaleIfError == 0 {
		o.StaleIfError = 3 * time.Hour
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.MaxRetryWait <= 0 {
		o.MaxRetryWait = time.Minute
	}
	if o.Quota == nil {
		o.Quota = DefaultQuota
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = clock.Sleep
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	return &Fetcher{
		o:     o,
		log:   log,
		sem:   make(chan struct{}, o.Concurrency),
		m:     m,
		cache: map[string]*entry{},
		prov:  map[string]*provState{},
	}, nil
}

// Cell rounds a coordinate pair to the centre of its grid cell: the place a
// forecast is fetched for.
func (f *Fetcher) Cell(lat, lon float64) (float64, float64) {
	return roundGrid(lat, f.o.Grid), roundGrid(lon, f.o.Grid)
}

func roundGrid(v, g float64) float64 {
	r := math.Round(v/g) * g
	// Strip float noise so 52.52 stays 52.52 in URLs and keys.
	r, _ = strconv.ParseFloat(strconv.FormatFloat(r, 'f', 6, 64), 64)
	return r
}

func sourceKey(p Provider) string {
	if k, ok := p.(Keyed); ok {
		return p.Name() + " " + k.CacheKey()
	}
	return p.Name()
}

// Get returns the forecast for the grid cell holding lat, lon from p, from
// the cache when fresh. FetchedAt is when the provider last answered: the
// agent sends it as issued_at, so a stale forecast shows its age. The
// returned Forecast is the caller's own copy.
func (f *Fetcher) Get(ctx context.Context, p Provider, lat, lon float64) (*Forecast, error) {
	name := p.Name()
	clat, clon := f.Cell(lat, lon)
	key := sourceKey(p) + "|" + strconv.FormatFloat(clat, 'f', -1, 64) + "," + strconv.FormatFloat(clon, 'f', -1, 64)

	f.mu.Lock()
	e := f.cache[key]
	f.mu.Unlock()
	if e.fresh(f.o.Now()) {
		f.m.cache.WithLabelValues(name, "hit").Inc()
		return e.f.clone(), nil
	}
	v, err, shared := f.group.Do(key, func() (any, error) {
		return f.refresh(ctx, p, key, clat, clon)
	})
	if shared {
		f.m.cache.WithLabelValues(name, "shared").Inc()
	}
	if err != nil {
		return nil, err
	}
	return v.(*Forecast).clone(), nil
}

// refresh runs once per key at a time, under singleflight.
func (f *Fetcher) refresh(ctx context.Context, p Provider, key string, lat, lon float64) (*Forecast, error) {
	name := p.Name()
	f.mu.Lock()
	e := f.cache[key]
	f.mu.Unlock()
	if e.fresh(f.o.Now()) {
		// Filled by a flight that ended between our look and our Do.
		f.m.cache.WithLabelValues(name, "hit").Inc()
		return e.f, nil
	}
	fc, err := f.fetch(ctx, p, lat, lon)
	now := f.o.Now()
	if err != nil {
		f.m.cache.WithLabelValues(name, "failed").Inc()
		if e != nil && f.o.StaleIfError > 0 && now.Sub(e.f.FetchedAt) <= f.o.StaleIfError {
			f.m.cache.WithLabelValues(name, "stale").Inc()
			f.log.Warn("weather: serving cached forecast after a failed refresh",
				"provider", name, "lat", lat, "lon", lon, "age", now.Sub(e.f.FetchedAt).Round(time.Second).String(), "err", err)
			return e.f, nil
		}
		return nil, err
	}
	f.m.cache.WithLabelValues(name, "fetched").Inc()
	until := now.Add(f.o.Interval)
	if !fc.Expires.IsZero() {
		// The provider's word, within sane bounds: never hammer on an
		// Expires in the past, never keep a day-old forecast.
		until = fc.Expires
		if lo := now.Add(time.Minute); until.Before(lo) {
			until = lo
		}
		if hi := now.Add(24 * time.Hour); until.After(hi) {
			until = hi
		}
	}
	f.mu.Lock()
	f.cache[key] = &entry{f: fc, freshUntil: until}
	f.sweepLocked(now)
	f.mu.Unlock()
	return fc, nil
}

// sweepLocked drops entries that are neither fresh nor usable as stale.
func (f *Fetcher) sweepLocked(now time.Time) {
	if now.Sub(f.swept) < f.o.Interval {
		return
	}
	f.swept = now
	for k, e := range f.cache {
		if now.After(e.freshUntil) && now.Sub(e.f.FetchedAt) > max(f.o.StaleIfError, 0) {
			delete(f.cache, k)
		}
	}
}

func (f *Fetcher) state(name string) *provState {
	s := f.prov[name]
	if s == nil {
		s = &provState{}
		f.prov[name] = s
	}
	return s
}

// admit checks a provider's pause and daily budget and counts one request.
func (f *Fetcher) admit(name string) error {
	now := f.o.Now()
	limit := f.o.Quota(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.state(name)
	if now.Before(s.pausedUntil) {
		f.m.refused.WithLabelValues(name, "paused").Inc()
		return fmt.Errorf("weather: %s paused until %s (%s): %w", name, s.pausedUntil.UTC().Format(time.RFC3339), s.pauseReason, ErrQuota)
	}
	day := now.UTC().Truncate(24 * time.Hour)
	if !s.day.Equal(day) {
		s.day, s.used = day, 0
	}
	if limit > 0 && s.used >= limit {
		f.m.refused.WithLabelValues(name, "budget").Inc()
		return fmt.Errorf("weather: %s: %d of %d requests for %s used (weather.daily_quota): %w", name, s.used, limit, day.Format(time.DateOnly), ErrQuota)
	}
	s.used++
	s.requests++
	f.m.quotaUsed.WithLabelValues(name).Set(float64(s.used))
	f.m.quotaLimit.WithLabelValues(name).Set(float64(limit))
	return nil
}

func (f *Fetcher) pause(name string, until time.Time, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.state(name)
	if until.After(s.pausedUntil) {
		s.pausedUntil, s.pauseReason = until, reason
	}
	f.m.pausedUntil.WithLabelValues(name).Set(float64(s.pausedUntil.Unix()))
}

// fetch asks p, with jitter, the concurrency limit and retries.
func (f *Fetcher) fetch(ctx context.Context, p Provider, lat, lon float64) (*Forecast, error) {
	name := p.Name()
	if f.o.Jitter > 0 {
		if err := f.o.Sleep(ctx, time.Duration(f.o.Rand()*float64(f.o.Jitter))); err != nil {
			return nil, fmt.Errorf("weather: %s: %w", name, err)
		}
	}
	for attempt := 1; ; attempt++ {
		if err := f.admit(name); err != nil {
			return nil, err
		}
		fc, err := f.once(ctx, p, lat, lon)
		f.m.requests.WithLabelValues(name, classify(err)).Inc()
		if rl, ok := p.(RateLimiter); ok {
			if rem, calls, ok := rl.RateLimit(); ok {
				f.m.remaining.WithLabelValues(name).Set(float64(rem))
				f.m.calls.WithLabelValues(name).Set(float64(calls))
				f.mu.Lock()
				s := f.state(name)
				s.rlSeen, s.rlRemaining, s.rlCalls = true, rem, calls
				f.mu.Unlock()
			}
		}
		if err == nil {
			return fc, nil
		}
		f.noteFailure(name, err)
		delay, retry := f.retryDelay(name, err, attempt)
		attrs := []any{"provider", name, "attempt", attempt, "lat", lat, "lon", lon}
		var se *StatusError
		if errors.As(err, &se) {
			attrs = append(attrs, "status", se.Code, "reason", se.Reason)
		} else {
			attrs = append(attrs, "reason", err.Error())
		}
		if !retry || attempt >= f.o.Attempts || ctx.Err() != nil {
			f.log.Warn("weather: request failed", attrs...)
			return nil, err
		}
		f.log.Info("weather: request failed; retrying", append(attrs, "retry_in", delay.Round(time.Millisecond).String())...)
		f.m.retries.WithLabelValues(name).Inc()
		if err := f.o.Sleep(ctx, delay); err != nil {
			return nil, fmt.Errorf("weather: %s: %w", name, err)
		}
	}
}

// once is one request under the concurrency limit and the timeout.
func (f *Fetcher) once(ctx context.Context, p Provider, lat, lon float64) (*Forecast, error) {
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("weather: %s: %w", p.Name(), ctx.Err())
	}
	defer func() { <-f.sem }()
	f.m.inFlight.Inc()
	defer f.m.inFlight.Dec()
	ctx, cancel := context.WithTimeout(ctx, f.o.Timeout)
	defer cancel()
	fc, err := p.Forecast(ctx, lat, lon)
	if err == nil && fc == nil {
		err = fmt.Errorf("weather: %s returned no forecast", p.Name())
	}
	return fc, err
}

func (f *Fetcher) noteFailure(name string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.state(name)
	s.failures++
	s.lastError = err.Error()
}

// retryDelay decides whether err is worth another attempt and when.
func (f *Fetcher) retryDelay(name string, err error, attempt int) (time.Duration, bool) {
	now := f.o.Now()
	var se *StatusError
	if errors.As(err, &se) {
		if se.Quota {
			until := se.Reset
			if until.IsZero() || until.Before(now) {
				until = now.Add(time.Hour)
			}
			f.pause(name, until, fmt.Sprintf("HTTP %d: %s", se.Code, se.Reason))
			return 0, false
		}
		if !se.Temporary() {
			return 0, false
		}
		if ra, ok := se.RetryDelay(now); ok {
			if ra > f.o.MaxRetryWait {
				f.pause(name, now.Add(ra), fmt.Sprintf("HTTP %d with Retry-After %s", se.Code, se.RetryAfter))
				return 0, false
			}
			return ra, true
		}
		return f.backoff(attempt), true
	}
	if errors.Is(err, ErrUnreachable) {
		return f.backoff(attempt), true
	}
	return 0, false
}

// backoff is exponential with equal jitter: half fixed so retries never
// bunch at zero, half random so a fleet does not retry in step.
func (f *Fetcher) backoff(attempt int) time.Duration {
	d := f.o.Backoff << min(attempt-1, 20)
	d = min(d, f.o.MaxBackoff)
	return d/2 + time.Duration(f.o.Rand()*float64(d/2))
}

// classify maps an outcome to the bounded "result" label.
func classify(err error) string {
	var se *StatusError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &se):
		switch {
		case se.Code == http.StatusTooManyRequests:
			return "rate_limited"
		case se.Code >= 500:
			return "server_error"
		default:
			return "client_error"
		}
	case errors.Is(err, ErrUnreachable), errors.Is(err, context.DeadlineExceeded):
		return "unreachable"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "invalid"
}

// ProviderStats is one provider's counters, for the status page.
type ProviderStats struct {
	Requests    int       // requests sent since start
	Failures    int       // of which failed
	LastError   string    // the last failure, "" if none
	QuotaUsed   int       // requests in the current UTC day
	QuotaLimit  int       // daily budget, 0 for none
	PausedUntil time.Time // zero unless a 429 or quota paused it
	// RateLimitRemaining and ProviderCalls are the service's own counters
	// where it reports them (Pirate Weather); -1 when unknown.
	RateLimitRemaining, ProviderCalls int64
}

// Stats is a snapshot of a Fetcher.
type Stats struct {
	CacheEntries int
	Providers    map[string]ProviderStats
}

// Stats returns a snapshot for the status page.
func (f *Fetcher) Stats() Stats {
	now := f.o.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	st := Stats{CacheEntries: len(f.cache), Providers: map[string]ProviderStats{}}
	for name, s := range f.prov {
		used := s.used
		if !s.day.Equal(now.UTC().Truncate(24 * time.Hour)) {
			used = 0
		}
		ps := ProviderStats{
			Requests: s.requests, Failures: s.failures, LastError: s.lastError,
			QuotaUsed: used, QuotaLimit: f.o.Quota(name),
			RateLimitRemaining: -1, ProviderCalls: -1,
		}
		if s.rlSeen {
			ps.RateLimitRemaining, ps.ProviderCalls = s.rlRemaining, s.rlCalls
		}
		if now.Before(s.pausedUntil) {
			ps.PausedUntil = s.pausedUntil
		}
		st.Providers[name] = ps
	}
	return st
}
