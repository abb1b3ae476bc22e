package doctor

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/glowcast/glowcast/device"
	"github.com/glowcast/glowcast/internal/brokerconf"
	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
	securitytest "github.com/glowcast/glowcast/test/security"
	"go.uber.org/goleak"
)

// paho's Disconnect leaves a goroutine that waits out a connection attempt
// in progress (the broker-down and refused cases); it ends within the
// retry interval, after the process may already be checked.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/eclipse/paho%2emqtt%2egolang.(*client).Disconnect.func1"))
}

// tree writes files (path → content) under a fresh root.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		// Device nodes as Raspberry Pi OS's udev rules leave them:
		// group spi (the test's own group named so), mode 0660.
		if strings.HasPrefix(p, "/dev/") {
			os.Chmod(full, 0o660)
			if _, ok := files["/etc/group"]; !ok {
				os.MkdirAll(filepath.Join(root, "etc"), 0o755)
				os.WriteFile(filepath.Join(root, "etc/group"), []byte("spi:x:"+strconv.Itoa(os.Getgid())+":\n"), 0o644)
			}
		}
	}
	return root
}

func env(root string) Env {
	return Env{
		Root:          root,
		Access:        func(string, uint32) error { return nil },
		ClockSynced:   func() (bool, error) { return true, nil },
		BrokerTimeout: 2 * time.Second,
		AgentWait:     300 * time.Millisecond,
	}
}

func spiConfig() device.Config {
	c := device.Default()
	c.DeviceID = "kitchen"
	c.LED = "spi:/dev/spidev0.0"
	return c
}

func find(t *testing.T, rs []Result, check string) Result {
	t.Helper()
	for _, r := range rs {
		if r.Check == check {
			return r
		}
	}
	t.Fatalf("no %s result in %+v", check, rs)
	return Result{}
}

const pi4 = "Raspberry Pi 4 Model B Rev 1.4\x00"

func TestHardwareChecks(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]string
		led       string
		check     string
		want      Status
		detail    string // substring of Detail
		fix       string // substring of Fix
		noAccess  bool
		stateDir  string
		wantCheck string
	}{
		{name: "spi on and present", check: "spi", want: OK, detail: "/dev/spidev0.0 present",
			files: map[string]string{"/boot/firmware/config.txt": "dtparam=audio=on\ndtparam=spi=on\n", "/dev/spidev0.0": ""}},
		{name: "spi in a dtparam list", check: "spi", want: OK, detail: "dtparam=spi=on",
			files: map[string]string{"/boot/config.txt": "dtparam=i2c_arm=on,spi=on\n", "/dev/spidev0.0": ""}},
		{name: "spi disabled", check: "spi", want: Fail, detail: "SPI is not enabled", fix: "raspi-config nonint do_spi 0",
			files: map[string]string{"/boot/firmware/config.txt": "#dtparam=spi=on\n"}},
		{name: "spi on, not rebooted", check: "spi", want: Fail, detail: "missing though", fix: "reboot",
			files: map[string]string{"/boot/firmware/config.txt": "dtparam=spi=on\n"}},
		{name: "spi not used", check: "spi", want: Skip, led: "term"},
		{name: "spidev not writable", check: "permissions", want: Fail, detail: "cannot open /dev/spidev0.0", fix: "usermod -aG spi", noAccess: true,
			files: map[string]string{"/dev/spidev0.0": ""}},
		{name: "spidev writable", check: "permissions", want: OK, detail: "/dev/spidev0.0 read-write",
			files: map[string]string{"/dev/spidev0.0": ""}},
		{name: "spidev not for group spi", check: "permissions", want: Fail, detail: `is group "nobody"`, fix: `GROUP="spi", MODE="0660"`,
			files: map[string]string{"/dev/spidev0.0": "", "/etc/group": "nobody:x:" + strconv.Itoa(os.Getgid()) + ":\n"}},
		{name: "state dir not writable", check: "permissions", want: Fail, led: "term", stateDir: "/var/lib/glowcast", noAccess: true, detail: "state_dir /var/lib/glowcast",
			files: map[string]string{"/var/lib/glowcast/x": ""}},
		{name: "pi 4 pinned", check: "core-clock", want: OK, detail: "core_freq=500 and core_freq_min=500",
			files: map[string]string{"/proc/device-tree/model": pi4, "/boot/firmware/config.txt": "core_freq=500\ncore_freq_min=500\n"}},
		{name: "pi 4 half pinned", check: "core-clock", want: Fail, fix: "add core_freq_min=500 to /boot/firmware/config.txt",
			files: map[string]string{"/proc/device-tree/model": pi4, "/boot/firmware/config.txt": "core_freq=500\n"}},
		{name: "pi 3 unpinned", check: "core-clock", want: Fail, detail: "Raspberry Pi 3 Model B Plus Rev 1.3: the core clock is not pinned", fix: "add core_freq=250",
			files: map[string]string{"/proc/device-tree/model": "Raspberry Pi 3 Model B Plus Rev 1.3\x00", "/boot/firmware/config.txt": "# core_freq=250\n"}},
		{name: "pi zero pinned", check: "core-clock", want: OK,
			files: map[string]string{"/proc/device-tree/model": "Raspberry Pi Zero W Rev 1.1\x00", "/boot/config.txt": "core_freq=250\n"}},
		{name: "pi 5 needs nothing", check: "core-clock", want: OK, detail: "RP1",
			files: map[string]string{"/proc/device-tree/model": "Raspberry Pi 5 Model B Rev 1.0\x00"}},
		{name: "not a pi", check: "core-clock", want: Skip, detail: "not a Raspberry Pi"},
		{name: "other board", check: "core-clock", want: Warn,
			files: map[string]string{"/proc/device-tree/model": "Pine64 RockPro64\x00"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := env(tree(t, tc.files))
			if tc.noAccess {
				e.Access = func(string, uint32) error { return syscall.EACCES }
			}
			cfg := spiConfig()
			if tc.led != "" {
				cfg.LED = tc.led
			}
			cfg.StateDir = tc.stateDir
			var r Result
			spi, uses := strings.CutPrefix(cfg.LED, "spi:")
			switch tc.check {
			case "spi":
				r = checkSPI(e, uses, spi)
			case "permissions":
				r = checkPermissions(e, cfg, uses, spi)
			case "core-clock":
				r = checkCoreClock(e, uses)
			}
			if r.Status != tc.want {
				t.Errorf("status: got %v, want %v (%+v)", r.Status, tc.want, r)
			}
			if !strings.Contains(r.Detail, tc.detail) {
				t.Errorf("detail: got %q, want it to contain %q", r.Detail, tc.detail)
			}
			if !strings.Contains(r.Fix, tc.fix) {
				t.Errorf("fix: got %q, want it to contain %q", r.Fix, tc.fix)
			}
			if tc.want == Fail && r.Fix == "" {
				t.Errorf("a failed check must say how to fix it: %+v", r)
			}
		})
	}
}

func TestConfigAndClock(t *testing.T) {
	bad := device.Default() // no device id
	tests := []struct {
		name   string
		in     Input
		synced bool
		check  string
		want   Status
		detail string
	}{
		{name: "missing device id", in: Input{Config: bad, ConfigPath: "/etc/glowcast/glowcastd.yaml"}, check: "config", want: Fail, detail: "device_id (--device-id) is not set"},
		{name: "unreadable file", in: Input{Config: bad, LoadErr: errors.New("config: open x: no such file")}, check: "config", want: Fail, detail: "no such file"},
		{name: "valid", in: Input{Config: spiConfig(), ConfigPath: "c.yaml"}, check: "config", want: OK, detail: `device "kitchen"`},
		{name: "clock synced", in: Input{Config: spiConfig()}, synced: true, check: "clock", want: OK},
		{name: "clock not synced", in: Input{Config: spiConfig()}, check: "clock", want: Fail, detail: "not synchronised"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := env(t.TempDir())
			e.ClockSynced = func() (bool, error) { return tc.synced, nil }
			var r Result
			if tc.check == "config" {
				r = checkConfig(tc.in)
			} else {
				r = checkClock(e)
			}
			if r.Status != tc.want || !strings.Contains(r.Detail, tc.detail) {
				t.Errorf("got %v %q, want %v containing %q", r.Status, r.Detail, tc.want, tc.detail)
			}
		})
	}
}

func TestBrokerAndAgent(t *testing.T) {
	b := mqtttest.Start(t)
	authed := mqtttest.Start(t, mqtttest.WithConfig("allow_anonymous false"))
	publishAgent := func(t *testing.T, online bool) {
		t.Helper()
		payload := `{"online":` + strconv.FormatBool(online) + `,"session":"s1","ts":"2026-01-01T00:00:00Z"}`
		retain(t, b.URL(), protocol.AgentStatusTopic("main"), payload)
	}
	tests := []struct {
		name       string
		broker     string
		agent      *bool // nil: no retained status
		running    bool  // glowcastd with this identity runs here
		wantBroker Status
		wantAgent  Status
		detail     string
		fix        string
	}{
		{name: "agent online", broker: b.URL(), agent: ptr(true), wantBroker: OK, wantAgent: OK, detail: "agent online: main"},
		{name: "agent offline", broker: b.URL(), agent: ptr(false), wantBroker: OK, wantAgent: Fail, detail: "offline", fix: "systemctl start glowcast-agent"},
		{name: "no agent", broker: b.URL(), wantBroker: OK, wantAgent: Fail, detail: "no agent status", fix: "start glowcast-agent"},
		{name: "broker down", broker: "tcp://127.0.0.1:" + itoa(mqtttest.FreePort(t)), wantBroker: Fail, wantAgent: Skip, fix: "systemctl status mosquitto"},
		{name: "refused", broker: authed.URL(), wantBroker: Fail, wantAgent: Skip, detail: "not Authorized", fix: "the broker refused user"},
		// The daemon holds the identity's one session: connecting would
		// push it off the broker.
		{name: "daemon running", broker: b.URL(), agent: ptr(true), running: true, wantBroker: Skip, wantAgent: Skip, detail: `identity "kitchen" is running on this host`, fix: "systemctl stop glowcastd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Clear, then set the retained agent status for this case.
			retain(t, b.URL(), protocol.AgentStatusTopic("main"), "")
			if tc.agent != nil {
				publishAgent(t, *tc.agent)
			}
			cfg := spiConfig()
			cfg.Broker = tc.broker
			e := env(t.TempDir())
			e.Running = func(_, id string) bool { return tc.running && id == "kitchen" }
			rs := checkBroker(context.Background(), e, Input{Config: cfg})
			br, ag := find(t, rs, "broker"), find(t, rs, "agent")
			if br.Status != tc.wantBroker {
				t.Errorf("broker: got %v, want %v (%+v)", br.Status, tc.wantBroker, br)
			}
			if ag.Status != tc.wantAgent {
				t.Errorf("agent: got %v, want %v (%+v)", ag.Status, tc.wantAgent, ag)
			}
			all := br.Detail + " " + ag.Detail
			if !strings.Contains(all, tc.detail) {
				t.Errorf("details %q do not contain %q", all, tc.detail)
			}
			if !strings.Contains(br.Fix+" "+ag.Fix, tc.fix) {
				t.Errorf("fixes %q / %q do not contain %q", br.Fix, ag.Fix, tc.fix)
			}
		})
	}
}

func TestRunAndWrite(t *testing.T) {
	b := mqtttest.Start(t)
	retain(t, b.URL(), protocol.AgentStatusTopic("main"), `{"online":true,"session":"s1","ts":"2026-01-01T00:00:00Z"}`)
	healthy := map[string]string{
		"/proc/device-tree/model":   pi4,
		"/boot/firmware/config.txt": "dtparam=spi=on\ncore_freq=500\ncore_freq_min=500\n",
		"/dev/spidev0.0":            "",
	}
	tests := []struct {
		name       string
		files      map[string]string
		wantFailed bool
		wantLines  []string
	}{
		{name: "healthy pi", files: healthy, wantLines: []string{
			"ok    config", "ok    spi", "ok    permissions", "ok    core-clock", "skip  certificate", "ok    broker", "ok    agent", "ok    clock", "skip  sensor      none configured"}},
		{name: "spi off", files: map[string]string{"/proc/device-tree/model": pi4, "/boot/firmware/config.txt": "core_freq=500\ncore_freq_min=500\n"},
			wantFailed: true, wantLines: []string{"FAIL  spi         /dev/spidev0.0 missing: SPI is not enabled — fix: sudo raspi-config", "skip  permissions"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := spiConfig()
			cfg.Broker = b.URL()
			rs := Run(context.Background(), Input{Config: cfg, ConfigPath: "/etc/glowcast/glowcastd.yaml"}, env(tree(t, tc.files)))
			var out bytes.Buffer
			failed := Write(&out, rs)
			if failed != tc.wantFailed {
				t.Errorf("failed: got %v, want %v\n%s", failed, tc.wantFailed, out.String())
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != 9 {
				t.Errorf("got %d lines, want one per check (9):\n%s", len(lines), out.String())
			}
			for _, want := range tc.wantLines {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

func TestParseConfigTxt(t *testing.T) {
	kv, dt := parseConfigTxt([]byte("# comment\ncore_freq=250 # pinned\n[pi4]\ncore_freq=500\ndtparam=spi=on,i2c_arm=off\n  gpu_mem = 16\n"))
	for k, want := range map[string]string{"core_freq": "500", "gpu_mem": "16"} {
		if kv[k] != want {
			t.Errorf("%s: got %q, want %q", k, kv[k], want)
		}
	}
	if dt["spi"] != "on" || dt["i2c_arm"] != "off" {
		t.Errorf("dtparams: got %v, want spi=on i2c_arm=off", dt)
	}
}

func ptr[T any](v T) *T { return &v }

func TestMainReportsABrokenFile(t *testing.T) {
	dir := t.TempDir()
	b := mqtttest.Start(t)
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{name: "unknown field", content: "device_id: x\nbrokr: tcp://h:1883\n", want: "field brokr not found"},
		{name: "no device id", content: "broker: " + b.URL() + "\n", want: "device_id (--device-id) is not set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			os.WriteFile(path, []byte(tc.content), 0o644)
			var out bytes.Buffer
			err := Main(context.Background(), []string{"-config", path}, &out)
			if !errors.Is(err, ErrFailed) {
				t.Errorf("got %v, want ErrFailed", err)
			}
			if !strings.Contains(out.String(), "FAIL  config") || !strings.Contains(out.String(), tc.want) {
				t.Errorf("output lacks the config failure %q:\n%s", tc.want, out.String())
			}
		})
	}
}

func TestUnitCredentials(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]string
		in        brokerconf.Config
		wantKey   string
		wantPwd   string
		prefixKey bool
	}{
		{name: "cert without key takes the unit's key", files: map[string]string{unitKeyFile: "KEY"},
			in: brokerconf.Config{CertFile: "/etc/glowcast/mqtt.crt"}, wantKey: unitKeyFile},
		{name: "user without password takes the unit's password", files: map[string]string{unitPasswordFile: "pw"},
			in: brokerconf.Config{Username: "kitchen"}, wantPwd: unitPasswordFile},
		{name: "empty credential files are none", files: map[string]string{unitKeyFile: "", unitPasswordFile: ""},
			in: brokerconf.Config{Username: "kitchen", CertFile: "/c"}},
		{name: "configured files win", files: map[string]string{unitKeyFile: "KEY", unitPasswordFile: "pw"},
			in: brokerconf.Config{Username: "u", PasswordFile: "/mine", CertFile: "/c", KeyFile: "/my.key"}, wantKey: "/my.key", wantPwd: "/mine"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := tree(t, tc.files)
			c := tc.in
			unitCredentials(root, &c)
			want := func(w string) string {
				if w == unitKeyFile || w == unitPasswordFile {
					return filepath.Join(root, w)
				}
				return w
			}
			if c.KeyFile != want(tc.wantKey) || c.PasswordFile != want(tc.wantPwd) {
				t.Errorf("got key %q password %q, want %q and %q", c.KeyFile, c.PasswordFile, want(tc.wantKey), want(tc.wantPwd))
			}
		})
	}
}

// TestCertificateExpiry: the broker refuses an expired client certificate
// and the device goes dark; the doctor warns 30 days ahead.
func TestCertificateExpiry(t *testing.T) {
	dir := t.TempDir()
	ca := securitytest.NewCA(t, dir, "ca")
	day := 24 * time.Hour
	cases := []struct {
		name   string
		cert   func() string
		status Status
		want   string
	}{
		{"no certificate", func() string { return "" }, Skip, "no client certificate"},
		{"valid 100 days", func() string { c, _ := ca.Issue(t, "kitchen", "long", securitytest.ValidFor(100*day)); return c }, OK, "valid until"},
		{"expires in 10 days", func() string {
			c, _ := ca.Issue(t, "kitchen", "soon", securitytest.ValidFor(10*day+time.Hour))
			return c
		}, Warn, "in 10 days"},
		{"expires in 30 days", func() string {
			c, _ := ca.Issue(t, "kitchen", "edge", securitytest.ValidFor(30*day-time.Minute))
			return c
		}, Warn, "in 29 days"},
		{"expired", func() string { c, _ := ca.Issue(t, "kitchen", "old", securitytest.Expired()); return c }, Fail, "expired on"},
		{"missing file", func() string { return filepath.Join(dir, "nope.crt") }, Fail, "nope.crt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := device.Default()
			cfg.DeviceID = "kitchen"
			cfg.MQTT.CertFile = tc.cert()
			r := checkCertificate(env(t.TempDir()), Input{Config: cfg, ConfigPath: "glowcastd.yaml"})
			if r.Status != tc.status || !strings.Contains(r.Detail, tc.want) {
				t.Errorf("got %v %q, want %v containing %q", r.Status, r.Detail, tc.status, tc.want)
			}
			if (tc.status == Warn || tc.status == Fail) && tc.name != "missing file" && !strings.Contains(r.Fix, "glowcast-pki renew kitchen") {
				t.Errorf("fix %q does not say how to renew", r.Fix)
			}
		})
	}
}
