package agent

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestRelocationBudget(t *testing.T) {
	t0 := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		dev   string
		after time.Duration // since t0
		want  bool
	}{
		{"a", 0, true}, {"a", 0, true}, {"a", 0, true}, {"a", 0, true},
		{"a", time.Minute, false}, // burst spent
		{"a", 2 * time.Minute, false},
		{"b", 2 * time.Minute, true}, // another device has its own budget
		{"a", 6*time.Hour + time.Minute, true},
		{"a", 6*time.Hour + 2*time.Minute, false},
		{"a", 30 * time.Hour, true}, // refilled to the burst, not beyond
		{"a", 30 * time.Hour, true},
		{"a", 30 * time.Hour, true},
		{"a", 30 * time.Hour, true},
		{"a", 30 * time.Hour, false},
	}
	var buf bytes.Buffer
	b := newRelocationBudget(4, 6*time.Hour, slog.New(slog.NewTextHandler(&buf, nil)), nil)
	refused := 0
	for i, s := range steps {
		if got := b.take(s.dev, t0.Add(s.after)); got != s.want {
			t.Errorf("step %d (%s at +%v): got %v, want %v", i, s.dev, s.after, got, s.want)
		}
		if !s.want {
			refused++
		}
	}
	// One line each time a device goes over, not one per refusal.
	if n := strings.Count(buf.String(), "device relocation refused"); n != 3 {
		t.Errorf("%d log lines for %d refusals in 3 over-budget periods, want 3:\n%s", n, refused, buf.String())
	}
}
