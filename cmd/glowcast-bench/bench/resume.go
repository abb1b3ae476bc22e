package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/glowcast/glowcast/agent"
)

// resumeResult is one trial of a migration: the agent SIGKILLed and started
// again while a device runs.
type resumeResult struct {
	armed time.Duration // new agent's broker connect → cycle re-armed
	temps time.Duration // new agent's broker connect → next temps on the device
	late  time.Duration // next temps − the time they were due
}

const (
	benchDevice = "bench-dev"
	benchLoc    = "52.52,13.40"
)

func (r *runner) agentArgs(brokerURL, stateDir, strategy string, extra ...string) []string {
	args := []string{"--broker", brokerURL, "--agent-id", "main", "--weather", "open-meteo", "--weather-url", r.weather.URL,
		"--geolocate-url", "", "--ip-geolocation-url", "", "--location", benchLoc, "--resume", strategy,
		"--state-dir", stateDir, "--http", "127.0.0.1:0", "--log-level", "info"}
	return append(args, extra...)
}

// resumeTrial runs one migration with its own broker, device and agent.
func (r *runner) resumeTrial(ctx context.Context, strategy string, k int) (resumeResult, error) {
	var res resumeResult
	dir := filepath.Join(r.dir, fmt.Sprintf("resume-%s-%02d", strategy, k))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return res, err
	}
	b, err := r.startBroker(dir)
	if err != nil {
		return res, err
	}
	defer b.Kill()
	w, err := watch(b.URL(), fmt.Sprintf("%s-%d", strategy, k))
	if err != nil {
		return res, err
	}
	defer w.Close()
	dev, err := startProc(filepath.Join(r.cfg.Bin, "glowcastd"), filepath.Join(dir, "device.log"),
		"--broker", b.URL(), "--device-id", benchDevice, "--led", "none", "--state-dir", filepath.Join(dir, "device"), "--log-level", "info")
	if err != nil {
		return res, err
	}
	defer dev.Signal(syscall.SIGTERM, 10*time.Second)
	args := r.agentArgs(b.URL(), filepath.Join(dir, "agent"), strategy,
		"--interval", r.cfg.ResumeInterval.String(), "--restart-grace", r.cfg.RestartGrace.String())
	ag, err := startProc(filepath.Join(r.cfg.Bin, "glowcast-agent"), filepath.Join(dir, "agent-1.log"), args...)
	if err != nil {
		return res, err
	}
	if err := poll(ctx, r.cfg.RestartGrace+30*time.Second, 10*time.Millisecond, func() bool { return len(logTimes(dev, "temps received")) > 0 }); err != nil {
		ag.Signal(syscall.SIGKILL, 10*time.Second)
		return res, fmt.Errorf("bench: first temps: %w\n%s\n%s", err, tail(ag.Log()), tail(dev.Log()))
	}
	// Kill at a random phase of the cycle.
	time.Sleep(time.Duration(rand.Int64N(int64(r.cfg.ResumeInterval))))
	ag.Signal(syscall.SIGKILL, 10*time.Second)
	killed := time.Now()
	due, _ := savedDue(filepath.Join(dir, "agent"), benchDevice)

	ag, err = startProc(filepath.Join(r.cfg.Bin, "glowcast-agent"), filepath.Join(dir, "agent-2.log"), args...)
	if err != nil {
		return res, err
	}
	defer ag.Signal(syscall.SIGTERM, 10*time.Second)
	var up time.Time
	if err := poll(ctx, 10*time.Second, time.Millisecond, func() bool { var ok bool; up, ok = agentUpAfter(w, killed); return ok }); err != nil {
		return res, fmt.Errorf("bench: restarted agent never came online: %w\n%s", err, tail(ag.Log()))
	}
	addr, err := httpAddr(ctx, ag)
	if err != nil {
		return res, err
	}
	wait := r.cfg.RestartGrace + r.cfg.ResumeInterval + 15*time.Second
	var armed float64
	err = poll(ctx, wait, 5*time.Millisecond, func() bool {
		m, err := scrape(ctx, addr)
		if err != nil {
			return false
		}
		n, sum := 0.0, 0.0
		for k, v := range m {
			if strings.HasPrefix(k, "glowcast_agent_resume_seconds_count") {
				n += v
			}
			if strings.HasPrefix(k, "glowcast_agent_resume_seconds_sum") {
				sum += v
			}
		}
		armed = sum
		return n >= 1
	})
	if err != nil {
		return res, fmt.Errorf("bench: cycle never re-armed: %w\n%s", err, tail(ag.Log()))
	}
	res.armed = time.Duration(armed * float64(time.Second))
	var next time.Time
	err = poll(ctx, wait, 5*time.Millisecond, func() bool {
		for _, t := range logTimes(dev, "temps received") {
			if t.After(up) {
				next = t
				return true
			}
		}
		return false
	})
	if err != nil {
		return res, fmt.Errorf("bench: no temps after the restart: %w\n%s", err, tail(dev.Log()))
	}
	res.temps = next.Sub(up)
	res.late = next.Sub(maxTime(due, up))
	return res, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// savedDue reads the next due time the agent saved for a device.
func savedDue(stateDir, id string) (time.Time, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, "devices", id+".json"))
	if err != nil {
		return time.Time{}, err
	}
	var s agent.Saved
	if err := json.Unmarshal(b, &s); err != nil {
		return time.Time{}, err
	}
	return s.NextDue, nil
}

// resume runs the trials of one strategy, parallel at most par at a time.
func (r *runner) resume(ctx context.Context, strategy string, par int) ([]resumeResult, error) {
	out := make([]resumeResult, r.cfg.Trials)
	errs := make([]error, r.cfg.Trials)
	sem := make(chan struct{}, max(par, 1))
	var wg sync.WaitGroup
	for k := range r.cfg.Trials {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[k], errs[k] = r.resumeTrial(ctx, strategy, k)
		}()
	}
	wg.Wait()
	for k, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("bench: resume %s trial %d: %w", strategy, k, err)
		}
	}
	return out, nil
}
