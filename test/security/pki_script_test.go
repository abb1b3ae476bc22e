package security

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glowcast/glowcast/internal/brokerconf"
)

// pki runs scripts/glowcast-pki in dir.
func pki(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	for _, tool := range []string{"openssl", "mosquitto_passwd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install it (apt-get install -y openssl mosquitto)", tool)
		}
	}
	cmd := exec.Command(filepath.Join(Root(), "scripts", "glowcast-pki"), args...)
	cmd.Env = append(os.Environ(), "GLOWCAST_PKI="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestPKIScript makes a CA, a broker certificate, the agent's and two
// devices' credentials with the script, runs the production broker on
// them in both authentication options, and revokes a device.
func TestPKIScript(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	for _, args := range [][]string{{"init"}, {"broker", "localhost", "127.0.0.1"}, {"agent"}, {"device", "kitchen"}, {"device", "garden"}} {
		if out, err := pki(t, dir, args...); err != nil {
			t.Fatalf("glowcast-pki %v: %v\n%s", args, err, out)
		}
	}
	for _, id := range []string{"a/b", "kitchen/#", "+", "-x", "agent", AgentUser, strings.Repeat("x", 65), "kitchen"} {
		t.Run("refuses id "+id, func(t *testing.T) {
			out, err := pki(t, dir, "device", id)
			if err == nil {
				t.Errorf("glowcast-pki device %q: succeeded, want refused\n%s", id, out)
			}
			if !strings.Contains(out, "glowcast-pki:") {
				t.Errorf("no message for a refused id: %q", out)
			}
		})
	}
	if fi, err := os.Stat(filepath.Join(dir, "clients", "kitchen", "mqtt.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("device key: %v, want mode 0600", err)
	}

	files := Files{
		CA: filepath.Join(dir, "glowcast-ca.crt"), CRL: filepath.Join(dir, "glowcast-ca.crl"),
		Cert: filepath.Join(dir, "broker.crt"), Key: filepath.Join(dir, "broker.key"),
		ACL: filepath.Join(Root(), "configs", "mosquitto", "glowcast.acl"), Passwd: filepath.Join(dir, "glowcast.passwd"),
	}
	settings := func(user string, auth Auth) brokerconf.Config {
		c := filepath.Join(dir, "clients", user)
		cfg := brokerconf.Config{Username: user, CAFile: filepath.Join(c, "ca.crt")}
		if auth == AuthCert {
			cfg.CertFile, cfg.KeyFile = filepath.Join(c, "mqtt.crt"), filepath.Join(c, "mqtt.key")
		} else {
			cfg.PasswordFile = filepath.Join(c, "mqtt-password")
		}
		return cfg
	}
	gardenCert := settings("garden", AuthCert)
	gardenPass := settings("garden", AuthPassword)
	brokers := map[Auth]*Broker{}
	for _, auth := range authModes {
		b := &Broker{Broker: StartWithFiles(t, auth, files), Files: files, Auth: auth}
		brokers[auth] = b
		for _, user := range []string{AgentUser, "kitchen", "garden"} {
			if _, err := b.connect(t, settings(user, auth), "test-"+user, nil); err != nil {
				t.Errorf("%v auth: %s with the script's credentials refused: %v\n%s", auth, user, err, b.Log())
			}
		}
	}

	if out, err := pki(t, dir, "revoke", "garden"); err != nil {
		t.Fatalf("glowcast-pki revoke garden: %v\n%s", err, out)
	}
	for auth, b := range brokers {
		if err := b.Restart(); err != nil {
			t.Fatal(err)
		}
		cfg := gardenCert
		if auth == AuthPassword {
			cfg = gardenPass
		}
		if _, err := b.connect(t, cfg, "test-garden-revoked", nil); err == nil {
			t.Errorf("%v auth: revoked device garden still accepted", auth)
		}
		if _, err := b.connect(t, settings("kitchen", auth), "test-kitchen-after", nil); err != nil {
			t.Errorf("%v auth: kitchen refused after garden's revocation: %v", auth, err)
		}
	}
	// A revoked id can be issued anew.
	if out, err := pki(t, dir, "device", "garden"); err != nil {
		t.Errorf("re-issuing garden after revocation: %v\n%s", err, out)
	}
}
