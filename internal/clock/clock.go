// Package clock is the wall clock both glowcast programs take by
// injection: the system clock in production, a clock moved by an offset in
// the fault campaign (a Pi booting with a stale time, an agent host stepped
// back by NTP); and Sleep, a wait that ends with its context. It owns
// nothing else.
package clock

import (
	"context"
	"os"
	"strings"
	"sync"
	"time"
)

// Clock tells the wall time.
type Clock interface {
	Now() time.Time
}

// System is the host's clock.
type System struct{}

// Now is time.Now.
func (System) Now() time.Time { return time.Now() }

// Sleep waits for d or until ctx ends, and returns ctx's error if it
// ended first.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// EnvSkewFile names the environment variable that the programs' mains read:
// when set, their clock is the system clock moved by the duration written
// in that file (FileOffset). Only the fault campaign sets it.
const EnvSkewFile = "GLOWCAST_TEST_CLOCK_SKEW_FILE"

// FromEnv is FileOffset on $GLOWCAST_TEST_CLOCK_SKEW_FILE when it is set,
// else System.
func FromEnv() Clock {
	if p := os.Getenv(EnvSkewFile); p != "" {
		return NewFileOffset(p)
	}
	return System{}
}

// FileOffset is the system clock moved by the duration written in a file
// ("2h", "-90m"), re-read at most every 100ms, so a test can step a running
// program's clock as NTP or `date -s` would. A missing or unreadable file
// means no offset. Unlike a real step, the monotonic reading moves with
// the offset too: code that orders readings taken across a step must not
// depend on it (the agent bounds every wait by one interval).
type FileOffset struct {
	path string

	mu   sync.Mutex
	read time.Time
	off  time.Duration
}

// NewFileOffset returns a clock offset by the duration in the file at path.
func NewFileOffset(path string) *FileOffset { return &FileOffset{path: path} }

// Now is the system time plus the file's offset.
func (c *FileOffset) Now() time.Time {
	real := time.Now()
	return real.Add(c.offset(real))
}

func (c *FileOffset) offset(real time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.read.IsZero() || real.Sub(c.read) >= 100*time.Millisecond || real.Before(c.read) {
		c.read = real
		c.off = 0
		if b, err := os.ReadFile(c.path); err == nil {
			if d, err := time.ParseDuration(strings.TrimSpace(string(b))); err == nil {
				c.off = d
			}
		}
	}
	return c.off
}
