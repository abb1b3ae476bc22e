package weather

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds what is read from any provider: real answers are well under
// 1 MiB, so anything bigger is a fault, not a forecast.
const maxBody = 4 << 20

// defaultTimeout is the per-request timeout when none is configured.
const defaultTimeout = 10 * time.Second

// answer is one HTTP exchange with a provider.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// get performs one GET. Only failures to reach the service are errors; every
// HTTP status comes back as an answer for the provider to judge. secret, if
// not empty, is removed from any error text because some providers carry the
// key in the URL.
func get(ctx context.Context, c *http.Client, provider, rawURL, secret string, hdr http.Header) (*answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: bad --weather-url: %s", provider, redact(err.Error(), secret))
	}
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("Accept", "application/json")
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if c == nil {
		c = &http.Client{Timeout: defaultTimeout}
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			// Keep the cause (timeout, refused) but never the URL: it may
			// hold the key.
			return nil, fmt.Errorf("%s: %w: %s", provider, ErrUnreachable, redact(ue.Err.Error(), secret))
		}
		return nil, fmt.Errorf("%s: %w: %s", provider, ErrUnreachable, redact(err.Error(), secret))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: reading answer: %s", provider, ErrUnreachable, redact(err.Error(), secret))
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("%s: answer larger than %d bytes", provider, maxBody)
	}
	return &answer{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// HTTP is how a provider reaches its service. Every provider embeds it;
// the zero value reaches the public service.
type HTTP struct {
	// BaseURL replaces the service's public root URL (--weather-url): the
	// part before the API's path, which each provider's doc names.
	BaseURL string
	// Client is the HTTP client; nil means one with a 10 s timeout.
	Client *http.Client
	// Now is the clock that dates answers; nil means time.Now.
	Now func() time.Time
}

// CacheKey implements Keyed: one provider at two URLs is two sources.
func (h HTTP) CacheKey() string { return h.BaseURL }

// root is the service's root URL: BaseURL, or def (the public one) when
// empty, without a trailing slash.
func (h HTTP) root(def string) string { return strings.TrimRight(cmp.Or(h.BaseURL, def), "/") }

// coord renders a latitude or longitude for a query: four decimals, about
// 11 m, finer than any forecast grid.
func coord(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }

// request is one provider's forecast request: where it goes, how an
// error answer reads and how a good one parses.
type request struct {
	HTTP          // the provider's client and clock
	provider, url string
	secret        string // removed from error texts (see get)
	// answered, if set, sees every answer first (a quota's headers).
	answered func(*answer)
	// failed is the error of a non-200 answer, in the provider's words.
	failed func(a *answer, now time.Time) *StatusError
	parse  func([]byte) (*Forecast, error)
}

// forecast performs r: the GET, a non-200 answer as r.failed's error, the
// parse, and the time the forecast was fetched.
func (r request) forecast(ctx context.Context) (*Forecast, error) {
	a, err := get(ctx, r.Client, r.provider, r.url, r.secret, nil)
	if err != nil {
		return nil, err
	}
	if r.answered != nil {
		r.answered(a)
	}
	now := clockOr(r.Now)
	if a.Status != http.StatusOK {
		return nil, r.failed(a, now())
	}
	f, err := r.parse(a.Body)
	if err != nil {
		return nil, err
	}
	f.FetchedAt = now()
	return f, nil
}

func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	s = strings.ReplaceAll(s, secret, "REDACTED")
	return strings.ReplaceAll(s, url.PathEscape(secret), "REDACTED")
}

// statusError builds the StatusError for a non-success answer. reason is the
// provider's own words when it gave any.
func statusError(provider string, a *answer, reason string) *StatusError {
	if reason == "" {
		reason = http.StatusText(a.Status)
	}
	if len(reason) > 200 {
		reason = reason[:200]
	}
	return &StatusError{Provider: provider, Code: a.Status, Reason: reason, RetryAfter: a.Header.Get("Retry-After")}
}

// StatusError is a provider's answer with a non-success HTTP status.
type StatusError struct {
	Provider string
	Code     int
	Reason   string
	// RetryAfter is the raw Retry-After header, seconds or an HTTP date.
	RetryAfter string
	// Quota is true when the provider said a daily or monthly budget is
	// used up: retrying before Reset is pointless.
	Quota bool
	// Reset is when a used-up quota is renewed; zero when unknown.
	Reset time.Time
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s: HTTP %d: %s", e.Provider, e.Code, e.Reason)
	if e.Quota {
		s += " (quota used up"
		if !e.Reset.IsZero() {
			s += ", resets " + e.Reset.UTC().Format(time.RFC3339)
		}
		s += ")"
	}
	return s
}

// RetryDelay interprets Retry-After relative to now: delta-seconds or an
// HTTP date. ok is false when the header is absent or unreadable.
func (e *StatusError) RetryDelay(now time.Time) (d time.Duration, ok bool) {
	v := strings.TrimSpace(e.RetryAfter)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, 7*24*3600)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		// Same cap as the seconds form: a date centuries ahead would
		// otherwise saturate time.Duration and pause a provider for ever.
		return min(max(t.Sub(now), 0), 7*24*time.Hour), true
	}
	return 0, false
}

// Temporary reports whether asking again may help: 429 and 5xx other than
// 501 Not Implemented. 4xx errors are our fault and repeat identically.
func (e *StatusError) Temporary() bool {
	if e.Quota {
		return false
	}
	return e.Code == http.StatusTooManyRequests || (e.Code >= 500 && e.Code != http.StatusNotImplemented)
}

// nextUTCMidnight is when daily budgets of services that count by UTC day
// are renewed.
func nextUTCMidnight(now time.Time) time.Time {
	return now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
}

// headerInt reads an integer header, ok false when absent or malformed.
func headerInt(h http.Header, name string) (int64, bool) {
	v := strings.TrimSpace(h.Get(name))
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// hourly builds a Forecast from (unix time, value) points placed by their
// own timestamps, so a gap or a reordering can never shift a value into
// another hour's slot. Points not on an hour boundary are ignored (MET
// Norway and others may add them); duplicates are an error.
type point struct {
	t   int64
	v   float64
	set bool
}

var nan = math.NaN()

// maxHours bounds a series: 16 days is more than any provider gives.
const maxHours = 24 * 16

func buildHourly(provider string, pts []point) (*Forecast, error) {
	var first, last int64
	n := 0
	for _, p := range pts {
		if p.t%3600 != 0 {
			continue
		}
		if n == 0 || p.t < first {
			first = p.t
		}
		if n == 0 || p.t > last {
			last = p.t
		}
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: answer has no hourly values", provider)
	}
	span := (last - first) / 3600
	if span < 0 || span >= maxHours {
		return nil, fmt.Errorf("%s: hourly times span %d hours, more than %d", provider, span+1, maxHours)
	}
	f := &Forecast{Start: time.Unix(first, 0).UTC(), Provider: provider, Temps: make([]float64, span+1)}
	seen := make([]bool, span+1)
	for i := range f.Temps {
		f.Temps[i] = nan
	}
	for _, p := range pts {
		if p.t%3600 != 0 {
			continue
		}
		i := (p.t - first) / 3600
		if seen[i] {
			return nil, fmt.Errorf("%s: hourly time %s appears twice", provider, time.Unix(p.t, 0).UTC().Format(time.RFC3339))
		}
		seen[i] = true
		if p.set {
			if math.IsNaN(p.v) || p.v < -100 || p.v > 100 {
				return nil, fmt.Errorf("%s: temperature %v at %s is not plausible", provider, p.v, time.Unix(p.t, 0).UTC().Format(time.RFC3339))
			}
			f.Temps[i] = p.v
		}
	}
	return f, nil
}

// UserAgent identifies glowcast to weather services. The agent sets it to
// "glowcast/<version>" at start-up; MET Norway's client adds the contact.
var UserAgent = "glowcast/dev"
