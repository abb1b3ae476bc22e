package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/glowcast/glowcast/cmd/glowcast/sim"
	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/weathertest"
)

// fleetResult is one fleet size on one agent process.
type fleetResult struct {
	devices, places int
	connect         time.Duration // sim: all devices connected and ready
	heapPerDev      float64       // bytes of live heap per idle device
	rssPerDev       float64       // bytes of RSS per device
	rss             int64         // agent RSS at steady state
	cpu             float64       // fraction of one core at steady state
	requests        int           // forecast requests in the first interval
	coldTemps       time.Duration // agent connect → every device has temps
	rearmed         time.Duration // restarted agent connect → every cycle re-armed
	restartRequests int           // forecast requests in the first minute after the restart
	overdue         int           // places overdue at the restart
}

// agentMem samples the agent's live heap (the lowest heap_alloc seen over
// window: a GC ran in it) and its RSS.
func agentMem(ctx context.Context, addr string, window time.Duration) (heap, rss float64, err error) {
	heap = -1
	end := time.Now().Add(window)
	for time.Now().Before(end) {
		m, err := scrape(ctx, addr)
		if err != nil {
			return 0, 0, err
		}
		if h := m["go_memstats_heap_alloc_bytes"]; heap < 0 || h < heap {
			heap = h
		}
		rss = m["process_resident_memory_bytes"]
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return heap, rss, nil
}

// fleet measures n simulated devices over the configured places on one agent.
func (r *runner) fleet(ctx context.Context, n int) (*fleetResult, error) {
	res := &fleetResult{devices: n, places: r.cfg.Places}
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
	args := []string{"--broker", b.URL(), "--agent-id", "main", "--weather", "open-meteo", "--weather-url", ws.URL,
		"--geolocate-url", "", "--ip-geolocation-url", "", "--interval", r.cfg.FleetInterval.String(),
		"--restart-grace", "30s", "--state-dir", filepath.Join(dir, "agent"), "--log-level", "warn"}
	bin := filepath.Join(r.cfg.Bin, "glowcast-agent")

	// The agent alone, for the baseline its devices are measured against.
	addr := freeAddr()
	base, err := startProc(bin, filepath.Join(dir, "agent-0.log"), append(args[:len(args):len(args)], "--state-dir", filepath.Join(dir, "empty"), "--http", addr)...)
	if err != nil {
		return nil, err
	}
	if err := poll(ctx, 10*time.Second, 10*time.Millisecond, func() bool { _, err := scrape(ctx, addr); return err == nil }); err != nil {
		base.Signal(syscall.SIGKILL, 10*time.Second)
		return nil, fmt.Errorf("bench: agent metrics at %s: %w\n%s", addr, err, tail(base.Log()))
	}
	time.Sleep(time.Second)
	heap0, rss0, err := agentMem(ctx, addr, 3*time.Second)
	base.Signal(syscall.SIGTERM, 10*time.Second)
	if err != nil {
		return nil, err
	}

	cfg := sim.Default()
	cfg.Broker, cfg.Devices, cfg.Places = b.URL(), n, r.cfg.Places
	t0 := time.Now()
	f, err := sim.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer f.Kill()
	res.connect = time.Since(t0)
	r.logf("fleet %d: devices ready in %v", n, res.connect.Round(time.Millisecond))

	// Cold start: an agent without state meets a connected fleet.
	started := time.Now()
	addr = freeAddr()
	ag, err := startProc(bin, filepath.Join(dir, "agent-1.log"), append(args, "--http", addr)...)
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

	// Steady state: every cycle armed, nothing due.
	time.Sleep(5 * time.Second)
	cpu0, _, err := cpuRSS(ag)
	if err != nil {
		return nil, err
	}
	heap, rss, err := agentMem(ctx, addr, r.cfg.SteadyWindow)
	if err != nil {
		return nil, err
	}
	cpu1, rssNow, err := cpuRSS(ag)
	if err != nil {
		return nil, err
	}
	res.cpu = float64(cpu1-cpu0) / float64(r.cfg.SteadyWindow)
	res.heapPerDev = (heap - heap0) / float64(n)
	res.rssPerDev = (rss - rss0) / float64(n)
	res.rss = rssNow
	r.logf("fleet %d: heap %.0f (base %.0f), rss %.0f (base %.0f), cpu %.2f%%", n, heap, heap0, rss, rss0, 100*res.cpu)

	// Migration: SIGKILL and start again on the same state.
	ag.Signal(syscall.SIGKILL, 10*time.Second)
	killed := time.Now()
	before := ws.Total()
	overdue := map[protocol.Location]bool{}
	for _, d := range f.Devs {
		if due, err := savedDue(filepath.Join(dir, "agent"), d.ID); err != nil || due.Before(killed.Add(r.cfg.AfterWindow)) {
			overdue[*d.Location] = true // due (or unknown) within the window
		}
	}
	res.overdue = len(overdue)
	addr = freeAddr()
	ag, err = startProc(bin, filepath.Join(dir, "agent-2.log"), append(args, "--http", addr)...)
	if err != nil {
		return nil, err
	}
	defer ag.Signal(syscall.SIGTERM, 10*time.Second)
	if err := poll(ctx, 30*time.Second, time.Millisecond, func() bool { var ok bool; up, ok = agentUpAfter(w, killed); return ok }); err != nil {
		return nil, fmt.Errorf("bench: restarted agent never came online: %w\n%s", err, tail(ag.Log()))
	}
	err = poll(ctx, 2*time.Minute, 20*time.Millisecond, func() bool {
		m, err := scrape(ctx, addr)
		return err == nil && m["glowcast_agent_cycles_running"] >= float64(n)
	})
	if err != nil {
		return nil, fmt.Errorf("bench: not every cycle re-armed after the restart: %w\n%s", err, tail(ag.Log()))
	}
	res.rearmed = time.Since(up)
	r.logf("fleet %d: all cycles re-armed %v after connect", n, res.rearmed.Round(time.Millisecond))
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(time.Until(up.Add(r.cfg.AfterWindow))):
	}
	res.restartRequests = ws.Total() - before
	return res, nil
}
