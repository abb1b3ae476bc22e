package agent

import (
	"runtime"
	"testing"
)

// TestLiveHeapExposed: the benchmark's heap per device is the live heap
// the last GC marked, so /metrics must carry it and the GC count.
func TestLiveHeapExposed(t *testing.T) {
	s := newStats()
	runtime.GC()
	mfs, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			got[mf.GetName()] += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	for _, name := range []string{"go_gc_heap_live_bytes", "go_gc_cycles_total_gc_cycles_total", "go_memstats_heap_alloc_bytes"} {
		if got[name] <= 0 {
			t.Errorf("%s: got %v, want a positive value after a GC", name, got[name])
		}
	}
}
