// Package brokerconf turns the MQTT connection settings both programs share
// (credentials, TLS files) into mqttmsg options. Secrets are read from
// files or systemd credentials, never from flag values, and never logged.
//
// # Where secrets come from
//
// The password is read from password_file; when that is unset and the
// program runs under systemd with LoadCredential=, from
// $CREDENTIALS_DIRECTORY/mqtt-password. The client key likewise falls back
// to $CREDENTIALS_DIRECTORY/mqtt-key, so a key readable only by root can be
// handed to a DynamicUser= service. A blank credential means "none": the
// units pair each LoadCredential= with a blank SetCredential= fallback so
// they start whether or not the file exists.
package brokerconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/glowcast/glowcast/mqttmsg"
)

// Names of the systemd credentials read from $CREDENTIALS_DIRECTORY.
const (
	CredentialPassword = "mqtt-password"
	CredentialKey      = "mqtt-key"
)

// maxPassword is MQTT 3.1.1's limit on the password field.
const maxPassword = 65535

// Config is the `mqtt:` section of a glowcast config file.
type Config struct {
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	CAFile       string `yaml:"ca_file"`
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	// ServerName is the name the broker's certificate must carry when it
	// differs from the host in the broker URL (e.g. connecting by address).
	ServerName string `yaml:"server_name"`
	// ResubscribeAfter subscribes once more this long after each connect,
	// for the broker's retained messages again (mqttmsg.Options.Resubscribe):
	// a node of a clustered broker can answer before it has loaded them.
	// Unset, it is DefaultResubscribe when the broker URL lists several
	// nodes and off for one; a negative value turns it off.
	ResubscribeAfter time.Duration `yaml:"resubscribe_after"`
}

// DefaultResubscribe is ResubscribeAfter for a list of broker nodes. The
// first subscriber on a NATS node that had just started got 3 to 872 of
// 3,000 retained messages; the next, a second later, got all of them.
const DefaultResubscribe = 10 * time.Second

// Bind registers the flags on fs with c's values as defaults. There is
// deliberately no flag for the password itself: a flag value shows in ps
// and in the unit file.
func (c *Config) Bind(fs *flag.FlagSet) {
	fs.StringVar(&c.Username, "mqtt-username", c.Username, "MQTT `user` name (a device's is its device id)")
	fs.StringVar(&c.PasswordFile, "mqtt-password-file", c.PasswordFile, "`file` holding the MQTT password (default: the systemd credential "+CredentialPassword+")")
	fs.StringVar(&c.CAFile, "mqtt-ca", c.CAFile, "CA certificate `file` for mqtts:// brokers (default: the system's roots)")
	fs.StringVar(&c.CertFile, "mqtt-cert", c.CertFile, "client certificate `file` for mutual TLS")
	fs.StringVar(&c.KeyFile, "mqtt-key", c.KeyFile, "client key `file` for mutual TLS (default: the systemd credential "+CredentialKey+")")
	fs.StringVar(&c.ServerName, "mqtt-server-name", c.ServerName, "`name` the broker's certificate must carry, if not the broker URL's host")
	fs.DurationVar(&c.ResubscribeAfter, "mqtt-resubscribe-after", c.ResubscribeAfter, "subscribe again this long after each connect, for retained messages a clustered broker's node had not loaded yet (default "+DefaultResubscribe.String()+" with several broker URLs, off with one; negative: off)")
}

// Setting names as users write them, for error messages.
const (
	setUsername   = "mqtt.username (--mqtt-username)"
	setPassword   = "mqtt.password_file (--mqtt-password-file)"
	setCA         = "mqtt.ca_file (--mqtt-ca)"
	setCert       = "mqtt.cert_file (--mqtt-cert)"
	setKey        = "mqtt.key_file (--mqtt-key)"
	setServerName = "mqtt.server_name (--mqtt-server-name)"
)

// Validate checks the settings against the broker URL without reading any
// file; Apply reads them.
func (c *Config) Validate(broker string) error {
	nodes, err := mqttmsg.ParseBrokers(broker)
	if err != nil {
		// The caller reports a malformed broker URL itself.
		return nil
	}
	var errs []error
	for _, n := range nodes {
		errs = append(errs, c.validateNode(n))
	}
	return errors.Join(errs...)
}

// validateNode checks the settings against one node of the broker list.
func (c *Config) validateNode(broker string) error {
	u, err := url.Parse(broker)
	if err != nil || u.Host == "" {
		return nil
	}
	secure := mqttmsg.IsTLS(u.Scheme)
	var errs []error
	if !secure {
		for _, f := range []struct{ set, v string }{{setCA, c.CAFile}, {setCert, c.CertFile}, {setKey, c.KeyFile}, {setServerName, c.ServerName}} {
			if f.v != "" {
				errs = append(errs, fmt.Errorf("brokerconf: %s is set but broker %q does not use TLS: use mqtts://%s", f.set, broker, u.Host))
			}
		}
	}
	if c.KeyFile != "" && c.CertFile == "" {
		errs = append(errs, fmt.Errorf("brokerconf: %s is set without %s: give both for mutual TLS", setKey, setCert))
	}
	if c.PasswordFile != "" && c.Username == "" {
		errs = append(errs, fmt.Errorf("brokerconf: %s is set without %s: a password needs a user name", setPassword, setUsername))
	}
	if c.PasswordFile != "" && !secure && !isLoopback(u.Hostname()) {
		errs = append(errs, fmt.Errorf("brokerconf: %s is set but broker %q is not TLS: the password would cross the network in clear; use mqtts://%s", setPassword, broker, u.Host))
	}
	return errors.Join(errs...)
}

// Apply loads the files and sets credentials and TLS on o. Errors name the
// file and the setting. It also makes failed connection attempts log an
// explanation that names the setting to check (on o.Logger).
func (c *Config) Apply(broker string, o *mqttmsg.Options) error {
	if err := c.Validate(broker); err != nil {
		return err
	}
	nodes, err := mqttmsg.ParseBrokers(broker)
	if err != nil {
		return fmt.Errorf("brokerconf: %w", err)
	}
	var us []*url.URL
	anyTLS := false
	for _, n := range nodes {
		u, err := url.Parse(n)
		if err != nil {
			return fmt.Errorf("brokerconf: broker URL %q: %w", n, err)
		}
		us = append(us, u)
		anyTLS = anyTLS || mqttmsg.IsTLS(u.Scheme)
	}
	o.Resubscribe = c.resubscribe(len(nodes))
	o.Username = c.Username
	pw, pwFrom, err := c.password()
	if err != nil {
		return err
	}
	if pw != "" {
		if c.Username == "" {
			return fmt.Errorf("brokerconf: a password is given (%s) but %s is empty: a password needs a user name", pwFrom, setUsername)
		}
		for _, u := range us {
			if !mqttmsg.IsTLS(u.Scheme) && !isLoopback(u.Hostname()) {
				return fmt.Errorf("brokerconf: a password is given (%s) but broker %q is not TLS: the password would cross the network in clear; use mqtts://%s", pwFrom, u.String(), u.Host)
			}
		}
		o.Password = pw
	}
	keyFrom := ""
	if anyTLS {
		tc, from, err := c.tlsConfig()
		if err != nil {
			return err
		}
		o.TLS, keyFrom = tc, from
	}
	o.OnConnectError = append(o.OnConnectError, c.reporter(o.Logger, broker, pwFrom, keyFrom))
	return nil
}

// resubscribe is ResubscribeAfter as it applies to a list of nodes.
func (c *Config) resubscribe(nodes int) time.Duration {
	switch {
	case c.ResubscribeAfter < 0:
		return 0
	case c.ResubscribeAfter > 0:
		return c.ResubscribeAfter
	case nodes > 1:
		return DefaultResubscribe
	}
	return 0
}

// password returns the password and where it came from ("" if none).
func (c *Config) password() (pw, from string, err error) {
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return "", "", fmt.Errorf("brokerconf: reading %s %s: %w", setPassword, c.PasswordFile, err)
		}
		pw = strings.TrimRight(string(b), "\r\n")
		if pw == "" {
			return "", "", fmt.Errorf("brokerconf: %s %s is empty: write the password into it, or unset the setting", setPassword, c.PasswordFile)
		}
		from = setPassword + " " + c.PasswordFile
	} else {
		p, ok := credential(CredentialPassword)
		if !ok {
			return "", "", nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return "", "", fmt.Errorf("brokerconf: reading systemd credential %s: %w", p, err)
		}
		pw = strings.TrimRight(string(b), "\r\n")
		from = "systemd credential " + p
	}
	if len(pw) > maxPassword {
		return "", "", fmt.Errorf("brokerconf: password from %s is %d bytes, over MQTT's %d", from, len(pw), maxPassword)
	}
	if pw == "" {
		from = ""
	}
	return pw, from, nil
}

// credential returns the path of the systemd credential name if the
// process has one with content. Blank means absent: the units' fallback
// (SetCredential=NAME:\n) is a lone newline, since systemd refuses an
// empty value.
func credential(name string) (string, bool) {
	dir := os.Getenv("CREDENTIALS_DIRECTORY")
	if dir == "" {
		return "", false
	}
	p := filepath.Join(dir, name)
	b, err := os.ReadFile(p)
	if err != nil || strings.TrimSpace(string(b)) == "" {
		return p, false
	}
	return p, true
}

func (c *Config) tlsConfig() (*tls.Config, string, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		b, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, "", fmt.Errorf("brokerconf: reading %s %s: %w", setCA, c.CAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, "", fmt.Errorf("brokerconf: %s %s holds no PEM certificate: give the CA that signed the broker's certificate", setCA, c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile == "" {
		return tc, "", nil
	}
	keyFile, keySet := c.KeyFile, setKey
	if keyFile == "" {
		p, ok := credential(CredentialKey)
		if !ok {
			return nil, "", fmt.Errorf("brokerconf: %s is set but there is no key: set %s or provide the systemd credential %s", setCert, setKey, CredentialKey)
		}
		keyFile, keySet = p, "systemd credential"
	}
	certPEM, err := os.ReadFile(c.CertFile)
	if err != nil {
		return nil, "", fmt.Errorf("brokerconf: reading %s %s: %w", setCert, c.CertFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, "", fmt.Errorf("brokerconf: reading %s %s: %w", keySet, keyFile, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, "", fmt.Errorf("brokerconf: client certificate %s (%s) with key %s (%s): %w", c.CertFile, setCert, keyFile, keySet, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, "", fmt.Errorf("brokerconf: %s %s: %w", setCert, c.CertFile, err)
		}
	}
	now := time.Now()
	if now.After(leaf.NotAfter) {
		return nil, "", fmt.Errorf("brokerconf: %s %s expired on %s: issue a new certificate for %q", setCert, c.CertFile, leaf.NotAfter.Format(time.DateOnly), leaf.Subject.CommonName)
	}
	if now.Before(leaf.NotBefore) {
		return nil, "", fmt.Errorf("brokerconf: %s %s is not valid before %s: check the clock", setCert, c.CertFile, leaf.NotBefore.Format(time.RFC3339))
	}
	tc.Certificates = []tls.Certificate{pair}
	return tc, c.CertFile, nil
}

// Explain returns what to check for a failed connection attempt of a
// client configured by Apply, naming the settings involved, or "" when the
// error is not about TLS or credentials (the broker is down, say). It is
// the "fix" that Apply's reporter logs; doctor shows it as its advice.
func (c *Config) Explain(err error) string {
	_, pwFrom, _ := c.password()
	return c.explain(err, pwFrom, c.CertFile)
}

// explain returns what to check for a failed connection attempt, naming
// the settings involved, or "" when the error is not about TLS or
// credentials (the broker is down, say).
func (c *Config) explain(err error, pwFrom, certFile string) string {
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var alert tls.AlertError
	msg := err.Error()
	ca := "the system's CA roots"
	if c.CAFile != "" {
		ca = setCA + " " + c.CAFile
	}
	switch {
	case errors.As(err, &unknownCA):
		return "the broker's certificate is not signed by a CA in " + ca + ": give the CA that signed it"
	case errors.As(err, &hostErr):
		return fmt.Sprintf("the broker's certificate is not valid for %q: connect by a name it carries, or set %s", hostErr.Host, setServerName)
	case errors.As(err, &invalid):
		return "the broker's certificate is not valid (" + invalid.Error() + "); checked against " + ca
	case errors.As(err, &alert), strings.Contains(msg, "remote error: tls"):
		if certFile == "" {
			return "the broker refused the TLS session: it probably requires a client certificate; set " + setCert + " and " + setKey
		}
		return "the broker refused the client certificate " + certFile + " (" + setCert + "): is it signed by the broker's CA, and not revoked?"
	case strings.Contains(msg, "bad user name or password"):
		if pwFrom == "" {
			return fmt.Sprintf("the broker wants a password for user %q (%s): set %s or the systemd credential %s", c.Username, setUsername, setPassword, CredentialPassword)
		}
		return fmt.Sprintf("the broker refused user %q (%s) with the password from %s", c.Username, setUsername, pwFrom)
	case strings.Contains(msg, "not Authorized"), strings.Contains(msg, "not authorized"):
		// Mosquitto 2 answers a wrong password with this code too.
		who := fmt.Sprintf("user %q (%s)", c.Username, setUsername)
		if certFile == "" && pwFrom == "" {
			return fmt.Sprintf("the broker refused %s without a password: set %s or the systemd credential %s, or use a client certificate (%s)", who, setPassword, CredentialPassword, setCert)
		}
		if certFile != "" {
			who += " / certificate " + certFile + " (" + setCert + ")"
		}
		if pwFrom != "" {
			who += " / password from " + pwFrom
		}
		return "the broker refused " + who + ": check them against the broker's password file"
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return "the broker does not speak TLS on this port: use tcp:// or the broker's TLS port"
	}
	return ""
}

// reporter logs failed connection attempts: the first of a kind at error
// level with an explanation, repeats (every second while it lasts) at
// debug level, and the same again after a while so a long outage stays
// visible.
func (c *Config) reporter(log *slog.Logger, broker, pwFrom, certFile string) func(error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var mu sync.Mutex
	var last string
	var at time.Time
	return func(err error) {
		msg := err.Error()
		mu.Lock()
		repeat := msg == last && time.Since(at) < 10*time.Minute
		if !repeat {
			last, at = msg, time.Now()
		}
		mu.Unlock()
		hint := c.explain(err, pwFrom, certFile)
		level := slog.LevelWarn
		if hint != "" {
			level = slog.LevelError
		}
		if repeat {
			level = slog.LevelDebug
		}
		args := []any{"broker", broker, "err", err}
		if hint != "" {
			args = append(args, "fix", hint)
		}
		log.Log(context.Background(), level, "connecting to the broker failed", args...)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
