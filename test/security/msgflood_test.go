package securitytest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
	"github.com/glowcast/glowcast/test/kit/weathertest"
)

// TestMessageFlood: a device holding kitchen's credentials sends 5,000
// malformed messages on its own topics as fast as the broker takes them.
// Each would cost the real agent a WARN line; the per-device limit keeps
// the log to the limit's rate, counts the rest, and another device is
// still served.
func TestMessageFlood(t *testing.T) {
	b := StartBroker(t, AuthCert, users)
	weather := weathertest.New()
	t.Cleanup(weather.Close)
	dir := t.TempDir()
	acert, akey := b.CA.Issue(t, AgentUser, "agent")
	port := mqtttest.FreePort(t)
	ag := startProc(t, "glowcast-agent", []string{"CREDENTIALS_DIRECTORY="}, "--broker", b.URL(), "--agent-id", "main",
		"--mqtt-username", AgentUser, "--mqtt-ca", b.Files.CA, "--mqtt-cert", acert, "--mqtt-key", akey,
		"--weather", "open-meteo", "--weather-url", weather.URL, "--location", "52.52,13.40",
		"--geolocate-url", "", "--http", fmt.Sprintf("127.0.0.1:%d", port))
	mqtttest.WaitFor(t, 15*time.Second, "the agent's metrics", func() bool { _, ok := scrape(t, port, "glowcast_agent_broker_connected"); return ok })

	attacker := b.mustConnect(t, "kitchen")
	const flood = 5000
	start := time.Now()
	for i := range flood {
		tp := topic("kitchen", protocol.SideDevice, []string{protocol.MsgStatus, protocol.MsgReady}[i%2])
		attacker.Publish(tp, 0, false, fmt.Sprintf("not json %d", i))
	}
	tok := attacker.Publish(topic("kitchen", protocol.SideDevice, protocol.MsgStatus), 1, false, "not json, last")
	if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("flood: %v", tok.Error())
	}
	metric := "glowcast_agent_device_messages_dropped_total"
	var dropped float64
	mqtttest.WaitFor(t, 20*time.Second, metric+" counting the flood", func() bool {
		dropped, _ = scrape(t, port, metric)
		return dropped > flood/2
	})
	secs := time.Since(start).Seconds() + 2

	gcert, gkey := b.CA.Issue(t, "garden", "garden")
	gconf := filepath.Join(dir, "garden.yaml")
	os.WriteFile(gconf, []byte(fmt.Sprintf("broker: %s\ndevice_id: garden\nled: none\nstate_dir: %s\nmqtt:\n  username: garden\n  ca_file: %s\n  cert_file: %s\n  key_file: %s\n",
		b.URL(), filepath.Join(dir, "garden"), b.Files.CA, gcert, gkey)), 0o644)
	watch := &tempsWatch{}
	wc := b.mustConnect(t, ObserverUser)
	if tok := wc.Subscribe(topic("garden", protocol.SideAgent, protocol.MsgTemps), 1, watch.handle); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	startProc(t, "glowcastd", []string{"CREDENTIALS_DIRECTORY="}, "-config", gconf)
	mqtttest.WaitFor(t, 20*time.Second, "temps for garden after the flood", func() bool { return len(watch.all()) > 0 })

	logs := ag.allLogs()
	malformed := strings.Count(logs, "malformed")
	if limit := int(10*secs) + 10; malformed > limit {
		t.Errorf("%d malformed-message log lines for a %.0f s flood, want at most %d (10 a second)", malformed, secs, limit)
	}
	if summaries := strings.Count(logs, "over the per-device limit dropped"); summaries < 1 || summaries > int(secs/60)+2 {
		t.Errorf("%d summary lines of dropped messages, want 1 a minute", summaries)
	}
	if len(logs) > 64<<10 {
		t.Errorf("agent log grew to %d bytes during the flood, want under 64 KiB", len(logs))
	}
	t.Logf("flood of %d in %.1f s: %.0f dropped, %d malformed lines, log %d bytes", flood, secs-2, dropped, malformed, len(logs))
}
