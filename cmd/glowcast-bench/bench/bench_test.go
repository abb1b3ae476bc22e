package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/glowcast/glowcast/agent"
	"github.com/glowcast/glowcast/test/kit/metrics"
)

func TestPct(t *testing.T) {
	ds := make([]time.Duration, 100)
	for i := range ds {
		ds[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		p    int
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {1, time.Millisecond}} {
		t.Run(tc.want.String(), func(t *testing.T) {
			if got := pct(ds, tc.p); got != tc.want {
				t.Errorf("pct(1..100 ms, %d): got %v, want %v", tc.p, got, tc.want)
			}
		})
	}
	if got := pct([]time.Duration{7}, 99); got != 7 {
		t.Errorf("pct of one: got %v, want 7ns", got)
	}
}

// TestSmoke runs every part of the campaign at toy sizes: the tool works
// end to end, and its figures have the right shape.
func TestSmoke(t *testing.T) {
	cfg := Default()
	cfg.Bin, cfg.Module = binDir, "../../.."
	cfg.Parts = []string{"resume", "fleet", "light"}
	cfg.Trials, cfg.RestartGrace, cfg.ResumeInterval = 2, 2*time.Second, time.Second
	// 10 of the 40 devices live, the rest retained state only.
	cfg.Fleets, cfg.LiveMax, cfg.Places = []int{40}, 10, 8
	cfg.SteadyWindow, cfg.AfterWindow = time.Second, 2*time.Second
	cfg.Messages = 20
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fast, timer := rep.Resume[agent.ResumeFast], rep.Resume[agent.ResumeTimerOnly]
	if len(fast) != 2 || len(timer) != 2 {
		t.Fatalf("trials: got %d fast and %d timer-only, want 2 each", len(fast), len(timer))
	}
	for i := range fast {
		if fast[i].armed <= 0 || fast[i].armed >= cfg.RestartGrace {
			t.Errorf("fast trial %d: re-armed after %v, want within (0, %v)", i, fast[i].armed, cfg.RestartGrace)
		}
		if timer[i].armed < cfg.RestartGrace {
			t.Errorf("timer-only trial %d: re-armed after %v, want at least the restart grace %v", i, timer[i].armed, cfg.RestartGrace)
		}
	}
	if len(rep.Fleets) != 1 {
		t.Fatalf("fleets: got %d, want 1", len(rep.Fleets))
	}
	f := rep.Fleets[0]
	if f.devices != 40 || f.live != 10 || f.coldTemps <= 0 || f.rearmed <= 0 || f.requests < f.places {
		t.Errorf("fleet: got %+v, want 40 devices (10 live) served and re-armed, at least %d requests", *f, f.places)
	}
	// 40 statuses and 40 readies, and the agent's claims (at most 40).
	if f.brokerMsgs < 80 || f.brokerMsgs > 120 || f.broker <= 0 || f.heap <= 0 || f.brokerRSS <= 0 {
		t.Errorf("fleet: broker delivered %d retained in %v (RSS %d), agent live heap %.0f B; want 80 to 120 in a positive time, a positive RSS and heap", f.brokerMsgs, f.broker, f.brokerRSS, f.heap)
	}
	if len(rep.Light) != cfg.Messages {
		t.Errorf("light: got %d latencies, want %d", len(rep.Light), cfg.Messages)
	}
	var out bytes.Buffer
	rep.Print(&out)
	for _, want := range []string{"re-armed p99", "fleet 40 devices (10 live) / 8 places", "broker alone, ", "message → SPI write"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRearmVerdict(t *testing.T) {
	for _, tc := range []struct {
		rearmed, broker time.Duration
		want            string
	}{
		{300 * time.Millisecond, 200 * time.Millisecond, "1.5× met"},
		{400 * time.Millisecond, 200 * time.Millisecond, "2.0× met"},
		{time.Second, 200 * time.Millisecond, "5.0× MISSED"},
		{time.Second, 0, "-"},
	} {
		if got := rearmVerdict(tc.rearmed, tc.broker); got != tc.want {
			t.Errorf("rearmVerdict(%v, %v): got %q, want %q", tc.rearmed, tc.broker, got, tc.want)
		}
	}
}

func TestSumOverSeries(t *testing.T) {
	m := metrics.Samples{
		"go_gc_heap_live_bytes":                       100,
		`glowcast_agent_hass_discovery_pending`:       0,
		`glowcast_agent_cycle_starts_total{path="a"}`: 2,
		`glowcast_agent_cycle_starts_total{path="b"}`: 3,
		`glowcast_agent_cycle_starts_totalx`:          7,
	}
	for _, tc := range []struct {
		name   string
		want   float64
		wantOK bool
	}{
		{"go_gc_heap_live_bytes", 100, true},
		{"glowcast_agent_hass_discovery_pending", 0, true},
		{"glowcast_agent_cycle_starts_total", 5, true},
		{"absent", 0, false},
	} {
		if got, ok := sum(m, tc.name); got != tc.want || ok != tc.wantOK {
			t.Errorf("sum(%s): got %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.wantOK)
		}
	}
}
