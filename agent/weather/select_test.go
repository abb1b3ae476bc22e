package weather

import (
	"math"
	"testing"
	"time"
)

// series is a Forecast whose value at hour i after start is i.
func series(start time.Time, n int) *Forecast {
	f := &Forecast{Start: start, Temps: make([]float64, n)}
	for i := range f.Temps {
		f.Temps[i] = float64(i)
	}
	return f
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestSelectTimeZones shows that the slot chosen depends only on the
// instant, not on the zone the clock is read in: half-hour zones and DST
// changes do not move it.
func TestSelectTimeZones(t *testing.T) {
	offsets := []int{0, 3, 6, 9, 12}
	f := series(time.Date(2025, 10, 4, 0, 0, 0, 0, time.UTC), 96)
	tests := []struct {
		name string
		now  time.Time
		want []float64
	}{
		// 17:59 in Kolkata (+5:30) is 12:29Z: floor is 12:00Z.
		{"kolkata half hour", time.Date(2025, 10, 4, 17, 59, 0, 0, mustLoc(t, "Asia/Kolkata")), []float64{12, 15, 18, 21, 24}},
		// 18:00 in Kolkata is 12:30Z: still the 12:00Z hour, not 13:00Z.
		{"kolkata local hour boundary", time.Date(2025, 10, 4, 18, 0, 0, 0, mustLoc(t, "Asia/Kolkata")), []float64{12, 15, 18, 21, 24}},
		// Adelaide moves from +9:30 to +10:30 at 02:00 local on 5 Oct
		// (16:30Z on the 4th); the 12 h window spans the change.
		{"adelaide before DST", time.Date(2025, 10, 5, 1, 59, 0, 0, mustLoc(t, "Australia/Adelaide")), []float64{16, 19, 22, 25, 28}},
		{"adelaide after DST", time.Date(2025, 10, 5, 3, 0, 0, 0, mustLoc(t, "Australia/Adelaide")), []float64{16, 19, 22, 25, 28}},
		// Kathmandu is +5:45.
		{"kathmandu quarter hour", time.Date(2025, 10, 4, 6, 0, 0, 0, mustLoc(t, "Asia/Kathmandu")), []float64{0, 3, 6, 9, 12}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := f.Select(tt.now, offsets)
			for i := range tt.want {
				if !same(got[i], tt.want[i]) {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestSelectBerlinDSTEnd(t *testing.T) {
	// 02:30 CEST (+2) on 26 Oct 2025 is 00:30Z; 02:30 CET (+1) an hour
	// later is 01:30Z. Both are "02:30" locally but different slots.
	berlin := mustLoc(t, "Europe/Berlin")
	f := series(time.Date(2025, 10, 26, 0, 0, 0, 0, time.UTC), 24)
	first := time.Date(2025, 10, 26, 0, 30, 0, 0, time.UTC).In(berlin)
	second := first.Add(time.Hour)
	if first.Format("15:04") != second.Format("15:04") {
		t.Fatalf("test setup: got %s and %s, want the same wall clock", first.Format("15:04 MST"), second.Format("15:04 MST"))
	}
	if got := f.Select(first, []int{0}); got[0] != 0 {
		t.Errorf("first 02:30: got %v, want 0", got[0])
	}
	if got := f.Select(second, []int{0}); got[0] != 1 {
		t.Errorf("second 02:30: got %v, want 1", got[0])
	}
}

func TestSelectHourBoundary(t *testing.T) {
	f := series(t0, 24)
	tests := []struct {
		now  time.Time
		want []float64
	}{
		{t0.Add(59*time.Minute + 59*time.Second), []float64{0, 3, 6, 9, 12}},
		{t0.Add(time.Hour), []float64{1, 4, 7, 10, 13}},
		{t0.Add(time.Hour - time.Nanosecond), []float64{0, 3, 6, 9, 12}},
	}
	for _, tt := range tests {
		t.Run(tt.now.Format(time.RFC3339Nano), func(t *testing.T) {
			got := f.Select(tt.now, []int{0, 3, 6, 9, 12})
			for i := range tt.want {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// TestSelectMissingNeverShifts: a gap reads as missing, and the hours past
// the end of a short series too; no neighbour fills in.
func TestSelectMissingNeverShifts(t *testing.T) {
	f, err := ParseOpenMeteo(fixture(t, "openmeteo_nulls.json"))
	if err != nil {
		t.Fatal(err)
	}
	got := f.Select(t0.Add(30*time.Minute), []int{0, 3, 6, 7, 12})
	want := []float64{6.5, math.NaN(), 6.2, math.NaN(), 1.0}
	for i := range want {
		if !same(got[i], want[i]) {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	short, err := ParseOpenMeteo(fixture(t, "openmeteo_short.json"))
	if err != nil {
		t.Fatal(err)
	}
	got = short.Select(t0.Add(2*time.Hour), []int{0, 3, 6})
	if !same(got[0], 4.0) || !same(got[1], 7.0) || !math.IsNaN(got[2]) {
		t.Errorf("short series: got %v, want [4 7 NaN]", got)
	}
	// Before the series starts is missing too.
	if got := short.Select(t0.Add(-time.Hour), []int{0}); !math.IsNaN(got[0]) {
		t.Errorf("before start: got %v, want NaN", got[0])
	}
}

func TestSampleIsLabelled(t *testing.T) {
	now := time.Date(2026, 3, 1, 8, 20, 0, 0, time.UTC)
	f, err := Sample{Now: fixed(now)}.Forecast(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if f.Provider != "sample" || !f.Start.Equal(now.Truncate(time.Hour).Add(-time.Hour)) || math.IsNaN(f.Select(now, []int{12})[0]) {
		t.Errorf("got provider %q start %v, want sample covering now+12h from %v", f.Provider, f.Start, now.Add(-time.Hour).Truncate(time.Hour))
	}
}
