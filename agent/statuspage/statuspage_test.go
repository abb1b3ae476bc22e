package statuspage

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/glowcast/glowcast/ledstrip"
	"github.com/glowcast/glowcast/protocol"
)

var now = time.Date(2026, 3, 1, 12, 20, 0, 0, time.UTC)

// temps makes a forecast issued at issued whose hourly series holds
// hourly[i] for the hour starting at base+i h.
func temps(issued time.Time, hourly ...float64) *protocol.Temps {
	base := issued.Truncate(time.Hour)
	h := make(protocol.TempList, 24)
	for i := range h {
		h[i] = math.NaN()
	}
	copy(h, hourly)
	return &protocol.Temps{
		TempsC: protocol.TempList{hourly[0], h[3], h[6], h[9], h[12]}, OffsetsH: protocol.Offsets,
		IssuedAt: issued, ValidUntil: issued.Add(12 * time.Hour), Location: protocol.Location{Lat: 52.5, Lon: 13.4},
		Hourly: protocol.Hourly{Start: base, TempsC: h}, Provider: "sample",
	}
}

func series(vals map[int]float64) []float64 {
	out := make([]float64, 24)
	for i := range out {
		out[i] = math.NaN()
	}
	for i, v := range vals {
		out[i] = v
	}
	return out
}

func TestSwatchesFollowTheDevice(t *testing.T) {
	sc := ledstrip.DefaultScale()
	hex := func(c float64) string { return ledstrip.Hex(sc.Color(c)) }
	grey := "#5a5a5a" // no data
	fresh := series(map[int]float64{0: -20, 3: 0, 6: 20, 9: 40})
	tests := []struct {
		name string
		d    Device
		want []string
	}{
		{name: "fresh", d: Device{ID: "a", Online: true, Temps: temps(now.Add(-10*time.Minute), fresh...)},
			want: []string{hex(-20), hex(0), hex(20), hex(40), grey}},
		{name: "re-slotted an hour later", d: Device{ID: "a", Online: true, Temps: temps(now.Add(-50*time.Minute), series(map[int]float64{1: 10, 4: 25})...)},
			want: []string{hex(10), hex(25), grey, grey, grey}},
		{name: "waiting", d: Device{ID: "a", Online: true},
			want: []string{"#a0a0a0", "#000000", "#000000", "#000000", "#000000"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Swatches(tc.d, now, Options{})
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("stale is dimmed", func(t *testing.T) {
		d := Device{ID: "a", Temps: temps(now.Add(-2*time.Hour), series(map[int]float64{2: 40})...)}
		got := Swatches(d, now, Options{})
		want := Render(t, ledstrip.Frame{State: ledstrip.StateStale, Temps: []float64{40}})
		if got[0] != want || got[0] == hex(40) {
			t.Errorf("got %s, want the stale look %s (not the fresh %s)", got[0], want, hex(40))
		}
	})
}

func Render(t *testing.T, f ledstrip.Frame) string {
	t.Helper()
	return ledstrip.Hex(ledstrip.Render(f, 1, ledstrip.DefaultScale())[0])
}

func TestPage(t *testing.T) {
	devs := []Device{
		{ID: "shed", Online: false},
		{ID: "kitchen", Online: true, Location: &protocol.Location{Lat: 52.52, Lon: 13.405}, LocationSource: "config",
			Temps: temps(now.Add(-5*time.Minute), series(map[int]float64{0: 20})...)},
	}
	h := New(func() []Device { return devs }, Options{Now: func() time.Time { return now }, Refresh: 7 * time.Second})
	tests := []struct {
		path     string
		code     int
		contains []string
	}{
		{path: "/", code: 200, contains: []string{
			`<noscript><meta http-equiv="refresh" content="7"></noscript>`,
			`<body data-refresh="7">`,
			`2 devices, 1 online`,
			`<tr class="device" data-device="kitchen">`,
			`<td class="state online">online</td>`,
			`<td class="state offline">offline</td>`,
			`52.520, 13.405 <span class="src">(config)</span>`,
			`5m ago <span class="src">sample</span>`,
			`style="background-color: ` + ledstrip.Hex(ledstrip.DefaultScale().Color(20)) + `"`,
			`title="&#43;0h: 20.0 °C (fresh)"`,
			`not located`, `no forecast yet`,
		}},
		{path: "/nope", code: 404},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if rec.Code != tc.code {
				t.Fatalf("status: got %d, want %d", rec.Code, tc.code)
			}
			body, _ := io.ReadAll(rec.Body)
			for _, c := range tc.contains {
				if !strings.Contains(string(body), c) {
					t.Errorf("body lacks %q:\n%s", c, body)
				}
			}
			if tc.code == 200 {
				if strings.Index(string(body), `data-device="kitchen"`) > strings.Index(string(body), `data-device="shed"`) {
					t.Errorf("rows not sorted by device id")
				}
				if n := strings.Count(string(body), `class="led"`); n != 10 {
					t.Errorf("got %d swatches, want 5 per device (10)", n)
				}
			}
		})
	}
	t.Run("empty fleet", func(t *testing.T) {
		rec := httptest.NewRecorder()
		New(func() []Device { return nil }, Options{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if !strings.Contains(rec.Body.String(), "No devices seen yet") {
			t.Errorf("got %q, want the empty-fleet note", rec.Body.String())
		}
	})
}

func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{-time.Second: "just now", 42 * time.Second: "42s ago", 5 * time.Minute: "5m ago", 2*time.Hour + 3*time.Minute: "2h 3m ago", 72 * time.Hour: "3d ago"} {
		t.Run(want, func(t *testing.T) {
			if got := age(d); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

// The page draws what the device draws: sample data is marked as such,
// real data is not.
func TestFrameMarksSample(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		provider, want string
	}{{"sample", "sample"}, {"open-meteo", ""}} {
		d := Device{ID: "kitchen", Temps: &protocol.Temps{
			IssuedAt: now, ValidUntil: now.Add(time.Hour), Provider: tc.provider,
			Hourly: protocol.Hourly{Start: now, TempsC: make([]float64, 13)},
		}}
		if got := Frame(d, now, time.Hour).Source; got != tc.want {
			t.Errorf("provider %q: frame source %q, want %q", tc.provider, got, tc.want)
		}
	}
}

func TestPageShowsVersion(t *testing.T) {
	rec := httptest.NewRecorder()
	devs := []Device{{ID: "shelf", Online: true, Version: "1.4.2"}}
	New(func() []Device { return devs }, Options{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if body := rec.Body.String(); !strings.Contains(body, `<td>shelf <span class="src version">1.4.2</span></td>`) {
		t.Errorf("page does not show the device's version:\n%s", body)
	}
}

// TestPageFollowsReportedSettings: swatches, labels and controls show the
// settings the device reports, by the device's own rules.
func TestPageFollowsReportedSettings(t *testing.T) {
	on, off, forty := true, false, 40
	tp := temps(now.Add(-5*time.Minute), series(map[int]float64{0: 20})...)
	sc := ledstrip.DefaultScale()
	dim := func(c float64, pct int) string {
		f := ledstrip.Frame{State: ledstrip.StateFresh, Temps: []float64{c}, Brightness: &pct}
		return ledstrip.Hex(ledstrip.Render(f, 1, sc)[0])
	}
	for _, tc := range []struct {
		name     string
		rep      *protocol.Reported
		want0    string // first swatch
		contains []string
	}{
		{"no report: on, full", nil, dim(20, 100), []string{`class="power" checked`, `value="100"`, "no report yet", "20.0 °C"}},
		{"dimmed", &protocol.Reported{Version: 3, Applied: protocol.Settings{On: &on, Brightness: &forty, Unit: "C"}}, dim(20, 40),
			[]string{`class="power" checked`, `value="40"`, "on, 40 % (v3)"}},
		{"off", &protocol.Reported{Version: 4, Applied: protocol.Settings{On: &off, Brightness: &forty}}, "#000000",
			[]string{`class="power">`, `value="40"`, "off, 40 % (v4)"}},
		{"in °F", &protocol.Reported{Version: 5, Applied: protocol.Settings{Unit: "F"}}, dim(20, 100), []string{"68.0 °F (fresh)"}},
		{"refused fields said", &protocol.Reported{Version: 6, Applied: protocol.Settings{On: &on}, Errors: map[string]string{"unit": `want "C" or "F"`}}, dim(20, 100),
			[]string{"on, 100 % (v6) · refused unit: want &#34;C&#34; or &#34;F&#34;"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Device{ID: "kitchen", Online: true, Temps: tp, Settings: tc.rep}
			if got := Swatches(d, now, Options{})[0]; got != tc.want0 {
				t.Errorf("first swatch %s, want %s", got, tc.want0)
			}
			rec := httptest.NewRecorder()
			New(func() []Device { return []Device{d} }, Options{Now: func() time.Time { return now }}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			for _, c := range tc.contains {
				if !strings.Contains(rec.Body.String(), c) {
					t.Errorf("page lacks %q", c)
				}
			}
		})
	}
}

// TestPageScriptAndPolicy: the script is served next to the page, and the
// policy allows scripts and requests only from the agent itself.
func TestPageScriptAndPolicy(t *testing.T) {
	h := New(func() []Device { return nil }, Options{})
	for _, path := range []string{"/", "/statuspage.js"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != 200 {
			t.Fatalf("%s: status %d", path, rec.Code)
		}
		csp := rec.Header().Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: policy %q lacks %s", path, csp, want)
			}
		}
		if path == "/" && !strings.Contains(rec.Body.String(), `<script src="statuspage.js" defer></script>`) {
			t.Errorf("the page does not load its script")
		}
		if path == "/statuspage.js" {
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
				t.Errorf("script served as %q", ct)
			}
			if !strings.Contains(rec.Body.String(), "sessionStorage") || !strings.Contains(rec.Body.String(), "/settings") {
				t.Errorf("script lacks the token store or the settings call")
			}
		}
	}
}
