package securitytest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// binDir holds glowcastd and glowcast-agent built for this test run.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "glowcast-securitytest-bin-")
	if err != nil {
		panic(err)
	}
	cmd := exec.Command("go", "build", "-o", dir+"/", filepath.Join(Root(), "cmd", "glowcastd"), filepath.Join(Root(), "cmd", "glowcast-agent"))
	cmd.Dir = Root()
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building binaries:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// settle waits until the goroutines started since before (from
// goleak.IgnoreCurrent) have ended: a paho client closed while it retries
// a refused connection ends them only after its 1s retry sleep.
func settle(t *testing.T, before goleak.Option) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := goleak.Find(before)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left after close: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
