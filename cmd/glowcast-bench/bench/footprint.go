package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/glowcast/glowcast/test/kit/proc"
)

// footprintResult is what glowcastd costs on its own.
type footprintResult struct {
	rss       int64
	idleCPU   float64 // fraction of one core over the idle window
	idle      time.Duration
	startP50  time.Duration // process start → ready at the broker
	startP99  time.Duration
	starts    int
	armBinary int64 // stripped linux/arm GOARM=6 binary
}

// footprint measures glowcastd against a local broker.
func (r *runner) footprint(ctx context.Context) (*footprintResult, error) {
	res := &footprintResult{idle: r.cfg.IdleWindow}
	dir := filepath.Join(r.dir, "footprint")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	armBin := filepath.Join(dir, "glowcastd-armv6")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", armBin, "./cmd/glowcastd")
	build.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm", "GOARM=6", "CGO_ENABLED=0")
	build.Dir = r.cfg.Module
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("bench: cross-building glowcastd for linux/arm GOARM=6: %w\n%s", err, out)
	}
	fi, err := os.Stat(armBin)
	if err != nil {
		return nil, err
	}
	res.armBinary = fi.Size()

	b, err := r.startBroker(dir)
	if err != nil {
		return nil, err
	}
	defer b.Kill()
	w, err := watch(b.URL(), "footprint", "glowcast/v1/+/device/ready")
	if err != nil {
		return nil, err
	}
	defer w.Close()
	bin := filepath.Join(r.cfg.Bin, "glowcastd")
	args := []string{"--broker", b.URL(), "--device-id", "footprint", "--led", "none", "--state-dir", filepath.Join(dir, "state"), "--log-level", "warn"}
	var starts []time.Duration
	var last *proc.Proc
	for i := range r.cfg.Starts {
		t0 := time.Now()
		p, err := startProc(bin, filepath.Join(dir, fmt.Sprintf("device-%d.log", i)), args...)
		if err != nil {
			return nil, err
		}
		var at time.Time
		if err := poll(ctx, 10*time.Second, 200*time.Microsecond, func() bool { var ok bool; at, ok = readyAfter(w, t0); return ok }); err != nil {
			p.Signal(syscall.SIGKILL, 10*time.Second)
			return nil, fmt.Errorf("bench: glowcastd never said ready: %w\n%s", err, tail(p.Log()))
		}
		starts = append(starts, at.Sub(t0))
		if i == r.cfg.Starts-1 {
			last = p
			break
		}
		p.Signal(syscall.SIGTERM, 10*time.Second)
	}
	defer last.Signal(syscall.SIGTERM, 10*time.Second)
	slices.Sort(starts)
	res.starts = len(starts)
	res.startP50, res.startP99 = pct(starts, 50), pct(starts, 99)

	time.Sleep(2 * time.Second) // past start-up work
	cpu0, _, err := cpuRSS(last)
	if err != nil {
		return nil, err
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(r.cfg.IdleWindow):
	}
	cpu1, rss, err := cpuRSS(last)
	if err != nil {
		return nil, err
	}
	res.rss = rss
	res.idleCPU = float64(cpu1-cpu0) / float64(r.cfg.IdleWindow)
	return res, nil
}
