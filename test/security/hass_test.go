package securitytest

import (
	"encoding/json"
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

// hassConfig is what Home Assistant reads of a discovery config: the
// topics it subscribes and publishes to.
type hassConfig struct {
	StateTopic   string `json:"state_topic"`
	CommandTopic string `json:"command_topic"`
	Availability []struct {
		Topic string `json:"topic"`
	} `json:"availability"`
}

// TestHomeAssistantUnderTheShippedACL runs the real agent and device on the
// production broker config and ACL and connects as the shipped ACL's
// Home Assistant user, subscribing and publishing as Home Assistant does:
// it gets every discovery config and every topic those configs name, its
// light commands reach the device as desired settings, and it can neither
// write anything else nor read a device's ready, WiFi scan or desired
// settings.
func TestHomeAssistantUnderTheShippedACL(t *testing.T) {
	for _, auth := range authModes {
		t.Run(auth.String(), func(t *testing.T) {
			b := StartBroker(t, auth, users)
			weather := weathertest.New()
			t.Cleanup(weather.Close)
			dir := t.TempDir()
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

			ag := startProc(t, "glowcast-agent", []string{"CREDENTIALS_DIRECTORY=" + creds},
				"-config", agentConf, "--weather", "open-meteo", "--weather-url", weather.URL,
				"--location", "52.52,13.40", "--state-dir", filepath.Join(dir, "agent"))
			dev := startProc(t, "glowcastd", []string{"CREDENTIALS_DIRECTORY="}, "-config", deviceConf)
			logs := func() string { return ag.allLogs() + "\n---\n" + dev.allLogs() + "\n---\n" + b.Log() }
			mqtttest.WaitFor(t, 15*time.Second, "fresh temps on the strip", func() bool { return lastState(t, jsonl) == "fresh" })

			// Home Assistant's own subscriptions: discovery and its birth.
			ha := b.mustConnect(t, protocol.HomeAssistantUser)
			disc := newRecorder()
			subscribe(t, ha, disc, "homeassistant/+/+/config", "homeassistant/+/+/+/config", "homeassistant/status")
			publish(t, ha, "homeassistant/status", "online", false)
			disc.waitFor(t, "homeassistant/status", "online")
			configs := map[string]hassConfig{}
			mqtttest.WaitFor(t, 10*time.Second, "kitchen's seven discovery configs", func() bool {
				disc.mu.Lock()
				defer disc.mu.Unlock()
				for tp, ps := range disc.got {
					if strings.Contains(tp, "glowcast_kitchen") && len(ps) > 0 {
						var c hassConfig
						if err := json.Unmarshal([]byte(ps[len(ps)-1]), &c); err != nil {
							t.Fatalf("discovery config %s: %v", tp, err)
						}
						configs[tp] = c
					}
				}
				return len(configs) == 7
			})
			// Every topic the configs name: the state and availability
			// topics are readable (retained values arrive), the command
			// topic writable.
			reads, writes := map[string]bool{}, map[string]bool{}
			for _, c := range configs {
				reads[c.StateTopic] = true
				for _, a := range c.Availability {
					reads[a.Topic] = true
				}
				if c.CommandTopic != "" {
					writes[c.CommandTopic] = true
				}
			}
			if len(writes) != 1 || !writes[protocol.LightSetTopic("kitchen")] {
				t.Fatalf("command topics %v, want only %s", writes, protocol.LightSetTopic("kitchen"))
			}
			state := newRecorder()
			for tp := range reads {
				subscribe(t, ha, state, tp)
			}
			mqtttest.WaitFor(t, 5*time.Second, "a retained message on every topic the discovery configs read", func() bool {
				for tp := range reads {
					if len(state.messages(tp)) == 0 {
						return false
					}
				}
				return true
			})

			// The light's commands, as Home Assistant renders its templates.
			reported := topic("kitchen", protocol.SideDevice, protocol.MsgSettings)
			publish(t, ha, protocol.LightSetTopic("kitchen"), `{"on":false}`, false)
			mqtttest.WaitFor(t, 10*time.Second, "the device off", func() bool { return lastState(t, jsonl) == "off" })
			publish(t, ha, protocol.LightSetTopic("kitchen"), `{"on":true,"brightness":40}`, false)
			mqtttest.WaitFor(t, 10*time.Second, "the light's state: on at 40 %", func() bool {
				ms := state.messages(reported)
				if len(ms) == 0 {
					return false
				}
				r, err := protocol.ParseReported([]byte(ms[len(ms)-1]))
				return err == nil && r.Applied.On != nil && *r.Applied.On && r.Applied.Brightness != nil && *r.Applied.Brightness == 40
			})

			// Nothing else: forged writes do not arrive, retained or live.
			obs := b.mustConnect(t, ObserverUser)
			seen := newRecorder()
			subscribe(t, obs, seen, "glowcast/v1/#", "homeassistant/#")
			forbidden := []string{
				topic("kitchen", protocol.SideAgent, protocol.MsgSettings),
				topic("kitchen", protocol.SideAgent, protocol.MsgTemps),
				topic("kitchen", protocol.SideAgent, protocol.MsgRebirth),
				topic("kitchen", protocol.SideDevice, protocol.MsgStatus),
				topic("kitchen", protocol.SideDevice, protocol.MsgReady),
				topic("kitchen", protocol.SideDevice, protocol.MsgSettings),
				protocol.AgentStatusTopic("main"),
				"glowcast/v1/kitchen/owner",
				"homeassistant/light/glowcast_kitchen/config",
				"homeassistant/sensor/forged/config",
			}
			for _, tp := range forbidden {
				publish(t, ha, tp, "forged-by-ha", true)
			}
			publish(t, ha, protocol.LightSetTopic("kitchen"), `{"on":true,"brightness":41}`, false)
			seen.waitFor(t, protocol.LightSetTopic("kitchen"), `{"on":true,"brightness":41}`)
			// Retained forgeries would reach later subscribers too. (The
			// broker makes the user name the client id: one observer at a
			// time, and never as the agent, whose session it would take.)
			obs.Disconnect(100)
			late := newRecorder()
			subscribe(t, b.mustConnect(t, ObserverUser), late, "glowcast/v1/#", "homeassistant/#")
			time.Sleep(300 * time.Millisecond)
			for _, tp := range forbidden {
				for _, rec := range []*recorder{seen, late} {
					for _, m := range rec.messages(tp) {
						if m == "forged-by-ha" {
							t.Errorf("Home Assistant wrote %s\n%s", tp, logs())
						}
					}
				}
			}

			// It reads only what its entities show.
			wide := newRecorder()
			subscribe(t, ha, wide, "glowcast/v1/#", "#")
			publish(t, ha, "homeassistant/status", "marker", false)
			wide.waitFor(t, "homeassistant/status", "marker")
			time.Sleep(300 * time.Millisecond)
			for _, tp := range []string{
				topic("kitchen", protocol.SideDevice, protocol.MsgReady),
				topic("kitchen", protocol.SideAgent, protocol.MsgSettings),
				protocol.LightSetTopic("kitchen"),
			} {
				if got := wide.messages(tp); len(got) != 0 {
					t.Errorf("Home Assistant read %s: %q, want nothing", tp, got)
				}
			}
			if got := wide.messages(topic("kitchen", protocol.SideAgent, protocol.MsgTemps)); len(got) == 0 {
				t.Errorf("Home Assistant's wide subscription got no temps: the ACL filters too much")
			}
		})
	}
}
