package initcfg

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/glowcast/glowcast/agent"
	"github.com/glowcast/glowcast/configs"
	"github.com/glowcast/glowcast/device"
	"github.com/glowcast/glowcast/internal/brokerconf"
	"github.com/glowcast/glowcast/internal/cliconf"
	"github.com/glowcast/glowcast/mqttmsg"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
)

// TestLocalSetupOnRealMosquitto: what init -local writes makes a
// Mosquitto that takes the device and the agent with their own passwords
// and the shipped ACL and limits, and configurations both programs accept.
func TestLocalSetupOnRealMosquitto(t *testing.T) {
	dir := t.TempDir()
	gid := os.Getgid()
	l := Local{
		DeviceConfig: filepath.Join(dir, "glowcast", "glowcastd.yaml"),
		MosquittoDir: filepath.Join(dir, "mosquitto"),
		Group:        func(string) (int, error) { return gid, nil },
	}
	f, err := l.Write(Answers{DeviceID: "shelf", LED: "none", Location: "52.52,13.4"}, false)
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		path string
		mode os.FileMode
	}{
		{f.DevicePassword, 0o640}, {f.AgentPassword, 0o640}, {f.MosquittoPasswd, 0o640},
		{f.ACL, 0o644}, {f.MosquittoConf, 0o644}, {f.AgentConfig, 0o644}, {f.DeviceConfig, 0o644},
	} {
		st, err := os.Stat(c.path)
		if err != nil {
			t.Errorf("%s not written: %v", c.path, err)
			continue
		}
		if st.Mode().Perm() != c.mode {
			t.Errorf("%s mode %v, want %v", c.path, st.Mode().Perm(), c.mode)
		}
	}

	dc := device.Default()
	if err := cliconf.LoadFile(f.DeviceConfig, &dc); err != nil {
		t.Fatal(err)
	}
	if err := dc.Validate(); err != nil {
		t.Errorf("device config invalid: %v", err)
	}
	check(t, "device broker", dc.Broker, LocalBroker)
	check(t, "device mqtt.username", dc.MQTT.Username, "shelf")
	check(t, "device mqtt.password_file", dc.MQTT.PasswordFile, f.DevicePassword)
	ac := agent.Default()
	if err := cliconf.LoadFile(f.AgentConfig, &ac); err != nil {
		t.Fatal(err)
	}
	if err := ac.Validate(); err != nil {
		t.Errorf("agent config invalid: %v", err)
	}
	check(t, "agent broker", ac.Broker, LocalBroker)
	check(t, "agent mqtt.username", ac.MQTT.Username, AgentUser)
	check(t, "agent mqtt.password_file", ac.MQTT.PasswordFile, f.AgentPassword)
	check(t, "agent state_dir", ac.StateDir, "/var/lib/glowcast-agent")

	conf, err := os.ReadFile(f.MosquittoConf)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mqtttest.ShippedLimits(string(conf)), mqtttest.ShippedLimits(configs.MosquittoConf); !reflect.DeepEqual(got, want) || len(want) == 0 {
		t.Errorf("limits %q, want the shipped %q", got, want)
	}
	for _, want := range []string{"listener 1883 127.0.0.1\n", "allow_anonymous false\n", "password_file " + f.MosquittoPasswd + "\n", "acl_file " + f.ACL + "\n", "use_username_as_clientid true\n"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("glowcast.conf lacks %q", want)
		}
	}
	if acl, _ := os.ReadFile(f.ACL); string(acl) != configs.MosquittoACL {
		t.Errorf("glowcast.acl is not the shipped ACL")
	}

	// The written file, on a free port (1883 may be taken here); as root
	// Mosquitto would drop to a user that cannot read the test's files.
	b := mqtttest.Start(t, mqtttest.WithListener(func(port int) string {
		c := strings.Replace(string(conf), "listener 1883 127.0.0.1", fmt.Sprintf("listener %d 127.0.0.1", port), 1)
		if os.Geteuid() == 0 {
			c += "user root\n"
		}
		return c
	}))

	connect := func(mc brokerconf.Config, id string) (mqtt.Client, error) {
		var o mqttmsg.Options
		if err := mc.Apply(b.URL(), &o); err != nil {
			t.Fatal(err)
		}
		po := mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID(id).SetProtocolVersion(4).
			SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
			SetUsername(o.Username).SetPassword(o.Password)
		c := mqtt.NewClient(po)
		tok := c.Connect()
		if !tok.WaitTimeout(10 * time.Second) {
			return nil, fmt.Errorf("connect %s: timed out", id)
		}
		if err := tok.Error(); err != nil {
			return nil, err
		}
		t.Cleanup(func() { c.Disconnect(0) })
		return c, nil
	}
	ag, err := connect(ac.MQTT, "agent")
	if err != nil {
		t.Fatalf("the agent's credentials refused: %v\n%s", err, b.Log())
	}
	got := make(chan string, 10)
	if tok := ag.Subscribe("glowcast/v1/#", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m.Topic() }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("agent subscribe: %v", tok.Error())
	}
	dev, err := connect(dc.MQTT, "shelf")
	if err != nil {
		t.Fatalf("the device's credentials refused: %v\n%s", err, b.Log())
	}
	// Another device's topic is refused by the ACL (silently, for QoS 1
	// on 3.1.1), its own arrives.
	for _, topic := range []string{"glowcast/v1/kitchen/device/ready", "glowcast/v1/shelf/device/ready"} {
		if tok := dev.Publish(topic, 1, false, "{}"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
	select {
	case topic := <-got:
		check(t, "topic the agent got", topic, "glowcast/v1/shelf/device/ready")
	case <-time.After(5 * time.Second):
		t.Fatalf("the agent got nothing from the device\n%s", b.Log())
	}

	wrong := dc.MQTT
	wrong.PasswordFile = f.AgentPassword
	if _, err := connect(wrong, "shelf2"); err == nil {
		t.Errorf("the device's user name with the agent's password was accepted")
	}
	if _, err := connect(brokerconf.Config{}, "anon"); err == nil {
		t.Errorf("an anonymous client was accepted")
	}
}

func TestLocalReplacesOnlyWithForce(t *testing.T) {
	dir := t.TempDir()
	l := Local{DeviceConfig: filepath.Join(dir, "glowcast", "glowcastd.yaml"), MosquittoDir: filepath.Join(dir, "mosquitto")}
	f, err := l.Write(Answers{DeviceID: "shelf", LED: "none"}, false)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(f.AgentPassword)
	if _, err := l.Write(Answers{DeviceID: "shelf", LED: "none"}, false); err == nil || !strings.Contains(err.Error(), "-force") {
		t.Errorf("second write without -force: %v, want an error naming -force", err)
	}
	if _, err := l.Write(Answers{DeviceID: "shelf", LED: "none"}, true); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(f.AgentPassword); bytes.Equal(first, again) || len(again) < 40 {
		t.Errorf("-force kept the old password or wrote a short one: %q", again)
	}
	// Without a mosquitto group the password file is root's alone.
	if st, _ := os.Stat(f.MosquittoPasswd); st.Mode().Perm() != 0o600 {
		t.Errorf("glowcast.passwd mode %v without owners, want 0600", st.Mode().Perm())
	}
}

func TestLocalNeedsBothPackages(t *testing.T) {
	dir := t.TempDir()
	l := Local{
		DeviceConfig: filepath.Join(dir, "glowcastd.yaml"), MosquittoDir: filepath.Join(dir, "mosquitto"),
		Group: func(name string) (int, error) {
			if name == "glowcast-agent" {
				return 0, fmt.Errorf("unknown group %s", name)
			}
			return 0, nil
		},
	}
	_, err := l.Write(Answers{DeviceID: "shelf", LED: "none"}, false)
	if err == nil || !strings.Contains(err.Error(), "apt install glowcast-agent") {
		t.Fatalf("got %v, want an error telling to install glowcast-agent", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "glowcastd.yaml")); err == nil {
		t.Errorf("wrote the device config although the set-up was refused")
	}
}

func TestMainLocalRefusesBrokerFlags(t *testing.T) {
	var out bytes.Buffer
	err := Main([]string{"-local", "-yes", "-broker", "tcp://example:1883", "-config", filepath.Join(t.TempDir(), "g.yaml")}, strings.NewReader(""), &out)
	if err == nil || !strings.Contains(err.Error(), "-broker") {
		t.Fatalf("got %v, want a usage error naming -broker", err)
	}
}
