package geo

import (
	"github.com/glowcast/glowcast/protocol"
	"testing"
)

func FuzzParseWiFi(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := protocol.ParseWiFi(b)
		if err != nil {
			return
		}
		if len(s.AccessPoints) > protocol.MaxAccessPoints {
			t.Fatalf("%d access points accepted", len(s.AccessPoints))
		}
		for _, ap := range protocol.UsableAccessPoints(s.AccessPoints) {
			if protocol.LocallyAdministered(ap.BSSID) || protocol.OptedOut(ap.SSID) || ap.SignalDBm > 0 {
				t.Fatalf("unusable %v passed", ap)
			}
		}
	})
}

func FuzzParseGeolocate(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, status := range []int{200, 404} {
			fix, err := ParseGeolocate(status, b)
			if err != nil {
				continue
			}
			if status != 200 {
				t.Fatalf("status %d accepted", status)
			}
			if fix.Location.Validate() != nil || fix.AccuracyM < 0 {
				t.Fatalf("bad fix %+v", fix)
			}
		}
	})
}

func FuzzParseIPAPI(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		fix, err := ParseIPAPI(b)
		if err == nil && fix.Location.Validate() != nil {
			t.Fatalf("bad fix %+v", fix)
		}
	})
}
