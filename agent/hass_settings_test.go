package agent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glowcast/glowcast/test/kit/mqtttest"
)

func TestHassConfigs(t *testing.T) {
	cfgs, err := hassConfigs("kitchen.1", "1.2", "main", "http://agent:9120/")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) != 7 {
		t.Fatalf("got %d configs, want 5 sensors, a light and a connectivity binary_sensor", len(cfgs))
	}
	light := cfgs["homeassistant/light/glowcast_kitchen_1/config"]
	conn := cfgs["homeassistant/binary_sensor/glowcast_kitchen_1_connectivity/config"]
	if light == nil || conn == nil {
		t.Fatalf("light or connectivity config missing: %v", cfgs)
	}
	var l map[string]any
	json.Unmarshal(light, &l)
	if l["command_topic"] != "glowcast/v1/kitchen.1/light/set" || l["state_topic"] != "glowcast/v1/kitchen.1/device/settings" || l["availability_mode"] != "all" {
		t.Errorf("light: %s", light)
	}
	if av, _ := l["availability"].([]any); len(av) != 2 || !strings.Contains(string(light), "glowcast/v1/agent/main/status") {
		t.Errorf("light availability must follow the device and the agent: %s", light)
	}
	for topic, b := range cfgs {
		if strings.Contains(string(b), "state_class") {
			t.Errorf("%s has a state_class: forecasts must stay out of long-term statistics", topic)
		}
		if !strings.Contains(string(b), `"configuration_url":"http://agent:9120/"`) {
			t.Errorf("%s lacks configuration_url", topic)
		}
	}
}

func TestHassDiscoverySwitchOff(t *testing.T) {
	b := mqtttest.Start(t)
	cfg := Default()
	cfg.Broker, cfg.Weather.Provider, cfg.Location, cfg.HassDiscovery = b.URL(), "sample", "52.52,13.40", false
	// A record from when discovery was on: switched on again later, every
	// device must be published, whatever happened to the configs meanwhile.
	cfg.StateDir = t.TempDir()
	record := filepath.Join(cfg.StateDir, HassFile)
	if err := os.WriteFile(record, []byte(`{"configs":"x","devices":{"hall":"v1"}}`), 0o640); err != nil {
		t.Fatal(err)
	}
	a, _, _ := runAgent(t, cfg)
	d := startSimDevice(t, b.URL(), "hall")
	waitUntil(t, 10*time.Second, "temps at the device", func() bool { return d.last() != nil })
	_ = a
	if got := retainedUnder(t, b.URL(), HassPrefix+"/#"); len(got) != 0 {
		t.Errorf("discovery published with hass_discovery off: %v", got)
	}
	if _, err := os.Stat(record); err == nil {
		t.Errorf("%s kept with discovery off; want it removed", HassFile)
	}
}

func TestDeletedDeviceDiscoveryRemoved(t *testing.T) {
	b := mqtttest.Start(t)
	cfg := Default()
	cfg.Broker, cfg.Weather.Provider, cfg.Location = b.URL(), "sample", "52.52,13.40"
	runAgent(t, cfg)
	d := startSimDevice(t, b.URL(), "hall")
	mqtttest.WaitFor(t, 10*time.Second, "seven discovery configs", func() bool { return len(retainedUnder(t, b.URL(), HassPrefix+"/#")) == 7 })
	// Deleting a device clears its retained ready.
	if err := d.node.SendRetained(context.Background(), "ready", nil); err != nil {
		t.Fatal(err)
	}
	mqtttest.WaitFor(t, 10*time.Second, "discovery removed", func() bool { return len(retainedUnder(t, b.URL(), HassPrefix+"/#")) == 0 })
}
