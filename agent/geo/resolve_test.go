package geo

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/glowcast/glowcast/protocol"
)

type fakeWiFi struct {
	fix   Fix
	err   error
	calls int
	got   []AccessPoint
}

func (f *fakeWiFi) Locate(ctx context.Context, aps []AccessPoint) (Fix, error) {
	f.calls++
	f.got = aps
	return f.fix, f.err
}

type fakeIP struct {
	fix   Fix
	err   error
	calls int
}

func (f *fakeIP) LocateIP(ctx context.Context, a netip.Addr) (Fix, error) {
	f.calls++
	return f.fix, f.err
}

func TestResolveOrder(t *testing.T) {
	static := &protocol.Location{Lat: 1, Lon: 1}
	hint := &protocol.Location{Lat: 2, Lon: 2}
	wifiFix := Fix{Location: protocol.Location{Lat: 3, Lon: 3}, AccuracyM: 30}
	ipFix := Fix{Location: protocol.Location{Lat: 4, Lon: 4}, AccuracyM: 5000}
	def := protocol.Location{Lat: 5, Lon: 5}
	scan := &WiFiScan{AccessPoints: twoAPs, PublicIP: "24.48.0.1"}
	down := errors.New("service down")
	tests := []struct {
		name             string
		in               Input
		wifiErr, ipErr   error
		noWiFi, noIP     bool
		want             string
		wantLat          float64
		wifiCall, ipCall int
	}{
		{"config wins", Input{Static: static, Hint: hint, Scan: scan}, nil, nil, false, false, SourceConfig, 1, 0, 0},
		{"device hint next", Input{Hint: hint, Scan: scan}, nil, nil, false, false, SourceDevice, 2, 0, 0},
		{"wifi next", Input{Scan: scan}, nil, nil, false, false, SourceWiFi, 3, 1, 0},
		{"ip when wifi fails", Input{Scan: scan}, down, nil, false, false, SourceIP, 4, 1, 1},
		{"ip when wifi not configured", Input{Scan: scan}, nil, nil, true, false, SourceIP, 4, 0, 1},
		{"ip when too few access points", Input{Scan: &WiFiScan{AccessPoints: twoAPs[:1], PublicIP: "24.48.0.1"}}, nil, nil, false, false, SourceIP, 4, 0, 1},
		{"default when both fail", Input{Scan: scan}, down, down, false, false, SourceDefault, 5, 1, 1},
		{"default without scan", Input{}, nil, nil, false, false, SourceDefault, 5, 0, 0},
		{"private ip never asked", Input{Scan: &WiFiScan{PublicIP: "10.1.2.3"}}, nil, nil, false, false, SourceDefault, 5, 0, 0},
		{"no public ip skips step 4", Input{Scan: &WiFiScan{AccessPoints: twoAPs[:1]}}, nil, nil, false, false, SourceDefault, 5, 0, 0},
		{"invalid static falls through", Input{Static: &protocol.Location{Lat: 95}, Hint: hint}, nil, nil, false, false, SourceDevice, 2, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &fakeWiFi{fix: wifiFix, err: tt.wifiErr}
			ip := &fakeIP{fix: ipFix, err: tt.ipErr}
			var logs bytes.Buffer
			r := &Resolver{WiFi: w, IP: ip, Default: def, Log: slog.New(slog.NewTextHandler(&logs, nil))}
			if tt.noWiFi {
				r.WiFi = nil
			}
			if tt.noIP {
				r.IP = nil
			}
			got := r.Resolve(context.Background(), "dev1", tt.in)
			if got.Source != tt.want || got.Location.Lat != tt.wantLat {
				t.Errorf("got %v, want source %s at lat %v", got, tt.want, tt.wantLat)
			}
			if w.calls != tt.wifiCall || ip.calls != tt.ipCall {
				t.Errorf("got %d wifi and %d ip requests, want %d and %d", w.calls, ip.calls, tt.wifiCall, tt.ipCall)
			}
			if !strings.Contains(logs.String(), "source="+tt.want) || !strings.Contains(logs.String(), "device=dev1") {
				t.Errorf("log %q does not show the source and device", logs.String())
			}
		})
	}
}

func TestResolveSendsOnlyUsable(t *testing.T) {
	s, err := ParseWiFi(fixture(t, "wifi_scan.json"))
	if err != nil {
		t.Fatal(err)
	}
	w := &fakeWiFi{fix: Fix{Location: protocol.Location{Lat: 52.5, Lon: 13.4}}}
	r := &Resolver{WiFi: w, Log: slog.New(slog.DiscardHandler)}
	res := r.Resolve(context.Background(), "d", Input{Scan: s})
	if res.Source != SourceWiFi {
		t.Fatalf("got %v, want wifi", res)
	}
	for _, ap := range w.got {
		if protocol.LocallyAdministered(ap.BSSID) || protocol.OptedOut(ap.SSID) {
			t.Errorf("sent %v to the service", ap)
		}
	}
	if len(w.got) != 2 {
		t.Errorf("got %d access points sent, want 2", len(w.got))
	}
}

func TestResolveOverHTTP(t *testing.T) {
	_, gu := serve(t, canned{200, nil, fixture(t, "geolocate_ok.json")})
	_, iu := serve(t, canned{200, nil, fixture(t, "ipapi_ok.json")})
	now := time.Date(2025, 11, 25, 12, 0, 0, 0, time.UTC)
	r := &Resolver{WiFi: &Geolocate{URL: gu}, IP: &IPAPI{URL: iu}, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }}
	s, err := ParseWiFi(fixture(t, "wifi_scan.json"))
	if err != nil {
		t.Fatal(err)
	}
	got := r.Resolve(context.Background(), "d", Input{Scan: s})
	if got.String() != "52.516271,13.377699 (wifi, ±36 m)" || !got.ResolvedAt.Equal(now) {
		t.Errorf("got %q at %v, want 52.516271,13.377699 (wifi, ±36 m) at %v", got.String(), got.ResolvedAt, now)
	}
}

func TestSavedOutdated(t *testing.T) {
	def := protocol.Location{Lat: 5, Lon: 5}
	key := ConfigKey(nil, def)
	scan := &WiFiScan{AccessPoints: twoAPs}
	ipRes := Save(Result{Source: SourceIP}, "boot1", key, Input{})
	wifiRes := Save(Result{Source: SourceWiFi}, "boot1", key, Input{Scan: scan})
	tried := Save(Result{Source: SourceDefault}, "boot1", key, Input{Scan: scan})
	tests := []struct {
		name string
		s    *Saved
		boot string
		key  string
		in   Input
		want bool
	}{
		{"nothing saved", nil, "boot1", key, Input{}, true},
		{"same boot and config", &ipRes, "boot1", key, Input{}, false},
		{"new boot", &ipRes, "boot2", key, Input{}, true},
		{"config changed", &ipRes, "boot1", ConfigKey(&protocol.Location{Lat: 1, Lon: 2}, def), Input{}, true},
		{"default changed", &ipRes, "boot1", ConfigKey(nil, protocol.Location{Lat: 6, Lon: 5}), Input{}, true},
		{"first scan may beat ip", &ipRes, "boot1", key, Input{Scan: scan}, true},
		{"scan cannot beat wifi", &wifiRes, "boot1", key, Input{Scan: scan}, false},
		{"scan already tried", &tried, "boot1", key, Input{Scan: scan}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Outdated(tt.boot, tt.key, tt.in); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestResolveLogsRoundedCoordinates: the log shows the grid cell, never the
// precise place a device reported or was located at.
func TestResolveLogsRoundedCoordinates(t *testing.T) {
	cases := []struct {
		name      string
		grid      float64
		want, not []string
	}{
		{"default grid", 0, []string{"lat=52.52 ", "lon=13.41 "}, []string{"52.5208", "13.4094"}},
		{"0.1 degree grid", 0.1, []string{"lat=52.5 ", "lon=13.4 "}, []string{"52.52", "13.41"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			r := &Resolver{Log: slog.New(slog.NewTextHandler(&buf, nil)), LogGrid: tc.grid}
			res := r.Resolve(context.Background(), "kitchen", Input{Hint: &protocol.Location{Lat: 52.520817, Lon: 13.409419}})
			if res.Location.Lat != 52.520817 {
				t.Errorf("resolved location %v: the rounding must only touch the log", res.Location)
			}
			for _, w := range tc.want {
				if !strings.Contains(buf.String(), w) {
					t.Errorf("log lacks %q: %s", w, buf.String())
				}
			}
			for _, n := range tc.not {
				if strings.Contains(buf.String(), n) {
					t.Errorf("log shows precise coordinate %q: %s", n, buf.String())
				}
			}
		})
	}
}
