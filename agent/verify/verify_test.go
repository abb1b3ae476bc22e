package verify

import (
	"bytes"
	"encoding/csv"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glowcast/glowcast/agent/weather"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// hours is a forecast given hour by hour (UTC hour of the day → °C).
type hours map[int]float64

func (h hours) At(t time.Time) float64 {
	if t.Minute() != 0 || t.Second() != 0 || t.Day() != 25 {
		return math.NaN()
	}
	if v, ok := h[t.Hour()]; ok {
		return v
	}
	return math.NaN()
}

func at(h, m int) time.Time { return time.Date(2025, 11, 25, h, m, 0, 0, time.UTC) }

func newStore(t *testing.T, dir string) (*Store, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(Options{Dir: dir, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}

// histogram returns count and sum of the series lead, source.
func histogram(t *testing.T, reg *prometheus.Registry, lead, source string) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != MetricName {
			continue
		}
		for _, m := range mf.Metric {
			if label(m, "lead") == lead && label(m, "source") == source {
				return m.Histogram.GetSampleCount(), m.Histogram.GetSampleSum()
			}
		}
	}
	return 0, 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-4 }

// A day worked by hand. Fetch times and hours are the agent's own.
//
//	10:20 fetch A: 13:00 → 5.0 (+3h), 16:00 → 6.0 (+6h), 19:00 → 4.0 (+9h), 22:00 → 2.0 (+12h)
//	13:05 fetch B: 13:00 → 6.5 (the provider's value for the hour under way),
//	               16:00 → 6.8 (+3h)
//	13:40 fetch C: 13:00 → 6.1 (newest fetch wins), 16:00 → 7.0 (+3h, last before the hour)
//	14:01 fetch D: finishes 13:00: +3h error |5.0 − 6.1| = 1.1, provider
//	16:02 sensor 4.5 °C at the lamp: the observation of 16:00
//	16:30 fetch E: 16:00 → 9.9 from the provider, ignored: a sensor spoke
//	17:00 fetch F: finishes 16:00: +3h |7.0 − 4.5| = 2.5, +6h |6.0 − 4.5| = 1.5, sensor
func TestHandWorkedDay(t *testing.T) {
	dir := t.TempDir()
	s, reg := newStore(t, dir)
	const pl = "52.5200,13.4200"
	steps := []struct {
		when time.Time
		f    hours
	}{
		{at(10, 20), hours{10: 3, 13: 5, 16: 6, 19: 4, 22: 2}},
		{at(13, 5), hours{13: 6.5, 16: 6.8}},
		{at(13, 40), hours{13: 6.1, 16: 7.0}},
		{at(14, 1), hours{14: 6}},
	}
	for i, st := range steps {
		if err := s.Forecast(pl, "open-meteo", st.when, st.f); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if i == 1 {
			// The agent restarts (or moves host with its state dir)
			// between fetches: the pending hours come back from disk.
			s, reg = newStore(t, dir)
		}
	}
	if n, sum := histogram(t, reg, "3h", "provider"); n != 1 || !near(sum, 1.1) {
		t.Errorf("3h provider: got n=%d sum=%v, want 1 and 1.1", n, sum)
	}
	if err := s.Sensor(pl, at(16, 2), 4.5); err != nil {
		t.Fatal(err)
	}
	if err := s.Sensor(pl, at(16, 3), 30); err != nil { // second reading: ignored
		t.Fatal(err)
	}
	for _, st := range []struct {
		when time.Time
		f    hours
	}{{at(16, 30), hours{16: 9.9}}, {at(17, 0), hours{17: 5}}} {
		if err := s.Forecast(pl, "open-meteo", st.when, st.f); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		lead, source string
		n            uint64
		sum          float64
	}{
		{"3h", "sensor", 1, 2.5},
		{"6h", "sensor", 1, 1.5},
		{"3h", "provider", 1, 1.1},
		{"9h", "sensor", 0, 0},
	} {
		if n, sum := histogram(t, reg, c.lead, c.source); n != c.n || !near(sum, c.sum) {
			t.Errorf("%s %s: got n=%d sum=%v, want %d and %v", c.lead, c.source, n, sum, c.n, c.sum)
		}
	}

	stats, err := s.Summary(at(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	want := []Stat{
		{"open-meteo", "sensor", "3h", 2.5, 2.5, 1},
		{"open-meteo", "sensor", "6h", 1.5, 1.5, 1},
		{"open-meteo", "provider", "3h", 1.1, -1.1, 1},
	}
	if len(stats) != len(want) {
		t.Fatalf("got %+v, want %+v", stats, want)
	}
	for i := range want {
		g, w := stats[i], want[i]
		if g.Provider != w.Provider || g.Source != w.Source || g.Lead != w.Lead || g.Count != w.Count || !near(g.MAE, w.MAE) || !near(g.Bias, w.Bias) {
			t.Errorf("stat %d: got %+v, want %+v", i, g, w)
		}
	}

	var b bytes.Buffer
	if err := s.WriteCSV(&b, at(0, 0)); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(recs[0], ","); got != "place,hour_utc,provider,source,observed_c,predicted_3h_c,predicted_6h_c,predicted_9h_c,predicted_12h_c,error_3h_c,error_6h_c,error_9h_c,error_12h_c" {
		t.Errorf("header %s", got)
	}
	var row16 []string
	for _, r := range recs[1:] {
		if r[1] == "2025-11-25T16:00:00Z" {
			row16 = r
		}
	}
	if got := strings.Join(row16, ","); got != "52.5200,13.4200,2025-11-25T16:00:00Z,open-meteo,sensor,4.50,7.00,6.00,,,2.50,1.50,," {
		t.Errorf("16:00 row: %s", got)
	}
}

func TestHistoryBounded(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	s, err := New(Options{Dir: dir, Registerer: reg, History: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	const pl = "1.0000,2.0000"
	start := time.Date(2025, 11, 20, 0, 0, 0, 0, time.UTC)
	flat := seriesFunc(func(time.Time) float64 { return 1 })
	for h := range 72 {
		if err := s.Forecast(pl, "met-norway", start.Add(time.Duration(h)*time.Hour), flat); err != nil {
			t.Fatal(err)
		}
	}
	now := start.Add(71 * time.Hour)
	rows, err := s.Rows(pl, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	finished := 0
	for _, r := range rows {
		if r.Hour.Before(now) {
			finished++
			if r.Hour.Before(now.Add(-24 * time.Hour)) {
				t.Errorf("row %v older than the 24 h bound at %v", r.Hour, now)
			}
		}
	}
	if finished != 24 {
		t.Errorf("got %d finished rows, want 24", finished)
	}
}

type seriesFunc func(time.Time) float64

func (f seriesFunc) At(t time.Time) float64 { return f(t) }

// The recorded Open-Meteo answer for Berlin, fetched at 12:30 and again at
// 15:10, is read through the agent's own parser: the +3 h promise for 15:00
// is the recording's 15:00 value, and so is the later observation.
func TestRecordedOpenMeteo(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("..", "weather", "testdata", "openmeteo_berlin.json"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := weather.ParseOpenMeteo(body)
	if err != nil {
		t.Fatal(err)
	}
	s, reg := newStore(t, t.TempDir())
	const pl = "52.5200,13.4200"
	for _, when := range []time.Time{at(12, 30), at(15, 10), at(16, 0)} {
		if err := s.Forecast(pl, "open-meteo", when, f); err != nil {
			t.Fatal(err)
		}
	}
	rows, _ := s.Rows(pl, at(15, 0))
	if len(rows) == 0 || !rows[0].Hour.Equal(at(15, 0)) {
		t.Fatalf("rows %+v", rows)
	}
	if want := f.At(at(15, 0)); !near(rows[0].Pred[0], want) || !near(rows[0].Obs, want) || rows[0].Source != SourceProvider {
		t.Errorf("15:00: got %+v, want pred and obs %v", rows[0], want)
	}
	if n, sum := histogram(t, reg, "3h", "provider"); n != 1 || sum != 0 {
		t.Errorf("got n=%d sum=%v, want 1 and 0", n, sum)
	}
}

func TestHandler(t *testing.T) {
	s, _ := newStore(t, t.TempDir())
	const pl = "52.5200,13.4200"
	s.Forecast(pl, "open-meteo", at(10, 20), hours{13: 5, 16: 6})
	s.Forecast(pl, "open-meteo", at(13, 5), hours{13: 6})
	s.Forecast(pl, "open-meteo", at(14, 5), hours{14: 6})
	srv := httptest.NewServer(s.Handler(func() time.Time { return at(14, 30) }))
	defer srv.Close()
	get := func(path string) (string, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b.String())
		}
		return resp.Header.Get("Content-Type"), b.String()
	}
	ct, body := get("/verification")
	for _, s := range []string{"<td>open-meteo</td><td>provider</td><td>+3h</td><td>1.00</td><td>-1.00</td><td>1</td>", "<svg", `class="observed"`, `class="pred-3h"`, "verification.csv"} {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %q:\n%s", s, body)
		}
	}
	if !strings.HasPrefix(ct, "text/html") {
		t.Errorf("content type %s", ct)
	}
	ct, body = get("/verification.csv")
	if !strings.HasPrefix(ct, "text/csv") || !strings.Contains(body, "2025-11-25T13:00:00Z,open-meteo,provider,6.00,5.00,,,,-1.00") {
		t.Errorf("csv %s:\n%s", ct, body)
	}
}

func TestCorruptHistoryMovedAside(t *testing.T) {
	dir := t.TempDir()
	s, _ := newStore(t, dir)
	const pl = "1.0000,2.0000"
	if err := os.WriteFile(s.path(pl), []byte("{not json"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := s.Forecast(pl, "open-meteo", at(10, 0), hours{13: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.path(pl) + ".corrupt"); err != nil {
		t.Errorf("damaged file not kept aside: %v", err)
	}
}

func TestPlaceKeyRoundTrip(t *testing.T) {
	s, _ := newStore(t, t.TempDir())
	keys := []string{PlaceKey(-33.8688, 151.2093), PlaceKey(52.52, -0.1)}
	for _, k := range keys {
		if err := s.Forecast(k, "sample", at(10, 0), hours{13: 1}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Places()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "-33.8688,151.2093 52.5200,-0.1000" {
		t.Errorf("got %v", got)
	}
}
