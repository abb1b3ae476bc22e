package debroot

import (
	"os"
	"strings"
	"testing"
)

type pkg struct {
	name, unit, conffile, user, state string
}

var (
	devicePkg = pkg{"glowcastd", "glowcastd.service", "/etc/glowcast/glowcastd.yaml", "glowcast", "/var/lib/glowcast"}
	agentPkg  = pkg{"glowcast-agent", "glowcast-agent.service", "/etc/glowcast/agent.yaml", "glowcast-agent", "/var/lib/glowcast-agent"}
)

// TestLifecycle installs, configures, upgrades, removes and purges each
// package alone, as apt does on a Pi or a server.
func TestLifecycle(t *testing.T) {
	for _, p := range []pkg{devicePkg, agentPkg} {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			r := newRoot(t)

			out := r.install(p.name, oldVersion)
			calls := r.calls()
			if !contains(calls, "systemctl --system daemon-reload") {
				t.Errorf("install: no daemon-reload; systemctl calls: %q", calls)
			}
			for _, c := range calls {
				if strings.Contains(c, "start") || strings.Contains(c, "enable") {
					t.Errorf("install: %q: the package starts nothing before it is configured", c)
				}
			}
			// Debian policy: a copyright file, a changelog, a manual page.
			for _, f := range []string{"/usr/share/doc/" + p.name + "/copyright", "/usr/share/doc/" + p.name + "/changelog.gz", "/usr/share/man/man8/" + p.name + ".8.gz"} {
				if !r.exists(f) {
					t.Errorf("install: %s missing", f)
				}
			}
			if got := r.sh("zcat /usr/share/man/man8/" + p.name + ".8.gz"); !strings.Contains(got, "-config") && !strings.Contains(got, `\-config`) {
				t.Errorf("manual page lists no -config flag:\n%s", got)
			}
			if got := r.sh("zcat /usr/share/doc/" + p.name + "/changelog.gz | head -1"); !strings.HasPrefix(got, p.name+" ("+oldVersion+")") {
				t.Errorf("changelog starts %q, want %s (%s)", got, p.name, oldVersion)
			}
			if pw := r.sh("getent passwd " + p.user); !strings.Contains(pw, "/usr/sbin/nologin") {
				t.Errorf("install: system user %s: %q", p.user, pw)
			}

			// Configure as the postinst says.
			if p == devicePkg {
				if !strings.Contains(out, "glowcastd init -force -config /etc/glowcast/glowcastd.yaml") {
					t.Errorf("postinst does not advise init -force:\n%s", out)
				}
				if _, err := r.try("glowcastd init -yes -device-id shelf -broker tcp://127.0.0.1:1883 -config " + p.conffile); err == nil {
					t.Errorf("init without -force replaced the shipped file")
				}
				r.sh("glowcastd init -force -yes -device-id shelf -broker tcp://127.0.0.1:1883 -config " + p.conffile)
				if out := r.sh("glowcastd doctor -h 2>&1 || true"); out == "" {
					t.Errorf("glowcastd doctor -h printed nothing")
				}
			}
			r.sh("echo '# kept across upgrades' >> " + p.conffile)

			// Upgrade: the running service is restarted, the edit stays.
			r.install(p.name, newVersion)
			if calls := r.calls(); !contains(calls, "deb-systemd-invoke try-restart "+p.unit) {
				t.Errorf("upgrade: no try-restart of %s; calls: %q", p.unit, calls)
			}
			if got := r.sh(p.name + " version"); !strings.Contains(got, newVersion) {
				t.Errorf("after upgrade %s version = %q, want %s", p.name, got, newVersion)
			}
			if b, _ := os.ReadFile(r.path(p.conffile)); !strings.Contains(string(b), "# kept across upgrades") {
				t.Errorf("upgrade lost the edit to %s", p.conffile)
			}
			if p == devicePkg {
				if b, _ := os.ReadFile(r.path(p.conffile)); !strings.Contains(string(b), `device_id: "shelf"`) {
					t.Errorf("upgrade replaced the configuration init wrote:\n%s", b)
				}
			}

			// State the service wrote, and what a DynamicUser release left.
			r.sh("mkdir -p " + p.state + "/devices /var/lib/private/glowcast/devices /var/lib/private" + p.state[len("/var/lib"):] + " && touch " + p.state + "/devices/x.json /var/lib/private/glowcast/devices/x.json")

			r.sh("dpkg -r " + p.name)
			if calls := r.calls(); !contains(calls, "systemctl --no-reload disable --now "+p.unit) {
				t.Errorf("remove: service not stopped and disabled; calls: %q", calls)
			}
			if !r.exists(p.conffile) || r.exists("/usr/bin/"+p.name) {
				t.Errorf("remove: want the conffile kept and the binary gone")
			}
			if got := r.status(p.name); got != "rc" {
				t.Errorf("after remove dpkg status %q, want rc", got)
			}

			r.sh("dpkg -P " + p.name)
			for _, gone := range []string{p.conffile, p.state, "/var/lib/private/glowcast/devices", "/var/lib/private" + p.state[len("/var/lib"):]} {
				if r.exists(gone) {
					t.Errorf("purge left %s", gone)
				}
			}
		})
	}
}

// TestBothOnOnePi: the hobby set-up, device and agent on one machine. Each
// keeps its own state, and purging one leaves the other working.
func TestBothOnOnePi(t *testing.T) {
	t.Parallel()
	r := newRoot(t)
	r.install(devicePkg.name, oldVersion)
	r.install(agentPkg.name, oldVersion)
	r.calls()
	r.sh("install -d -o glowcast " + devicePkg.state + " && echo '{}' > " + devicePkg.state + "/temps.json")
	r.sh("install -d -o glowcast-agent " + agentPkg.state + "/devices && echo '{}' > " + agentPkg.state + "/devices/shelf.json")

	r.sh("dpkg -i " + r.copyIn(devicePkg.name, newVersion) + " " + r.copyIn(agentPkg.name, newVersion))
	calls := r.calls()
	for _, p := range []pkg{devicePkg, agentPkg} {
		if !contains(calls, "deb-systemd-invoke try-restart "+p.unit) {
			t.Errorf("upgrade of both: %s not restarted; calls: %q", p.unit, calls)
		}
	}

	r.sh("dpkg -P " + agentPkg.name)
	if r.exists(agentPkg.state) {
		t.Errorf("agent purge left %s", agentPkg.state)
	}
	for _, kept := range []string{devicePkg.state + "/temps.json", devicePkg.conffile, "/usr/bin/glowcastd"} {
		if !r.exists(kept) {
			t.Errorf("agent purge removed the device's %s", kept)
		}
	}
	r.sh("dpkg -P " + devicePkg.name)
	if r.exists(devicePkg.state) || r.exists("/etc/glowcast/glowcastd.yaml") {
		t.Errorf("device purge left its state or config")
	}
}
