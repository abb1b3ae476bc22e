package security

import (
	"testing"
	"time"

	"github.com/glowcast/glowcast/test/kit/binaries"
	"go.uber.org/goleak"
)

// binDir holds glowcastd and glowcast-agent built for this test run.
var binDir string

func TestMain(m *testing.M) { binaries.Main(m, &binDir) }

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
