package agent

import (
	"regexp"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
)

// Stats are the agent's metrics, on a registry of its own (no global state,
// so several agents can live in one test process).
type Stats struct {
	Registry *prometheus.Registry

	online      prometheus.Gauge
	cycles      prometheus.Gauge
	resumes     *prometheus.CounterVec
	resumeLat   *prometheus.HistogramVec
	fetches     *prometheus.CounterVec
	fetchLat    prometheus.Histogram
	publishes   prometheus.Counter
	rebirths    prometheus.Counter
	violations  prometheus.Counter
	connected   prometheus.Gauge
	brokerConns prometheus.Counter
	duplicates  prometheus.Gauge
	versions    *prometheus.GaugeVec
	certExpiry  *certExpiry

	mu       sync.Mutex
	inFlight map[string]int
	// deviceVer is each device's announced version, for versions.
	deviceVer map[string]string
	verCount  map[string]int
}

// maxVersions bounds the version label: devices choose its values, so past
// this many distinct ones the rest count as "other".
const maxVersions = 64

func newStats() *Stats {
	s := &Stats{
		Registry: prometheus.NewRegistry(),
		online:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "glowcast_agent_devices_online", Help: "Devices whose retained status says online."}),
		cycles:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "glowcast_agent_cycles_running", Help: "Devices with a forecast cycle armed or running (at most one each)."}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glowcast_agent_cycle_starts_total",
			Help: "Cycles started or resumed, by path: ready, fast, timer, rebirth, online."}, []string{"path"}),
		resumeLat: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "glowcast_agent_resume_seconds",
			Help:    "Time from the agent's first broker connect to a device's cycle being re-armed, by path.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, []string{"path"}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glowcast_agent_forecast_fetches_total",
			Help: "Forecast requests made for device cycles, by result."}, []string{"result"}),
		fetchLat: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "glowcast_agent_forecast_fetch_seconds",
			Help: "Latency of forecast requests for device cycles.", Buckets: prometheus.DefBuckets}),
		publishes:   prometheus.NewCounter(prometheus.CounterOpts{Name: "glowcast_agent_temps_published_total", Help: "Temps messages published."}),
		rebirths:    prometheus.NewCounter(prometheus.CounterOpts{Name: "glowcast_agent_rebirth_requests_total", Help: "Rebirth requests sent to devices known only from saved state."}),
		violations:  prometheus.NewCounter(prometheus.CounterOpts{Name: "glowcast_agent_parallel_cycle_violations_total", Help: "Times two runs of one device's cycle overlapped (must stay 0)."}),
		connected:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "glowcast_agent_broker_connected", Help: "1 while connected and subscribed."}),
		brokerConns: prometheus.NewCounter(prometheus.CounterOpts{Name: "glowcast_agent_broker_connects_total", Help: "Completed broker connects."}),
		duplicates: prometheus.NewGauge(prometheus.GaugeOpts{Name: "glowcast_agent_duplicate_device_ids",
			Help: "Device ids used by two running devices at once (a cloned SD card); each needs a device_id of its own."}),
		versions: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "glowcast_devices_by_version",
			Help: "Devices by the glowcastd version their latest ready announced."}, []string{"version"}),
		certExpiry: newCertExpiry(),
		inFlight:   map[string]int{},
		deviceVer:  map[string]string{},
		verCount:   map[string]int{},
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "glowcast_build_info",
		Help:        "The running glowcast-agent's version; always 1.",
		ConstLabels: prometheus.Labels{"program": "glowcast-agent", "version": Version, "goversion": runtime.Version()}})
	build.Set(1)
	s.Registry.MustRegister(s.online, s.cycles, s.resumes, s.resumeLat, s.fetches, s.fetchLat, s.publishes,
		s.rebirths, s.violations, s.connected, s.brokerConns, s.duplicates, s.versions, s.certExpiry, build,
		// The live heap the last GC marked, and the GC count: a heap
		// figure per device needs the live bytes, not heap_alloc, which
		// holds garbage until the next cycle.
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.GoRuntimeMetricsRule{
			Matcher: regexp.MustCompile(`^/gc/(heap/live:bytes|cycles/total:gc-cycles)$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return s
}

// deviceVersion records the version a device's ready announced.
func (s *Stats) deviceVersion(id, v string) {
	if v == "" {
		v = "unknown"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.verCount[v] == 0 && len(s.verCount) >= maxVersions {
		v = "other"
	}
	old, had := s.deviceVer[id]
	if had && old == v {
		return
	}
	if had {
		s.verCount[old]--
		s.versions.WithLabelValues(old).Dec()
		if s.verCount[old] == 0 {
			delete(s.verCount, old)
			s.versions.DeleteLabelValues(old)
		}
	}
	s.deviceVer[id] = v
	s.verCount[v]++
	s.versions.WithLabelValues(v).Inc()
}

func (s *Stats) setOnline(n int) { s.online.Set(float64(n)) }
func (s *Stats) setCycles(n int) { s.cycles.Set(float64(n)) }
func (s *Stats) rebirthSent()    { s.rebirths.Inc() }

func (s *Stats) resumed(path string, since time.Duration, beforeConnect bool) {
	s.resumes.WithLabelValues(path).Inc()
	// Latency is about resuming after an agent restart; a device that
	// boots an hour later is not a slow resume.
	if !beforeConnect && (path == PathFast || path == PathTimer || path == PathRebirth) {
		s.resumeLat.WithLabelValues(path).Observe(since.Seconds())
	}
}

func (s *Stats) fetched(err error, d time.Duration) {
	res := "ok"
	if err != nil {
		res = "error"
	}
	s.fetches.WithLabelValues(res).Inc()
	s.fetchLat.Observe(d.Seconds())
}

func (s *Stats) published(string) {
	s.publishes.Inc()
}

func (s *Stats) runStarted(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight[id]++
	if s.inFlight[id] > 1 {
		s.violations.Inc()
	}
}

func (s *Stats) runEnded(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight[id]--
	if s.inFlight[id] == 0 {
		delete(s.inFlight, id)
	}
}

// Resumed returns how many cycles started by each path, read from the
// glowcast_agent_cycle_starts_total counters.
func (s *Stats) Resumed() map[string]int {
	ch := make(chan prometheus.Metric)
	go func() { s.resumes.Collect(ch); close(ch) }()
	out := map[string]int{}
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) != nil {
			continue
		}
		for _, l := range d.GetLabel() {
			if l.GetName() == "path" {
				out[l.GetValue()] = int(d.GetCounter().GetValue())
			}
		}
	}
	return out
}

// Published returns how many temps messages were published.
func (s *Stats) Published() int {
	var d dto.Metric
	s.publishes.Write(&d)
	return int(d.GetCounter().GetValue())
}

// violationsN is how many times two runs of one device overlapped.
func (s *Stats) violationsN() float64 {
	var m = &dto.Metric{}
	s.violations.Write(m)
	return m.GetCounter().GetValue()
}
