package fielddoc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glowcast/glowcast/test/kit/binaries"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
	"github.com/glowcast/glowcast/test/kit/proc"
	"github.com/glowcast/glowcast/test/kit/weathertest"
	securitytest "github.com/glowcast/glowcast/test/security"
)

var binDir string

func TestMain(m *testing.M) { binaries.Main(m, &binDir) }

const root = "../.."

// programs are the commands the guide may show.
var programs = regexp.MustCompile(`^(sudo|systemctl|journalctl|curl|glowcast|glowcastd|glowcast-agent)$`)

// notRun are the commands no test can run here, and why.
var notRun = map[string]string{
	"sudo systemctl enable --now glowcast-agent": "needs a host booted with systemd; test/debroot checks what the packages do with the unit",
	"journalctl -u glowcast-agent":               "needs the journal of a host running the unit",
	"journalctl -u glowcastd":                    "needs the journal of a host running the unit",
}

// guideCommands returns the commands of docs/FIELD-TEST.md: every line of
// its sh blocks (a trailing # comment cut off) and every inline code span
// that is a program with arguments, up to the section that describes this
// test.
func guideCommands(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docs", "FIELD-TEST.md"))
	if err != nil {
		t.Fatal(err)
	}
	text, _, _ := strings.Cut(string(b), "\n## How this guide is tested")
	var out []string
	inSh := false
	var prose strings.Builder
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "```sh"):
			inSh = true
		case strings.HasPrefix(l, "```"):
			inSh = false
		case inSh:
			if i := strings.Index(l, " #"); i >= 0 {
				l = l[:i]
			}
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, strings.Join(strings.Fields(l), " "))
			}
		default:
			prose.WriteString(l + "\n")
		}
	}
	for _, m := range regexp.MustCompile("`([^`\n]+)`").FindAllStringSubmatch(prose.String(), -1) {
		f := strings.Fields(m[1])
		if len(f) >= 2 && programs.MatchString(f[0]) {
			out = append(out, strings.Join(f, " "))
		}
	}
	return out
}

// TestEveryCommandRun: each command of the guide is run by a subtest of
// TestGuideCommands or listed in notRun with the reason.
func TestEveryCommandRun(t *testing.T) {
	cmds := guideCommands(t)
	if len(cmds) < 8 {
		t.Fatalf("found only %d commands in docs/FIELD-TEST.md: %q", len(cmds), cmds)
	}
	seen := map[string]bool{}
	for _, c := range cmds {
		seen[c] = true
		if _, ok := runners[c]; ok {
			continue
		}
		if _, ok := notRun[c]; ok {
			continue
		}
		t.Errorf("docs/FIELD-TEST.md: %q is run by no test: add it to runners (or, if it cannot run here, to notRun with the reason)", c)
	}
	for c := range runners {
		if !seen[c] {
			t.Errorf("runner for %q, which docs/FIELD-TEST.md no longer shows", c)
		}
	}
	for c := range notRun {
		if !seen[c] {
			t.Errorf("notRun lists %q, which docs/FIELD-TEST.md no longer shows", c)
		}
	}
}

// runners run one command of the guide: argv is the command as written,
// without sudo (the test needs no root).
var runners = map[string]func(t *testing.T, argv []string){
	"glowcast forecast --location 59.91,10.75 --weather met-norway --weather-contact you@example.org": runForecastMET,
	"glowcast forecast --location 59.91,10.75 --weather sample":                                       runForecastSample,
	"glowcast forecast --location 59.91,10.75 --weather sample --json":                                runForecastJSON,
	"sudo glowcast-agent doctor --config /etc/glowcast/agent.yaml":                                    runAgentDoctor,
	"sudo glowcastd doctor -config /etc/glowcast/glowcastd.yaml":                                      runDeviceDoctor,
	"glowcastd --sensor ds18b20":                                                                      runSensor,
	"curl -o verification.csv http://127.0.0.1:9120/verification.csv":                                 runCSV,
}

func TestGuideCommands(t *testing.T) {
	for _, c := range guideCommands(t) {
		run, ok := runners[c]
		if !ok {
			continue // TestEveryCommandRun reports it
		}
		t.Run(c, func(t *testing.T) {
			argv := strings.Fields(c)
			if argv[0] == "sudo" {
				argv = argv[1:]
			}
			run(t, argv)
		})
	}
}

// command builds argv (a program of ours from the built binaries, or a
// system tool from PATH) with extra arguments, the way the test runs it.
func command(argv []string, env []string, extra ...string) *exec.Cmd {
	prog := argv[0]
	if strings.HasPrefix(prog, "glowcast") {
		prog = filepath.Join(binDir, prog)
	}
	cmd := exec.Command(prog, append(append([]string{}, argv[1:]...), extra...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	return cmd
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// substitute replaces the one argument old of argv with new.
func substitute(t *testing.T, argv []string, old, new string) []string {
	t.Helper()
	out := append([]string{}, argv...)
	n := 0
	for i, a := range out {
		if a == old {
			out[i] = new
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%q appears %d times in %q, want once", old, n, argv)
	}
	return out
}

// metServer answers like MET Norway's locationforecast with the stored
// recording for Oslo, re-dated so its series starts at the current hour,
// and records the User-Agent it was asked with.
func metServer(t *testing.T) (url string, userAgent func() string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "agent", "weather", "testdata", "metno_oslo.json"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var ua string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/weatherapi/locationforecast/2.0/compact" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		ua = r.Header.Get("User-Agent")
		mu.Unlock()
		var doc map[string]any
		json.Unmarshal(raw, &doc)
		props := doc["properties"].(map[string]any)
		series := props["timeseries"].([]any)
		first, _ := time.Parse(time.RFC3339, series[0].(map[string]any)["time"].(string))
		now := time.Now().UTC().Truncate(time.Hour)
		shift := now.Sub(first)
		for _, e := range series {
			m := e.(map[string]any)
			tm, _ := time.Parse(time.RFC3339, m["time"].(string))
			m["time"] = tm.Add(shift).Format(time.RFC3339)
		}
		props["meta"].(map[string]any)["updated_at"] = now.Add(-30 * time.Minute).Format(time.RFC3339)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Expires", time.Now().Add(30*time.Minute).UTC().Format(http.TimeFormat))
		w.Header().Set("Last-Modified", now.Add(-30*time.Minute).Format(http.TimeFormat))
		json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() string { mu.Lock(); defer mu.Unlock(); return ua }
}

// runForecastMET: MET Norway, asked locally; the contact must reach the
// User-Agent, and the five slots, the provider and Expires are printed.
func runForecastMET(t *testing.T, argv []string) {
	url, ua := metServer(t)
	out, err := command(argv, nil, "--weather-url", url).CombinedOutput()
	if code := exitCode(t, err); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if !strings.Contains(ua(), "you@example.org") || !strings.HasPrefix(ua(), "glowcast/") {
		t.Errorf("User-Agent %q, want glowcast/<version> with the contact you@example.org", ua())
	}
	for _, want := range []string{"provider  met-norway", "expires ", "+12h "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The recording's first hour, re-dated to now, is the +0 h slot.
	if !regexp.MustCompile(`(?m)^\+0h .* -1\.1°C `).Match(out) {
		t.Errorf("+0h slot is not the answer's current hour (-1.1 °C):\n%s", out)
	}
	if n := len(regexp.MustCompile(`(?m)^\+(0|3|6|9|12)h `).FindAll(out, -1)); n != 5 {
		t.Errorf("%d slots, want 5:\n%s", n, out)
	}
}

func runForecastSample(t *testing.T, argv []string) {
	out, err := command(argv, nil).CombinedOutput()
	if code := exitCode(t, err); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if !strings.Contains(string(out), "SAMPLE") {
		t.Errorf("sample forecast not labelled SAMPLE:\n%s", out)
	}
}

func runForecastJSON(t *testing.T, argv []string) {
	cmd := command(argv, nil)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if code := exitCode(t, err); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var got struct {
		Provider string `json:"provider"`
		Location struct {
			Lat, Lon float64
		} `json:"location"`
		Fetched time.Time  `json:"fetched"`
		Expires *time.Time `json:"expires"`
		Slots   []struct {
			LeadH  int      `json:"lead_h"`
			TempC  *float64 `json:"temp_c"`
			Colour string   `json:"colour"`
		} `json:"slots"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if got.Provider != "sample" || got.Location.Lat != 59.91 || got.Location.Lon != 10.75 || got.Fetched.IsZero() || len(got.Slots) != 5 {
		t.Fatalf("got %+v", got)
	}
	for i, s := range got.Slots {
		if s.LeadH != 3*i || s.TempC == nil || !regexp.MustCompile(`^#[0-9a-f]{6}$`).MatchString(s.Colour) {
			t.Errorf("slot %d: %+v, want lead_h %d with a temperature and a #rrggbb colour", i, s, 3*i)
		}
	}
}

// shippedBroker is Mosquitto with the shipped config and ACL (client
// certificates, option A), and the files a host's identity needs: the
// certificate and, as the systemd unit hands it over, the key in a
// credentials directory.
func shippedBroker(t *testing.T) *securitytest.Broker {
	return securitytest.StartBroker(t, securitytest.AuthCert, nil)
}

func identity(t *testing.T, b *securitytest.Broker, user string) (cert string, env []string) {
	cert, key := b.CA.Issue(t, user, "client-"+user)
	creds := t.TempDir()
	k, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(creds, "mqtt-key"), k, 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, []string{"CREDENTIALS_DIRECTORY=" + creds}
}

// shippedConfig copies a shipped example config to a temp file: the
// command reads it verbatim, and flags swap only addresses and paths.
func shippedConfig(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "configs", name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runAgentDoctor: the shipped agent.yaml on the shipped broker, as the
// agent's identity: every check ✓, exit 0.
func runAgentDoctor(t *testing.T, argv []string) {
	b := shippedBroker(t)
	cert, env := identity(t, b, securitytest.AgentUser)
	ws := weathertest.New()
	defer ws.Close()
	geo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer geo.Close()
	argv = substitute(t, argv, "/etc/glowcast/agent.yaml", shippedConfig(t, "agent.yaml"))
	out, err := command(argv, env, "--broker", b.URL(), "--mqtt-ca", b.CA.CertFile, "--mqtt-cert", cert,
		"--state-dir", t.TempDir(), "--weather-url", ws.URL, "--geolocate-url", geo.URL).CombinedOutput()
	if code := exitCode(t, err); code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	for _, check := range []string{"config", "broker", "acl", "weather", "geo", "state dir"} {
		if !regexp.MustCompile(`(?m)^✓ ` + check + `\b`).Match(out) {
			t.Errorf("no ✓ %s line:\n%s", check, out)
		}
	}
}

// runDeviceDoctor: the shipped glowcastd.yaml on the shipped broker as
// device kitchen. This host has no SPI: the doctor must fail on exactly
// that, say how to fix it, and still check the broker.
func runDeviceDoctor(t *testing.T, argv []string) {
	if _, err := os.Stat("/dev/spidev0.0"); err == nil {
		t.Fatal("this host has /dev/spidev0.0: the expectations below are for a host without SPI")
	}
	b := shippedBroker(t)
	cert, env := identity(t, b, "kitchen")
	argv = substitute(t, argv, "/etc/glowcast/glowcastd.yaml", shippedConfig(t, "glowcastd.yaml"))
	out, err := command(argv, env, "-device-id", "kitchen", "-broker", b.URL(), "-mqtt-ca", b.CA.CertFile, "-mqtt-cert", cert,
		"-state-dir", t.TempDir()).CombinedOutput()
	if code := exitCode(t, err); code != 1 {
		t.Errorf("exit %d, want 1 (no SPI here)", code)
	}
	for _, want := range []string{"ok    config", "FAIL  spi", "fix: ", "ok    broker", "skip  sensor"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	checks := []string{"config", "spi", "permissions", "core-clock", "certificate", "broker", "agent", "clock", "sensor"}
	for _, c := range checks {
		if n := len(regexp.MustCompile(`(?m)^(ok|skip|warn|FAIL) +`+regexp.QuoteMeta(c)+` `).FindAll(out, -1)); n != 1 {
			t.Errorf("%d %q lines, want 1:\n%s", n, c, out)
		}
	}
	if n := len(regexp.MustCompile(`(?m)^(ok|skip|warn|FAIL)  `).FindAll(out, -1)); n != len(checks) {
		t.Errorf("%d lines, want one per check (%d):\n%s", n, len(checks), out)
	}
}

// runSensor: glowcastd --sensor ds18b20 on a host without 1-wire logs the
// fix and keeps running: a sensor never stops the daemon.
func runSensor(t *testing.T, argv []string) {
	if m, _ := filepath.Glob("/sys/bus/w1/devices/28-*"); len(m) > 0 {
		t.Fatal("this host has a DS18B20: the expectations below are for a host without one")
	}
	b := mqtttest.Start(t)
	cmd := command(argv, nil, "--device-id", "field", "--broker", b.URL(), "--led", "none", "--state-dir", t.TempDir())
	p := proc.New(argv[0], cmd.Path, filepath.Join(t.TempDir(), "glowcastd.log"), cmd.Args[1:])
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	mqtttest.WaitFor(t, 15*time.Second, "a sensor failure in the log", func() bool {
		if !p.Alive() {
			t.Fatalf("glowcastd exited:\n%s", p.Log())
		}
		return strings.Contains(p.Log(), "sensor read failed")
	}, p.Log)
	if !strings.Contains(p.Log(), "dtoverlay=w1-gpio") {
		t.Errorf("the failure does not name the fix:\n%s", p.Log())
	}
	time.Sleep(300 * time.Millisecond)
	if c := p.TakeCrashes(); len(c) > 0 {
		t.Fatalf("glowcastd stopped after the sensor failed: %s", c[0])
	}
	if err := p.Stop(); err != nil {
		t.Errorf("glowcastd after SIGTERM: %v\n%s", err, p.Log())
	}
}

// runCSV: curl against a running agent that serves one device: the file
// is the verification CSV with the device's place.
func runCSV(t *testing.T, argv []string) {
	b := mqtttest.Start(t)
	ws := weathertest.New()
	defer ws.Close()
	addr := fmt.Sprintf("127.0.0.1:%d", mqtttest.FreePort(t))
	ag := binaries.Start(t, binDir, "glowcast-agent", nil, "--broker", b.URL(), "--http", addr, "--state-dir", t.TempDir(),
		"--weather-url", ws.URL, "--location", "52.52,13.40", "--geolocate-url", "")
	dev := binaries.Start(t, binDir, "glowcastd", nil, "--device-id", "field", "--broker", b.URL(), "--led", "none", "--state-dir", t.TempDir())

	argv = substitute(t, argv, "http://127.0.0.1:9120/verification.csv", "http://"+addr+"/verification.csv")
	dir := t.TempDir()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c := command(argv, nil)
		c.Dir = dir
		out, err := c.CombinedOutput()
		csv, _ := os.ReadFile(filepath.Join(dir, "verification.csv"))
		if err == nil && strings.Contains(string(csv), "\n\"52.5200,13.4000\",") {
			if !strings.HasPrefix(string(csv), "place,hour_utc,provider,source,observed_c,predicted_3h_c,") {
				t.Errorf("verification.csv does not start with its header:\n%s", csv)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("curl: %v %s\nverification.csv:\n%s\nagent:\n%s\ndevice:\n%s", err, out, csv, ag.Log(), dev.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
