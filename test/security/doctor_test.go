package securitytest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
	"github.com/glowcast/glowcast/test/kit/weathertest"
)

// runDoctor runs `NAME doctor ARGS` to its end and returns its output.
func runDoctor(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, name), append([]string{"doctor"}, args...)...)
	cmd.Env = append(os.Environ(), "CREDENTIALS_DIRECTORY=")
	out, _ := cmd.CombinedOutput() // a failed check exits 1; the lines are what matter
	return string(out)
}

// TestDoctorLeavesDaemonConnected: the shipped broker makes the user name
// the client id, so a doctor that connected with the daemon's identity
// would push the running daemon off the broker (its will fires, it
// reconnects and pushes the doctor off in turn). With the daemon running,
// glowcastd doctor and glowcast-agent doctor say so and leave its session
// alone; with it stopped, they test the broker as before.
func TestDoctorLeavesDaemonConnected(t *testing.T) {
	b := StartBroker(t, AuthCert, users)
	weather := weathertest.New()
	t.Cleanup(weather.Close)
	dir := t.TempDir()

	dcert, dkey := b.CA.Issue(t, "kitchen", "kitchen")
	deviceConf := filepath.Join(dir, "glowcastd.yaml")
	os.WriteFile(deviceConf, []byte(fmt.Sprintf("broker: %s\ndevice_id: kitchen\nled: none\nstate_dir: %s\nmqtt:\n  username: kitchen\n  ca_file: %s\n  cert_file: %s\n  key_file: %s\n",
		b.URL(), filepath.Join(dir, "device"), b.Files.CA, dcert, dkey)), 0o644)
	acert, akey := b.CA.Issue(t, AgentUser, "agent")
	agentConf := filepath.Join(dir, "agent.yaml")
	os.WriteFile(agentConf, []byte(fmt.Sprintf("broker: %s\nagent_id: main\nstate_dir: %s\nmqtt:\n  username: %s\n  ca_file: %s\n  cert_file: %s\n  key_file: %s\n",
		b.URL(), filepath.Join(dir, "agent"), AgentUser, b.Files.CA, acert, akey)), 0o644)
	os.Mkdir(filepath.Join(dir, "agent"), 0o700)
	agentArgs := []string{"-config", agentConf, "--weather", "open-meteo", "--weather-url", weather.URL, "--location", "52.52,13.40"}

	deviceStatus := topic("kitchen", protocol.SideDevice, protocol.MsgStatus)
	agentStatus := protocol.AgentStatusTopic("main")
	obs := newRecorder()
	subscribe(t, b.mustConnect(t, ObserverUser), obs, deviceStatus, agentStatus)
	offline := func(tp string) int {
		n := 0
		for _, m := range obs.messages(tp) {
			var s struct{ Online bool }
			if json.Unmarshal([]byte(m), &s) == nil && !s.Online {
				n++
			}
		}
		return n
	}
	online := func(tp string) func() bool {
		return func() bool {
			ms := obs.messages(tp)
			if len(ms) == 0 {
				return false
			}
			var s struct{ Online bool }
			return json.Unmarshal([]byte(ms[len(ms)-1]), &s) == nil && s.Online
		}
	}

	cases := []struct {
		name, bin, status string
		daemonArgs        []string
		doctorArgs        []string
	}{
		{"glowcastd", "glowcastd", deviceStatus, []string{"-config", deviceConf}, []string{"-config", deviceConf}},
		{"glowcast-agent", "glowcast-agent", agentStatus, append(agentArgs, "--http", "127.0.0.1:0"), agentArgs},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Stopped: the doctor connects and says the broker works.
			out := runDoctor(t, tc.bin, tc.doctorArgs...)
			if !strings.Contains(out, "connected to "+b.URL()) {
				t.Fatalf("%s doctor with no daemon running did not test the broker:\n%s\n%s", tc.bin, out, b.Log())
			}

			p := startProc(t, tc.bin, []string{"CREDENTIALS_DIRECTORY="}, append(tc.daemonArgs, "--log-level", "debug")...)
			mqtttest.WaitFor(t, 15*time.Second, tc.name+" online", online(tc.status))
			before := offline(tc.status)
			out = runDoctor(t, tc.bin, tc.doctorArgs...)
			if !strings.Contains(out, "is running on this host") {
				t.Errorf("%s doctor with the daemon running: no line saying it left the daemon's session alone:\n%s", tc.bin, out)
			}
			time.Sleep(time.Second) // a will or a reconnect would show by now
			if got := offline(tc.status) - before; got != 0 {
				t.Errorf("%s went offline %d times while doctor ran: the doctor pushed it off the broker\n%s\n%s", tc.name, got, out, p.allLogs())
			}
			if !online(tc.status)() {
				t.Errorf("%s status is not online after doctor ran", tc.name)
			}
			p.stop(syscall.SIGTERM)
		})
	}
}
