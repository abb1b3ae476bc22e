package geo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/glowcast/glowcast/protocol"
)

// Public endpoints of the services this package speaks to.
const (
	BeaconDBURL = "https://api.beacondb.net/v1/geolocate"
	GoogleURL   = "https://www.googleapis.com/geolocation/v1/geolocate"
	IPAPIURL    = "http://ip-api.com"
)

// UserAgent identifies glowcast to geolocation services.
var UserAgent = "glowcast/dev"

// Fix is a resolved position.
type Fix struct {
	Location protocol.Location
	// AccuracyM is the service's accuracy radius in metres, 0 if unknown.
	AccuracyM float64
}

// StatusError is a service's answer with a non-success status or an error
// body.
type StatusError struct {
	Service string
	Code    int
	Reason  string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("geo: %s: HTTP %d: %s", e.Service, e.Code, e.Reason)
}

const maxBody = 1 << 20

func do(c *http.Client, req *http.Request, service, secret string) (*http.Response, []byte, error) {
	req.Header.Set("User-Agent", UserAgent)
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		msg := err.Error()
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "REDACTED")
		}
		return nil, nil, fmt.Errorf("geo: %s unreachable: %s", service, msg)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, nil, fmt.Errorf("geo: %s: reading answer: %w", service, err)
	}
	return resp, body, nil
}

// Geolocate resolves access points through a Google Geolocation API
// compatible endpoint: BeaconDB without a key, or Google with one.
type Geolocate struct {
	// URL is the full endpoint, e.g. BeaconDBURL or GoogleURL.
	URL string
	// Key, if set, is sent as ?key=; it never appears in errors.
	Key string
	// Client is the HTTP client; nil means one with a 10 s timeout.
	Client *http.Client
}

type geoRequest struct {
	ConsiderIP       bool        `json:"considerIp"`
	WiFiAccessPoints []geoWiFiAP `json:"wifiAccessPoints"`
}

type geoWiFiAP struct {
	MACAddress     string `json:"macAddress"`
	SignalStrength int    `json:"signalStrength"`
}

// Locate implements WiFiLocator. aps must already be Usable; fewer than
// MinAccessPoints is ErrTooFewAccessPoints without a request.
func (g *Geolocate) Locate(ctx context.Context, aps []protocol.AccessPoint) (Fix, error) {
	if len(aps) < MinAccessPoints {
		return Fix{}, ErrTooFewAccessPoints
	}
	// considerIp false: the request comes from the agent, whose address
	// says nothing about where the device is.
	r := geoRequest{ConsiderIP: false}
	for _, ap := range aps {
		r.WiFiAccessPoints = append(r.WiFiAccessPoints, geoWiFiAP{MACAddress: ap.BSSID, SignalStrength: ap.SignalDBm})
	}
	body, err := json.Marshal(r)
	if err != nil {
		return Fix{}, fmt.Errorf("geo: geolocate: %w", err)
	}
	u := g.URL
	if u == "" {
		u = BeaconDBURL
	}
	if g.Key != "" {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + "key=" + url.QueryEscape(g.Key)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return Fix{}, fmt.Errorf("geo: geolocate: bad URL: %s", strings.ReplaceAll(err.Error(), g.Key, "REDACTED"))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, b, err := do(g.Client, req, "geolocate", g.Key)
	if err != nil {
		return Fix{}, err
	}
	return ParseGeolocate(resp.StatusCode, b)
}

type geoResponse struct {
	Location *struct {
		Lat *float64 `json:"lat"`
		Lng *float64 `json:"lng"`
	} `json:"location"`
	Accuracy float64 `json:"accuracy"`
	Error    *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Errors  []struct {
			Domain  string `json:"domain"`
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"errors"`
	} `json:"error"`
}

// ParseGeolocate reads a geolocate answer with its HTTP status.
func ParseGeolocate(status int, body []byte) (Fix, error) {
	var r geoResponse
	jerr := json.Unmarshal(body, &r)
	if r.Error != nil || status != http.StatusOK {
		reason := http.StatusText(status)
		if r.Error != nil {
			reason = r.Error.Message
			if len(r.Error.Errors) > 0 && r.Error.Errors[0].Reason != "" {
				reason += " (" + r.Error.Errors[0].Reason + ")"
			}
		}
		if status == http.StatusOK {
			status = r.Error.Code
		}
		return Fix{}, &StatusError{Service: "geolocate", Code: status, Reason: reason}
	}
	if jerr != nil {
		return Fix{}, fmt.Errorf("geo: geolocate: malformed answer: %w", jerr)
	}
	if r.Location == nil || r.Location.Lat == nil || r.Location.Lng == nil {
		return Fix{}, errors.New("geo: geolocate: answer has no location.lat/lng")
	}
	loc := protocol.Location{Lat: *r.Location.Lat, Lon: *r.Location.Lng}
	if err := loc.Validate(); err != nil {
		return Fix{}, fmt.Errorf("geo: geolocate: %w", err)
	}
	if r.Accuracy < 0 {
		return Fix{}, fmt.Errorf("geo: geolocate: negative accuracy %v", r.Accuracy)
	}
	return Fix{Location: loc, AccuracyM: r.Accuracy}, nil
}

// ErrPrivateAddress is returned for addresses no public service can place.
var ErrPrivateAddress = errors.New("geo: address is private, loopback, link-local or shared; IP geolocation needs the device's public address")

// ErrRateLimited is returned while the IP service's window is used up.
var ErrRateLimited = errors.New("geo: rate limited")

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// Public reports whether a is an address a geolocation service can place.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && a.IsGlobalUnicast() && !a.IsPrivate() && !cgnat.Contains(a)
}

// IPAPI resolves public addresses through an ip-api.com-style JSON
// endpoint, honouring its X-Rl (requests left) and X-Ttl (seconds until the
// window renews) headers.
type IPAPI struct {
	// URL is the base, the part before /json/IP; empty means IPAPIURL.
	URL string
	// Client is the HTTP client; nil means one with a 10 s timeout.
	Client *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	until time.Time
}

// LocateIP implements IPLocator.
func (p *IPAPI) LocateIP(ctx context.Context, addr netip.Addr) (Fix, error) {
	if !Public(addr) {
		return Fix{}, fmt.Errorf("geo: ip-api: %s: %w", addr, ErrPrivateAddress)
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	p.mu.Lock()
	until := p.until
	p.mu.Unlock()
	if now().Before(until) {
		return Fix{}, fmt.Errorf("geo: ip-api: %w until %s", ErrRateLimited, until.UTC().Format(time.RFC3339))
	}
	base := p.URL
	if base == "" {
		base = IPAPIURL
	}
	u := strings.TrimRight(base, "/") + "/json/" + url.PathEscape(addr.Unmap().String()) + "?fields=status,message,lat,lon,query"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Fix{}, fmt.Errorf("geo: ip-api: bad URL: %w", err)
	}
	resp, b, err := do(p.Client, req, "ip-api", "")
	if err != nil {
		return Fix{}, err
	}
	// X-Rl 0 means the window is used up for X-Ttl seconds; a 429 means
	// we overran it anyway.
	rl, rlOK := headerInt(resp.Header, "X-Rl")
	ttl, ttlOK := headerInt(resp.Header, "X-Ttl")
	if (rlOK && rl <= 0) || resp.StatusCode == http.StatusTooManyRequests {
		wait := 60 * time.Second
		if ttlOK && ttl >= 0 {
			wait = time.Duration(ttl) * time.Second
		}
		p.mu.Lock()
		p.until = now().Add(wait)
		p.mu.Unlock()
	}
	if resp.StatusCode != http.StatusOK {
		return Fix{}, &StatusError{Service: "ip-api", Code: resp.StatusCode, Reason: http.StatusText(resp.StatusCode)}
	}
	return ParseIPAPI(b)
}

func headerInt(h http.Header, name string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(h.Get(name)), 10, 64)
	return n, err == nil
}

type ipapiResponse struct {
	Status  string   `json:"status"`
	Message string   `json:"message"`
	Lat     *float64 `json:"lat"`
	Lon     *float64 `json:"lon"`
	Query   string   `json:"query"`
}

// ParseIPAPI reads an ip-api.com JSON answer.
func ParseIPAPI(body []byte) (Fix, error) {
	var r ipapiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return Fix{}, fmt.Errorf("geo: ip-api: malformed answer: %w", err)
	}
	switch r.Status {
	case "success":
	case "fail":
		if r.Message == "private range" || r.Message == "reserved range" {
			return Fix{}, fmt.Errorf("geo: ip-api: %s: %s: %w", r.Query, r.Message, ErrPrivateAddress)
		}
		return Fix{}, fmt.Errorf("geo: ip-api: %s: %s", r.Query, r.Message)
	default:
		return Fix{}, fmt.Errorf("geo: ip-api: unknown status %q", r.Status)
	}
	if r.Lat == nil || r.Lon == nil {
		return Fix{}, errors.New("geo: ip-api: answer has no lat/lon")
	}
	loc := protocol.Location{Lat: *r.Lat, Lon: *r.Lon}
	if err := loc.Validate(); err != nil {
		return Fix{}, fmt.Errorf("geo: ip-api: %w", err)
	}
	return Fix{Location: loc}, nil
}
