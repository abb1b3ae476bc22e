package initcfg

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glowcast/glowcast/device"
	"github.com/glowcast/glowcast/internal/cliconf"
)

func TestMainWritesAWorkingConfig(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		input string
		want  func(t *testing.T, c device.Config)
		asks  []string // prompts that must appear
	}{
		{
			name: "all from flags",
			args: []string{"-yes", "-device-id", "kitchen", "-broker", "mqtts://broker.example:8883", "-mqtt-password-file", "/etc/glowcast/pw", "-mqtt-ca", "/etc/glowcast/ca.crt", "-mqtt-cert", "/etc/glowcast/mqtt.crt", "-location", "52.52,13.4"},
			want: func(t *testing.T, c device.Config) {
				check(t, "device_id", c.DeviceID, "kitchen")
				check(t, "broker", c.Broker, "mqtts://broker.example:8883")
				check(t, "mqtt.username", c.MQTT.Username, "kitchen")
				check(t, "mqtt.password_file", c.MQTT.PasswordFile, "/etc/glowcast/pw")
				check(t, "mqtt.ca_file", c.MQTT.CAFile, "/etc/glowcast/ca.crt")
				check(t, "mqtt.cert_file", c.MQTT.CertFile, "/etc/glowcast/mqtt.crt")
				check(t, "led", c.LED, "spi:/dev/spidev0.0")
				if c.Location == nil || c.Location.Lat != 52.52 || c.Location.Lon != 13.4 {
					t.Errorf("location: got %+v, want 52.52,13.4", c.Location)
				}
			},
		},
		{
			// The unit's credential source is root-only: the daemon must
			// use the credential, not open the file as user glowcast.
			name: "the unit's password file becomes the credential",
			args: []string{"-yes", "-device-id", "kitchen", "-broker", "mqtts://broker.example:8883", "-mqtt-password-file", "/etc/glowcast/mqtt-password"},
			want: func(t *testing.T, c device.Config) {
				check(t, "mqtt.username", c.MQTT.Username, "kitchen")
				check(t, "mqtt.password_file", c.MQTT.PasswordFile, "")
			},
		},
		{
			name:  "answers on stdin",
			args:  []string{},
			input: "shelf\ntcp://127.0.0.1:1883\n\n\nterm\n\n",
			asks:  []string{"Device id", "Broker URL", "MQTT user name (empty: none) [shelf]", "File holding the MQTT password", "LED backend [spi:/dev/spidev0.0]", "Location"},
			want: func(t *testing.T, c device.Config) {
				check(t, "device_id", c.DeviceID, "shelf")
				check(t, "broker", c.Broker, "tcp://127.0.0.1:1883")
				check(t, "mqtt.username", c.MQTT.Username, "shelf")
				check(t, "mqtt.password_file", c.MQTT.PasswordFile, "")
				check(t, "led", c.LED, "term")
				if c.Location != nil {
					t.Errorf("location: got %+v, want none", c.Location)
				}
			},
		},
		{
			name:  "flags and questions mixed; input ends early",
			args:  []string{"-device-id", "hall"},
			input: "tcp://localhost:1883\n",
			asks:  []string{"Broker URL"},
			want: func(t *testing.T, c device.Config) {
				check(t, "device_id", c.DeviceID, "hall")
				check(t, "broker", c.Broker, "tcp://localhost:1883")
				check(t, "led", c.LED, "spi:/dev/spidev0.0")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "glowcastd.yaml")
			var out bytes.Buffer
			if err := Main(append([]string{"-config", path}, tc.args...), strings.NewReader(tc.input), &out); err != nil {
				t.Fatalf("Main: %v\n%s", err, out.String())
			}
			for _, p := range tc.asks {
				if !strings.Contains(out.String(), p) {
					t.Errorf("prompt %q not asked:\n%s", p, out.String())
				}
			}
			if !strings.Contains(out.String(), "glowcastd doctor -config "+path) {
				t.Errorf("output does not name the next step:\n%s", out.String())
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(b), "# glowcastd configuration") {
				t.Errorf("file does not start with its comment:\n%s", b)
			}
			cfg := device.Default()
			if err := cliconf.Decode(path, b, &cfg); err != nil {
				t.Fatalf("written file does not load: %v\n%s", err, b)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("written file does not validate: %v\n%s", err, b)
			}
			tc.want(t, cfg)
		})
	}
}

func TestMainRefuses(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "exists.yaml")
	os.WriteFile(existing, []byte("device_id: x\n"), 0o644)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "existing file", args: []string{"-config", existing, "-yes", "-broker", "tcp://h:1883"}, want: "pass -force"},
		{name: "no broker", args: []string{"-config", filepath.Join(dir, "a.yaml"), "-yes", "-device-id", "x"}, want: "no broker URL"},
		{name: "bad device id", args: []string{"-config", filepath.Join(dir, "b.yaml"), "-yes", "-device-id", "a/b", "-broker", "tcp://h:1883"}, want: "device_id (--device-id)"},
		{name: "bad location", args: []string{"-config", filepath.Join(dir, "c.yaml"), "-yes", "-device-id", "x", "-broker", "tcp://h:1883", "-location", "north"}, want: "location (-location)"},
		{name: "password in clear", args: []string{"-config", filepath.Join(dir, "d.yaml"), "-yes", "-device-id", "x", "-broker", "tcp://192.0.2.1:1883", "-mqtt-password-file", "/pw"}, want: "in clear"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Main(tc.args, strings.NewReader(""), &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "device_id: x\n" {
		t.Errorf("existing file changed: %q", b)
	}
	for _, f := range []string{"a.yaml", "b.yaml", "c.yaml", "d.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s written despite the error (stat: %v)", f, err)
		}
	}
}

func TestExplain(t *testing.T) {
	cfg := device.Default()
	err := cfg.Validate()
	if err == nil {
		t.Fatal("default config validates; want device_id missing")
	}
	tests := []struct {
		name string
		path string
		want []string
	}{
		{name: "no file", want: []string{"no configuration file given", "  - device_id (--device-id) is not set", "broker (--broker) is not set", "sudo glowcastd init -config /etc/glowcast/glowcastd.yaml\n"}},
		{name: "file", path: "/etc/glowcast/glowcastd.yaml", want: []string{"configuration /etc/glowcast/glowcastd.yaml:", "  - device_id", "init -config /etc/glowcast/glowcastd.yaml -force"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Explain(cfg, tc.path, err).Error()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("got %q, want it to contain %q", got, w)
				}
			}
		})
	}
}

func TestSanitizeID(t *testing.T) {
	for in, want := range map[string]string{"raspberrypi": "raspberrypi", "pi kitchen": "pi-kitchen", "_x.local": "x.local", "ä/b": "b"} {
		t.Run(in, func(t *testing.T) {
			if got := SanitizeID(in); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

func check(t *testing.T, field, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %q, want %q", field, got, want)
	}
}
