package geo

import (
	"errors"
	"fmt"

	"github.com/glowcast/glowcast/protocol"
)

// MsgWiFi is the name of the device's access point scan message.
const MsgWiFi = protocol.MsgWiFi

// Limits of a wifi message.
const (
	MaxAccessPoints = protocol.MaxAccessPoints
	// MinAccessPoints is the least number of usable access points a
	// geolocation request is made with; with one, the service could reveal
	// where a single, possibly moved, router is.
	MinAccessPoints = 2
)

// AccessPoint and WiFiScan are the wifi message's wire format.
type (
	AccessPoint = protocol.AccessPoint
	WiFiScan    = protocol.WiFiScan
)

// ParseWiFi decodes and validates a wifi payload.
func ParseWiFi(b []byte) (*WiFiScan, error) {
	s, err := protocol.ParseWiFi(b)
	if err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}
	return s, nil
}

// Usable returns the access points fit for a geolocation request (see
// protocol.UsableAccessPoints: the device applied the same rule).
func Usable(aps []AccessPoint) []AccessPoint { return protocol.UsableAccessPoints(aps) }

// ErrTooFewAccessPoints is returned when fewer than MinAccessPoints remain.
var ErrTooFewAccessPoints = errors.New("geo: fewer than 2 usable access points")
