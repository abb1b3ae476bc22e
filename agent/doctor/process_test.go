package doctor

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glowcast/glowcast/test/kit/mqtttest"
	securitytest "github.com/glowcast/glowcast/test/security"
)

// doctorRun runs `glowcast-agent doctor ARGS` as the agent runs: a config
// file (geolocation off), then flags, with no environment but PATH.
func doctorRun(t *testing.T, args ...string) (code int, out string) {
	t.Helper()
	body, err := os.ReadFile("../weather/testdata/openmeteo_berlin.json")
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(conf, []byte("geo:\n  geolocate_url: \"\"\n  ip_geolocation_url: \"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args = append([]string{"doctor", "--config", conf, "--weather-url", weatherServer(t, 200, nil, body), "--state-dir", t.TempDir()}, args...)
	cmd := exec.Command(agentBin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	b, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, string(b)
}

// line returns the output line of check, marked ✓, ✗ or -, and the fix
// line under it, if any.
func line(out, check string) (mark, text, fix string) {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) >= 2 && f[1] == check {
			if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "  fix: ") {
				fix = strings.TrimPrefix(lines[i+1], "  fix: ")
			}
			return f[0], l, fix
		}
	}
	return "", "", ""
}

// TestProcessShippedBroker runs the doctor against Mosquitto with the
// shipped glowcast.conf and glowcast.acl (TLS, password option B): the
// agent's identity passes every check; a device's identity, a CA that did
// not sign the broker and a server name the certificate does not carry
// are each a ✗ naming the cause and the fix, and exit 1.
func TestProcessShippedBroker(t *testing.T) {
	users := map[string]string{securitytest.AgentUser: "agent-secret", "kitchen": "kitchen-secret"}
	b := securitytest.StartBroker(t, securitytest.AuthPassword, users)
	dir := t.TempDir()
	pw := func(user string) string {
		p := filepath.Join(dir, user+".pw")
		if err := os.WriteFile(p, []byte(users[user]+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stranger := securitytest.NewCA(t, t.TempDir(), "stranger-ca")
	as := func(user string) []string {
		return []string{"--broker", b.URL(), "--mqtt-ca", b.CA.CertFile, "--mqtt-username", user, "--mqtt-password-file", pw(user)}
	}
	tests := []struct {
		name  string
		args  []string
		code  int
		check string
		mark  string
		text  string // in the check's line
		fix   string // in its fix
	}{
		{"agent identity", as(securitytest.AgentUser), 0, "acl", "✓", "round trip on the agent's topics as glowcast-agent", ""},
		{"agent identity broker", as(securitytest.AgentUser), 0, "broker", "✓", "TLS chain and server name verified, credentials of glowcast-agent accepted", ""},
		// Mosquitto's acl_file grants every SUBSCRIBE and filters what it
		// delivers: the refusal shows as the round trip that never returns.
		{"device identity", as("kitchen"), 1, "acl", "✗", "never came back", "glowcast.acl"},
		{"wrong CA", append(as(securitytest.AgentUser), "--mqtt-ca", stranger.CertFile), 1, "broker", "✗", "certificate signed by unknown authority", "not signed by a CA in mqtt.ca_file"},
		{"wrong server name", append(as(securitytest.AgentUser), "--mqtt-server-name", "broker.example.org"), 1, "broker", "✗", "broker.example.org", `not valid for "broker.example.org"`},
		{"wrong password", append(as(securitytest.AgentUser), "--mqtt-password-file", pw("kitchen")), 1, "broker", "✗", "cannot connect", "glowcast-agent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out := doctorRun(t, tc.args...)
			mark, text, fix := line(out, tc.check)
			if code != tc.code || mark != tc.mark || !strings.Contains(text, tc.text) || !strings.Contains(fix, tc.fix) {
				t.Errorf("exit %d, %s line %q, fix %q; want exit %d, %s containing %q, fix containing %q\n%s",
					code, tc.check, text, fix, tc.code, tc.mark, tc.text, tc.fix, out)
			}
			if tc.mark == "✗" && fix == "" {
				t.Errorf("✗ without a fix:\n%s", out)
			}
		})
	}
}

// TestProcessRefusedSubscribe: a broker that answers the agent's
// subscriptions with SUBACK 0x80 — here Mosquitto's dynamic-security
// plugin with a role that grants no subscriptions, on the shipped config —
// is a ✗ naming the refused filters and the fix, exit 1: connected but
// deaf is not healthy.
func TestProcessRefusedSubscribe(t *testing.T) {
	// Debian installs it under the multiarch directory.
	found, _ := filepath.Glob("/usr/lib/*/mosquitto_dynamic_security.so")
	found = append(found, "/usr/lib/mosquitto_dynamic_security.so", "/usr/local/lib/mosquitto_dynamic_security.so")
	plugin := ""
	for _, p := range found {
		if _, err := os.Stat(p); err == nil {
			plugin = p
			break
		}
	}
	if plugin == "" {
		t.Fatal("Mosquitto's dynamic-security plugin not found: it comes with Debian's mosquitto package")
	}
	// Mosquitto drops root to its own user, which must read the file.
	dir, err := os.MkdirTemp("", "glowcast-doctor-dynsec-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	cfg := filepath.Join(dir, "dynsec.json")
	if err := os.WriteFile(cfg, []byte(`{"defaultACLAccess":{"publishClientSend":true,"publishClientReceive":true,"subscribe":false,"unsubscribe":true},"clients":[],"groups":[],"roles":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	b := mqtttest.Start(t, mqtttest.WithConfig("plugin "+plugin+"\nplugin_opt_config_file "+cfg))
	code, out := doctorRun(t, "--broker", b.URL())
	mark, text, fix := line(out, "acl")
	if code != 1 || mark != "✗" || !strings.Contains(text, "SUBACK 0x80") || !strings.Contains(text, "glowcast/v1/+/device/#") || !strings.Contains(fix, "glowcast.acl") {
		t.Errorf("exit %d, acl line %q, fix %q; want exit 1, ✗ SUBACK 0x80 naming glowcast/v1/+/device/#, a fix naming glowcast.acl\n%s", code, text, fix, out)
	}
	if m, _, _ := line(out, "broker"); m != "✓" {
		t.Errorf("broker line %q, want ✓: the connection itself works\n%s", m, out)
	}
}
