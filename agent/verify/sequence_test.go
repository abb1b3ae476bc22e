package verify

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glowcast/glowcast/agent/weather"
)

// A provider sequence in testdata/sequences/<provider>: the answers one
// place got over a day, fetch by fetch, in the provider's own response
// shape (every field of the stored recordings in agent/weather/testdata,
// re-dated to each fetch's hour: Open-Meteo from the hour before, as
// past_hours=1 asks; MET Norway hourly for 60 steps then 6-hourly, with
// Expires, Last-Modified and a 304 for a conditional request before a new
// model run; Pirate Weather and OpenWeatherMap 48 hours from the current
// hour). Each fetch revises the whole series by a few tenths, as a new
// model run does, so every error below is a difference of two revisions.
type sequence struct {
	Provider string `json:"provider"`
	Place    struct {
		Lat float64 `json:"lat"`
		Lon float64 `json:"lon"`
	} `json:"place"`
	Fetches []struct {
		At      time.Time         `json:"at"`
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	} `json:"fetches"`
}

// leadWant is a lead's histogram and table row, worked out by hand.
type leadWant struct {
	n          int
	absSum     float64
	mae, bias  float64
	predAt2300 float64 // what the fetch that many hours before 23:00 said of it
}

// Fetches at 11:10, 14:10, 17:10, 20:10, 23:10 and 02:10 (+1 day) revise
// the series by d0…d5. The hour h's observation is the fetch at h:10, its
// +L h prediction the fetch at (h−L):10, so the error is d(h−L) − d(h).
// After 02:10 the hours 14, 17, 20 and 23 are finished:
//
//	14:00  +3 d0−d1
//	17:00  +3 d1−d2   +6 d0−d2
//	20:00  +3 d2−d3   +6 d1−d3   +9 d0−d3
//	23:00  +3 d3−d4   +6 d2−d4   +9 d1−d4   +12 d0−d4
var sequenceWants = []struct {
	provider string
	obs2300  float64 // the 23:10 answer's 23:00 value
	leads    [4]leadWant
}{
	// d = +1.0 +0.6 −0.4 +0.2 0.0 −0.3
	//  3h: +0.4 +1.0 −0.6 +0.2  6h: +1.4 +0.4 −0.4  9h: +0.8 +0.6  12h: +1.0
	{"open-meteo", 1.0, [4]leadWant{
		{4, 2.2, 0.55, 0.25, 1.2},
		{3, 2.2, 2.2 / 3, 1.4 / 3, 0.6},
		{2, 1.4, 0.7, 0.7, 1.6},
		{1, 1.0, 1.0, 1.0, 2.0},
	}},
	// d = −0.8 +0.5 +0.3 −0.2 +0.4 0.0 (the 304 at 20:45 changes nothing)
	//  3h: −1.3 +0.2 +0.5 −0.6  6h: −1.1 +0.7 −0.1  9h: −0.6 +0.1  12h: −1.2
	{"met-norway", 3.5, [4]leadWant{
		{4, 2.6, 0.65, -0.3, 2.9},
		{3, 1.9, 1.9 / 3, -0.5 / 3, 3.4},
		{2, 0.7, 0.35, -0.25, 3.6},
		{1, 1.2, 1.2, -1.2, 2.3},
	}},
	// d = +1.5 −0.5 +0.7 +0.1 −0.6 +0.2
	//  3h: +2.0 −1.2 +0.6 +0.7  6h: +0.8 −0.6 +1.3  9h: +1.4 +0.1  12h: +2.1
	{"pirate-weather", 7.2, [4]leadWant{
		{4, 4.5, 1.125, 0.525, 7.9},
		{3, 2.7, 0.9, 0.5, 8.5},
		{2, 1.5, 0.75, 0.75, 7.3},
		{1, 2.1, 2.1, 2.1, 9.3},
	}},
	// d = +0.4 +0.9 −1.1 +0.6 −0.2 +0.5
	//  3h: −0.5 +2.0 −1.7 +0.8  6h: +1.5 +0.3 −0.9  9h: −0.2 +1.1  12h: +0.6
	{"openweathermap", 7.6, [4]leadWant{
		{4, 5.0, 1.25, 0.15, 8.4},
		{3, 2.7, 0.9, 0.3, 6.7},
		{2, 1.3, 0.65, 0.45, 8.7},
		{1, 0.6, 0.6, 0.6, 8.2},
	}},
}

// providerPath is the request path each provider's client must use.
var providerPath = map[string]string{
	"open-meteo":     "/v1/forecast",
	"met-norway":     "/weatherapi/locationforecast/2.0/compact",
	"pirate-weather": "/forecast/test-key/",
	"openweathermap": "/data/3.0/onecall",
}

// TestRecordedSequences drives each provider's own client through its day
// of answers with the agent's clock injected, files every fetch as the
// agent does, and checks the histogram, the per-lead table and the 23:00
// row against the values worked out by hand above.
func TestRecordedSequences(t *testing.T) {
	for _, want := range sequenceWants {
		t.Run(want.provider, func(t *testing.T) {
			dir := filepath.Join("testdata", "sequences", want.provider)
			b, err := os.ReadFile(filepath.Join(dir, "sequence.json"))
			if err != nil {
				t.Fatal(err)
			}
			var seq sequence
			if err := json.Unmarshal(b, &seq); err != nil {
				t.Fatal(err)
			}

			var mu sync.Mutex
			cur, lastModified := -1, ""
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				ex := seq.Fetches[cur]
				if !strings.HasPrefix(r.URL.Path, providerPath[seq.Provider]) {
					t.Errorf("fetch %d: path %s, want %s…", cur, r.URL.Path, providerPath[seq.Provider])
				}
				if ex.Status == http.StatusNotModified && r.Header.Get("If-Modified-Since") != lastModified {
					t.Errorf("fetch %d: 304 for a request with If-Modified-Since %q, want %q", cur, r.Header.Get("If-Modified-Since"), lastModified)
				}
				for k, v := range ex.Headers {
					w.Header().Set(k, v)
				}
				if v := ex.Headers["Last-Modified"]; v != "" {
					lastModified = v
				}
				w.WriteHeader(ex.Status)
				if ex.Body != "" {
					body, err := os.ReadFile(filepath.Join(dir, ex.Body))
					if err != nil {
						t.Error(err)
					}
					w.Write(body)
				}
			}))
			defer srv.Close()

			var now time.Time
			wc := weather.DefaultConfig()
			wc.Provider, wc.URL, wc.Contact = seq.Provider, srv.URL, "field-test@example.org"
			p, err := weather.New(wc,
				weather.Options{
					Getenv: func(k string) string {
						if k == weather.KeyEnv {
							return "test-key"
						}
						return ""
					},
					Now: func() time.Time { return now },
				})
			if err != nil {
				t.Fatal(err)
			}
			s, reg := newStore(t, t.TempDir())
			key := PlaceKey(seq.Place.Lat, seq.Place.Lon)
			for i, ex := range seq.Fetches {
				mu.Lock()
				cur = i
				mu.Unlock()
				now = ex.At
				f, err := p.Forecast(context.Background(), seq.Place.Lat, seq.Place.Lon)
				if err != nil {
					t.Fatalf("fetch %d at %v: %v", i, ex.At, err)
				}
				if f.Provider != seq.Provider {
					t.Fatalf("provider %q, want %q", f.Provider, seq.Provider)
				}
				if err := s.Forecast(key, f.Provider, now, f); err != nil {
					t.Fatal(err)
				}
			}

			stats, err := s.Summary(time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			byLead := map[string]Stat{}
			for _, st := range stats {
				if st.Provider != seq.Provider || st.Source != SourceProvider {
					t.Errorf("unexpected row %+v", st)
				}
				byLead[st.Lead] = st
			}
			for i, lw := range want.leads {
				lead := LeadLabels[i]
				if n, sum := histogram(t, reg, lead, SourceProvider); n != uint64(lw.n) || !near(sum, lw.absSum) {
					t.Errorf("%s{lead=%q}: n=%d sum=%v, want %d and %v", MetricName, lead, n, sum, lw.n, lw.absSum)
				}
				st := byLead[lead]
				if st.Count != lw.n || !near(st.MAE, lw.mae) || !near(st.Bias, lw.bias) {
					t.Errorf("table %s: %+v, want n=%d MAE %v bias %v", lead, st, lw.n, lw.mae, lw.bias)
				}
			}
			for _, bad := range []string{SourceSensor} {
				for _, lead := range LeadLabels {
					if n, _ := histogram(t, reg, lead, bad); n != 0 {
						t.Errorf("%s %s: %d observations without a sensor", lead, bad, n)
					}
				}
			}

			rows, err := s.Rows(key, time.Date(2025, 11, 25, 23, 0, 0, 0, time.UTC))
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) == 0 || !rows[0].Hour.Equal(time.Date(2025, 11, 25, 23, 0, 0, 0, time.UTC)) {
				t.Fatalf("no 23:00 row: %+v", rows)
			}
			r := rows[0]
			if !near(r.Obs, want.obs2300) || r.Source != SourceProvider || r.Provider != seq.Provider {
				t.Errorf("23:00 observed %v (%s, %s), want %v from the 23:10 answer", r.Obs, r.Source, r.Provider, want.obs2300)
			}
			for i, lw := range want.leads {
				if !near(r.Pred[i], lw.predAt2300) || math.IsNaN(r.Pred[i]) {
					t.Errorf("23:00 +%d h prediction %v, want %v", Leads[i], r.Pred[i], lw.predAt2300)
				}
			}
		})
	}
}
