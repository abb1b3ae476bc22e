//go:build glowcast_clockskew

package agent

import (
	"os"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// The fault campaign's clock: the wall clock jumps by the duration written
// in the file named by GLOWCAST_TEST_CLOCK_SKEW_FILE (e.g. "2h", "-90m"),
// re-read at most every 100ms, while the monotonic reading stays the real
// one — exactly what an NTP step or a manual `date -s` does to a process.
// Timers (monotonic) are unaffected; everything compared or stored as wall
// time (saved due times, issued_at, hourly slots) sees the jump.
//
// This file exists only in builds with the glowcast_clockskew tag.

var skewState struct {
	mu   sync.Mutex
	path string
	read time.Time
	skew time.Duration
}

func init() { skewState.path = os.Getenv("GLOWCAST_TEST_CLOCK_SKEW_FILE") }

func currentSkew(real time.Time) time.Duration {
	s := &skewState
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.path == "" {
		return 0
	}
	if real.Sub(s.read) >= 100*time.Millisecond || s.read.IsZero() {
		s.read = real
		s.skew = 0
		if b, err := os.ReadFile(s.path); err == nil {
			if d, err := time.ParseDuration(strings.TrimSpace(string(b))); err == nil {
				s.skew = d
			}
		}
	}
	return s.skew
}

func now() time.Time { return shiftWall(time.Now(), currentSkew(time.Now())) }

// timeLayout mirrors time.Time (stable since Go 1.9): with the monotonic
// bit set, wall holds the wall seconds and nanoseconds and ext the
// monotonic reading.
type timeLayout struct {
	wall uint64
	ext  int64
	loc  *time.Location
}

// shiftWall moves t's wall clock by d and keeps its monotonic reading.
func shiftWall(t time.Time, d time.Duration) time.Time {
	if d == 0 {
		return t
	}
	shifted := t.Add(d) // moves wall and monotonic alike
	tl := (*timeLayout)(unsafe.Pointer(&t))
	sl := (*timeLayout)(unsafe.Pointer(&shifted))
	const hasMonotonic = 1 << 63
	if tl.wall&hasMonotonic == 0 || sl.wall&hasMonotonic == 0 {
		return shifted.Round(0) // no monotonic reading to keep
	}
	sl.ext = tl.ext // back to the real monotonic reading
	return shifted
}
