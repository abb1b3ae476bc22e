package security

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/glowcast/glowcast/test/kit/mqtttest"
)

// Root is the repository's root directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Auth picks one of the two authentication options of glowcast.conf.
type Auth int

const (
	// AuthCert is option A: client certificates, common name = user name.
	AuthCert Auth = iota
	// AuthPassword is option B: a password file over server-only TLS.
	AuthPassword
)

func (a Auth) String() string {
	if a == AuthPassword {
		return "password"
	}
	return "certificate"
}

// AgentUser is the agent's MQTT user name in glowcast.acl.
const AgentUser = "glowcast-agent"

// ObserverUser is a second agent identity, added to the shipped ACL the
// way an operator adds one per agent host: the broker makes the user name
// the client id, so a test watching beside the real agent needs its own.
const ObserverUser = "glowcast-agent-observer"

// writeACL writes the shipped glowcast.acl plus a block for ObserverUser
// copied from the shipped agent block.
func writeACL(t testing.TB, path string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Root(), "configs", "mosquitto", "glowcast.acl"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\nuser "+AgentUser+"\n")
	if i < 0 {
		t.Fatal("glowcast.acl: no block for user " + AgentUser)
	}
	block := strings.Replace(s[i:], "user "+AgentUser, "user "+ObserverUser, 1)
	if err := os.WriteFile(path, []byte(s+block), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Files are the files glowcast.conf names, as a test has them.
type Files struct {
	CA, CRL, Cert, Key, ACL, Passwd string
}

// Config returns configs/mosquitto/glowcast.conf with only its listener
// bound to port on loopback, its file paths replaced by f's, and for
// AuthPassword option A commented out and option B in (see
// mqtttest.ShippedConfig).
func Config(t testing.TB, port int, f Files, auth Auth) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Root(), "configs", "mosquitto", "glowcast.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf, err := mqtttest.ShippedConfig(b, port, &mqtttest.TLSFiles{CA: f.CA, CRL: f.CRL, Cert: f.Cert, Key: f.Key,
		ACL: f.ACL, Passwd: f.Passwd, Password: auth == AuthPassword})
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

// Broker is a Mosquitto running the production config with a fresh CA.
type Broker struct {
	*mqtttest.Broker
	CA    *CA
	Files Files
	Auth  Auth
	// passwords written to the password file, by user.
	passwords map[string]string
}

// StartBroker makes a CA with a broker certificate, writes the password
// file for users (user → password; ignored by AuthCert) and starts
// Mosquitto with the production config and ACL.
func StartBroker(t testing.TB, auth Auth, users map[string]string, opts ...mqtttest.Option) *Broker {
	t.Helper()
	dir := t.TempDir()
	ca := NewCA(t, dir, "glowcast-ca")
	cert, key := ca.Issue(t, "localhost", "broker", Server())
	f := Files{CA: ca.CertFile, CRL: ca.CRLFile, Cert: cert, Key: key,
		ACL: filepath.Join(dir, "glowcast.acl"), Passwd: filepath.Join(dir, "glowcast.passwd")}
	writeACL(t, f.ACL)
	b := &Broker{CA: ca, Files: f, Auth: auth, passwords: users}
	WritePasswordFile(t, f.Passwd, users)
	b.Broker = StartWithFiles(t, auth, f, opts...)
	return b
}

// StartWithFiles starts Mosquitto with the production config naming the
// files in f (made by scripts/glowcast-pki, say).
func StartWithFiles(t testing.TB, auth Auth, f Files, opts ...mqtttest.Option) *mqtttest.Broker {
	t.Helper()
	opts = append([]mqtttest.Option{mqtttest.WithListener(func(port int) string { return Config(t, port, f, auth) })}, opts...)
	return mqtttest.Start(t, opts...)
}

// URL is the broker's mqtts:// URL.
func (b *Broker) URL() string { return "mqtts://" + b.Addr() }

// WritePasswordFile writes a Mosquitto 2 password file: PBKDF2-SHA512
// with 101 iterations and a 12-byte salt, as mosquitto_passwd does.
func WritePasswordFile(t testing.TB, path string, users map[string]string) {
	t.Helper()
	var sb strings.Builder
	for u, pw := range users {
		salt := make([]byte, 12)
		rand.Read(salt)
		h, err := pbkdf2.Key(sha512.New, pw, salt, 101, 64)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sb, "%s:$7$101$%s$%s\n", u, base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(h))
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}
