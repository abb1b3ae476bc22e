package securitytest

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glowcast/glowcast/internal/brokerconf"
	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
)

// argvShims puts wrappers for the tools glowcast-pki runs first on PATH;
// each records its command line in log before running the real tool.
func argvShims(t *testing.T, log string) string {
	t.Helper()
	dir := t.TempDir()
	for _, tool := range []string{"openssl", "mosquitto_passwd", "mosquitto_pub"} {
		real, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s not found: install it (apt-get install -y openssl mosquitto mosquitto-clients)", tool)
		}
		sh := fmt.Sprintf("#!/bin/sh\nprintf '%%s\\n' \"%s $*\" >>%q\nexec %q \"$@\"\n", tool, log, real)
		if err := os.WriteFile(filepath.Join(dir, tool), []byte(sh), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir + ":" + os.Getenv("PATH")
}

// TestRevokeInstall: with the script's credentials, a CA key under a
// passphrase and the shipped config and ACL, `glowcast-pki revoke garden
// --install` drops the running garden daemon now, refuses it on
// reconnect, clears its retained topics and leaves kitchen served. No
// password or passphrase is ever on a command line.
func TestRevokeInstall(t *testing.T) {
	work := t.TempDir()
	dir := filepath.Join(work, "pki")
	argv := filepath.Join(work, "argv.log")
	passphrase := filepath.Join(work, "ca-passphrase")
	os.WriteFile(passphrase, []byte("correct horse battery staple\n"), 0o600)
	env := []string{"GLOWCAST_PKI=" + dir, "PATH=" + argvShims(t, argv), "GLOWCAST_CA_PASSPHRASE_FILE=" + passphrase}
	run := func(extra []string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(Root(), "scripts", "glowcast-pki"), args...)
		cmd.Env = append(append(os.Environ(), env...), extra...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, args := range [][]string{{"init", "--encrypt-ca"}, {"broker", "localhost", "127.0.0.1"}, {"agent"}, {"admin"},
		{"device", "kitchen"}, {"device", "garden"}} {
		if out, err := run(nil, args...); err != nil {
			t.Fatalf("glowcast-pki %v: %v\n%s", args, err, out)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "private", "glowcast-ca.key")); !strings.Contains(string(b), "ENCRYPTED PRIVATE KEY") {
		t.Errorf("init --encrypt-ca: the CA key is not encrypted")
	}
	if out, err := run([]string{"GLOWCAST_CA_PASSPHRASE_FILE=" + filepath.Join(work, "nope")}, "device", "hall"); err == nil {
		t.Errorf("signing without the CA passphrase succeeded:\n%s", out)
	}

	// The broker host: /etc/mosquitto as a directory of its own.
	bdir := filepath.Join(work, "mosquitto")
	os.MkdirAll(filepath.Join(bdir, "certs"), 0o755)
	for src, dst := range map[string]string{"glowcast-ca.crl": "certs/glowcast-ca.crl", "glowcast.passwd": "glowcast.passwd"} {
		b, _ := os.ReadFile(filepath.Join(dir, src))
		os.WriteFile(filepath.Join(bdir, dst), b, 0o644)
	}
	files := Files{
		CA: filepath.Join(dir, "glowcast-ca.crt"), CRL: filepath.Join(bdir, "certs", "glowcast-ca.crl"),
		Cert: filepath.Join(dir, "broker.crt"), Key: filepath.Join(dir, "broker.key"),
		ACL: filepath.Join(Root(), "configs", "mosquitto", "glowcast.acl"), Passwd: filepath.Join(bdir, "glowcast.passwd"),
	}
	b := &Broker{Broker: StartWithFiles(t, AuthCert, files, mqtttest.WithPersistence()), Files: files, Auth: AuthCert}
	settings := func(user string) brokerconf.Config {
		c := filepath.Join(dir, "clients", user)
		return brokerconf.Config{Username: user, CAFile: filepath.Join(c, "ca.crt"), CertFile: filepath.Join(c, "mqtt.crt"), KeyFile: filepath.Join(c, "mqtt.key")}
	}
	// The revoked certificate is read before revoke moves it away.
	gardenCfg := settings("garden")
	keep := t.TempDir()
	for _, f := range []string{"mqtt.crt", "mqtt.key", "ca.crt"} {
		bs, _ := os.ReadFile(filepath.Join(dir, "clients", "garden", f))
		os.WriteFile(filepath.Join(keep, f), bs, 0o600)
	}
	gardenCfg.CAFile, gardenCfg.CertFile, gardenCfg.KeyFile = filepath.Join(keep, "ca.crt"), filepath.Join(keep, "mqtt.crt"), filepath.Join(keep, "mqtt.key")

	daemons := map[string]*proc{}
	for _, id := range []string{"kitchen", "garden"} {
		s := settings(id)
		if id == "garden" {
			s = gardenCfg
		}
		conf := filepath.Join(work, id+".yaml")
		os.WriteFile(conf, []byte(fmt.Sprintf("broker: %s\ndevice_id: %s\nled: none\nstate_dir: %s\nmqtt:\n  username: %s\n  ca_file: %s\n  cert_file: %s\n  key_file: %s\n",
			b.URL(), id, filepath.Join(work, "state-"+id), id, s.CAFile, s.CertFile, s.KeyFile)), 0o644)
		daemons[id] = startProc(t, "glowcastd", []string{"CREDENTIALS_DIRECTORY="}, "-config", conf)
	}
	ready := func(id string) string { return topic(id, protocol.SideDevice, protocol.MsgReady) }
	before := newRecorder()
	bc, err := b.connect(t, settings(AgentUser), "test-before", nil)
	if err != nil {
		t.Fatalf("agent identity refused: %v\n%s", err, b.Log())
	}
	subscribe(t, bc, before, "glowcast/v1/+/device/#")
	mqtttest.WaitFor(t, 15*time.Second, "both devices ready", func() bool {
		return len(before.messages(ready("kitchen"))) > 0 && len(before.messages(ready("garden"))) > 0
	})
	bc.Disconnect(0)

	// The broker's restart, as systemctl would do it: the script waits
	// for it to finish before clearing topics.
	req, done := filepath.Join(work, "restart-requested"), filepath.Join(work, "restart-done")
	restart := fmt.Sprintf("touch %q; while [ ! -e %q ]; do sleep 0.05; done", req, done)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(Root(), "scripts", "glowcast-pki"), "revoke", "garden", "--install")
	cmd.Env = append(os.Environ(), append(env, "GLOWCAST_BROKER_DIR="+bdir, "GLOWCAST_BROKER_RESTART="+restart,
		"GLOWCAST_BROKER_HOST=localhost", fmt.Sprintf("GLOWCAST_BROKER_PORT=%d", b.Port))...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	mqtttest.WaitFor(t, 30*time.Second, "the script asking for a broker restart", func() bool { _, err := os.Stat(req); return err == nil })
	b.Restart()
	os.WriteFile(done, nil, 0o644)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("glowcast-pki revoke garden --install: %v\n%s\n%s", err, out.String(), b.Log())
	}
	for _, want := range []string{"garden revoked", "installed " + files.CRL, "restarted the broker", "cleared garden's retained topics"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("revoke --install output lacks %q:\n%s", want, out.String())
		}
	}

	if c, err := b.connect(t, gardenCfg, "test-garden-revoked", nil); err == nil {
		c.Disconnect(0)
		t.Errorf("revoked garden accepted on reconnect")
	}
	after := newRecorder()
	ac, err := b.connect(t, settings(AgentUser), "test-after", nil)
	if err != nil {
		t.Fatalf("agent identity refused after the revocation: %v", err)
	}
	subscribe(t, ac, after, "glowcast/v1/+/device/#")
	mqtttest.WaitFor(t, 15*time.Second, "kitchen ready again after the restart", func() bool { return len(after.messages(ready("kitchen"))) > 0 })
	time.Sleep(2 * time.Second) // garden retries every second or so; its ready would show
	for _, name := range []string{protocol.MsgStatus, protocol.MsgReady} {
		for _, m := range after.messages(topic("garden", protocol.SideDevice, name)) {
			if m != "" {
				t.Errorf("garden's %s still on the broker after revoke --install: %q", name, m)
			}
		}
	}
	if strings.Contains(daemons["garden"].allLogs(), "ready published") && strings.Count(daemons["garden"].allLogs(), "ready published") > 1 {
		t.Errorf("revoked garden published ready again:\n%s", daemons["garden"].allLogs())
	}

	// Renewal: a new certificate the broker accepts; the old one stays
	// valid until its own expiry.
	certOf := func(user string) (*x509.Certificate, error) { c := settings(user); return c.ClientCert() }
	oldCert, _ := certOf("kitchen")
	if out, err := run(nil, "renew", "kitchen"); err != nil || !strings.Contains(out, "new certificate valid until") {
		t.Fatalf("glowcast-pki renew kitchen: %v\n%s", err, out)
	}
	newCert, err := certOf("kitchen")
	if err != nil || newCert.SerialNumber.Cmp(oldCert.SerialNumber) == 0 || newCert.Subject.CommonName != "kitchen" {
		t.Errorf("renew kitchen: certificate %v (err %v), want a new serial for CN kitchen", newCert.Subject, err)
	}
	if _, err := b.connect(t, settings("kitchen"), "test-kitchen-renewed", nil); err != nil {
		t.Errorf("renewed kitchen refused: %v", err)
	}
	// One identity per agent host, with the ACL block the broker needs.
	out2, err := run(nil, "agent", "hostb")
	if err != nil || !strings.Contains(out2, "user glowcast-agent-hostb") {
		t.Errorf("glowcast-pki agent hostb: %v, want the ACL block for glowcast-agent-hostb\n%s", err, out2)
	}
	if c, err := certOf("glowcast-agent-hostb"); err != nil || c.Subject.CommonName != "glowcast-agent-hostb" {
		t.Errorf("agent hostb certificate: %v, %v; want CN glowcast-agent-hostb", c, err)
	}

	log, _ := os.ReadFile(argv)
	for _, secret := range []string{"correct horse", readTrim(t, filepath.Join(dir, "clients", "kitchen", "mqtt-password")), readTrim(t, filepath.Join(dir, "clients", "glowcast-admin", "mqtt-password"))} {
		if strings.Contains(string(log), secret) {
			t.Errorf("a secret is on a command line glowcast-pki ran:\n%s", log)
		}
	}
	if !strings.Contains(string(log), "mosquitto_pub") || !strings.Contains(string(log), "mosquitto_passwd") {
		t.Errorf("the argv log misses the tools it should have seen:\n%s", log)
	}
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
