package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The agent renders LED colours for its status page but never drives a
// strip: it links the colour model (ledstrip) and nothing of periph (host
// drivers, SPI, nrzled) or of the strip backends, and no test rig or tool
// may leak into the binary.
func TestAgentDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/glowcast/glowcast/ledstrip") {
		t.Error("glowcast-agent does not link ledstrip: the status page's colours come from elsewhere, or go list did not list the deps")
	}
	for _, dep := range deps {
		for _, banned := range []string{
			"periph.io/",
			"github.com/glowcast/glowcast/ledstrip/backend/",
			"github.com/glowcast/glowcast/test/",
			"github.com/glowcast/glowcast/cmd/glowcast/",
			"github.com/glowcast/glowcast/cmd/glowcast-bench/",
			"github.com/glowcast/glowcast/device/",
		} {
			if strings.HasPrefix(dep+"/", banned) {
				t.Errorf("glowcast-agent links %s (nothing under %s may be linked)", dep, banned)
			}
		}
	}
}
