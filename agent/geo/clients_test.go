package geo

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glowcast/glowcast/protocol"
)

type hit struct {
	method, path, query, ua string
	body                    []byte
}

type canned struct {
	status int
	header map[string]string
	body   []byte
}

func serve(t *testing.T, answers ...canned) (*[]hit, string) {
	t.Helper()
	var mu sync.Mutex
	hits := &[]hit{}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		*hits = append(*hits, hit{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("User-Agent"), b})
		a := answers[min(len(*hits)-1, len(answers)-1)]
		mu.Unlock()
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.status)
		w.Write(a.body)
	}))
	t.Cleanup(s.Close)
	return hits, s.URL
}

var twoAPs = []protocol.AccessPoint{{BSSID: "a4:2b:b0:c1:d2:e3", SignalDBm: -58}, {BSSID: "e8:de:27:12:34:56", SignalDBm: -72}}

const key = "AIzaSyFAKE-key_123"

func TestGeolocate(t *testing.T) {
	tests := []struct {
		name    string
		a       canned
		want    Fix
		wantErr string
		code    int
	}{
		{"ok", canned{200, nil, fixture(t, "geolocate_ok.json")}, Fix{Location: locOf(52.516271, 13.377699), AccuracyM: 35.5}, "", 0},
		{"not found", canned{404, nil, fixture(t, "geolocate_notfound.json")}, Fix{}, "Not found (notFound)", 404},
		{"bad key", canned{400, nil, fixture(t, "geolocate_badkey.json")}, Fix{}, "API key not valid", 400},
		{"daily limit", canned{403, nil, fixture(t, "geolocate_dailylimit.json")}, Fix{}, "dailyLimitExceeded", 403},
		{"5xx html", canned{502, nil, []byte("<html>bad gateway</html>")}, Fix{}, "Bad Gateway", 502},
		{"malformed", canned{200, nil, fixture(t, "malformed.json")}, Fix{}, "malformed answer", 0},
		{"no location", canned{200, nil, []byte(`{"accuracy":5}`)}, Fix{}, "no location", 0},
		{"out of range", canned{200, nil, []byte(`{"location":{"lat":91,"lng":0},"accuracy":5}`)}, Fix{}, "latitude", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits, u := serve(t, tt.a)
			g := &Geolocate{URL: u + "/geolocation/v1/geolocate", Key: key}
			got, err := g.Locate(context.Background(), twoAPs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				var se *StatusError
				if tt.code != 0 && (!errors.As(err, &se) || se.Code != tt.code) {
					t.Errorf("got %v, want a StatusError %d", err, tt.code)
				}
				if strings.Contains(err.Error(), key) {
					t.Errorf("error %q shows the key", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			h := (*hits)[0]
			if h.method != http.MethodPost || h.path != "/geolocation/v1/geolocate" || h.query != "key="+key {
				t.Errorf("got %s %s?%s, want POST with key=", h.method, h.path, h.query)
			}
			var req map[string]any
			if err := json.Unmarshal(h.body, &req); err != nil {
				t.Fatal(err)
			}
			if req["considerIp"] != false {
				t.Errorf("considerIp: got %v, want false", req["considerIp"])
			}
			aps := req["wifiAccessPoints"].([]any)
			first := aps[0].(map[string]any)
			if len(aps) != 2 || first["macAddress"] != "a4:2b:b0:c1:d2:e3" || first["signalStrength"] != -58.0 {
				t.Errorf("got wifiAccessPoints %v", aps)
			}
		})
	}
}

func TestGeolocateNeedsTwo(t *testing.T) {
	hits, u := serve(t, canned{200, nil, fixture(t, "geolocate_ok.json")})
	g := &Geolocate{URL: u}
	if _, err := g.Locate(context.Background(), twoAPs[:1]); !errors.Is(err, ErrTooFewAccessPoints) {
		t.Errorf("got %v, want ErrTooFewAccessPoints", err)
	}
	if len(*hits) != 0 {
		t.Errorf("got %d requests, want none", len(*hits))
	}
}

func TestGeolocateUnreachableHidesKey(t *testing.T) {
	s := httptest.NewServer(http.NotFoundHandler())
	s.Close()
	g := &Geolocate{URL: s.URL, Key: key}
	_, err := g.Locate(context.Background(), twoAPs)
	if err == nil || !strings.Contains(err.Error(), "unreachable") || strings.Contains(err.Error(), key) {
		t.Errorf("got %v, want an unreachable error without the key", err)
	}
}

func locOf(lat, lon float64) protocol.Location { return protocol.Location{Lat: lat, Lon: lon} }

func TestIPAPI(t *testing.T) {
	tests := []struct {
		name    string
		a       canned
		ip      string
		want    [2]float64
		wantErr string
		calls   int
	}{
		{"ok", canned{200, map[string]string{"X-Rl": "44", "X-Ttl": "60"}, fixture(t, "ipapi_ok.json")}, "24.48.0.1", [2]float64{45.6085, -73.5493}, "", 1},
		{"full answer", canned{200, nil, fixture(t, "ipapi_full.json")}, "24.48.0.1", [2]float64{45.6085, -73.5493}, "", 1},
		{"service says private", canned{200, nil, fixture(t, "ipapi_private.json")}, "24.48.0.1", [2]float64{}, "private range", 1},
		{"service says reserved", canned{200, nil, fixture(t, "ipapi_reserved.json")}, "24.48.0.1", [2]float64{}, "reserved range", 1},
		{"invalid query", canned{200, nil, fixture(t, "ipapi_invalid.json")}, "24.48.0.1", [2]float64{}, "invalid query", 1},
		{"malformed", canned{200, nil, fixture(t, "malformed.json")}, "24.48.0.1", [2]float64{}, "malformed answer", 1},
		{"private refused locally", canned{200, nil, fixture(t, "ipapi_ok.json")}, "192.168.1.20", [2]float64{}, "private", 0},
		{"cgnat refused locally", canned{200, nil, fixture(t, "ipapi_ok.json")}, "100.64.3.4", [2]float64{}, "private, loopback", 0},
		{"loopback refused locally", canned{200, nil, fixture(t, "ipapi_ok.json")}, "::1", [2]float64{}, "private, loopback", 0},
		{"ula refused locally", canned{200, nil, fixture(t, "ipapi_ok.json")}, "fd00::1", [2]float64{}, "private, loopback", 0},
		{"5xx", canned{503, nil, nil}, "24.48.0.1", [2]float64{}, "HTTP 503", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits, u := serve(t, tt.a)
			p := &IPAPI{URL: u}
			got, err := p.LocateIP(context.Background(), netip.MustParseAddr(tt.ip))
			if len(*hits) != tt.calls {
				t.Errorf("got %d requests, want %d", len(*hits), tt.calls)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Location.Lat != tt.want[0] || got.Location.Lon != tt.want[1] {
				t.Errorf("got %+v, want %v", got.Location, tt.want)
			}
			h := (*hits)[0]
			if h.path != "/json/"+tt.ip || !strings.Contains(h.query, "fields=status%2Cmessage%2Clat%2Clon%2Cquery") && !strings.Contains(h.query, "fields=status,message,lat,lon,query") {
				t.Errorf("got %s?%s, want /json/%s with fields", h.path, h.query, tt.ip)
			}
		})
	}
}

func TestIPAPIRateLimit(t *testing.T) {
	tests := []struct {
		name string
		a    canned
		wait time.Duration
	}{
		{"last request of the window", canned{200, map[string]string{"X-Rl": "0", "X-Ttl": "42"}, fixture(t, "ipapi_ok.json")}, 42 * time.Second},
		{"429 with ttl", canned{429, map[string]string{"X-Rl": "0", "X-Ttl": "17"}, nil}, 17 * time.Second},
		{"429 without headers", canned{429, nil, nil}, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits, u := serve(t, tt.a, canned{200, nil, fixture(t, "ipapi_ok.json")})
			now := time.Date(2025, 11, 25, 12, 0, 0, 0, time.UTC)
			p := &IPAPI{URL: u, Now: func() time.Time { return now }}
			ip := netip.MustParseAddr("24.48.0.1")
			p.LocateIP(context.Background(), ip)
			now = now.Add(tt.wait - time.Second)
			if _, err := p.LocateIP(context.Background(), ip); !errors.Is(err, ErrRateLimited) {
				t.Errorf("inside the window: got %v, want ErrRateLimited", err)
			}
			if len(*hits) != 1 {
				t.Errorf("got %d requests inside the window, want 1", len(*hits))
			}
			now = now.Add(time.Second)
			if _, err := p.LocateIP(context.Background(), ip); err != nil {
				t.Errorf("after the window: got %v, want success", err)
			}
		})
	}
}
