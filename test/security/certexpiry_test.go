package securitytest

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/glowcast/glowcast/internal/brokerconf"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
	"github.com/glowcast/glowcast/test/kit/weathertest"
)

// TestCertExpiryReported: two real devices whose certificates expire in
// 10 and 200 days announce it in ready; the real agent exports the
// earliest, and glowcastd doctor warns about the one within 30 days.
func TestCertExpiryReported(t *testing.T) {
	b := StartBroker(t, AuthCert, users)
	weather := weathertest.New()
	t.Cleanup(weather.Close)
	dir := t.TempDir()
	day := 24 * time.Hour
	devices := map[string]time.Duration{"kitchen": 10*day + time.Hour, "garden": 200 * day}
	notAfter := map[string]time.Time{}
	confs := map[string]string{}
	for id, valid := range devices {
		cert, key := b.CA.Issue(t, id, id, ValidFor(valid))
		c, err := (&brokerconf.Config{CertFile: cert}).ClientCert()
		if err != nil {
			t.Fatal(err)
		}
		notAfter[id] = c.NotAfter
		confs[id] = filepath.Join(dir, id+".yaml")
		os.WriteFile(confs[id], []byte(fmt.Sprintf("broker: %s\ndevice_id: %s\nled: none\nstate_dir: %s\nmqtt:\n  username: %s\n  ca_file: %s\n  cert_file: %s\n  key_file: %s\n",
			b.URL(), id, filepath.Join(dir, id), id, b.Files.CA, cert, key)), 0o644)
	}
	acert, akey := b.CA.Issue(t, AgentUser, "agent")
	port := mqtttest.FreePort(t)
	startProc(t, "glowcast-agent", []string{"CREDENTIALS_DIRECTORY="}, "--broker", b.URL(), "--agent-id", "main",
		"--mqtt-username", AgentUser, "--mqtt-ca", b.Files.CA, "--mqtt-cert", acert, "--mqtt-key", akey,
		"--weather", "open-meteo", "--weather-url", weather.URL, "--location", "52.52,13.40",
		"--http", fmt.Sprintf("127.0.0.1:%d", port))
	for id := range devices {
		startProc(t, "glowcastd", []string{"CREDENTIALS_DIRECTORY="}, "-config", confs[id])
	}

	want := float64(notAfter["kitchen"].Unix())
	var got float64
	metric := "glowcast_agent_device_cert_expiry_timestamp_seconds"
	mqtttest.WaitFor(t, 20*time.Second, metric+" at kitchen's expiry", func() bool {
		got, _ = scrape(t, port, metric)
		return got == want
	})

	for id, want := range map[string]string{"kitchen": "warn  certificate", "garden": "ok    certificate"} {
		out := runDoctor(t, "glowcastd", "-config", confs[id])
		if !strings.Contains(out, want) {
			t.Errorf("glowcastd doctor for %s: no line %q:\n%s", id, want, out)
		}
	}
}

// scrape reads the value of an unlabelled metric from the agent's
// /metrics on port; ok is false when the agent is not up yet or does not
// export it.
func scrape(t *testing.T, port int, name string) (v float64, ok bool) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	mf, ok := mfs[name]
	if !ok || len(mf.GetMetric()) != 1 {
		return 0, false
	}
	m := mf.GetMetric()[0]
	if m.GetGauge() != nil {
		return m.GetGauge().GetValue(), true
	}
	return m.GetCounter().GetValue(), true
}
