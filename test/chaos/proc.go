package chaos

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one of our binaries running as its own process. Its exits are
// watched: one the campaign did not ask for is a crash.
type proc struct {
	name string
	bin  string
	args []string
	env  []string
	log  string

	mu       sync.Mutex
	cmd      *exec.Cmd
	offset   int64 // where the current run's log starts
	done     chan struct{}
	err      error
	expected bool      // the campaign stopped it, or allowed it to exit
	started  time.Time // of the current run
	crashes  []string
}

func newProc(name, bin, logPath string, args []string, env ...string) *proc {
	return &proc{name: name, bin: bin, args: args, env: env, log: logPath}
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	lf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("chaos: log of %s: %w", p.name, err)
	}
	if fi, err := lf.Stat(); err == nil {
		p.offset = fi.Size()
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("chaos: start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.err, p.expected, p.started = cmd, done, nil, false, time.Now()
	go func() {
		err := cmd.Wait()
		lf.Close()
		p.mu.Lock()
		p.err = err
		if !p.expected {
			p.crashes = append(p.crashes, fmt.Sprintf("%s (pid %d) exited unasked: %v\n%s", p.name, cmd.Process.Pid, err, tail(p.logTextLocked(), 20)))
		}
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// alive reports whether the current run is still going.
func (p *proc) alive() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// allowExit marks the current run's coming exit as expected (an agent that
// yields to a newer one exits by itself).
func (p *proc) allowExit() {
	p.mu.Lock()
	p.expected = true
	p.mu.Unlock()
}

// signal sends sig and waits up to wait for the exit; SIGKILL always ends it.
func (p *proc) signal(sig syscall.Signal, wait time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.expected = true
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(wait):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("chaos: %s did not stop within %v of %v", p.name, wait, sig)
	}
	p.mu.Lock()
	err := p.err
	p.mu.Unlock()
	if sig == syscall.SIGTERM && err != nil {
		return fmt.Errorf("chaos: %s exited with %v after SIGTERM", p.name, err)
	}
	return nil
}

func (p *proc) kill() { p.signal(syscall.SIGKILL, 10*time.Second) }

// exitErr waits up to d for the current run to end and returns its error.
func (p *proc) waitExit(d time.Duration) (exited bool, err error) {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.err
	case <-time.After(d):
		return false, nil
	}
}

// takeCrashes returns the unasked exits seen since the last call.
func (p *proc) takeCrashes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.crashes
	p.crashes = nil
	return c
}

func (p *proc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logTextLocked()
}

func (p *proc) logTextLocked() string {
	b, _ := os.ReadFile(p.log)
	if int64(len(b)) >= p.offset {
		b = b[p.offset:]
	}
	return string(b)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// procStats are a process's resources, from /proc.
type procStats struct {
	RSS     int64 // bytes
	Threads int
	FDs     int
}

func readProcStats(pid int) (procStats, error) {
	var s procStats
	if pid == 0 {
		return s, errors.New("chaos: no process")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			s.RSS = n << 10
		case "Threads":
			s.Threads = int(n)
		}
	}
	ents, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if err != nil {
		return s, err
	}
	s.FDs = len(ents)
	return s, nil
}
