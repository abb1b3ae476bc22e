package agent

import (
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Per-device budget of relocations: how often one device may move to a
// place that costs upstream requests (a new weather cell, a geolocation
// lookup). A new boot at the same place costs nothing (the forecast cache
// answers), so boots themselves are not counted: a device that announces
// boot after boot at ever new places is what spends the fleet's shared
// daily quota, and this is what stops it.
const (
	relocationBurst  = 4
	relocationRefill = 6 * time.Hour // one more every 6 h: 4 a day
)

// relocationBudget is a token bucket per device. Memory is one entry per
// device that relocated; entries that are full again are dropped.
type relocationBudget struct {
	// Immutable.
	burst   float64
	refill  time.Duration
	log     *slog.Logger
	refused prometheus.Counter

	// Mutable.
	mu   sync.Mutex
	by   map[string]*bucket
	over map[string]bool // devices refused since they last had a token
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newRelocationBudget(burst int, refill time.Duration, log *slog.Logger, reg prometheus.Registerer) *relocationBudget {
	b := &relocationBudget{burst: float64(burst), refill: refill, log: log,
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "glowcast_agent_device_relocations_refused_total",
			Help: "Device relocations (new weather cell or geolocation lookup) refused because the device spent its budget; it keeps its previous place.",
		}),
		by: map[string]*bucket{}, over: map[string]bool{}}
	if reg != nil {
		reg.MustRegister(b.refused)
	}
	return b
}

// take spends one of id's relocations at now, or reports false when none
// is left. The first refusal after a device had tokens is logged; further
// ones only counted, so a flood costs one log line per refill period.
func (b *relocationBudget) take(id string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.by[id]
	if k == nil {
		k = &bucket{tokens: b.burst, at: now}
		b.by[id] = k
	}
	if el := now.Sub(k.at); el > 0 {
		k.tokens = min(b.burst, k.tokens+float64(el)/float64(b.refill))
	}
	k.at = now
	if k.tokens >= 1 {
		k.tokens--
		delete(b.over, id)
		return true
	}
	b.refused.Inc()
	if !b.over[id] {
		b.over[id] = true
		b.log.Warn("device relocation refused: it moved too often, keeping its previous place (each new place can cost upstream weather requests from the fleet's shared quota)",
			"device", id, "burst", int(b.burst), "refill", b.refill.String())
	}
	return false
}
