package agent

import (
	"strings"
	"testing"
	"time"
)

// Regression: a due time resumed from a state file carries no monotonic
// reading, and every due time after it was derived from it, so a
// backward wall-clock step stalled the cycle for the size of the step
// (found by the fault campaign: agent restart with state, then a clock
// step back).
func TestAnchorKeepsMonotonic(t *testing.T) {
	now := time.Now()
	saved := now.Add(90 * time.Second).Round(0) // as read back from JSON
	tests := []struct {
		name string
		t    time.Time
	}{
		{"saved due", saved},
		{"claim due in UTC", saved.UTC()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := anchor(now, tt.t)
			if !got.Equal(tt.t) {
				t.Errorf("anchor: got %v, want the same instant %v", got, tt.t)
			}
			if !strings.Contains(got.String(), " m=") {
				t.Errorf("anchor: got %q without a monotonic reading, want one", got.String())
			}
			next := got.Add(time.Minute)
			if !strings.Contains(next.String(), " m=") {
				t.Errorf("the next due time lost the monotonic reading: %q", next.String())
			}
		})
	}
}
