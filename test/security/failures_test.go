package security

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/glowcast/glowcast/internal/brokerconf"
	"github.com/glowcast/glowcast/mqttmsg"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
)

// syncBuffer is a log sink safe for the client's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestConnectFailuresNameTheSetting runs the programs' client (mqttmsg with
// brokerconf) against the production broker with one thing wrong at a
// time, and checks the log says which file or setting to fix — and never
// the password.
func TestConnectFailuresNameTheSetting(t *testing.T) {
	cases := []struct {
		name string
		auth Auth
		cfg  func(t *testing.T, b *Broker) brokerconf.Config
		want []string
	}{
		{"broker certificate from another CA", AuthCert, func(t *testing.T, b *Broker) brokerconf.Config {
			c := b.identity(t, "kitchen")
			c.CAFile = NewCA(t, t.TempDir(), "other-ca").CertFile
			return c
		}, []string{"mqtt.ca_file (--mqtt-ca)", "other-ca.crt"}},
		{"broker certificate for another name", AuthCert, func(t *testing.T, b *Broker) brokerconf.Config {
			c := b.identity(t, "kitchen")
			c.ServerName = "broker.example"
			return c
		}, []string{"mqtt.server_name (--mqtt-server-name)", "broker.example"}},
		{"no client certificate", AuthCert, func(t *testing.T, b *Broker) brokerconf.Config {
			return brokerconf.Config{Username: "kitchen", CAFile: b.Files.CA}
		}, []string{"mqtt.cert_file (--mqtt-cert)"}},
		{"client certificate from another CA", AuthCert, func(t *testing.T, b *Broker) brokerconf.Config {
			c := b.identity(t, "kitchen")
			c.CertFile, c.KeyFile = NewCA(t, t.TempDir(), "other-ca").Issue(t, "kitchen", "stranger")
			return c
		}, []string{"stranger.crt (mqtt.cert_file (--mqtt-cert))"}},
		{"wrong password", AuthPassword, func(t *testing.T, b *Broker) brokerconf.Config {
			c := b.identity(t, "kitchen")
			c.PasswordFile = filepath.Join(t.TempDir(), "wrong-password")
			os.WriteFile(c.PasswordFile, []byte(users["garden"]), 0o600)
			return c
		}, []string{"(mqtt.username (--mqtt-username))", "mqtt.password_file (--mqtt-password-file)", "wrong-password"}},
		{"no password", AuthPassword, func(t *testing.T, b *Broker) brokerconf.Config {
			return brokerconf.Config{Username: "kitchen", CAFile: b.Files.CA}
		}, []string{"mqtt.password_file", brokerconf.CredentialPassword}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CREDENTIALS_DIRECTORY", "")
			b := StartBroker(t, tc.auth, users)
			before := goleak.IgnoreCurrent()
			cfg := tc.cfg(t, b)
			var logs syncBuffer
			o := mqttmsg.Options{Broker: b.URL(), ClientID: "glowcastd-kitchen", Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			if err := cfg.Apply(b.URL(), &o); err != nil {
				t.Fatalf("apply: %v", err)
			}
			cl, err := mqttmsg.New(o)
			if err != nil {
				t.Fatal(err)
			}
			cl.Connect()
			mqtttest.WaitFor(t, 10*time.Second, "an explained connection failure in the log", func() bool {
				return strings.Contains(logs.String(), "fix=")
			})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			cl.Close(ctx)
			cancel()
			settle(t, before)
			out := logs.String()
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("log does not mention %q:\n%s", w, out)
				}
			}
			if !strings.Contains(out, "level=ERROR") {
				t.Errorf("failure not logged at error level:\n%s", out)
			}
			for _, pw := range users {
				if strings.Contains(out, pw) {
					t.Errorf("log contains a password:\n%s", out)
				}
			}
			if cl.Ups() != 0 {
				t.Errorf("client connected %d times, want refused", cl.Ups())
			}
		})
	}
}
