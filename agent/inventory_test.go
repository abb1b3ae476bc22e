package agent

import (
	"testing"
	"testing/synctest"
	"time"
)

// gaugeValue reads one gauge from the agent's registry, as a scrape would.
func gaugeValue(t *testing.T, s *Stats, name string) float64 {
	t.Helper()
	mfs, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// A device the agent expects whose retained status the broker never sent
// (a queue limit dropped it) is counted as missing and asked to rebirth
// again, with growing pauses, until it answers — not once and then waited
// for forever.
func TestMissingDevicesCountedAndAskedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		h1 := newHarness(t, dir, ResumeFast)
		h1.f.connected()
		h1.announce("lost", "b1", false)
		h1.announce("present", "b2", false)
		synctest.Wait()
		h1.close()

		h2 := newHarness(t, dir, ResumeFast)
		h2.f.registerInventory(h2.stats.Registry)
		h2.f.connected()
		h2.announce("present", "b2", true)
		if got := gaugeValue(t, h2.stats, "glowcast_agent_devices_missing"); got != 1 {
			t.Fatalf("missing devices before the restart timer: got %v, want 1", got)
		}
		time.Sleep(tGrace + time.Second)
		synctest.Wait()
		if got := h2.snd.rebirths("lost"); got != 1 {
			t.Fatalf("rebirth requests after the restart timer: got %d, want 1", got)
		}
		// Still silent: asked again after the grace, then after twice it.
		time.Sleep(tGrace)
		synctest.Wait()
		if got := h2.snd.rebirths("lost"); got != 2 {
			t.Fatalf("rebirth requests one pause later: got %d, want 2", got)
		}
		time.Sleep(2 * tGrace)
		synctest.Wait()
		if got := h2.snd.rebirths("lost"); got != 3 {
			t.Fatalf("rebirth requests two pauses later: got %d, want 3", got)
		}
		if got := h2.snd.rebirths("present"); got != 0 {
			t.Fatalf("rebirth requests to a device whose status arrived: got %d, want 0", got)
		}
		// It answers: no longer missing, no more requests.
		h2.announce("lost", "b1", false)
		if got := gaugeValue(t, h2.stats, "glowcast_agent_devices_missing"); got != 0 {
			t.Fatalf("missing devices after the answer: got %v, want 0", got)
		}
		time.Sleep(10 * tGrace)
		synctest.Wait()
		if got := h2.snd.rebirths("lost"); got != 3 {
			t.Fatalf("rebirth requests after the answer: got %d, want 3", got)
		}
	})
}

// A scrape counts the missing devices under the fleet lock; scrapes in
// quick succession (a benchmark polling every 20 ms) share one count
// instead of walking 100,000 devices each time.
func TestMissingCountSharedBetweenCloseScrapes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		h1 := newHarness(t, dir, ResumeFast)
		h1.f.connected()
		h1.announce("a", "b1", false)
		h1.announce("b", "b2", false)
		synctest.Wait()
		h1.close()

		h2 := newHarness(t, dir, ResumeFast)
		h2.f.registerInventory(h2.stats.Registry)
		h2.f.connected()
		if got := gaugeValue(t, h2.stats, "glowcast_agent_devices_missing"); got != 2 {
			t.Fatalf("missing before any status: got %v, want 2", got)
		}
		h2.announce("a", "b1", true)
		if got := gaugeValue(t, h2.stats, "glowcast_agent_devices_missing"); got != 2 {
			t.Errorf("a scrape at the same instant: got %v, want the shared count 2", got)
		}
		time.Sleep(missingMaxAge)
		if got := gaugeValue(t, h2.stats, "glowcast_agent_devices_missing"); got != 1 {
			t.Errorf("a scrape %v later: got %v, want a new count 1", missingMaxAge, got)
		}
	})
}
