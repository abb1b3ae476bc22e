package securitytest

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
// AuthPassword option A commented out and option B in. Every rewrite must
// apply exactly once, so a change to the file's shape fails the tests
// instead of silently testing something else.
func Config(t testing.TB, port int, f Files, auth Auth) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Root(), "configs", "mosquitto", "glowcast.conf"))
	if err != nil {
		t.Fatal(err)
	}
	type rewrite struct{ match, with string }
	rw := []rewrite{
		{"listener 8883", fmt.Sprintf("listener %d 127.0.0.1", port)},
		{"cafile ", "cafile " + f.CA},
		{"certfile ", "certfile " + f.Cert},
		{"keyfile ", "keyfile " + f.Key},
		{"crlfile ", "crlfile " + f.CRL},
		{"acl_file ", "acl_file " + f.ACL},
	}
	if auth == AuthPassword {
		rw = append(rw,
			rewrite{"require_certificate true", "#require_certificate true"},
			rewrite{"use_identity_as_username true", "#use_identity_as_username true"},
			rewrite{"#password_file ", "password_file " + f.Passwd})
	}
	lines := strings.Split(string(b), "\n")
	for _, r := range rw {
		n := 0
		for i, l := range lines {
			if l == r.match || (strings.HasSuffix(r.match, " ") && strings.HasPrefix(l, r.match)) {
				lines[i] = r.with
				n++
			}
		}
		if n != 1 {
			t.Fatalf("glowcast.conf: %d lines match %q, want exactly 1", n, r.match)
		}
	}
	conf := strings.Join(lines, "\n")
	if os.Geteuid() == 0 {
		// As root Mosquitto drops to its own user, which cannot read the
		// test's private temp dir; a real install has its own files.
		conf += "\nuser root\n"
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
