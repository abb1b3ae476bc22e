package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The agent renders LED colours for its status page but never drives a
// strip: it must not link periph's host drivers (SPI, GPIO, sysfs), and no
// test rig or tool may leak into the binary.
func TestAgentDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{
			"periph.io/x/host/",
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
