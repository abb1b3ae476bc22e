package protocol

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Times in temps are for people and expiry only, but they must be sane: a
// validity of weeks would keep a dead agent's forecast "fresh" for weeks.
func TestTempsTimeBounds(t *testing.T) {
	issued := time.Date(2026, 12, 3, 7, 12, 0, 0, time.UTC)
	tests := []struct {
		name    string
		issued  time.Time
		valid   time.Time
		wantErr string
	}{
		{"two intervals", issued, issued.Add(time.Hour), ""},
		{"48 h", issued, issued.Add(MaxValidity), ""},
		{"valid for weeks", issued, issued.Add(21 * 24 * time.Hour), "valid_until"},
		{"valid before issued", issued, issued.Add(-time.Minute), "valid_until"},
		{"issued in 1970 (a Pi before NTP)", time.Unix(3600, 0).UTC(), time.Unix(7200, 0).UTC(), "issued_at"},
		{"issued in 2999", time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2999, 1, 1, 1, 0, 0, 0, time.UTC), "issued_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hourly := make(TempList, HourlyMin)
			tp := Temps{
				TempsC: TempList{1, 2, 3, 4, 5}, OffsetsH: append([]int(nil), Offsets...),
				IssuedAt: tt.issued, ValidUntil: tt.valid, Location: Location{Lat: 52.5, Lon: 13.4},
				Hourly: Hourly{Start: tt.issued.Truncate(time.Hour), TempsC: hourly},
			}
			b, err := json.Marshal(tp)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ParseTemps(b)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("ParseTemps: %v, want accepted", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("ParseTemps: %v, want an error naming %s", err, tt.wantErr)
			}
		})
	}
}
