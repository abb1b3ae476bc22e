package securitytest

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/glowcast/glowcast/agent"
)

// TestHTTPLoopbackEverywhere: every shipped form of the agent serves its
// status page, API and metrics on loopback (or not at all) unless the
// operator sets another address: the built-in default, the packaged
// config, the systemd unit's command line and the container image.
func TestHTTPLoopbackEverywhere(t *testing.T) {
	loopback := func(t *testing.T, where, addr string) {
		t.Helper()
		if addr == "" {
			return // HTTP off
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			t.Errorf("%s: http %q: %v", where, addr, err)
			return
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			t.Errorf("%s: http %q listens beyond loopback", where, addr)
		}
	}
	loopback(t, "agent.Default()", agent.Default().HTTP)

	b, err := os.ReadFile(filepath.Join(Root(), "configs", "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		HTTP string `yaml:"http"`
	}
	if err := yaml.Unmarshal(b, &conf); err != nil {
		t.Fatal(err)
	}
	loopback(t, "configs/agent.yaml", conf.HTTP)

	flagAddr := func(where string, args []string) {
		for i, a := range args {
			if v, ok := strings.CutPrefix(a, "--http="); ok {
				loopback(t, where, v)
			} else if (a == "--http" || a == "-http") && i+1 < len(args) {
				loopback(t, where, args[i+1])
			}
		}
	}
	unit, err := os.ReadFile(filepath.Join(Root(), "systemd", "glowcast-agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(unit), "\n") {
		if cmd, ok := strings.CutPrefix(line, "ExecStart="); ok {
			flagAddr("systemd/glowcast-agent.service", strings.Fields(cmd))
		}
	}

	df, err := os.ReadFile(filepath.Join(Root(), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^CMD (\[.*\])$`).FindSubmatch(df)
	if m == nil {
		t.Fatal("Dockerfile: no CMD [...] line")
	}
	var cmd []string
	if err := json.Unmarshal(m[1], &cmd); err != nil {
		t.Fatalf("Dockerfile CMD: %v", err)
	}
	if !strings.Contains(strings.Join(cmd, " "), "--http") {
		t.Errorf("Dockerfile CMD %q sets no --http: the image's listener would depend on the config file alone", cmd)
	}
	flagAddr("Dockerfile CMD", cmd)
}
