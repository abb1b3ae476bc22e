package packaging

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/glowcast/glowcast/agent"
	"github.com/glowcast/glowcast/device"
	"github.com/glowcast/glowcast/internal/cliconf"
)

// version is what the test build is stamped with; the .deb version is
// the same (it starts with a digit).
const version = "1.2.3"

// dist is the output of one `make deb` (which runs `make dist`), shared by
// every test of this run.
var dist string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "glowcast-dist-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dist = dir
	cmd := exec.Command("make", "-C", "../..", "deb", "DIST="+dir, "VERSION="+version)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "make deb:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// tool finds the first of names on $PATH; the test fails without it.
func tool(t *testing.T, pkg string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Fatalf("none of %v found: apt-get install -y %s", names, pkg)
	return ""
}

func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := run(t, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func TestCrossBinariesStartUnderQEMU(t *testing.T) {
	qemuARM := tool(t, "qemu-user-static", "qemu-arm-static", "qemu-arm")
	qemuARM64 := tool(t, "qemu-user-static", "qemu-aarch64-static", "qemu-aarch64")
	tests := []struct {
		target  string
		qemu    string
		cpu     string // the Pi's core
		machine elf.Machine
	}{
		{target: "armv6", qemu: qemuARM, cpu: "arm1176", machine: elf.EM_ARM},          // Pi Zero, Pi 1
		{target: "armv7", qemu: qemuARM, cpu: "cortex-a7", machine: elf.EM_ARM},        // Pi 2
		{target: "arm64", qemu: qemuARM64, cpu: "cortex-a53", machine: elf.EM_AARCH64}, // Pi 3, Zero 2
		{target: "arm64", qemu: qemuARM64, cpu: "cortex-a72", machine: elf.EM_AARCH64}, // Pi 4
	}
	for _, tc := range tests {
		for _, bin := range []string{"glowcastd", "glowcast-agent"} {
			t.Run(tc.target+"/"+tc.cpu+"/"+bin, func(t *testing.T) {
				path := filepath.Join(dist, "linux_"+tc.target, bin)
				checkELF(t, path, tc.machine)
				out := mustRun(t, tc.qemu, "-cpu", tc.cpu, path, "version")
				if want := bin + " " + version + "\n"; out != want {
					t.Errorf("got %q, want %q", out, want)
				}
			})
		}
	}
	// The emulated ARMv6 core is strict: an ARMv7 build refuses to run on
	// it, so the armv6 build passing above means something.
	t.Run("armv7 build refused by an ARMv6 core", func(t *testing.T) {
		out, err := run(t, qemuARM, "-cpu", "arm1176", filepath.Join(dist, "linux_armv7", "glowcastd"), "version")
		if err == nil || strings.Contains(out, version) {
			t.Errorf("got %q (err %v), want the Go runtime to refuse GOARM=7 on arm1176", out, err)
		}
	})
}

// checkELF asserts a static executable for machine (CGO off: no
// interpreter, so no libc needed on the Pi).
func checkELF(t *testing.T, path string, machine elf.Machine) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	if f.Machine != machine {
		t.Errorf("%s: machine %v, want %v", path, f.Machine, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s: dynamically linked (PT_INTERP); want a static binary (CGO_ENABLED=0)", path)
		}
	}
}

func deb(t *testing.T, pkg, arch string) string {
	t.Helper()
	p := filepath.Join(dist, "deb", pkg+"_"+version+"_"+arch+".deb")
	if _, err := os.Stat(p); err != nil {
		entries, _ := os.ReadDir(filepath.Join(dist, "deb"))
		t.Fatalf("%s: %v (have %v)", p, err, entries)
	}
	return p
}

func TestDebPackages(t *testing.T) {
	dpkgDeb := tool(t, "dpkg", "dpkg-deb")
	machines := map[string]elf.Machine{"armhf": elf.EM_ARM, "arm64": elf.EM_AARCH64, "amd64": elf.EM_X86_64}
	pkgs := []struct {
		name, unit, conffile string
	}{
		{name: "glowcastd", unit: "glowcastd.service", conffile: "/etc/glowcast/glowcastd.yaml"},
		{name: "glowcast-agent", unit: "glowcast-agent.service", conffile: "/etc/glowcast/agent.yaml"},
	}
	for _, arch := range []string{"armhf", "arm64", "amd64"} {
		for _, p := range pkgs {
			t.Run(p.name+"_"+arch, func(t *testing.T) {
				path := deb(t, p.name, arch)
				info := mustRun(t, dpkgDeb, "--info", path)
				for _, re := range []string{
					`(?m)^ Package: ` + p.name + `$`,
					`(?m)^ Version: ` + regexp.QuoteMeta(version) + `$`,
					`(?m)^ Architecture: ` + arch + `$`,
					`(?m)^ Maintainer: .+`,
					`(?m)^ Description: .+`,
					`(?m)^ +\d+ bytes, +\d+ lines +\* +postinst +#!/bin/sh$`,
					`(?m)^ +\d+ bytes, +\d+ lines +\* +prerm +#!/bin/sh$`,
					`(?m)^ +\d+ bytes, +\d+ lines +conffiles *$`,
				} {
					if !regexp.MustCompile(re).MatchString(info) {
						t.Errorf("dpkg-deb --info lacks %s:\n%s", re, info)
					}
				}
				conffiles := mustRun(t, dpkgDeb, "--info", path, "conffiles")
				if strings.TrimSpace(conffiles) != p.conffile {
					t.Errorf("conffiles: got %q, want %q", conffiles, p.conffile)
				}
				contents := mustRun(t, dpkgDeb, "--contents", path)
				for _, want := range []string{
					`-rwxr-xr-x root/root .* \./usr/bin/` + p.name + `$`,
					`-rw-r--r-- root/root .* \./usr/lib/systemd/system/` + p.unit + `$`,
					`-rw-r--r-- root/root .* \.` + p.conffile + `$`,
				} {
					if !regexp.MustCompile(`(?m)` + want).MatchString(contents) {
						t.Errorf("dpkg-deb --contents lacks %s:\n%s", want, contents)
					}
				}
				x := t.TempDir()
				mustRun(t, dpkgDeb, "-x", path, x)
				checkELF(t, filepath.Join(x, "usr/bin", p.name), machines[arch])
				unit, _ := os.ReadFile(filepath.Join(x, "usr/lib/systemd/system", p.unit))
				src, _ := os.ReadFile(filepath.Join("../../systemd", p.unit))
				if len(unit) == 0 || !bytes.Equal(unit, src) {
					t.Errorf("packaged %s differs from systemd/%s", p.unit, p.unit)
				}
			})
		}
	}
}

// scratchRoot makes an empty system for dpkg --root: account files and
// dpkg's database, nothing else.
func scratchRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"etc/passwd":             "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":              "root:x:0:\n",
		"etc/shadow":             "root:*:19000:0:99999:7:::\n",
		"etc/gshadow":            "root:*::\n",
		"var/lib/dpkg/status":    "",
		"var/lib/dpkg/available": "",
	}
	for p, c := range files {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "var/log"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	return root
}

// dpkgIn runs dpkg on root. The maintainer scripts run without chroot
// and see DPKG_ROOT, as in a bootstrap.
func dpkgIn(t *testing.T, root string, args ...string) (string, error) {
	t.Helper()
	base := []string{"--root=" + root, "--force-script-chrootless", "--log=" + filepath.Join(root, "var/log/dpkg.log")}
	return run(t, tool(t, "dpkg", "dpkg"), append(base, args...)...)
}

func TestDebInstallsAndRemovesCleanly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("dpkg --root needs root (CI runs as root)")
	}
	tests := []struct {
		pkg, conffile, user string
		groups              []string
		next                string
	}{
		{pkg: "glowcastd", conffile: "etc/glowcast/glowcastd.yaml", user: "glowcast", groups: []string{"spi", "gpio"}, next: "sudo glowcastd init"},
		{pkg: "glowcast-agent", conffile: "etc/glowcast/agent.yaml", user: "glowcast-agent", next: "edit /etc/glowcast/agent.yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.pkg, func(t *testing.T) {
			root := scratchRoot(t)
			out, err := dpkgIn(t, root, "-i", deb(t, tc.pkg, "amd64"))
			if err != nil {
				t.Fatalf("dpkg -i: %v\n%s", err, out)
			}
			// postinst: says what to do next, enables nothing.
			if !strings.Contains(out, "is not enabled or started") || !strings.Contains(out, tc.next) {
				t.Errorf("postinst output does not name the next step %q:\n%s", tc.next, out)
			}
			if _, err := os.Stat(filepath.Join(root, "etc/systemd/system/multi-user.target.wants", tc.pkg+".service")); err == nil {
				t.Errorf("the unit was enabled by the install")
			}
			passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
			if !regexp.MustCompile(`(?m)^` + tc.user + `:x:\d+:\d+:[^:]*:[^:]*:/usr/sbin/nologin$`).Match(passwd) {
				t.Errorf("no system user %s with nologin in /etc/passwd:\n%s", tc.user, passwd)
			}
			group, _ := os.ReadFile(filepath.Join(root, "etc/group"))
			for _, g := range tc.groups {
				if !regexp.MustCompile(`(?m)^` + g + `:x:\d+:(.*,)?` + tc.user + `(,.*)?$`).Match(group) {
					t.Errorf("%s is not in group %s:\n%s", tc.user, g, group)
				}
			}
			bin := filepath.Join(root, "usr/bin", tc.pkg)
			if got := mustRun(t, bin, "version"); got != tc.pkg+" "+version+"\n" {
				t.Errorf("installed binary: got %q", got)
			}
			status := mustRun(t, "dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W", "-f=${Status} ${Version}", tc.pkg)
			if status != "install ok installed "+version {
				t.Errorf("dpkg status: got %q", status)
			}

			// Installing again (an upgrade to the same version) keeps a
			// user's edit of the conffile and the user itself.
			conf := filepath.Join(root, tc.conffile)
			edited := []byte("# edited by the user\n")
			if err := os.WriteFile(conf, edited, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := dpkgIn(t, root, "--force-confold", "-i", deb(t, tc.pkg, "amd64")); err != nil {
				t.Fatalf("reinstall: %v\n%s", err, out)
			}
			if b, _ := os.ReadFile(conf); !bytes.Equal(b, edited) {
				t.Errorf("reinstall replaced the edited conffile: %q", b)
			}
			passwd2, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
			if strings.Count(string(passwd2), "\n"+tc.user+":") != 1 {
				t.Errorf("reinstall duplicated the user:\n%s", passwd2)
			}

			// Remove: files go, the edited conffile stays; purge: it goes.
			if out, err := dpkgIn(t, root, "-r", tc.pkg); err != nil {
				t.Fatalf("dpkg -r: %v\n%s", err, out)
			}
			if _, err := os.Stat(bin); !os.IsNotExist(err) {
				t.Errorf("%s still there after remove (%v)", bin, err)
			}
			if _, err := os.Stat(filepath.Join(root, "usr/lib/systemd/system", tc.pkg+".service")); !os.IsNotExist(err) {
				t.Errorf("unit still there after remove (%v)", err)
			}
			if _, err := os.Stat(conf); err != nil {
				t.Errorf("conffile gone after remove, want it kept until purge: %v", err)
			}
			if out, err := dpkgIn(t, root, "--purge", tc.pkg); err != nil {
				t.Fatalf("dpkg --purge: %v\n%s", err, out)
			}
			if _, err := os.Stat(conf); !os.IsNotExist(err) {
				t.Errorf("conffile still there after purge (%v)", err)
			}
			if out, _ := run(t, "dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W", tc.pkg); strings.Contains(out, version) {
				t.Errorf("package still known after purge: %q", out)
			}
		})
	}
}

func TestExampleConfigs(t *testing.T) {
	t.Run("glowcastd.yaml needs only a device id", func(t *testing.T) {
		cfg := device.Default()
		if err := cliconf.LoadFile("../../configs/glowcastd.yaml", &cfg); err != nil {
			t.Fatal(err)
		}
		err := cfg.Validate()
		if err == nil || strings.Count(err.Error(), "\n") != 0 || !strings.Contains(err.Error(), "device_id") {
			t.Errorf("got %v, want exactly the missing device_id", err)
		}
		cfg.DeviceID, cfg.MQTT.Username = "kitchen", "kitchen"
		if err := cfg.Validate(); err != nil {
			t.Errorf("with a device id: %v", err)
		}
		if cfg.LED != "spi:/dev/spidev0.0" || cfg.StateDir != "/var/lib/glowcast" {
			t.Errorf("led %q state_dir %q, want spi:/dev/spidev0.0 and the unit's /var/lib/glowcast", cfg.LED, cfg.StateDir)
		}
	})
	t.Run("agent.yaml", func(t *testing.T) {
		cfg := agent.Default()
		if err := cliconf.LoadFile("../../configs/agent.yaml", &cfg); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%v", err)
		}
		if cfg.HTTP == "" || cfg.StateDir != "/var/lib/glowcast-agent" {
			t.Errorf("http %q state_dir %q: want the status page on and the unit's state dir", cfg.HTTP, cfg.StateDir)
		}
	})
}

// TestFirstRun: glowcastd without a usable config says what is missing
// and how to write it.
func TestFirstRun(t *testing.T) {
	bin := filepath.Join(dist, "linux_amd64", "glowcastd")
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "no config", want: []string{"no configuration file given", "device_id (--device-id) is not set", "broker (--broker) is not set", "sudo glowcastd init -config /etc/glowcast/glowcastd.yaml"}},
		{name: "packaged config", args: []string{"-config", "../../configs/glowcastd.yaml"}, want: []string{"configuration ../../configs/glowcastd.yaml", "device_id (--device-id) is not set", "-force"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, bin, tc.args...)
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Errorf("exit: got %v, want status 1", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
