package wifiscan_test

import (
	"strings"
	"testing"

	"github.com/glowcast/glowcast/device/wifiscan"
	"github.com/glowcast/glowcast/protocol"
)

// TestMessageIsWhatTheAgentReads holds the two sides of the wifi message
// together.
func TestMessageIsWhatTheAgentReads(t *testing.T) {
	aps := []protocol.AccessPoint{
		{BSSID: "A4:2B:B0:C1:D2:E3", SignalDBm: -64, SSID: "home"},
		{BSSID: "da:a1:19:00:11:22", SignalDBm: -40, SSID: "hotspot"},
		{BSSID: "e8:de:27:12:34:56", SignalDBm: -78, SSID: "x_nomap"},
		{BSSID: "1c:3b:f3:aa:bb:cc", SignalDBm: -72},
	}
	b, err := wifiscan.Message(aps, "24.48.0.1")
	if err != nil {
		t.Fatal(err)
	}
	s, err := protocol.ParseWiFi(b)
	if err != nil {
		t.Fatalf("agent refused %s: %v", b, err)
	}
	if s.PublicIP != "24.48.0.1" || len(s.AccessPoints) != 2 || s.AccessPoints[0].BSSID != "a4:2b:b0:c1:d2:e3" || s.AccessPoints[1].SignalDBm != -72 {
		t.Errorf("got %+v, want the two usable access points and the address", s)
	}
	if got := protocol.UsableAccessPoints(s.AccessPoints); len(got) != 2 {
		t.Errorf("agent keeps %d access points, want 2", len(got))
	}
}

func TestMessageCapsCount(t *testing.T) {
	var aps []protocol.AccessPoint
	for i := range 150 {
		aps = append(aps, protocol.AccessPoint{BSSID: "00:11:22:33:" + hex2(i/256) + ":" + hex2(i%256), SignalDBm: -30 - i%90})
	}
	b, err := wifiscan.Message(aps, "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := protocol.ParseWiFi(b)
	if err != nil {
		t.Fatalf("agent refused the capped message: %v", err)
	}
	if len(s.AccessPoints) != protocol.MaxAccessPoints || strings.Contains(string(b), "public_ip") {
		t.Errorf("got %d access points, public_ip present %v; want %d and no public_ip", len(s.AccessPoints), strings.Contains(string(b), "public_ip"), protocol.MaxAccessPoints)
	}
}

func hex2(v int) string {
	const h = "0123456789abcdef"
	return string([]byte{h[v>>4&0xf], h[v&0xf]})
}
