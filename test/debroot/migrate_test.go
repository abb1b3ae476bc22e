package debroot

import (
	"strings"
	"testing"
)

// dynamicUID owns the state a DynamicUser= unit left: a uid from systemd's
// dynamic range that no account has.
const dynamicUID = "61234"

// TestMigrateDynamicUserState: an upgrade from the releases whose units had
// DynamicUser=yes keeps the saved state. systemd left it under
// /var/lib/private, reached through a symlink in /var/lib and owned by a
// uid that is gone: StateDirectory=glowcast shared by the agent and the
// device daemon, or glowcast-agent. After the upgrade each program's state
// is in its own directory, owned by its user, and nothing is left behind.
func TestMigrateDynamicUserState(t *testing.T) {
	type file struct{ path, content, owner string }
	type migration struct {
		name string
		pkgs []pkg
		// seed runs in the root after the old version is installed.
		seed    string
		want    []file
		gone    []string
		dirMode map[string]string
	}
	tests := []migration{
		{
			name: "agent alone, shared StateDirectory=glowcast",
			pkgs: []pkg{agentPkg},
			seed: `mkdir -p /var/lib/private/glowcast/devices /var/lib/private/glowcast/verification
echo '{"device":"shelf"}' > /var/lib/private/glowcast/devices/shelf.json
echo 'lead,err' > /var/lib/private/glowcast/verification/52.52_13.40.csv
ln -s private/glowcast /var/lib/glowcast`,
			want: []file{
				{"/var/lib/glowcast-agent/devices/shelf.json", `{"device":"shelf"}`, "glowcast-agent:glowcast-agent"},
				{"/var/lib/glowcast-agent/verification/52.52_13.40.csv", "lead,err", "glowcast-agent:glowcast-agent"},
			},
			gone:    []string{"/var/lib/private/glowcast", "/var/lib/glowcast"},
			dirMode: map[string]string{"/var/lib/glowcast-agent": "700 glowcast-agent:glowcast-agent"},
		},
		{
			name: "agent alone, StateDirectory=glowcast-agent",
			pkgs: []pkg{agentPkg},
			seed: `mkdir -p /var/lib/private/glowcast-agent/devices
echo '{"device":"hall"}' > /var/lib/private/glowcast-agent/devices/hall.json
ln -s private/glowcast-agent /var/lib/glowcast-agent`,
			want: []file{
				{"/var/lib/glowcast-agent/devices/hall.json", `{"device":"hall"}`, "glowcast-agent:glowcast-agent"},
			},
			gone:    []string{"/var/lib/private/glowcast-agent"},
			dirMode: map[string]string{"/var/lib/glowcast-agent": "700 glowcast-agent:glowcast-agent"},
		},
		{
			name: "agent state already there wins",
			pkgs: []pkg{agentPkg},
			seed: `mkdir -p /var/lib/private/glowcast/devices /var/lib/glowcast-agent/devices
echo old > /var/lib/private/glowcast/devices/shelf.json
echo old > /var/lib/private/glowcast/devices/hall.json
echo new > /var/lib/glowcast-agent/devices/shelf.json
ln -s private/glowcast /var/lib/glowcast`,
			want: []file{
				{"/var/lib/glowcast-agent/devices/shelf.json", "new", "glowcast-agent:glowcast-agent"},
				{"/var/lib/glowcast-agent/devices/hall.json", "old", "glowcast-agent:glowcast-agent"},
			},
			gone: []string{"/var/lib/private/glowcast"},
		},
		{
			name: "device alone",
			pkgs: []pkg{devicePkg},
			seed: `mkdir -p /var/lib/private/glowcast
echo '{"temps":[1,2,3,4,5]}' > /var/lib/private/glowcast/temps.json
echo 41 > /var/lib/private/glowcast/boot_seq
ln -s private/glowcast /var/lib/glowcast`,
			want: []file{
				{"/var/lib/glowcast/temps.json", `{"temps":[1,2,3,4,5]}`, "glowcast:glowcast"},
				{"/var/lib/glowcast/boot_seq", "41", "glowcast:glowcast"},
			},
			gone:    []string{"/var/lib/private/glowcast"},
			dirMode: map[string]string{"/var/lib/glowcast": "700 glowcast:glowcast"},
		},
	}
	// One Pi: both upgraded in one dpkg run, in either order of
	// configuration.
	for _, order := range [][]pkg{{devicePkg, agentPkg}, {agentPkg, devicePkg}} {
		tests = append(tests, migration{
			name: "one Pi, " + order[0].name + " first",
			pkgs: order,
			seed: `mkdir -p /var/lib/private/glowcast/devices
echo 41 > /var/lib/private/glowcast/boot_seq
echo '{"temps":[1,2,3,4,5]}' > /var/lib/private/glowcast/temps.json
echo '{"device":"shelf"}' > /var/lib/private/glowcast/devices/shelf.json
ln -s private/glowcast /var/lib/glowcast`,
			want: []file{
				{"/var/lib/glowcast/boot_seq", "41", "glowcast:glowcast"},
				{"/var/lib/glowcast/temps.json", `{"temps":[1,2,3,4,5]}`, "glowcast:glowcast"},
				{"/var/lib/glowcast-agent/devices/shelf.json", `{"device":"shelf"}`, "glowcast-agent:glowcast-agent"},
			},
			gone: []string{"/var/lib/private/glowcast", "/var/lib/glowcast/devices"},
			dirMode: map[string]string{
				"/var/lib/glowcast":       "700 glowcast:glowcast",
				"/var/lib/glowcast-agent": "700 glowcast-agent:glowcast-agent",
			},
		})
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRoot(t)
			var old, upgrade []string
			for _, p := range tc.pkgs {
				old = append(old, r.copyIn(p.name, oldVersion))
				upgrade = append(upgrade, r.copyIn(p.name, newVersion))
			}
			r.sh("dpkg -i " + strings.Join(old, " "))
			r.sh(tc.seed + "\nchown -R " + dynamicUID + ":" + dynamicUID + " /var/lib/private/* /var/lib/glowcast-agent 2>/dev/null || true")
			r.sh("dpkg -i " + strings.Join(upgrade, " "))

			for _, f := range tc.want {
				got, err := r.try("cat " + f.path)
				if err != nil {
					t.Errorf("%s lost in the upgrade: %s", f.path, got)
					continue
				}
				if strings.TrimSpace(got) != f.content {
					t.Errorf("%s = %q, want %q", f.path, strings.TrimSpace(got), f.content)
				}
				if owner := strings.TrimSpace(r.sh("stat -c %U:%G " + f.path)); owner != f.owner {
					t.Errorf("%s owned by %s, want %s", f.path, owner, f.owner)
				}
			}
			for dir, want := range tc.dirMode {
				if got := strings.TrimSpace(r.sh("stat -c '%a %U:%G' " + dir)); got != want {
					t.Errorf("%s: %s, want %s (a directory, not a symlink)", dir, got, want)
				}
				if out, err := r.try("test ! -L " + dir); err != nil {
					t.Errorf("%s is still a symlink %s", dir, out)
				}
			}
			for _, g := range tc.gone {
				if r.exists(g) {
					t.Errorf("%s left behind", g)
				}
			}
		})
	}
}
