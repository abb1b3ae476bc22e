//go:build glowcast_clockskew

package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestShiftWallKeepsMonotonic(t *testing.T) {
	for _, d := range []time.Duration{2 * time.Hour, -90 * time.Minute, time.Second} {
		t.Run(d.String(), func(t *testing.T) {
			a := time.Now()
			b := a.Add(250 * time.Millisecond)
			sb := shiftWall(b, d)
			if got := sb.Round(0).Sub(b.Round(0)); got != d {
				t.Errorf("wall shift: got %v, want %v", got, d)
			}
			// Monotonic readings on both sides: the jump must not show.
			if got := sb.Sub(a); got != 250*time.Millisecond {
				t.Errorf("monotonic difference across the jump: got %v, want 250ms", got)
			}
		})
	}
}

func TestSkewFileIsRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "skew")
	if err := os.WriteFile(p, []byte("1h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	skewState.mu.Lock()
	skewState.path, skewState.read = p, time.Time{}
	skewState.mu.Unlock()
	t.Cleanup(func() {
		skewState.mu.Lock()
		skewState.path, skewState.read, skewState.skew = "", time.Time{}, 0
		skewState.mu.Unlock()
	})
	got := now().Round(0).Sub(time.Now().Round(0))
	if got < 59*time.Minute || got > 61*time.Minute {
		t.Errorf("now() - time.Now(): got %v, want about 1h", got)
	}
}
