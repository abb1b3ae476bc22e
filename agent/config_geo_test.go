package agent

import (
	"strings"
	"testing"
)

// IP geolocation sends a device's public address to a service: never over
// plain HTTP, and off unless asked for.
func TestIPGeolocationNotPlainHTTP(t *testing.T) {
	if got := Default().Geo.IPURL; got != "" {
		t.Errorf("default geo.ip_geolocation_url %q, want empty (off)", got)
	}
	for _, tc := range []struct {
		url     string
		wantErr bool
	}{
		{"", false},
		{"https://pro.ip-api.com", false},
		{"http://127.0.0.1:8080", false},
		{"http://ip-api.com", true},
	} {
		c := Default()
		c.Geo.IPURL = tc.url
		err := c.Validate()
		if got := err != nil && strings.Contains(err.Error(), "ip_geolocation_url"); got != tc.wantErr {
			t.Errorf("%q: error %v, want error: %v", tc.url, err, tc.wantErr)
		}
	}
}
