package security

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
	"github.com/glowcast/glowcast/test/kit/proc"
)

// TestUnsafeIDsRefusedAtStart: both programs refuse ids outside the safe
// alphabet before they touch the network, naming the setting.
func TestUnsafeIDsRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	for _, id := range []string{"a/b", "kitchen#", "a+b", "-x", strings.Repeat("x", protocol.MaxIDLen+1), "agent"} {
		t.Run("glowcastd "+id, func(t *testing.T) {
			out, err := exec.Command(filepath.Join(binDir, "glowcastd"), "--device-id", id, "--led", "none", "--broker", "tcp://127.0.0.1:1").CombinedOutput()
			if err == nil || !strings.Contains(string(out), "device_id (--device-id)") {
				t.Errorf("glowcastd --device-id %q: got %v\n%s\nwant a refusal naming device_id (--device-id)", id, err, out)
			}
		})
		t.Run("glowcast-agent "+id, func(t *testing.T) {
			conf := filepath.Join(dir, "agent.yaml")
			os.WriteFile(conf, []byte("devices:\n  \""+id+"\":\n    location: \"52.5,13.4\"\n"), 0o644)
			out, err := exec.Command(filepath.Join(binDir, "glowcast-agent"), "-config", conf, "--broker", "tcp://127.0.0.1:1").CombinedOutput()
			if err == nil || !strings.Contains(string(out), "devices.") {
				t.Errorf("glowcast-agent with device %q: got %v\n%s\nwant a refusal naming devices.<id>", id, err, out)
			}
		})
	}
}

// TestOversizedInputDropped: the broker refuses packets over its limit
// outright; payloads under it but over protocol.MaxPayload reach the
// programs, which drop them unparsed and say so.
func TestOversizedInputDropped(t *testing.T) {
	b := StartBroker(t, AuthPassword, users)
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	agentPW, devPW := write("agent-pw", users[AgentUser]), write("kitchen-pw", users["kitchen"])
	ag := startProc(t, "glowcast-agent", nil, "--broker", b.URL(), "--mqtt-ca", b.Files.CA, "--mqtt-username", AgentUser,
		"--mqtt-password-file", agentPW, "--weather", "sample", "--location", "52.52,13.40", "--log-level", "debug")
	dev := startProc(t, "glowcastd", nil, "--broker", b.URL(), "--mqtt-ca", b.Files.CA, "--mqtt-username", "kitchen",
		"--mqtt-password-file", devPW, "--device-id", "kitchen", "--led", "none", "--log-level", "debug")
	mqtttest.WaitFor(t, 10*time.Second, "both programs connected", func() bool {
		return strings.Contains(allLogs(ag), "connected to broker") && strings.Contains(allLogs(dev), "connected to broker")
	})

	over := strings.Repeat("x", protocol.MaxPayload+100) // under the broker's packet limit
	// The test's own clients use identities of their own: the broker makes
	// the user name the client id, so "kitchen" would push the device off.
	agentC, kitchenC := b.mustConnect(t, ObserverUser), b.mustConnect(t, "garden")
	publish(t, kitchenC, topic("garden", protocol.SideDevice, protocol.MsgReady), over, false)
	publish(t, agentC, topic("kitchen", protocol.SideAgent, protocol.MsgTemps), over, false)
	// The ACL refuses a device any name but its own few, so only an
	// agent identity can still send the agent a bad name.
	longName := strings.Repeat("n", protocol.MaxNameLen+1)
	publish(t, agentC, topic("garden", protocol.SideDevice, longName), "{}", false)
	mqtttest.WaitFor(t, 5*time.Second, "the agent dropping the oversized ready", func() bool {
		return strings.Contains(allLogs(ag), "dropping oversized message")
	})
	mqtttest.WaitFor(t, 5*time.Second, "the device dropping the oversized temps", func() bool {
		return strings.Contains(allLogs(dev), "dropping oversized message")
	})
	mqtttest.WaitFor(t, 5*time.Second, "the agent dropping the over-long name", func() bool {
		return strings.Contains(allLogs(ag), "invalid name dropped") && strings.Contains(allLogs(ag), longName[:20])
	})
	// An attacker's long name is not copied into the log in full.
	if strings.Contains(allLogs(ag), longName) {
		t.Error("the agent logged the whole over-long name")
	}

	// Over the broker's max_packet_size: the sender is cut off, nothing
	// is delivered.
	r := newRecorder()
	subscribe(t, agentC, r, topic("garden", protocol.SideDevice, "+"))
	huge := strings.Repeat("x", 70000)
	tok := kitchenC.Publish(topic("garden", protocol.SideDevice, protocol.MsgReady), 1, false, huge)
	tok.WaitTimeout(3 * time.Second)
	mqtttest.WaitFor(t, 5*time.Second, "the broker to drop the oversized client", func() bool { return !kitchenC.IsConnectionOpen() })
	// The device's own retained ready may arrive at subscribe; only the
	// huge payload must not.
	for _, m := range r.messages(topic("garden", protocol.SideDevice, protocol.MsgReady)) {
		if len(m) >= len(huge) {
			t.Errorf("a %d-byte payload went through the broker, want refused", len(huge))
		}
	}
	for _, p := range []*proc.Proc{ag, dev} {
		if err := p.Stop(); err != nil {
			t.Error(err)
		}
		if strings.Contains(allLogs(p), "panic") {
			t.Errorf("%s panicked:\n%s", p.Name(), allLogs(p))
		}
	}
}
