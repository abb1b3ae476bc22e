package wifiscan

import (
	"testing"

	"github.com/glowcast/glowcast/protocol"
)

func FuzzParseNmcli(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		aps, err := ParseNmcli(b)
		if err != nil {
			return
		}
		for _, ap := range aps {
			if ap.SignalDBm < -100 || ap.SignalDBm > -50 {
				t.Fatalf("signal %d out of the nmcli range", ap.SignalDBm)
			}
		}
		checkFiltered(t, aps)
	})
}

func FuzzParseIW(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		aps, err := ParseIW(b)
		if err != nil {
			return
		}
		checkFiltered(t, aps)
	})
}

func checkFiltered(t *testing.T, aps []protocol.AccessPoint) {
	for _, ap := range protocol.UsableAccessPoints(aps) {
		if protocol.LocallyAdministered(ap.BSSID) || protocol.OptedOut(ap.SSID) || ap.SignalDBm > 0 || len(ap.SSID) > 32 {
			t.Fatalf("Filter kept %v", ap)
		}
	}
}
