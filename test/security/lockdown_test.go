package security

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/glowcast/glowcast/ledstrip"
	"github.com/glowcast/glowcast/ledstrip/backend"
	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/binaries"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
	"github.com/glowcast/glowcast/test/kit/proc"
	"github.com/glowcast/glowcast/test/kit/weathertest"
)

// startProc runs one of our binaries for the test with extra environment
// (binaries.Start).
func startProc(t *testing.T, name string, env []string, args ...string) *proc.Proc {
	t.Helper()
	return binaries.Start(t, binDir, name, env, args...)
}

// allLogs is p's whole log file, every run included.
func allLogs(p *proc.Proc) string {
	b, _ := os.ReadFile(p.LogPath())
	return string(b)
}

// tempsWatch records, as the agent user, when temps reach a device.
type tempsWatch struct {
	mu    sync.Mutex
	times []time.Time
}

func (w *tempsWatch) handle(_ mqtt.Client, m mqtt.Message) {
	if m.Retained() {
		return
	}
	w.mu.Lock()
	w.times = append(w.times, time.Now())
	w.mu.Unlock()
}

func (w *tempsWatch) all() []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Time(nil), w.times...)
}

// lastState is the state of the last frame in the device's jsonl strip.
func lastState(t *testing.T, path string) ledstrip.State {
	t.Helper()
	r, _, err := backend.LastJSONL(path)
	if err != nil {
		t.Fatal(err)
	}
	return r.State
}

// TestMigrationLockedDown runs the real agent and device against the
// production broker config and ACL, with secrets handed over as the
// systemd units do, kills the agent with SIGKILL and restarts it: the
// device keeps getting temps within an interval, and nothing secret shows
// in either log.
func TestMigrationLockedDown(t *testing.T) {
	const interval = 2 * time.Second
	for _, auth := range authModes {
		t.Run(auth.String(), func(t *testing.T) {
			b := StartBroker(t, auth, users)
			weather := weathertest.New()
			t.Cleanup(weather.Close)
			dir := t.TempDir()

			// The agent gets its secret (key or password) the way the unit
			// hands it over: in $CREDENTIALS_DIRECTORY.
			creds := filepath.Join(dir, "credentials")
			os.Mkdir(creds, 0o700)
			agentYAML := fmt.Sprintf("broker: %s\nagent_id: main\nmqtt:\n  username: %s\n  ca_file: %s\n", b.URL(), AgentUser, b.Files.CA)
			deviceMQTT := fmt.Sprintf("mqtt:\n  username: kitchen\n  ca_file: %s\n", b.Files.CA)
			if auth == AuthCert {
				cert, key := b.CA.Issue(t, AgentUser, "agent")
				kb, _ := os.ReadFile(key)
				os.WriteFile(filepath.Join(creds, "mqtt-key"), kb, 0o400)
				agentYAML += "  cert_file: " + cert + "\n"
				dcert, dkey := b.CA.Issue(t, "kitchen", "kitchen")
				deviceMQTT += "  cert_file: " + dcert + "\n  key_file: " + dkey + "\n"
			} else {
				os.WriteFile(filepath.Join(creds, "mqtt-password"), []byte(users[AgentUser]+"\n"), 0o400)
				pf := filepath.Join(dir, "kitchen-password")
				os.WriteFile(pf, []byte(users["kitchen"]), 0o400)
				deviceMQTT += "  password_file: " + pf + "\n"
			}
			agentConf, deviceConf := filepath.Join(dir, "agent.yaml"), filepath.Join(dir, "glowcastd.yaml")
			os.WriteFile(agentConf, []byte(agentYAML), 0o644)
			jsonl := filepath.Join(dir, "strip.jsonl")
			os.WriteFile(deviceConf, []byte(fmt.Sprintf("broker: %s\ndevice_id: kitchen\nled: jsonl:%s\nstate_dir: %s\n%s",
				b.URL(), jsonl, filepath.Join(dir, "device"), deviceMQTT)), 0o644)

			watch := &tempsWatch{}
			wc := b.mustConnect(t, ObserverUser)
			subscribe(t, wc, newRecorder(), "glowcast/v1/+/device/status")
			if tok := wc.Subscribe(topic("kitchen", protocol.SideAgent, protocol.MsgTemps), 1, watch.handle); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("subscribe: %v", tok.Error())
			}

			ag := startProc(t, "glowcast-agent", []string{"CREDENTIALS_DIRECTORY=" + creds},
				"-config", agentConf, "--weather", "open-meteo", "--weather-url", weather.URL,
				"--location", "52.52,13.40", "--interval", interval.String(), "--restart-grace", "60s",
				"--state-dir", filepath.Join(dir, "agent"), "--log-level", "debug")
			dev := startProc(t, "glowcastd", []string{"CREDENTIALS_DIRECTORY="}, "-config", deviceConf, "--log-level", "debug")
			logs := func() string { return allLogs(ag) + "\n---\n" + allLogs(dev) + "\n---\n" + b.Log() }

			mqtttest.WaitFor(t, 15*time.Second, "two temps cycles for kitchen", func() bool { return len(watch.all()) >= 2 })
			mqtttest.WaitFor(t, 5*time.Second, "fresh temps on the strip", func() bool { return lastState(t, jsonl) == "fresh" })

			for round := range 2 {
				before := watch.all()
				last := before[len(before)-1]
				ag.Kill()
				if err := ag.Start(); err != nil {
					t.Fatal(err)
				}
				mqtttest.WaitFor(t, 2*interval+3*time.Second, "temps after the agent was killed and restarted", func() bool { return len(watch.all()) > len(before) })
				// The restart grace is 60s: only the fast resume, which
				// works through the locked-down topics, comes this soon.
				if gap := watch.all()[len(before)].Sub(last); gap > interval+1500*time.Millisecond {
					t.Errorf("round %d: next temps %v after the last, want within %v plus ~1s\n%s", round, gap, interval, logs())
				}
			}
			if got := lastState(t, jsonl); got != "fresh" {
				t.Errorf("device state after the migrations: got %q, want fresh", got)
			}
			out := logs()
			for _, secret := range users {
				if strings.Contains(allLogs(ag)+allLogs(dev), secret) {
					t.Errorf("a password appears in the programs' logs")
				}
			}
			for _, bad := range []string{"broker refused subscription", "connecting to the broker failed"} {
				if strings.Contains(allLogs(ag)+allLogs(dev), bad) {
					t.Errorf("logs say %q under the production ACL:\n%s", bad, out)
				}
			}
		})
	}
}
