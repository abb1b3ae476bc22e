package geo

import (
	"fmt"
	"strings"
	"testing"

	"github.com/glowcast/glowcast/protocol"
)

func TestParseWiFi(t *testing.T) {
	many := `{"access_points":[` + strings.Repeat(`{"bssid":"a4:2b:b0:c1:d2:e3","signal_dbm":-60},`, 100) + `{"bssid":"a4:2b:b0:c1:d2:e3","signal_dbm":-60}]}`
	tests := []struct {
		name, body, want string
	}{
		{"recorded", string(fixture(t, "wifi_scan.json")), ""},
		{"empty list", `{"access_points":[]}`, ""},
		{"bad bssid", `{"access_points":[{"bssid":"nope","signal_dbm":-60}]}`, "access_points[0].bssid"},
		{"eui64 bssid", `{"access_points":[{"bssid":"00:00:00:00:fe:80:00:00","signal_dbm":-60}]}`, "48-bit"},
		{"signal positive", `{"access_points":[{"bssid":"a4:2b:b0:c1:d2:e3","signal_dbm":12}]}`, "signal_dbm 12"},
		{"signal too low", `{"access_points":[{"bssid":"a4:2b:b0:c1:d2:e3","signal_dbm":-200}]}`, "signal_dbm -200"},
		{"long ssid", `{"access_points":[{"bssid":"a4:2b:b0:c1:d2:e3","signal_dbm":-1,"ssid":"` + strings.Repeat("x", 33) + `"}]}`, "ssid longer"},
		{"too many", many, "101 access points"},
		{"bad ip", `{"access_points":[],"public_ip":"example.org"}`, "public_ip"},
		{"malformed", string(fixture(t, "malformed.json")), "wifi: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := protocol.ParseWiFi([]byte(tt.body))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestUsable(t *testing.T) {
	s, err := protocol.ParseWiFi(fixture(t, "wifi_scan.json"))
	if err != nil {
		t.Fatal(err)
	}
	got := protocol.UsableAccessPoints(s.AccessPoints)
	// The phone hotspot (locally administered), the _nomap café and the
	// duplicate are gone; the duplicate keeps its stronger reading.
	want := "[{a4:2b:b0:c1:d2:e3 -58 home} {e8:de:27:12:34:56 -72 Nachbar}]"
	if fmt.Sprint(got) != want {
		t.Errorf("got %v, want %s", got, want)
	}
}
