package brokerconf

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glowcast/glowcast/mqttmsg"
	"github.com/glowcast/glowcast/test/security"
)

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNoPasswordFlag(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var c Config
	c.Bind(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if strings.Contains(f.Name, "password") && !strings.HasSuffix(f.Name, "-file") {
			t.Errorf("flag --%s takes a secret as a value; want only a file flag", f.Name)
		}
	})
	if fs.Lookup("mqtt-password-file") == nil {
		t.Errorf("flag --mqtt-password-file missing")
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name    string
		broker  string
		cfg     Config
		wantErr []string // substrings; none means valid
	}{
		{"plain, nothing set", "tcp://broker:1883", Config{}, nil},
		{"tls with CA", "mqtts://broker:8883", Config{CAFile: "ca.crt"}, nil},
		{"ssl scheme with mutual TLS", "ssl://broker:8883", Config{CAFile: "ca.crt", CertFile: "c.crt", KeyFile: "c.key"}, nil},
		{"tls scheme with a CA", "tls://broker:8883", Config{CAFile: "ca.crt"}, nil},
		{"cert without key is left to the credential", "mqtts://broker:8883", Config{CertFile: "c.crt"}, nil},
		{"password on loopback plain", "tcp://127.0.0.1:1883", Config{Username: "u", PasswordFile: "pw"}, nil},
		{"CA on plain tcp", "tcp://broker:1883", Config{CAFile: "ca.crt"}, []string{"mqtt.ca_file (--mqtt-ca)", "mqtts://broker:1883"}},
		{"cert on plain tcp", "mqtt://broker:1883", Config{CertFile: "c.crt", KeyFile: "c.key"}, []string{"mqtt.cert_file", "mqtt.key_file"}},
		{"server name on plain tcp", "tcp://broker:1883", Config{ServerName: "b"}, []string{"mqtt.server_name"}},
		{"key without cert", "mqtts://broker:8883", Config{KeyFile: "c.key"}, []string{"mqtt.key_file (--mqtt-key) is set without mqtt.cert_file"}},
		{"password without user", "mqtts://broker:8883", Config{PasswordFile: "pw"}, []string{"mqtt.username (--mqtt-username)"}},
		{"password in clear over the network", "tcp://broker.example:1883", Config{Username: "u", PasswordFile: "pw"}, []string{"in clear"}},
		{"cluster, all TLS", "mqtts://n1:8883,mqtts://n2:8883", Config{CAFile: "ca.crt", Username: "u", PasswordFile: "pw"}, nil},
		{"cluster with one plain node", "mqtts://n1:8883,tcp://n2:1883", Config{CAFile: "ca.crt"}, []string{"mqtt.ca_file (--mqtt-ca)", "mqtts://n2:1883"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate(tc.broker)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got nil, want an error mentioning %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to mention %q", err, w)
				}
			}
		})
	}
}

func TestApplyPassword(t *testing.T) {
	dir := t.TempDir()
	creds := t.TempDir()
	pwFile := write(t, dir, "pw", "s3cret\n")
	emptyFile := write(t, dir, "empty", "")
	cases := []struct {
		name     string
		cfg      Config
		cred     string // content of $CREDENTIALS_DIRECTORY/mqtt-password; "-" none
		broker   string
		wantPass string
		wantErr  string
	}{
		{"from password_file, newline trimmed", Config{Username: "kitchen", PasswordFile: pwFile}, "-", "mqtts://b:8883", "s3cret", ""},
		{"from the systemd credential", Config{Username: "kitchen"}, "cred-pw\r\n", "mqtts://b:8883", "cred-pw", ""},
		{"password_file wins over the credential", Config{Username: "kitchen", PasswordFile: pwFile}, "cred-pw", "mqtts://b:8883", "s3cret", ""},
		{"empty credential means none", Config{Username: "kitchen"}, "", "mqtts://b:8883", "", ""},
		{"the units' blank fallback means none", Config{Username: "kitchen"}, "\n", "mqtts://b:8883", "", ""},
		{"no credential, no password", Config{Username: "kitchen"}, "-", "mqtts://b:8883", "", ""},
		{"missing password_file", Config{Username: "kitchen", PasswordFile: filepath.Join(dir, "nope")}, "-", "mqtts://b:8883", "", "mqtt.password_file (--mqtt-password-file) " + filepath.Join(dir, "nope")},
		{"empty password_file", Config{Username: "kitchen", PasswordFile: emptyFile}, "-", "mqtts://b:8883", "", emptyFile + " is empty"},
		{"credential without user", Config{}, "cred-pw", "mqtts://b:8883", "", "mqtt.username (--mqtt-username) is empty"},
		{"credential over plain tcp", Config{Username: "kitchen"}, "cred-pw", "tcp://broker.example:1883", "", "in clear"},
		{"cluster with one node in clear", Config{Username: "kitchen"}, "cred-pw", "mqtts://b:8883,tcp://c.example:1883", "", "in clear"},
		{"cluster, all TLS", Config{Username: "kitchen"}, "cred-pw", "mqtts://b:8883,mqtts://c:8883", "cred-pw", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cred == "-" {
				t.Setenv("CREDENTIALS_DIRECTORY", "")
			} else {
				d := filepath.Join(creds, strings.ReplaceAll(tc.name, " ", "_"))
				os.Mkdir(d, 0o700)
				write(t, d, CredentialPassword, tc.cred)
				t.Setenv("CREDENTIALS_DIRECTORY", d)
			}
			var o mqttmsg.Options
			err := tc.cfg.Apply(tc.broker, &o)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			if o.Password != tc.wantPass {
				t.Errorf("password: got %q, want %q", o.Password, tc.wantPass)
			}
			if o.Username != tc.cfg.Username {
				t.Errorf("username: got %q, want %q", o.Username, tc.cfg.Username)
			}
			if len(o.OnConnectError) == 0 {
				t.Errorf("OnConnectError not set, want a reporter")
			}
		})
	}
}

func TestApplyTLS(t *testing.T) {
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	dir := t.TempDir()
	ca := security.NewCA(t, dir, "ca")
	cert, key := ca.Issue(t, "kitchen", "kitchen")
	otherCert, _ := ca.Issue(t, "garden", "garden")
	expCert, expKey := ca.Issue(t, "kitchen", "expired", security.Expired())
	notPEM := write(t, dir, "not.pem", "hello")
	creds := t.TempDir()
	keyPEM, _ := os.ReadFile(key)
	write(t, creds, CredentialKey, string(keyPEM))
	blank := t.TempDir()
	write(t, blank, CredentialKey, "\n")

	cases := []struct {
		name     string
		cfg      Config
		credDir  string
		wantErr  []string
		wantCert bool
	}{
		{"CA only", Config{CAFile: ca.CertFile}, "", nil, false},
		{"system roots", Config{}, "", nil, false},
		{"mutual TLS", Config{CAFile: ca.CertFile, CertFile: cert, KeyFile: key, ServerName: "broker.example"}, "", nil, true},
		{"key from the systemd credential", Config{CAFile: ca.CertFile, CertFile: cert}, creds, nil, true},
		{"cert without key anywhere", Config{CertFile: cert}, "", []string{"mqtt.cert_file (--mqtt-cert) is set but there is no key", CredentialKey}, false},
		{"cert with the units' blank key fallback", Config{CertFile: cert}, blank, []string{"there is no key"}, false},
		{"missing CA file", Config{CAFile: filepath.Join(dir, "nope.crt")}, "", []string{"mqtt.ca_file (--mqtt-ca)", "nope.crt"}, false},
		{"CA file without PEM", Config{CAFile: notPEM}, "", []string{"mqtt.ca_file (--mqtt-ca) " + notPEM + " holds no PEM certificate"}, false},
		{"missing cert file", Config{CertFile: filepath.Join(dir, "nope.crt"), KeyFile: key}, "", []string{"mqtt.cert_file (--mqtt-cert)", "nope.crt"}, false},
		{"missing key file", Config{CertFile: cert, KeyFile: filepath.Join(dir, "nope.key")}, "", []string{"mqtt.key_file (--mqtt-key)", "nope.key"}, false},
		{"key of another cert", Config{CertFile: otherCert, KeyFile: key}, "", []string{otherCert, key, "mqtt.cert_file", "mqtt.key_file"}, false},
		{"expired cert", Config{CertFile: expCert, KeyFile: expKey}, "", []string{expCert, "expired on", `"kitchen"`}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CREDENTIALS_DIRECTORY", tc.credDir)
			var o mqttmsg.Options
			err := tc.cfg.Apply("mqtts://127.0.0.1:8883", &o)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("got nil, want an error mentioning %q", tc.wantErr)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("got %q, want it to mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			if o.TLS == nil {
				t.Fatal("TLS config not set for mqtts://")
			}
			if got := len(o.TLS.Certificates) == 1; got != tc.wantCert {
				t.Errorf("client certificate loaded: got %v, want %v", got, tc.wantCert)
			}
			if got, want := o.TLS.RootCAs != nil, tc.cfg.CAFile != ""; got != want {
				t.Errorf("own roots: got %v, want %v", got, want)
			}
			if o.TLS.ServerName != tc.cfg.ServerName {
				t.Errorf("server name: got %q, want %q", o.TLS.ServerName, tc.cfg.ServerName)
			}
		})
	}
}

func TestApplyPlainHasNoTLS(t *testing.T) {
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	var o mqttmsg.Options
	if err := (&Config{}).Apply("tcp://127.0.0.1:1883", &o); err != nil {
		t.Fatal(err)
	}
	if o.TLS != nil {
		t.Errorf("got a TLS config for tcp://, want nil")
	}
}

// A broker list is a clustered broker, whose nodes can answer before they
// have loaded their retained messages: its clients subscribe again after
// DefaultResubscribe unless told otherwise. One broker needs no second look.
func TestApplyResubscribe(t *testing.T) {
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	const one, three = "tcp://127.0.0.1:1883", "tcp://127.0.0.1:1883,tcp://127.0.0.1:1884,tcp://127.0.0.1:1885"
	for _, tc := range []struct {
		name   string
		broker string
		set    time.Duration
		want   time.Duration
	}{
		{"one broker", one, 0, 0},
		{"one broker, set", one, 3 * time.Second, 3 * time.Second},
		{"a list", three, 0, DefaultResubscribe},
		{"a list, set", three, 30 * time.Second, 30 * time.Second},
		{"a list, off", three, -time.Second, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o mqttmsg.Options
			if err := (&Config{ResubscribeAfter: tc.set}).Apply(tc.broker, &o); err != nil {
				t.Fatal(err)
			}
			if o.Resubscribe != tc.want {
				t.Errorf("Resubscribe: got %v, want %v", o.Resubscribe, tc.want)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	c := Config{Username: "kitchen", CAFile: "/etc/glowcast/ca.crt"}
	cases := []struct {
		name     string
		err      error
		pwFrom   string
		certFile string
		want     string
	}{
		{"refused password", errors.New("bad user name or password"), "mqtt.password_file (--mqtt-password-file) /p", "", `refused user "kitchen" (mqtt.username (--mqtt-username)) with the password from mqtt.password_file (--mqtt-password-file) /p`},
		{"password missing", errors.New("bad user name or password"), "", "", "set mqtt.password_file"},
		{"not authorized", errors.New("not Authorized"), "", "/c.crt", "certificate /c.crt (mqtt.cert_file (--mqtt-cert))"},
		{"not authorized with password", errors.New("not Authorized"), "systemd credential /run/x", "", "password from systemd credential /run/x"},
		{"not authorized without credentials", errors.New("not Authorized"), "", "", "without a password: set mqtt.password_file"},
		{"client cert rejected", errors.New("network Error : remote error: tls: certificate required"), "", "", "requires a client certificate; set mqtt.cert_file"},
		{"client cert bad", errors.New("network Error : remote error: tls: unknown certificate authority"), "", "/c.crt", "refused the client certificate /c.crt"},
		{"plain port", errors.New("tls: first record does not look like a TLS handshake"), "", "", "does not speak TLS"},
		{"broker down", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := c.explain(tc.err, tc.pwFrom, tc.certFile)
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want it to contain %q", got, tc.want)
			}
		})
	}
}
