package cliconf_test

import (
	"strings"
	"testing"

	"github.com/glowcast/glowcast/agent"
	"github.com/glowcast/glowcast/device"
	"github.com/glowcast/glowcast/internal/cliconf"
)

// FuzzDecodeConfig: any config file either decodes or is refused with an
// error naming the file; decoding and validating never panic.
func FuzzDecodeConfig(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		ac := agent.Default()
		if err := cliconf.Decode("agent.yaml", b, &ac); err == nil {
			_ = ac.Validate()
		} else if !strings.Contains(err.Error(), "agent.yaml") {
			t.Fatalf("error does not name the file: %v", err)
		}
		dc := device.Default()
		if err := cliconf.Decode("glowcastd.yaml", b, &dc); err == nil {
			_ = dc.Validate()
		} else if !strings.Contains(err.Error(), "glowcastd.yaml") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}
