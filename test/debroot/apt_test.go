package debroot

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// publish adds the packages of version to the repository at repo with
// scripts/apt-repo, signing with the key in keyDir.
func publish(t *testing.T, repo, keyDir, version string) {
	t.Helper()
	cmd := exec.Command("../../scripts/apt-repo", repo, debs[version]["glowcastd"], debs[version]["glowcast-agent"])
	cmd.Env = append(os.Environ(), "GLOWCAST_APT_KEY="+keyDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/apt-repo %s: %v\n%s", version, err, out)
	}
}

// TestAptRepository: a machine adds the fleet's repository with one
// sources.list line, installs both packages with apt, and gets the newer
// version, services restarted, with apt upgrade once it is published.
func TestAptRepository(t *testing.T) {
	t.Parallel()
	r := newRoot(t)
	keyDir := t.TempDir()
	// The repository is served from inside the root, as a web server's
	// directory would be; apt reads it with its file method.
	repo := r.path("srv/glowcast-apt")
	publish(t, repo, keyDir, oldVersion)

	r.sh("install -m 0644 /srv/glowcast-apt/glowcast-fleet.gpg /usr/share/keyrings/glowcast-fleet.gpg")
	line := "deb [signed-by=/usr/share/keyrings/glowcast-fleet.gpg] file:/srv/glowcast-apt stable main"
	if err := os.WriteFile(r.path("etc/apt/sources.list.d/glowcast.list"), []byte(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Only the fleet's repository: the test needs no Debian mirror.
	os.Remove(r.path("etc/apt/sources.list"))
	r.sh("apt-get update -o APT::Sandbox::User=root 2>&1")
	r.sh("apt-get install -y --no-install-recommends -o APT::Sandbox::User=root glowcastd glowcast-agent")
	for _, p := range []string{"glowcastd", "glowcast-agent"} {
		if got := r.sh(p + " version"); !strings.Contains(got, oldVersion) {
			t.Errorf("installed %s version %q, want %s", p, got, oldVersion)
		}
	}
	r.calls()

	publish(t, repo, keyDir, newVersion)
	r.sh("apt-get update -o APT::Sandbox::User=root 2>&1")
	out := r.sh("apt-get upgrade -y -o APT::Sandbox::User=root")
	calls := r.calls()
	for _, p := range []pkg{devicePkg, agentPkg} {
		if got := r.sh(p.name + " version"); !strings.Contains(got, newVersion) {
			t.Errorf("after apt upgrade %s version %q, want %s\n%s", p.name, got, newVersion, out)
		}
		if !contains(calls, "deb-systemd-invoke try-restart "+p.unit) {
			t.Errorf("apt upgrade did not restart %s; calls %q", p.unit, calls)
		}
	}

	// A repository signed by another key is refused.
	publish(t, repo, t.TempDir(), newVersion)
	if out, err := r.try("apt-get update -o APT::Sandbox::User=root 2>&1"); err == nil && !strings.Contains(out, "NO_PUBKEY") && !strings.Contains(out, "not signed") {
		t.Errorf("apt accepted a repository signed by another key:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(keyDir, "private-keys-v1.d")); err != nil {
		t.Errorf("the fleet key was not kept in GLOWCAST_APT_KEY: %v", err)
	}
}
