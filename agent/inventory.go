package agent

import (
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The inventory: devices the agent expects — from its saved state, or from
// an ownership claim its agent id holds — against what the broker sent.
// Every device that ever connected has a retained status (its birth or its
// will), so one whose status never arrived was lost on the way: a broker
// queue limit that dropped part of the subscribe burst, a broker restarted
// without persistence. Such a device would wait forever for a cycle that
// only its ready can start, so the agent asks it to rebirth, again with
// growing pauses while it stays missing.

// maxInventoryWait caps the pause between rebirth rounds.
const maxInventoryWait = time.Hour

// missingLocked lists the expected devices whose retained status has not
// arrived, sorted. Called with mu held.
func (f *fleet) missingLocked() []string {
	var ids []string
	f.eachMissing(func(id string) { ids = append(ids, id) })
	sort.Strings(ids)
	return ids
}

// eachMissing calls fn for every expected device whose retained status has
// not arrived. Called with mu held.
func (f *fleet) eachMissing(fn func(id string)) {
	for id, d := range f.devices {
		// A device with a status or a cycle is not missing: checked first,
		// so the usual fleet costs no shard hashing here.
		if d.statusSeen || d.cycle || d.parked {
			continue
		}
		// Only our own shard's: another shard's devices are its agent's to
		// wake, and a state dir can hold devices that left ours.
		mine := f.own == nil || f.own.Owns(id)
		if mine && (d.saved != nil || f.claimedByUs(id)) {
			fn(id)
		}
	}
	if f.own != nil {
		f.own.eachClaimedByUs(func(id string) {
			if _, ok := f.devices[id]; !ok {
				fn(id)
			}
		})
	}
}

// claimedByUs: our agent id (this process or a previous one) holds the
// device's claim. Called with mu held.
func (f *fleet) claimedByUs(id string) bool {
	return f.own != nil && f.own.claimedByUs(id)
}

// missingCount is the glowcast_agent_devices_missing gauge. Counting walks
// the fleet under the lock every message handler waits on (100,000
// devices: milliseconds, with a shard hash each while statuses are still
// arriving), so scrapes closer than missingMaxAge apart share one count,
// and it allocates and sorts nothing.
func (f *fleet) missingCount() float64 {
	f.missMu.Lock()
	defer f.missMu.Unlock()
	now := time.Now()
	if !f.missAt.IsZero() && now.Sub(f.missAt) < missingMaxAge {
		return f.missN
	}
	f.mu.Lock()
	n := 0
	f.eachMissing(func(string) { n++ })
	f.mu.Unlock()
	f.missAt, f.missN = now, float64(n)
	return f.missN
}

// missingMaxAge is how old a missing-device count a scrape may be given.
const missingMaxAge = time.Second

// registerInventory adds the missing-device gauge to the agent's registry.
func (f *fleet) registerInventory(reg *prometheus.Registry) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "glowcast_agent_devices_missing",
		Help: "Devices expected from saved state or this agent's ownership claims whose retained status has not arrived from the broker.",
	}, f.missingCount))
}

// askMissingLocked sends a rebirth request to every missing device and schedules
// the next round, wait later (doubling, at most maxInventoryWait). Called
// with mu held.
func (f *fleet) askMissingLocked(wait time.Duration) {
	wait = max(wait, time.Second)
	ids := f.missingLocked()
	if len(ids) > 0 {
		f.log.Warn("devices expected but missing from the broker's retained state; asking them to rebirth",
			"missing", len(ids), "first", ids[0], "next_round", wait)
		f.wg.Add(1)
		go f.sendRebirth(ids)
	}
	if f.invT != nil {
		f.invT.Stop()
	}
	next := min(2*wait, maxInventoryWait)
	f.invT = time.AfterFunc(wait, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.closed {
			return
		}
		if len(f.missingLocked()) == 0 {
			f.invT = nil
			return
		}
		f.askMissingLocked(next)
	})
}
