package securitytest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// maxExposure is the highest `systemd-analyze security` score either unit
// may have (0 = locked down, 10 = fully exposed). docs/SECURITY.md
// records the current figures.
const maxExposure = 1.5

var units = []struct {
	file, bin string
	// must are directives the unit must carry, as written.
	must []string
}{
	{"glowcastd.service", "glowcastd", []string{
		"Type=notify", "WatchdogSec=30s", "Restart=on-failure", "After=network-online.target",
		"ExecStopPost=/usr/bin/glowcastd -config /etc/glowcast/glowcastd.yaml --off",
		"ExecStart=/usr/bin/glowcastd -config /etc/glowcast/glowcastd.yaml",
		"User=glowcast", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateMounts=yes", "PrivateTmp=yes",
		"StateDirectory=glowcast", "DevicePolicy=closed", "DeviceAllow=char-spi rw", "SupplementaryGroups=spi",
		"LoadCredential=mqtt-password:/etc/glowcast/mqtt-password",
		"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK", "SystemCallFilter=@system-service",
	}},
	{"glowcast-agent.service", "glowcast-agent", []string{
		"Type=notify", "WatchdogSec=30s", "Restart=on-failure", "After=network-online.target",
		"ExecStart=/usr/bin/glowcast-agent -config /etc/glowcast/agent.yaml",
		"User=glowcast-agent", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateMounts=yes", "PrivateTmp=yes",
		"StateDirectory=glowcast-agent", "PrivateDevices=yes",
		"LoadCredential=mqtt-password:/etc/glowcast/mqtt-password",
		"LoadCredential=weather-key:/etc/glowcast/weather-key",
		"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "SystemCallFilter=@system-service",
	}},
}

func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze not found: install it (apt-get install -y systemd)")
	}
	return p
}

func TestUnitDirectives(t *testing.T) {
	for _, u := range units {
		t.Run(u.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(Root(), "systemd", u.file))
			if err != nil {
				t.Fatal(err)
			}
			lines := map[string]bool{}
			for _, l := range strings.Split(string(b), "\n") {
				lines[strings.TrimSpace(l)] = true
			}
			for _, d := range u.must {
				if !lines[d] {
					t.Errorf("%s lacks the line %q", u.file, d)
				}
			}
		})
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

// TestUnitExposure runs `systemd-analyze security --offline=true` on each
// unit as shipped; any warning about the file fails the test too.
func TestUnitExposure(t *testing.T) {
	sa := systemdAnalyze(t)
	for _, u := range units {
		t.Run(u.file, func(t *testing.T) {
			cmd := exec.Command(sa, "security", "--offline=true", "--no-pager", filepath.Join(Root(), "systemd", u.file))
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			m := exposureRE.FindStringSubmatch(stdout.String())
			if m == nil {
				t.Fatalf("no exposure level in the output (%v):\n%s\n%s", err, stdout.String(), stderr.String())
			}
			score, err := strconv.ParseFloat(m[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s exposure %.1f", u.file, score)
			if score > maxExposure {
				t.Errorf("%s exposure: got %.1f, want at most %.1f\n%s", u.file, score, maxExposure, stdout.String())
			}
			if s := strings.TrimSpace(stderr.String()); s != "" {
				t.Errorf("systemd-analyze warned about %s:\n%s", u.file, s)
			}
		})
	}
}

// TestUnitVerify runs `systemd-analyze verify` on a copy of each unit whose
// /usr/bin paths point at the binaries built for this test (verify checks
// that the commands exist). Any message fails the test: verify exits 0 on
// unknown or malformed settings and only warns.
func TestUnitVerify(t *testing.T) {
	sa := systemdAnalyze(t)
	dir := t.TempDir()
	for _, u := range units {
		t.Run(u.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(Root(), "systemd", u.file))
			if err != nil {
				t.Fatal(err)
			}
			text := strings.ReplaceAll(string(b), "/usr/bin/"+u.bin, filepath.Join(binDir, u.bin))
			if strings.Contains(text, "/usr/bin/") {
				t.Fatalf("%s runs something else from /usr/bin; extend the rewrite", u.file)
			}
			p := filepath.Join(dir, u.file)
			if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(sa, "verify", "--man=no", p).CombinedOutput()
			if err != nil || len(bytes.TrimSpace(out)) != 0 {
				t.Errorf("systemd-analyze verify %s: %v\n%s", u.file, err, out)
			}
		})
	}
}

// TestUnitsKeepStateApart: a device daemon and an agent on one Pi must not
// share a state directory, and each shipped config must point at its own
// unit's StateDirectory; no DynamicUser, so apt purge finds the state in
// /var/lib rather than /var/lib/private.
func TestUnitsKeepStateApart(t *testing.T) {
	for _, tc := range []struct{ unit, config, dir string }{
		{"glowcastd.service", "glowcastd.yaml", "glowcast"},
		{"glowcast-agent.service", "agent.yaml", "glowcast-agent"},
	} {
		u, err := os.ReadFile(filepath.Join(Root(), "systemd", tc.unit))
		if err != nil {
			t.Fatal(err)
		}
		c, err := os.ReadFile(filepath.Join(Root(), "configs", tc.config))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(u), "\nStateDirectory="+tc.dir+"\n") {
			t.Errorf("%s: want StateDirectory=%s", tc.unit, tc.dir)
		}
		if strings.Contains(string(u), "\nDynamicUser=yes") {
			t.Errorf("%s: DynamicUser=yes puts state under /var/lib/private, out of the package's reach", tc.unit)
		}
		if !strings.Contains(string(c), "\nstate_dir: /var/lib/"+tc.dir+"\n") {
			t.Errorf("configs/%s: want state_dir: /var/lib/%s (the unit's StateDirectory)", tc.config, tc.dir)
		}
	}
}
