package agent

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestDeviceLimiter(t *testing.T) {
	clock := time.Unix(1000, 0)
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	l := newDeviceLimiter(5, time.Minute, func() time.Time { return clock }, slog.New(slog.NewTextHandler(&logs, nil)), reg)

	allowed := 0
	for range 50000 {
		if l.allow("evil") {
			allowed++
		}
	}
	if allowed != 5 {
		t.Errorf("flood of 50000 in one second: allowed %d, want 5", allowed)
	}
	// Another device is not affected by the flood.
	for i := range 5 {
		if !l.allow("good") {
			t.Fatalf("good device's message %d dropped, want allowed", i)
		}
	}
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 {
		t.Fatalf("gather: %v, %d families", err, len(mfs))
	}
	if got := mfs[0].GetMetric()[0].GetCounter().GetValue(); got != 49995 {
		t.Errorf("dropped counter = %v, want 49995", got)
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 {
		t.Errorf("%d log lines for one flood, want 1 summary:\n%s", n, logs.String())
	}
	// Next second: the budget is back.
	clock = clock.Add(time.Second)
	if !l.allow("evil") {
		t.Error("a new second did not restore the device's budget")
	}
	// A summary per interval, not per drop.
	clock = clock.Add(time.Minute)
	for range 100 {
		l.allow("evil")
	}
	if n := strings.Count(logs.String(), "\n"); n != 2 {
		t.Errorf("%d log lines after a second interval, want 2", n)
	}
}
