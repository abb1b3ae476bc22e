package protocol

import (
	"strings"
	"testing"
)

func TestValidID(t *testing.T) {
	cases := []struct {
		id      string
		ok      bool
		wantErr string
	}{
		{"kitchen", true, ""},
		{"pi-4.living_room", true, ""},
		{"0", true, ""},
		{strings.Repeat("a", MaxIDLen), true, ""},
		{"", false, "empty"},
		{strings.Repeat("a", MaxIDLen+1), false, "longer than 64"},
		{"a/b", false, "may only hold"},
		{"a+b", false, "may only hold"},
		{"kitchen#", false, "may only hold"},
		{"+", false, "may only hold"},
		{"#", false, "may only hold"},
		{"-x", false, "starting with a letter or digit"},
		{".hidden", false, "may only hold"},
		{"a b", false, "may only hold"},
		{"küche", false, "may only hold"},
		{"a\x00b", false, "may only hold"},
		{"$SYS", false, "may only hold"},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			err := ValidID(tc.id)
			if got := err == nil; got != tc.ok {
				t.Fatalf("ValidID(%q): got %v, want ok=%v", tc.id, err, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ValidID(%q): got %q, want it to mention %q", tc.id, err, tc.wantErr)
			}
		})
	}
}

func TestValidDeviceIDReservesAgent(t *testing.T) {
	for _, id := range []string{SideAgent, HomeAssistantUser} {
		if err := ValidDeviceID(id); err == nil || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("ValidDeviceID(%q): got %v, want a reserved error", id, err)
		}
	}
	if err := ValidDeviceID("kitchen"); err != nil {
		t.Errorf("ValidDeviceID(kitchen): got %v, want nil", err)
	}
}

func TestValidName(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
	}{
		{MsgTemps, true}, {MsgReady, true}, {"wifi", true},
		{strings.Repeat("n", MaxNameLen), true},
		{strings.Repeat("n", MaxNameLen+1), false},
		{"", false}, {"a/b", false}, {"+", false}, {"#", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := ValidName(tc.name); (err == nil) != tc.ok {
				t.Errorf("ValidName(%q): got %v, want ok=%v", tc.name, err, tc.ok)
			}
		})
	}
}

func TestParseRefusesOversizedPayload(t *testing.T) {
	big := []byte(`{"boot_id":"b","pad":"` + strings.Repeat("x", MaxPayload) + `"}`)
	for name, parse := range map[string]func([]byte) error{
		"temps":        func(b []byte) error { _, err := ParseTemps(b); return err },
		"ready":        func(b []byte) error { _, err := ParseReady(b); return err },
		"status":       func(b []byte) error { _, err := ParseDeviceStatus(b); return err },
		"agent status": func(b []byte) error { _, err := ParseAgentStatus(b); return err },
	} {
		t.Run(name, func(t *testing.T) {
			err := parse(big)
			if err == nil || !strings.Contains(err.Error(), "exceeds") {
				t.Errorf("got %v, want a payload-size error", err)
			}
		})
	}
}

// FuzzValidID: whatever ValidID accepts is one topic level without MQTT
// wildcards, so a device's topics stay its own.
func FuzzValidID(f *testing.F) {
	f.Fuzz(func(t *testing.T, id string) {
		if ValidID(id) != nil {
			return
		}
		if len(id) > MaxIDLen || strings.ContainsAny(id, "+#/\x00") || strings.HasPrefix(id, "$") {
			t.Fatalf("ValidID accepted %q", id)
		}
		if got := strings.Count(DeviceTopic(id, SideDevice, MsgStatus), "/"); got != 4 {
			t.Fatalf("topic of %q has %d separators, want 4", id, got)
		}
	})
}
