package proc

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRestartLogAndStats(t *testing.T) {
	log := filepath.Join(t.TempDir(), "p.log")
	// Each run prints its own line, then waits to be stopped (the shell
	// stays the process, so its figures are the shell's).
	p := New("sleeper", "/bin/sh", log, []string{"-c", `echo "run $RUN_MARK"; while :; do sleep 1; done`}, "RUN_MARK=x")
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	waitLog(t, p, "run x")
	if !p.Alive() || p.Pid() == 0 {
		t.Fatalf("alive %v pid %d, want a running process", p.Alive(), p.Pid())
	}
	st, err := p.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.RSS <= 0 || st.Threads < 1 || st.FDs < 3 {
		t.Errorf("stats %+v: want RSS > 0, at least one thread and stdin/out/err", st)
	}
	first := p.Pid()
	p.Kill()
	if p.Alive() {
		t.Fatal("alive after Kill")
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	waitLog(t, p, "run x")
	if p.Pid() == first {
		t.Error("restart kept the old pid")
	}
	if n := strings.Count(p.Log(), "run x"); n != 1 {
		t.Errorf("Log holds %d runs, want only the current one:\n%s", n, p.Log())
	}
	all, _ := os.ReadFile(p.LogPath())
	if n := strings.Count(string(all), "run x"); n != 2 {
		t.Errorf("log file holds %d runs, want both", n)
	}
	if err := p.Stop(); err == nil {
		// The shell dies of SIGTERM: the runner must say it did not exit
		// cleanly.
		t.Error("Stop: want an error for a process killed by SIGTERM")
	}
	if c := p.TakeCrashes(); len(c) != 0 {
		t.Errorf("asked exits counted as crashes: %v", c)
	}
}

func TestUnaskedExitIsACrash(t *testing.T) {
	p := New("crasher", "/bin/sh", filepath.Join(t.TempDir(), "c.log"), []string{"-c", "echo dying; exit 3"})
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	exited, err := p.WaitExit(10 * time.Second)
	if !exited || err == nil {
		t.Fatalf("WaitExit = %v, %v; want an exit with status 3", exited, err)
	}
	c := p.TakeCrashes()
	if len(c) != 1 || !strings.Contains(c[0], "exit status 3") || !strings.Contains(c[0], "dying") {
		t.Fatalf("crashes %q: want one naming the status and the log's tail", c)
	}
	if len(p.TakeCrashes()) != 0 {
		t.Error("TakeCrashes returned the same crash twice")
	}
}

func TestAllowExit(t *testing.T) {
	p := New("yielder", "/bin/sh", filepath.Join(t.TempDir(), "y.log"), []string{"-c", "sleep 0.2"})
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	p.AllowExit()
	if exited, err := p.WaitExit(10 * time.Second); !exited || err != nil {
		t.Fatalf("WaitExit = %v, %v; want a clean exit", exited, err)
	}
	if c := p.TakeCrashes(); len(c) != 0 {
		t.Errorf("an allowed exit counted as a crash: %v", c)
	}
	if err := p.Signal(syscall.SIGTERM, time.Second); err != nil {
		t.Errorf("signalling an exited process: %v", err)
	}
	// A killed run stopped again is no error: cleanups stop what a test
	// may have killed.
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	p.Kill()
	if err := p.Stop(); err != nil {
		t.Errorf("Stop after Kill: %v", err)
	}
}

func waitLog(t *testing.T, p *Proc, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Log(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%q never appeared in the log:\n%s", s, p.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
