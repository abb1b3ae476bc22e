package verify

import (
	"runtime"
	"testing"
	"time"
)

// BenchmarkPlaceMemory reports the heap a place costs once its history is
// full: finished hours live on disk, so what stays is the pending hours.
func BenchmarkPlaceMemory(b *testing.B) {
	const places = 100
	flat := seriesFunc(func(time.Time) float64 { return 10 })
	start := time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)
	var per float64
	for range b.N {
		s, err := New(Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		keys := make([]string, places)
		for i := range keys {
			keys[i] = PlaceKey(float64(i)/100, 10)
		}
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		// 13 hours of fetches fill every place's pending hours; a week
		// of finished hours would add nothing in memory.
		for h := range 13 {
			for _, k := range keys {
				if err := s.Forecast(k, "open-meteo", start.Add(time.Duration(h)*time.Hour), flat); err != nil {
					b.Fatal(err)
				}
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		per = float64(m1.HeapAlloc-m0.HeapAlloc) / places
		runtime.KeepAlive(s)
	}
	b.ReportMetric(per, "B/place")
}

// BenchmarkForecastRepeat is the cost a cycle adds when another device of
// the same place already recorded this hour's fetch: no disk I/O.
func BenchmarkForecastRepeat(b *testing.B) {
	s, err := New(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	flat := seriesFunc(func(time.Time) float64 { return 10 })
	now := time.Date(2025, 11, 1, 12, 0, 0, 0, time.UTC)
	const k = "1.0000,2.0000"
	if err := s.Forecast(k, "open-meteo", now, flat); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Forecast(k, "open-meteo", now, flat); err != nil {
			b.Fatal(err)
		}
	}
}
