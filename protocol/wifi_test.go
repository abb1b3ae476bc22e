package protocol

import "testing"

func TestLocallyAdministered(t *testing.T) {
	tests := []struct {
		bssid string
		want  bool
	}{
		{"a4:2b:b0:c1:d2:e3", false},
		{"00:1a:2b:3c:4d:5e", false},
		{"02:00:00:00:00:01", true},
		{"da:a1:19:00:11:22", true},
		{"DE:AD:BE:EF:00:01", true},
		{"e8:de:27:12:34:56", false},
		{"nonsense", true},
	}
	for _, tt := range tests {
		if got := LocallyAdministered(tt.bssid); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.bssid, got, tt.want)
		}
	}
}

func TestOptedOut(t *testing.T) {
	for ssid, want := range map[string]bool{"home": false, "home_nomap": true, "Cafe_NoMap": true, "x_optout": true, "": false, "nomap": false} {
		if got := OptedOut(ssid); got != want {
			t.Errorf("%q: got %v, want %v", ssid, got, want)
		}
	}
}
