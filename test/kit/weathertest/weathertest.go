// Package weathertest serves a recorded Open-Meteo answer from a local HTTP
// server, re-dated so its hourly series covers now, and counts requests per
// place. Tests and the fault campaign use it in place of the real service;
// every answer it gives has the real service's shape.
package weathertest

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"

	"github.com/glowcast/glowcast/protocol"
)

//go:embed testdata/openmeteo_berlin.json
var recorded []byte

// Server is a local Open-Meteo.
type Server struct {
	*httptest.Server

	mu     sync.Mutex
	counts map[string]int
	total  int
	status int           // non-zero: answer with this status
	retry  string        // Retry-After header sent with status
	broken bool          // answer 200 with a cut-off JSON body
	delay  time.Duration // hold each answer this long
	now    func() time.Time
}

// New starts a server; the caller closes it.
func New() *Server {
	s := &Server{counts: map[string]int{}, now: time.Now}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// NewOn starts a server on l, a listener the caller made (in another
// network namespace, say); the caller closes the server.
func NewOn(l net.Listener) *Server {
	s := &Server{counts: map[string]int{}, now: time.Now}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.Server.Listener.Close()
	s.Server.Listener = l
	s.Server.Start()
	return s
}

// Count is the number of requests for a place (coordinates as sent).
func (s *Server) Count(lat, lon float64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[key(lat, lon)]
}

// Total is the number of requests for any place.
func (s *Server) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// FailWith makes every answer carry status (0 restores success).
func (s *Server) FailWith(status int) {
	s.mu.Lock()
	s.status, s.retry = status, ""
	s.mu.Unlock()
}

// FailWithRetryAfter makes every answer carry status and a Retry-After
// header of after (delta-seconds or an HTTP date), as a rate limit does.
func (s *Server) FailWithRetryAfter(status int, after string) {
	s.mu.Lock()
	s.status, s.retry = status, after
	s.mu.Unlock()
}

// Malformed makes every successful answer a 200 whose JSON body is cut off
// halfway, as a proxy dropping the connection mid-answer leaves it.
func (s *Server) Malformed(on bool) {
	s.mu.Lock()
	s.broken = on
	s.mu.Unlock()
}

// SetClock makes the server date its series by now instead of the system
// clock, for tests that drive the agent with an injected clock.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	s.now = now
	s.mu.Unlock()
}

// Delay holds every answer for d.
func (s *Server) Delay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

func key(lat, lon float64) string { return fmt.Sprintf("%.4f,%.4f", lat, lon) }

// Temp is the temperature the server gives for the hourly slot starting at
// t, so tests can compute what a device must show.
func Temp(t time.Time) float64 {
	h := t.UTC().Hour()
	return math.Round((4+3.5*math.Sin(float64(h-8)/24*2*math.Pi))*10) / 10
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/forecast" {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	lat, err1 := strconv.ParseFloat(q.Get("latitude"), 64)
	lon, err2 := strconv.ParseFloat(q.Get("longitude"), 64)
	if err1 != nil || err2 != nil {
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":true,"reason":"Parameter 'latitude' and 'longitude' must have the same number of elements"}`))
		return
	}
	s.mu.Lock()
	s.counts[key(lat, lon)]++
	s.total++
	status, retry, broken, delay, now := s.status, s.retry, s.broken, s.delay, s.now
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if status != 0 {
		if retry != "" {
			w.Header().Set("Retry-After", retry)
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":true,"reason":"%s"}`, http.StatusText(status))
		return
	}
	// The recorded answer as it came, every field kept; only the place and
	// the hours are this request's.
	var a map[string]any
	if err := json.Unmarshal(recorded, &a); err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	hours := 48
	if v, err := strconv.Atoi(q.Get("forecast_hours")); err == nil && v > 0 && v <= 384 {
		hours = v
	}
	past, _ := strconv.Atoi(q.Get("past_hours"))
	start := now().UTC().Truncate(time.Hour).Add(-time.Duration(past) * time.Hour)
	var times []int64
	var temps []float64
	for i := range past + hours {
		t := start.Add(time.Duration(i) * time.Hour)
		times, temps = append(times, t.Unix()), append(temps, Temp(t))
	}
	a["latitude"], a["longitude"] = lat, lon
	a["hourly"] = map[string]any{"time": times, "temperature_2m": temps}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if broken {
		b, _ := json.Marshal(a)
		w.Write(b[:len(b)/2])
		return
	}
	json.NewEncoder(w).Encode(a)
}

// Shown is what a device must show at t for this server's weather: the
// five slots at floor(t, hour) + protocol.Offsets.
func Shown(t time.Time) []float64 {
	base := t.UTC().Truncate(time.Hour)
	out := make([]float64, len(protocol.Offsets))
	for i, o := range protocol.Offsets {
		out[i] = Temp(base.Add(time.Duration(o) * time.Hour))
	}
	return out
}

// SameTemps reports whether a frame's temps_c (null for missing) equal want.
func SameTemps(got []*float64, want []float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] == nil || *got[i] != want[i] {
			return false
		}
	}
	return true
}
