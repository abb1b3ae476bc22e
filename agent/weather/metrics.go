package weather

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Fetcher's Prometheus series. Labels are bounded: provider
// is one of Names (or "sample"), result and reason are fixed words.
type metrics struct {
	requests    *prometheus.CounterVec
	cache       *prometheus.CounterVec
	retries     *prometheus.CounterVec
	refused     *prometheus.CounterVec
	quotaUsed   *prometheus.GaugeVec
	quotaLimit  *prometheus.GaugeVec
	pausedUntil *prometheus.GaugeVec
	remaining   *prometheus.GaugeVec
	calls       *prometheus.GaugeVec
	inFlight    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "glowcast_weather_requests_total",
			Help: "Requests sent to weather providers, by result (ok, rate_limited, client_error, server_error, unreachable, invalid, canceled).",
		}, []string{"provider", "result"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "glowcast_weather_cache_total",
			Help: "Forecast look-ups by outcome (hit, shared, fetched, failed, stale).",
		}, []string{"provider", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "glowcast_weather_retries_total",
			Help: "Requests repeated after a temporary failure.",
		}, []string{"provider"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "glowcast_weather_refused_total",
			Help: "Requests not sent because the daily budget was used up (budget) or the provider asked to wait (paused).",
		}, []string{"provider", "reason"}),
		quotaUsed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "glowcast_weather_quota_used",
			Help: "Requests sent in the current UTC day.",
		}, []string{"provider"}),
		quotaLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "glowcast_weather_quota_limit",
			Help: "Daily request budget (0: none).",
		}, []string{"provider"}),
		pausedUntil: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "glowcast_weather_paused_until_seconds",
			Help: "Unix time until which a provider is not asked, after a quota 429 or a long Retry-After.",
		}, []string{"provider"}),
		remaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "glowcast_weather_ratelimit_remaining",
			Help: "The provider's own Ratelimit-Remaining header, last seen.",
		}, []string{"provider"}),
		calls: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "glowcast_weather_provider_calls",
			Help: "The provider's own call count (X-Forecast-API-Calls), last seen.",
		}, []string{"provider"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "glowcast_weather_requests_in_flight",
			Help: "Requests to weather providers now in progress.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.cache, m.retries, m.refused, m.quotaUsed, m.quotaLimit, m.pausedUntil, m.remaining, m.calls, m.inFlight} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("weather: register metrics: %w", err)
		}
	}
	return m, nil
}
