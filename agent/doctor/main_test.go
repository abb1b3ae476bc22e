package doctor

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// agentBin is glowcast-agent built once for the tests that run it.
var agentBin string

// TestMain builds the command the process tests run and checks that no
// goroutine of the checks outlives them. paho's Disconnect leaves one
// that waits out a connection attempt in progress (the refused cases); it
// ends within the retry interval.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "glowcast-agent-doctor-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	agentBin = filepath.Join(dir, "glowcast-agent")
	build := exec.Command("go", "build", "-o", agentBin, "../../cmd/glowcast-agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build glowcast-agent: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("github.com/eclipse/paho%2emqtt%2egolang.(*client).Disconnect.func1")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
