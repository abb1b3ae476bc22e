package agent

import (
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// deviceLimiter bounds the messages the agent handles per device per
// second, so one hostile or broken device cannot flood the agent's work
// or its log. Counts live in one map for the current second, cleared when
// the second changes: memory is bounded by the devices heard from in one
// second. Excess messages are dropped and counted; at most one summary
// line is logged per summary interval.
type deviceLimiter struct {
	// Immutable.
	perSecond int
	every     time.Duration
	now       func() time.Time
	log       *slog.Logger
	dropped   prometheus.Counter

	// Mutable.
	mu         sync.Mutex
	window     int64 // unix second of counts
	counts     map[string]int
	sinceLog   int            // drops since the last summary line
	worst      map[string]int // drops per device since the last summary line
	lastLogged time.Time
}

func newDeviceLimiter(perSecond int, every time.Duration, now func() time.Time, log *slog.Logger, reg prometheus.Registerer) *deviceLimiter {
	l := &deviceLimiter{perSecond: perSecond, every: every, now: now, log: log,
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "glowcast_agent_device_messages_dropped_total",
			Help: "Device messages dropped because their device sent more than the per-second limit.",
		}),
		counts: map[string]int{}, worst: map[string]int{}}
	if reg != nil {
		reg.MustRegister(l.dropped)
	}
	return l
}

// allow reports whether a message from device id may be handled now.
func (l *deviceLimiter) allow(id string) bool {
	t := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := t.Unix(); s != l.window {
		l.window = s
		clear(l.counts)
	}
	l.counts[id]++
	if l.counts[id] <= l.perSecond {
		return true
	}
	l.dropped.Inc()
	l.sinceLog++
	if len(l.worst) < 10 || l.worst[id] > 0 {
		l.worst[id]++
	}
	if t.Sub(l.lastLogged) >= l.every {
		l.log.Warn("device messages over the per-device limit dropped",
			"dropped", l.sinceLog, "limit_per_second", l.perSecond, "devices", l.worst)
		l.lastLogged, l.sinceLog = t, 0
		l.worst = map[string]int{}
	}
	return false
}
