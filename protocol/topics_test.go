package protocol

import "testing"

func TestTopicIDs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parse func(string) (string, bool)
		topic string
		want  string
		ok    bool
	}{
		{"agent status", AgentOfStatusTopic, AgentStatusTopic("main"), "main", true},
		{"agent sync is not status", AgentOfStatusTopic, SyncTopic("main"), "", false},
		{"agent status empty id", AgentOfStatusTopic, Prefix + "/agent//status", "", false},
		{"agent status two levels", AgentOfStatusTopic, Prefix + "/agent/a/b/status", "", false},
		{"agent status other prefix", AgentOfStatusTopic, "glowcast/v2/agent/main/status", "", false},
		{"owner", DeviceOfOwnerTopic, OwnerTopic("kitchen"), "kitchen", true},
		{"owner of device topic", DeviceOfOwnerTopic, DeviceTopic("kitchen", "agent", "owner"), "", false},
		{"owner wildcard", DeviceOfOwnerTopic, OwnerFilter, "", false},
		{"light set", DeviceOfLightSetTopic, LightSetTopic("kitchen"), "kitchen", true},
		{"light set reserved id", DeviceOfLightSetTopic, LightSetTopic("agent"), "", false},
		{"light set bad id", DeviceOfLightSetTopic, LightSetTopic("a$b"), "", false},
		{"light set of owner", DeviceOfLightSetTopic, OwnerTopic("kitchen"), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.parse(tc.topic)
			if got != tc.want || ok != tc.ok {
				t.Errorf("parse(%q) = %q, %v; want %q, %v", tc.topic, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestParseDeviceTopic(t *testing.T) {
	for _, tc := range []struct {
		topic              string
		device, side, name string
		ok                 bool
	}{
		{DeviceTopic("kitchen", SideAgent, MsgSettings), "kitchen", SideAgent, MsgSettings, true},
		{DeviceTopic("kitchen", SideDevice, MsgReady), "kitchen", SideDevice, MsgReady, true},
		{DeviceTopic("agent", SideDevice, MsgReady), "", "", "", false},
		{DeviceTopic("bad$id", SideDevice, MsgReady), "", "", "", false},
		{DeviceTopic("kitchen", SideDevice, "-x"), "", "", "", false},
		{DeviceFilter(SideDevice), "", "", "", false},
		{OwnerTopic("kitchen"), "", "", "", false},
		{AgentStatusTopic("main") + "/x", "", "", "", false},
		{"glowcast/v2/kitchen/device/ready", "", "", "", false},
	} {
		t.Run(tc.topic, func(t *testing.T) {
			d, s, n, ok := ParseDeviceTopic(tc.topic)
			if d != tc.device || s != tc.side || n != tc.name || ok != tc.ok {
				t.Errorf("got %q %q %q %v, want %q %q %q %v", d, s, n, ok, tc.device, tc.side, tc.name, tc.ok)
			}
		})
	}
}
