package protocol

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// MsgWiFi is the device's optional access point scan, sent once per boot
// for location (device → agent).
const MsgWiFi = "wifi"

// MaxAccessPoints is the most access points a wifi message carries.
const MaxAccessPoints = 100

// AccessPoint is one scanned network.
type AccessPoint struct {
	BSSID     string `json:"bssid"`
	SignalDBm int    `json:"signal_dbm"`
	SSID      string `json:"ssid,omitempty"`
}

// WiFiScan is the payload of the wifi message.
type WiFiScan struct {
	AccessPoints []AccessPoint `json:"access_points"`
	// PublicIP is the device's public address, if it knows it; it enables
	// IP geolocation.
	PublicIP string `json:"public_ip,omitempty"`
}

// ParseWiFi decodes and validates a wifi payload.
func ParseWiFi(b []byte) (*WiFiScan, error) {
	if len(b) > MaxPayload {
		return nil, fmt.Errorf("wifi: payload of %d bytes exceeds %d", len(b), MaxPayload)
	}
	var s WiFiScan
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("wifi: %w", err)
	}
	if len(s.AccessPoints) > MaxAccessPoints {
		return nil, fmt.Errorf("wifi: %d access points, at most %d", len(s.AccessPoints), MaxAccessPoints)
	}
	for i, ap := range s.AccessPoints {
		if _, err := NormBSSID(ap.BSSID); err != nil {
			return nil, fmt.Errorf("wifi: access_points[%d].bssid: %w", i, err)
		}
		if ap.SignalDBm < -127 || ap.SignalDBm > 0 {
			return nil, fmt.Errorf("wifi: access_points[%d].signal_dbm %d out of range -127…0", i, ap.SignalDBm)
		}
		if len(ap.SSID) > 32 {
			return nil, fmt.Errorf("wifi: access_points[%d].ssid longer than 32 bytes", i)
		}
	}
	if s.PublicIP != "" {
		if _, err := netip.ParseAddr(s.PublicIP); err != nil {
			return nil, fmt.Errorf("wifi: public_ip %q: %w", s.PublicIP, err)
		}
	}
	return &s, nil
}

// NormBSSID returns a 48-bit BSSID in lower-case colon form.
func NormBSSID(s string) (string, error) {
	hw, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("%q is not a 48-bit MAC address (BSSID)", s)
	}
	return hw.String(), nil
}

// LocallyAdministered reports whether the BSSID has the locally
// administered bit (0x02 of the first octet) set: randomised or
// software-assigned addresses, phones' hotspots, that say nothing about a
// place. Unparseable addresses count as such.
func LocallyAdministered(bssid string) bool {
	hw, err := net.ParseMAC(bssid)
	if err != nil || len(hw) == 0 {
		return true
	}
	return hw[0]&0x02 != 0
}

// OptedOut reports whether the SSID asks not to be mapped ("_nomap", and
// "_optout" used by some services).
func OptedOut(ssid string) bool {
	s := strings.ToLower(ssid)
	return strings.Contains(s, "_nomap") || strings.Contains(s, "_optout")
}

// UsableAccessPoints returns the access points fit for geolocation: valid,
// globally administered, not opted out, each BSSID once at its strongest
// reading, strongest first. An SSID too long for the wire is dropped. The
// device applies it before sending, the agent again before asking a
// service: the same rule on both sides.
func UsableAccessPoints(aps []AccessPoint) []AccessPoint {
	best := map[string]AccessPoint{}
	for _, ap := range aps {
		mac, err := NormBSSID(ap.BSSID)
		if err != nil || LocallyAdministered(mac) || OptedOut(ap.SSID) || mac == "00:00:00:00:00:00" {
			continue
		}
		if ap.SignalDBm < -127 || ap.SignalDBm > 0 {
			continue
		}
		ap.BSSID = mac
		if len(ap.SSID) > 32 {
			ap.SSID = ""
		}
		if b, ok := best[mac]; !ok || ap.SignalDBm > b.SignalDBm {
			best[mac] = ap
		}
	}
	out := make([]AccessPoint, 0, len(best))
	for _, ap := range best {
		out = append(out, ap)
	}
	slices.SortFunc(out, func(a, b AccessPoint) int {
		if a.SignalDBm != b.SignalDBm {
			return b.SignalDBm - a.SignalDBm
		}
		return strings.Compare(a.BSSID, b.BSSID)
	})
	return out
}
