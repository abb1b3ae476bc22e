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
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.parse(tc.topic)
			if got != tc.want || ok != tc.ok {
				t.Errorf("parse(%q) = %q, %v; want %q, %v", tc.topic, got, ok, tc.want, tc.ok)
			}
		})
	}
}
