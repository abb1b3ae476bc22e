package bench

import (
	"testing"

	"github.com/glowcast/glowcast/test/kit/binaries"
)

var binDir string

// TestMain builds the binaries the benchmark runs.
func TestMain(m *testing.M) { binaries.Main(m, &binDir) }
