package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/glowcast/glowcast/cmd/glowcast/sim"
	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/metrics"
	"github.com/glowcast/glowcast/test/kit/weathertest"
)

// fleetResult is one fleet size on one agent process.
type fleetResult struct {
	devices, live, places int
	connect               time.Duration // sim: all devices connected (or published) and ready
	broker                time.Duration // the broker alone: the retained state an agent reads, to a fresh wildcard subscriber
	brokerMsgs            int
	heap                  float64       // the agent's live heap at steady state
	heapPerDev            float64       // bytes of live heap per idle device
	rssPerDev             float64       // bytes of RSS per device
	rss                   int64         // agent RSS at steady state
	brokerRSS             int64         // Mosquitto's RSS at steady state
	cpu                   float64       // fraction of one core at steady state
	requests              int           // forecast requests in the first interval
	coldTemps             time.Duration // agent connect → every device has temps
	saved                 time.Duration // agent connect → every device's state written
	discovery             time.Duration // agent connect → Home Assistant discovery all published
	rearmed               time.Duration // restarted agent SUBSCRIBE → every cycle re-armed
	rearmedExec           time.Duration // restarted agent exec (its state read first) → every cycle re-armed
	restartRequests       int           // forecast requests in the first minute after the restart
	overdue               int           // places overdue at the restart
}

// sum adds up every series of the metric name in a scrape.
func sum(m metrics.Samples, name string) (v float64, ok bool) {
	for k, x := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			v, ok = v+x, true
		}
	}
	return v, ok
}

// gcCount is how many GC cycles the agent has finished.
func gcCount(ctx context.Context, addr string) (float64, error) {
	m, err := scrape(ctx, addr)
	if err != nil {
		return 0, err
	}
	v, _ := sum(m, "go_gc_cycles_total_gc_cycles_total")
	return v, nil
}

// liveHeap returns the live heap the agent's last GC marked, once a GC
// has finished after the count gc0 — waiting for one if need be (the
// runtime forces one every two minutes), so garbage from the busy start is
// not counted as the devices' heap — and the agent's RSS.
func liveHeap(ctx context.Context, addr string, gc0 float64) (heap, rss float64, err error) {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		m, err := scrape(ctx, addr)
		if err != nil {
			return 0, 0, err
		}
		live, ok := sum(m, "go_gc_heap_live_bytes")
		if !ok {
			return 0, 0, errors.New("bench: the agent's /metrics has no go_gc_heap_live_bytes")
		}
		if gcs, _ := sum(m, "go_gc_cycles_total_gc_cycles_total"); gcs > gc0 {
			rss, _ := sum(m, "process_resident_memory_bytes")
			return live, rss, nil
		}
		if time.Now().After(deadline) {
			return 0, 0, errors.New("bench: the agent ran no GC in 3 minutes")
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// savedCount is how many devices' state files the agent has written.
func savedCount(stateDir string) int {
	ents, err := os.ReadDir(filepath.Join(stateDir, "devices"))
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if name := e.Name(); !strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".json") {
			n++
		}
	}
	return n
}

// fleet measures n simulated devices over the configured places on one agent.
func (r *runner) fleet(ctx context.Context, n int) (*fleetResult, error) {
	res := &fleetResult{devices: n, live: min(n, r.cfg.LiveMax), places: r.cfg.Places}
	dir := filepath.Join(r.dir, fmt.Sprintf("fleet-%d", n))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	b, err := r.startBroker(dir)
	if err != nil {
		return nil, err
	}
	defer b.Kill()
	ws := weathertest.New()
	defer ws.Close()
	w, err := watch(b.URL(), fmt.Sprintf("fleet-%d", n))
	if err != nil {
		return nil, err
	}
	defer w.Close()
	// agentArgs are the agent's flags on broker, the same for every start
	// but for the broker address and what more adds.
	agentArgs := func(broker string, more ...string) []string {
		return slices.Concat([]string{"--broker", broker, "--agent-id", "main", "--weather", "open-meteo", "--weather-url", ws.URL,
			"--geolocate-url", "", "--ip-geolocation-url", "", "--interval", r.cfg.FleetInterval.String(),
			"--restart-grace", "30s", "--log-level", "warn"}, more)
	}
	state := filepath.Join(dir, "agent")
	bin := filepath.Join(r.cfg.Bin, "glowcast-agent")

	// The agent alone, for the baseline its devices are measured against.
	addr := freeAddr()
	base, err := startProc(bin, filepath.Join(dir, "agent-0.log"), agentArgs(b.URL(), "--state-dir", filepath.Join(dir, "empty"), "--http", addr)...)
	if err != nil {
		return nil, err
	}
	if err := poll(ctx, 10*time.Second, 10*time.Millisecond, func() bool { _, err := scrape(ctx, addr); return err == nil }); err != nil {
		base.Signal(syscall.SIGKILL, 10*time.Second)
		return nil, fmt.Errorf("bench: agent metrics at %s: %w\n%s", addr, err, tail(base.Log()))
	}
	time.Sleep(time.Second)
	heap0, rss0, err := liveHeap(ctx, addr, 0)
	base.Signal(syscall.SIGTERM, 10*time.Second)
	if err != nil {
		return nil, err
	}

	cfg := sim.Default()
	cfg.Broker, cfg.Devices, cfg.Retained, cfg.Places = b.URL(), res.live, n-res.live, r.cfg.Places
	t0 := time.Now()
	f, err := sim.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer f.Kill()
	res.connect = time.Since(t0)
	r.logf("fleet %d: devices ready in %v (%d live)", n, res.connect.Round(time.Millisecond), res.live)

	// Cold start: an agent without state meets a connected fleet.
	started := time.Now()
	addr = freeAddr()
	ag, err := startProc(bin, filepath.Join(dir, "agent-1.log"), agentArgs(b.URL(), "--state-dir", state, "--http", addr)...)
	if err != nil {
		return nil, err
	}
	var up time.Time
	if err := poll(ctx, 30*time.Second, time.Millisecond, func() bool { var ok bool; up, ok = agentUpAfter(w, started); return ok }); err != nil {
		ag.Signal(syscall.SIGKILL, 10*time.Second)
		return nil, fmt.Errorf("bench: agent never came online: %w\n%s", err, tail(ag.Log()))
	}
	var last time.Time
	if err := poll(ctx, 10*time.Minute, 20*time.Millisecond, func() bool { var ok bool; ok, last = f.AllTempsSince(up); return ok }); err != nil {
		ag.Signal(syscall.SIGKILL, 10*time.Second)
		return nil, fmt.Errorf("bench: not every device got temps: %w (%+v)\n%s", err, f.Stats(), tail(ag.Log()))
	}
	res.coldTemps = last.Sub(up)
	res.requests = ws.Total()
	r.logf("fleet %d: all temps %v after connect, %d requests", n, res.coldTemps.Round(time.Millisecond), res.requests)

	// Steady state: every cycle armed, nothing due, every device's state
	// written (the writes trail the temps: a few at a time, each with its
	// fsync) and the Home Assistant discovery (on by default: seven
	// retained configs a device) all published.
	if err := poll(ctx, 10*time.Minute, time.Second, func() bool { return savedCount(state) >= n }); err != nil {
		return nil, fmt.Errorf("bench: the agent saved %d of %d devices' state: %w", savedCount(state), n, err)
	}
	res.saved = time.Since(up)
	r.logf("fleet %d: every device's state saved %v after connect", n, res.saved.Round(time.Millisecond))
	err = poll(ctx, 30*time.Minute, time.Second, func() bool {
		m, err := scrape(ctx, addr)
		v, ok := sum(m, "glowcast_agent_hass_discovery_pending")
		return err == nil && ok && v == 0
	})
	if err != nil {
		return nil, fmt.Errorf("bench: Home Assistant discovery still pending: %w", err)
	}
	res.discovery = time.Since(up)
	r.logf("fleet %d: Home Assistant discovery published %v after connect", n, res.discovery.Round(time.Millisecond))
	time.Sleep(5 * time.Second)
	cpu0, _, err := cpuRSS(ag)
	if err != nil {
		return nil, err
	}
	gc0, err := gcCount(ctx, addr)
	if err != nil {
		return nil, err
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(r.cfg.SteadyWindow):
	}
	cpu1, rssNow, err := cpuRSS(ag)
	if err != nil {
		return nil, err
	}
	if _, res.brokerRSS, err = cpuRSS(b.Proc()); err != nil {
		return nil, err
	}
	heap, rss, err := liveHeap(ctx, addr, gc0)
	if err != nil {
		return nil, err
	}
	res.cpu = float64(cpu1-cpu0) / float64(r.cfg.SteadyWindow)
	res.heap = heap
	res.heapPerDev = (heap - heap0) / float64(n)
	res.rssPerDev = (rss - rss0) / float64(n)
	res.rss = rssNow
	r.logf("fleet %d: heap %.0f (base %.0f), rss %.0f (base %.0f), cpu %.2f%%", n, heap, heap0, rss, rss0, 100*res.cpu)

	// The broker alone, on the retained state the restarted agent reads
	// before it arms a cycle: every device's status and ready, and the
	// ownership claims.
	filters := []string{protocol.DeviceTopic("+", protocol.SideDevice, "+"), protocol.OwnerFilter}
	if res.broker, res.brokerMsgs, err = brokerDelivery(ctx, b.Addr(), filters, 2*n, 3*n, 3); err != nil {
		return nil, err
	}
	r.logf("fleet %d: broker delivers %d retained messages in %v", n, res.brokerMsgs, res.broker.Round(time.Millisecond))

	// Migration: SIGKILL and start again on the same state.
	ag.Signal(syscall.SIGKILL, 10*time.Second)
	killed := time.Now()
	before := ws.Total()
	overdue := map[protocol.Location]bool{}
	for _, d := range f.All() {
		if due, err := savedDue(state, d.ID); err != nil || due.Before(killed.Add(r.cfg.AfterWindow)) {
			overdue[*d.Location] = true // due (or unknown) within the window
		}
	}
	res.overdue = len(overdue)
	addr = freeAddr()
	// The restarted agent reaches the broker through a tap that sees its
	// SUBSCRIBE: the re-arm is timed from there, as the probe is.
	tap, err := newSubscribeTap(b.Addr())
	if err != nil {
		return nil, err
	}
	defer tap.Close()
	execed := time.Now()
	ag, err = startProc(bin, filepath.Join(dir, "agent-2.log"), agentArgs(tap.URL(), "--state-dir", state, "--http", addr)...)
	if err != nil {
		return nil, err
	}
	defer ag.Signal(syscall.SIGTERM, 10*time.Second)
	if err := poll(ctx, 30*time.Second, time.Millisecond, func() bool { var ok bool; up, ok = agentUpAfter(w, killed); return ok }); err != nil {
		return nil, fmt.Errorf("bench: restarted agent never came online: %w\n%s", err, tail(ag.Log()))
	}
	subscribed, ok := tap.Subscribed()
	if !ok || subscribed.After(up) {
		return nil, fmt.Errorf("bench: the restarted agent came online without a SUBSCRIBE through the tap")
	}
	err = poll(ctx, 2*time.Minute, 20*time.Millisecond, func() bool {
		m, err := scrape(ctx, addr)
		return err == nil && m["glowcast_agent_cycles_running"] >= float64(n)
	})
	if err != nil {
		return nil, fmt.Errorf("bench: not every cycle re-armed after the restart: %w\n%s", err, tail(ag.Log()))
	}
	res.rearmed = time.Since(subscribed)
	res.rearmedExec = time.Since(execed)
	r.logf("fleet %d: all cycles re-armed %v after its SUBSCRIBE (online status %v after it)", n, res.rearmed.Round(time.Millisecond), up.Sub(subscribed).Round(time.Millisecond))
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(time.Until(up.Add(r.cfg.AfterWindow))):
	}
	res.restartRequests = ws.Total() - before
	return res, nil
}
