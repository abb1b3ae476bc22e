package initcfg

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/glowcast/glowcast/configs"
	"github.com/glowcast/glowcast/internal/atomicfile"
)

// The one-machine set-up: Mosquitto, the agent and the device on one Pi.
const (
	// LocalBroker is the loopback listener glowcastd init -local gives
	// Mosquitto; nothing off the machine reaches it.
	LocalBroker = "tcp://127.0.0.1:1883"
	// AgentUser is the agent's MQTT user name, as the shipped ACL names it.
	AgentUser = "glowcast-agent"
	// DefaultMosquittoDir is Debian's Mosquitto configuration directory.
	DefaultMosquittoDir = "/etc/mosquitto"
)

// Local is what `glowcastd init -local` writes: every path and who owns
// the secrets.
type Local struct {
	// DeviceConfig is glowcastd's configuration; the agent's, agent.yaml,
	// and both password files are written beside it.
	DeviceConfig string
	// MosquittoDir holds glowcast.passwd and glowcast.acl; the settings
	// go to its conf.d/glowcast.conf, which Debian's mosquitto.conf
	// includes.
	MosquittoDir string
	// Group finds a group's id; nil leaves ownership as it is (a test not
	// run as root). Each password file belongs to the group its reader
	// runs as, mode 0640: the services read them as their own users.
	Group func(name string) (int, error)
	// Rand is the source of the passwords and salts (crypto/rand.Reader
	// when nil).
	Rand io.Reader
}

// LocalFiles are the paths Local writes.
type LocalFiles struct {
	DeviceConfig, AgentConfig           string
	DevicePassword, AgentPassword       string
	MosquittoConf, MosquittoPasswd, ACL string
}

// Files returns the paths l writes.
func (l Local) Files() LocalFiles {
	etc := filepath.Dir(l.DeviceConfig)
	return LocalFiles{
		DeviceConfig:    l.DeviceConfig,
		AgentConfig:     filepath.Join(etc, "agent.yaml"),
		DevicePassword:  filepath.Join(etc, "glowcastd-mqtt-password"),
		AgentPassword:   filepath.Join(etc, "agent-mqtt-password"),
		MosquittoConf:   filepath.Join(l.MosquittoDir, "conf.d", "glowcast.conf"),
		MosquittoPasswd: filepath.Join(l.MosquittoDir, "glowcast.passwd"),
		ACL:             filepath.Join(l.MosquittoDir, "glowcast.acl"),
	}
}

// SystemGroup looks a group up in the system's group database.
func SystemGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(g.Gid)
}

// Write writes the broker's, the agent's and the device's configuration
// for a (whose Broker, Username and PasswordFile it sets), with a new
// password for each of the two identities. Existing files are replaced
// only with force.
func (l Local) Write(a Answers, force bool) (LocalFiles, error) {
	f := l.Files()
	if !force {
		var exist []string
		for _, p := range []string{f.DeviceConfig, f.AgentConfig, f.MosquittoConf, f.MosquittoPasswd, f.ACL} {
			if _, err := os.Stat(p); err == nil {
				exist = append(exist, p)
			}
		}
		if len(exist) > 0 {
			return f, fmt.Errorf("initcfg: %s exist: pass -force to replace them (new passwords are made for the device and the agent)", strings.Join(exist, ", "))
		}
	}
	// Both readers must exist before anything is written: a half-written
	// set-up would leave a broker that refuses one of them.
	owners := map[string]int{}
	if l.Group != nil {
		for _, g := range []struct{ name, pkg string }{{"glowcast", "glowcastd"}, {"glowcast-agent", "glowcast-agent"}} {
			gid, err := l.Group(g.name)
			if err != nil {
				return f, fmt.Errorf("initcfg: group %s not found (%v): install the %s package first (sudo apt install %s)", g.name, err, g.pkg, g.pkg)
			}
			owners[g.name] = gid
		}
		// Mosquitto reads its password file after dropping to its own
		// user; without that group it stays root's.
		if gid, err := l.Group("mosquitto"); err == nil {
			owners["mosquitto"] = gid
		} else {
			owners["mosquitto"] = -1
		}
	}
	rnd := l.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	devicePW, err := newPassword(rnd)
	if err != nil {
		return f, err
	}
	agentPW, err := newPassword(rnd)
	if err != nil {
		return f, err
	}

	a.Broker = LocalBroker
	a.Username = a.DeviceID
	a.PasswordFile = f.DevicePassword
	a.CAFile, a.CertFile = "", ""
	device, err := Render(a)
	if err != nil {
		return f, err
	}
	agent, err := LocalAgentConfig(f.AgentPassword)
	if err != nil {
		return f, err
	}
	conf, err := LocalMosquittoConf(f.MosquittoPasswd, f.ACL)
	if err != nil {
		return f, err
	}
	var passwd strings.Builder
	for _, u := range []struct{ name, pw string }{{a.DeviceID, devicePW}, {AgentUser, agentPW}} {
		line, err := PasswdLine(rnd, u.name, u.pw)
		if err != nil {
			return f, err
		}
		passwd.WriteString(line + "\n")
	}

	for _, w := range []struct {
		path  string
		data  string
		mode  os.FileMode
		group string
	}{
		{f.DevicePassword, devicePW + "\n", 0o640, "glowcast"},
		{f.AgentPassword, agentPW + "\n", 0o640, "glowcast-agent"},
		{f.MosquittoPasswd, passwd.String(), 0o640, "mosquitto"},
		{f.ACL, configs.MosquittoACL, 0o644, ""},
		{f.MosquittoConf, conf, 0o644, ""},
		{f.AgentConfig, agent, 0o644, ""},
		{f.DeviceConfig, string(device), 0o644, ""},
	} {
		if err := os.MkdirAll(filepath.Dir(w.path), 0o755); err != nil {
			return f, fmt.Errorf("initcfg: %w (run with sudo)", err)
		}
		mode := w.mode
		gid, owned := owners[w.group]
		if w.group == "mosquitto" && (!owned || gid < 0) {
			mode = 0o600
		}
		if err := atomicfile.Write(w.path, []byte(w.data), mode); err != nil {
			return f, fmt.Errorf("initcfg: writing %s: %w (run with sudo)", w.path, err)
		}
		if owned && gid >= 0 {
			if err := os.Chown(w.path, 0, gid); err != nil {
				return f, fmt.Errorf("initcfg: %s: %w (run with sudo)", w.path, err)
			}
		}
	}
	return f, nil
}

// LocalAgentConfig is the shipped agent.yaml pointed at the loopback
// broker, with the password in passwordFile instead of a certificate.
func LocalAgentConfig(passwordFile string) (string, error) {
	conf, err := configs.Rewrite("agent.yaml", configs.Agent, []configs.Line{
		{Match: `broker: "mqtts://broker.example.org:8883"`, With: `broker: "` + LocalBroker + `"  # Mosquitto on this machine (glowcastd init -local)`},
		{Match: "  ca_file: ", With: "  password_file: " + passwordFile + "  # readable by group glowcast-agent only"},
		{Match: "  cert_file: ", With: "  # cert_file: (none: the loopback listener has no TLS)"},
	})
	if err != nil {
		return "", fmt.Errorf("initcfg: %w", err)
	}
	return conf, nil
}

// LocalMosquittoConf is the shipped glowcast.conf for one machine: one
// listener on loopback without TLS, passwords (option B) instead of
// certificates, every limit and the ACL as shipped.
func LocalMosquittoConf(passwd, acl string) (string, error) {
	rw := []configs.Line{
		{Match: "listener 8883", With: "listener 1883 127.0.0.1"},
		{Match: "#password_file ", With: "password_file " + passwd},
		{Match: "acl_file ", With: "acl_file " + acl},
	}
	for _, tls := range []string{"tls_version ", "ciphers ", "cafile ", "certfile ", "keyfile ", "crlfile ", "require_certificate true", "use_identity_as_username true"} {
		rw = append(rw, configs.Line{Match: tls, With: "#" + strings.TrimSpace(tls) + " (left out: a loopback listener, passwords)"})
	}
	conf, err := configs.Rewrite("glowcast.conf", configs.MosquittoConf, rw)
	if err != nil {
		return "", fmt.Errorf("initcfg: %w", err)
	}
	return "# Written by glowcastd init -local: Mosquitto for the agent and the device\n" +
		"# on this machine only. Other machines need TLS: docs/DEPLOY.md.\n\n" + conf, nil
}

// newPassword is 32 random bytes, base64url: no character a shell, YAML or
// Mosquitto's password file treats specially.
func newPassword(r io.Reader) (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("initcfg: making a password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Mosquitto's password hash: PBKDF2-SHA512 with its default iterations and
// salt length (mosquitto_passwd's "$7$" format).
const (
	pwIterations = 101
	pwSaltLen    = 12
)

// PasswdLine is user's line in a Mosquitto password file, as
// mosquitto_passwd writes it.
func PasswdLine(r io.Reader, username, password string) (string, error) {
	if username == "" || strings.ContainsAny(username, ":\n") {
		return "", errors.New("initcfg: an MQTT user name must be non-empty without ':' or a newline")
	}
	salt := make([]byte, pwSaltLen)
	if _, err := io.ReadFull(r, salt); err != nil {
		return "", fmt.Errorf("initcfg: making a salt: %w", err)
	}
	hash, err := pbkdf2.Key(sha512.New, password, salt, pwIterations, sha512.Size)
	if err != nil {
		return "", fmt.Errorf("initcfg: hashing a password: %w", err)
	}
	enc := base64.StdEncoding
	return fmt.Sprintf("%s:$7$%d$%s$%s", username, pwIterations, enc.EncodeToString(salt), enc.EncodeToString(hash)), nil
}
