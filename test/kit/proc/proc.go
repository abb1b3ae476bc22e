// Package proc runs a program as its own process for the suites and the
// benchmark: start, signal, SIGKILL, restart, the log of the current run,
// exits nobody asked for, and the process's /proc figures. It is the one
// process runner of the test kit; it does not depend on testing, so tools
// (cmd/glowcast-bench/bench) use it too.
package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// Proc is one program, started and restarted with the same arguments. Its
// exits are watched: one that was not asked for is a crash.
type Proc struct {
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
	expected bool      // stopped by us, or allowed to exit
	started  time.Time // of the current run
	crashes  []string
}

// New prepares bin with args and extra environment; stdout and stderr of
// every run are appended to logPath. Nothing runs until Start.
func New(name, bin, logPath string, args []string, env ...string) *Proc {
	return &Proc{name: name, bin: bin, args: args, env: env, log: logPath}
}

// Name is the name given to New.
func (p *Proc) Name() string { return p.name }

// Bin is the program's path.
func (p *Proc) Bin() string { return p.bin }

// Args are the arguments of the next Start.
func (p *Proc) Args() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.args...)
}

// SetArgs replaces the arguments of the next Start (a restart with
// another configuration).
func (p *Proc) SetArgs(args []string) {
	p.mu.Lock()
	p.args = args
	p.mu.Unlock()
}

// Start runs the program (again). The process gets SIGKILL if the runner's
// thread dies, so a crashed test leaves nothing behind.
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	lf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("proc: log of %s: %w", p.name, err)
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
		return fmt.Errorf("proc: start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.err, p.expected, p.started = cmd, done, nil, false, time.Now()
	go func() {
		err := cmd.Wait()
		lf.Close()
		p.mu.Lock()
		p.err = err
		if !p.expected {
			p.crashes = append(p.crashes, fmt.Sprintf("%s (pid %d) exited unasked: %v\n%s", p.name, cmd.Process.Pid, err, Tail(p.logLocked(), 20)))
		}
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// Alive reports whether the current run is still going.
func (p *Proc) Alive() bool {
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

// Pid is the current run's process id, 0 before the first Start.
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Started is when the current run started.
func (p *Proc) Started() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started
}

// AllowExit marks the current run's coming exit as expected (an agent that
// yields to a newer one exits by itself).
func (p *Proc) AllowExit() {
	p.mu.Lock()
	p.expected = true
	p.mu.Unlock()
}

// Signal sends sig and waits up to wait for the exit, then kills. After
// SIGTERM any exit but a clean one is an error. A run that has ended
// already is left as it is.
func (p *Proc) Signal(sig syscall.Signal, wait time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.expected = true
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil // ended already; an unasked end is in TakeCrashes
	default:
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(wait):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("proc: %s did not stop within %v of %v", p.name, wait, sig)
	}
	p.mu.Lock()
	err := p.err
	p.mu.Unlock()
	if sig == syscall.SIGTERM && err != nil {
		return fmt.Errorf("proc: %s exited with %v after SIGTERM", p.name, err)
	}
	return nil
}

// Stop ends the run with SIGTERM, as systemd does, within 10 s.
func (p *Proc) Stop() error { return p.Signal(syscall.SIGTERM, 10*time.Second) }

// Kill ends the run with SIGKILL, as a crash or a power cut would.
func (p *Proc) Kill() { p.Signal(syscall.SIGKILL, 10*time.Second) }

// WaitExit waits up to d for the current run to end and returns its error.
func (p *Proc) WaitExit(d time.Duration) (exited bool, err error) {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false, errors.New("proc: " + p.name + " never started")
	}
	select {
	case <-done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.err
	case <-time.After(d):
		return false, nil
	}
}

// Exited is closed when the current run ends.
func (p *Proc) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// TakeCrashes returns the unasked exits seen since the last call.
func (p *Proc) TakeCrashes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.crashes
	p.crashes = nil
	return c
}

// Log is the current run's output so far.
func (p *Proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logLocked()
}

// LogPath is the file every run's output is appended to.
func (p *Proc) LogPath() string { return p.log }

func (p *Proc) logLocked() string {
	b, _ := os.ReadFile(p.log)
	if int64(len(b)) >= p.offset {
		b = b[p.offset:]
	}
	return string(b)
}

// Tail is the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stats are a process's resources, read from /proc.
type Stats struct {
	// CPU is user plus system time.
	CPU time.Duration
	// RSS is the resident memory in bytes.
	RSS     int64
	Threads int
	FDs     int
}

// Stats reads the current run's resources.
func (p *Proc) Stats() (Stats, error) {
	pid := p.Pid()
	if pid == 0 {
		return Stats{}, errors.New("proc: " + p.name + " never started")
	}
	return ReadStats(pid)
}

// ReadStats reads the resources of process pid.
func ReadStats(pid int) (Stats, error) {
	pp, err := procfs.NewProc(pid)
	if err != nil {
		return Stats{}, err
	}
	st, err := pp.Stat()
	if err != nil {
		return Stats{}, err
	}
	fds, err := pp.FileDescriptorsLen()
	if err != nil {
		return Stats{}, err
	}
	return Stats{
		CPU:     time.Duration(st.CPUTime() * float64(time.Second)),
		RSS:     int64(st.ResidentMemory()),
		Threads: st.NumThreads,
		FDs:     fds,
	}, nil
}
