package debroot

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// suite is Debian's release the root is built from; packages must install
// on it.
const suite = "bookworm"

// The two releases a test installs and upgrades between.
const (
	oldVersion = "1.0.0"
	newVersion = "1.1.0"
)

var (
	// debs[version][package] is the amd64 .deb's path.
	debs    = map[string]map[string]string{}
	rootTar string
)

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "debroot:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	if os.Geteuid() != 0 {
		return 0, fmt.Errorf("needs root to chroot into the Debian root: run as root (sudo make test-debroot)")
	}
	var err error
	if rootTar, err = cachedRoot(); err != nil {
		return 0, err
	}
	tmp, err := os.MkdirTemp("", "glowcast-debroot-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	for _, v := range []string{oldVersion, newVersion} {
		dist := filepath.Join(tmp, v)
		cmd := exec.Command("make", "-C", "../..", "dist-amd64", "deb-pkgs", "DEB_ARCHES=amd64:amd64", "DIST="+dist, "VERSION="+v)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("make deb %s: %w", v, err)
		}
		debs[v] = map[string]string{}
		for _, p := range []string{"glowcastd", "glowcast-agent"} {
			debs[v][p] = filepath.Join(dist, "deb", fmt.Sprintf("%s_%s_amd64.deb", p, v))
			if _, err := os.Stat(debs[v][p]); err != nil {
				return 0, err
			}
		}
	}
	return m.Run(), nil
}

// mirror is the Debian mirror this machine's apt uses.
func mirror() string {
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	files = append(files, "/etc/apt/sources.list")
	re := regexp.MustCompile(`(?m)^(?:URIs:\s*|deb\s+(?:\[[^]]*\]\s+)?)(\S+/debian)/?\s*$|^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?\s+\S+`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			for _, u := range m[1:] {
				if u != "" {
					return u
				}
			}
		}
	}
	return "http://deb.debian.org/debian"
}

// rootPackages are installed in the root besides Debian's minimal base:
// what the maintainer scripts and apt need, and Mosquitto (with its
// clients) for the one-Pi set-up, where the broker runs beside both
// packages.
var rootPackages = []string{"passwd", "adduser", "init-system-helpers", "gpg", "ca-certificates", "mosquitto", "mosquitto-clients"}

// cachedRoot returns the tarball of a minimal Debian root, building it with
// mmdebstrap when it is not cached yet.
func cachedRoot() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "glowcast")
	// The name changes with the package list, so a new list builds a new
	// root instead of reusing a cached one without its packages.
	sum := sha256.Sum256([]byte(strings.Join(rootPackages, ",")))
	tar := filepath.Join(dir, fmt.Sprintf("debroot-%s-%x.tar", suite, sum[:4]))
	if _, err := os.Stat(tar); err == nil {
		return tar, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	mm, err := exec.LookPath("mmdebstrap")
	if err != nil {
		return "", fmt.Errorf("mmdebstrap not found: run scripts/install-test-deps (apt-get install mmdebstrap)")
	}
	part := tar + ".part"
	cmd := exec.Command(mm, "--variant=minbase", "--format=tar", "--include="+strings.Join(rootPackages, ","),
		suite, part, mirror())
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		os.Remove(part)
		return "", fmt.Errorf("mmdebstrap %s: %w", suite, err)
	}
	return tar, os.Rename(part, tar)
}

// shim replaces systemctl and deb-systemd-invoke: it appends its name and
// arguments to /var/log/glowcast-shim.log and succeeds.
const shim = `#!/bin/sh
echo "$(basename "$0") $*" >> /var/log/glowcast-shim.log
exit 0
`

// root is one unpacked Debian root.
type root struct {
	t   *testing.T
	dir string
}

func newRoot(t *testing.T) *root {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("tar", "-C", dir, "-xf", rootTar).CombinedOutput()
	if err != nil {
		t.Fatalf("unpacking the root: %v\n%s", err, out)
	}
	r := &root{t: t, dir: dir}
	// The maintainer scripts act on services only where systemd runs.
	if err := os.MkdirAll(filepath.Join(dir, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"usr/bin/systemctl", "usr/bin/deb-systemd-invoke"} {
		os.Remove(filepath.Join(dir, p))
		if err := os.WriteFile(filepath.Join(dir, p), []byte(shim), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (r *root) path(p string) string { return filepath.Join(r.dir, p) }

// sh runs script in the root and returns its output; it fails the test
// when the script fails.
func (r *root) sh(script string) string {
	r.t.Helper()
	out, err := r.try(script)
	if err != nil {
		r.t.Fatalf("in the Debian root: %s: %v\n%s", script, err, out)
	}
	return out
}

func (r *root) try(script string) (string, error) {
	cmd := exec.Command("chroot", r.dir, "/bin/sh", "-ec", script)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C.UTF-8", "HOME=/root"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// copyIn puts the package file into the root's /tmp and returns its path
// there.
func (r *root) copyIn(pkg, version string) string {
	r.t.Helper()
	b, err := os.ReadFile(debs[version][pkg])
	if err != nil {
		r.t.Fatal(err)
	}
	p := "/tmp/" + filepath.Base(debs[version][pkg])
	if err := os.WriteFile(r.path(p), b, 0o644); err != nil {
		r.t.Fatal(err)
	}
	return p
}

func (r *root) install(pkg, version string) string {
	r.t.Helper()
	return r.sh("dpkg -i " + r.copyIn(pkg, version))
}

// calls returns the shim's log since the last call of calls and clears it.
func (r *root) calls() []string {
	r.t.Helper()
	p := r.path("var/log/glowcast-shim.log")
	b, err := os.ReadFile(p)
	if err != nil && !os.IsNotExist(err) {
		r.t.Fatal(err)
	}
	os.Remove(p)
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func (r *root) exists(p string) bool {
	_, err := os.Lstat(r.path(p))
	return err == nil
}

func (r *root) status(pkg string) string {
	out, _ := r.try("dpkg-query -W -f '${db:Status-Abbrev}' " + pkg)
	return strings.TrimSpace(out)
}

func contains(calls []string, want string) bool {
	for _, c := range calls {
		if c == want {
			return true
		}
	}
	return false
}
