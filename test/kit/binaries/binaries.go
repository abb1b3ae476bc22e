// Package binaries builds glowcast's daemons for the tests that run them as
// real processes (end-to-end, security, fault campaign, benchmarks), so each
// of those test binaries starts the same way.
package binaries

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/glowcast/glowcast/test/kit/proc"
)

// Build compiles glowcastd, glowcast-agent and the glowcast client into dir with CGO off, as
// `make build` does: the release programs, no test build.
func Build(dir string) error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("binaries: go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	for _, args := range [][]string{
		{"build", "-o", dir + "/", "./cmd/glowcastd"},
		{"build", "-o", dir + "/", "./cmd/glowcast-agent"},
		{"build", "-o", dir + "/", "./cmd/glowcast"},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("binaries: go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// Main is a TestMain: it builds the daemons into a temporary directory,
// points *dir at it, runs the tests, removes it, and fails the run when a
// goroutine was left behind. It does not return.
// leaks are goleak options for goroutines of libraries the suite uses
// that are known not to end (each with the reason at the caller).
func Main(m *testing.M, dir *string, leaks ...goleak.Option) {
	tmp, err := os.MkdirTemp("", "glowcast-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := Build(tmp); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(tmp)
		os.Exit(1)
	}
	*dir = tmp
	code := m.Run()
	os.RemoveAll(tmp)
	if code == 0 {
		if err := goleak.Find(leaks...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// Start runs the daemon name from dir for t with extra environment, its
// output in a log file of the test's. At the end it is stopped with
// SIGTERM and must exit cleanly, and must not have crashed before.
func Start(t testing.TB, dir, name string, env []string, args ...string) *proc.Proc {
	t.Helper()
	p := proc.New(name, filepath.Join(dir, name), filepath.Join(t.TempDir(), name+".log"), args, env...)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("%v\n%s", err, p.Log())
		}
		for _, c := range p.TakeCrashes() {
			t.Error(c)
		}
	})
	return p
}
