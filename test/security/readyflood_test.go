package securitytest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
	"github.com/glowcast/glowcast/test/kit/weathertest"
)

// TestReadyFlood: a device holding kitchen's credentials announces boot
// after boot, each at a new place (a new weather cell), to the real agent
// on the shipped broker config. Every place would cost a request from the
// fleet's shared daily quota; the agent's per-device budget bounds them,
// and another device is still served.
func TestReadyFlood(t *testing.T) {
	b := StartBroker(t, AuthCert, users)
	weather := weathertest.New()
	t.Cleanup(weather.Close)
	dir := t.TempDir()

	acert, akey := b.CA.Issue(t, AgentUser, "agent")
	startProc(t, "glowcast-agent", []string{"CREDENTIALS_DIRECTORY="}, "--broker", b.URL(), "--agent-id", "main",
		"--mqtt-username", AgentUser, "--mqtt-ca", b.Files.CA, "--mqtt-cert", acert, "--mqtt-key", akey,
		"--weather", "open-meteo", "--weather-url", weather.URL, "--location", "52.52,13.40",
		"--geolocate-url", "", "--state-dir", filepath.Join(dir, "agent"),
		// A short cycle keeps the fetch jitter (a tenth of it) from
		// hiding requests past the end of the test.
		"--interval", "10s")

	gcert, gkey := b.CA.Issue(t, "garden", "garden")
	gconf := filepath.Join(dir, "garden.yaml")
	os.WriteFile(gconf, []byte(fmt.Sprintf("broker: %s\ndevice_id: garden\nled: none\nstate_dir: %s\nlocation: {lat: 48.14, lon: 11.58}\nmqtt:\n  username: garden\n  ca_file: %s\n  cert_file: %s\n  key_file: %s\n",
		b.URL(), filepath.Join(dir, "garden"), b.Files.CA, gcert, gkey)), 0o644)

	watch := &tempsWatch{}
	wc := b.mustConnect(t, ObserverUser)
	if tok := wc.Subscribe(topic("garden", protocol.SideAgent, protocol.MsgTemps), 1, watch.handle); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	attacker := b.mustConnect(t, "kitchen")
	status := topic("kitchen", protocol.SideDevice, protocol.MsgStatus)
	ready := topic("kitchen", protocol.SideDevice, protocol.MsgReady)
	const boots = 60
	var places []protocol.Location
	for i := range boots {
		boot := fmt.Sprintf("evil%04d", i)
		st, _ := json.Marshal(protocol.DeviceStatus{Online: true, BootID: boot, TS: time.Now()})
		place := protocol.Location{Lat: 40 + float64(i)/10, Lon: 2 + float64(i)/10}
		places = append(places, place)
		rd, _ := json.Marshal(protocol.Ready{BootID: boot, Version: "x", LEDs: 5, Location: &place})
		for _, m := range []struct {
			topic string
			b     []byte
		}{{status, st}, {ready, rd}} {
			if tok := attacker.Publish(m.topic, 1, true, m.b); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("publish: %v", tok.Error())
			}
		}
		// Under the per-device message limit: the budget, not the
		// limiter, is what must hold.
		time.Sleep(250 * time.Millisecond)
	}
	startProc(t, "glowcastd", []string{"CREDENTIALS_DIRECTORY="}, "-config", gconf)
	mqtttest.WaitFor(t, 20*time.Second, "temps for garden during the flood", func() bool { return len(watch.all()) > 0 })
	time.Sleep(2 * time.Second) // the last readies' cycles run

	// kitchen's first place and at most the budget's burst of new ones.
	const budget = 4
	kitchen := 0
	for _, p := range places {
		kitchen += weather.Count(p.Lat, p.Lon)
	}
	if want := 1 + budget; kitchen > want {
		t.Errorf("upstream weather requests for kitchen's places: %d for %d boots at new places, want at most %d", kitchen, boots, want)
	}
	if kitchen == 0 {
		t.Errorf("no request for any of kitchen's places: the probe did not reach the agent")
	}
}
