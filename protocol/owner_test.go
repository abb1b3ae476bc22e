package protocol

import (
	"testing"
	"time"
)

func TestParseClaim(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		wantErr  bool
	}{
		{"ok", `{"agent":"a1","session":"s","ts":"2026-01-02T03:04:05Z","next_due":"2026-01-02T03:34:05Z"}`, false},
		{"released", `{"agent":"a1","session":"s","ts":"2026-01-02T03:04:05Z","released":true}`, false},
		{"bad agent", `{"agent":"a/1","session":"s"}`, true},
		{"no session", `{"agent":"a1"}`, true},
		{"not json", `claim`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseClaim([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("got %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

func TestClaimRoundTrip(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	want := Claim{Agent: "a1", Session: "s1", TS: ts, BootID: "b", NextDue: ts.Add(30 * time.Minute), TempsSeq: 7, Released: true}
	got, err := ParseClaim(want.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if *got != want {
		t.Errorf("got %+v, want %+v", *got, want)
	}
	if b := string((Claim{Agent: "a1", Session: "s1", TS: ts}).Marshal()); b != `{"agent":"a1","session":"s1","ts":"2026-01-02T03:04:05Z"}` {
		t.Errorf("a plain claim marshals as %s: the optional fields must be left out", b)
	}
}

func TestPresenceStatus(t *testing.T) {
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	for _, tc := range []struct {
		name string
		st   interface {
			Payload(bool) []byte
			ParseStatus([]byte) (string, bool, error)
		}
		online bool
		want   string
		id     string
	}{
		{"device birth", DeviceStatus{BootID: "b1", BootSeq: 4, TS: since}, true, `{"online":true,"boot_id":"b1","boot_seq":4,"ts":"2026-01-02T02:04:05Z"}`, "b1"},
		{"device will", DeviceStatus{BootID: "b1", BootSeq: 4, TS: since}, false, `{"online":false,"boot_id":"b1","boot_seq":4,"ts":"2026-01-02T02:04:05Z"}`, "b1"},
		{"agent birth", AgentStatus{Session: "s1", TS: since}, true, `{"online":true,"session":"s1","ts":"2026-01-02T02:04:05Z"}`, "s1"},
		{"agent will", AgentStatus{Session: "s1", TS: since}, false, `{"online":false,"session":"s1","ts":"2026-01-02T02:04:05Z"}`, "s1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.st.Payload(tc.online)
			if string(b) != tc.want {
				t.Errorf("payload %s, want %s", b, tc.want)
			}
			id, online, err := tc.st.ParseStatus(b)
			if err != nil || id != tc.id || online != tc.online {
				t.Errorf("ParseStatus = %q, %v, %v; want %q, %v, nil", id, online, err, tc.id, tc.online)
			}
		})
	}
	if _, _, err := (AgentStatus{}).ParseStatus([]byte(`{"online":true}`)); err == nil {
		t.Error("agent status without a session parsed; want an error")
	}
}
