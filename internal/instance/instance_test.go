package instance

import (
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHold(t *testing.T) {
	for _, id := range []string{"kitchen", "glowcast-agent", strings.Repeat("x", 200)} {
		t.Run(id[:min(len(id), 20)], func(t *testing.T) {
			if Held(id) {
				t.Fatalf("Held(%q) before Hold: got true, want false", id)
			}
			m, err := Hold(id)
			if err != nil {
				t.Fatal(err)
			}
			if !Held(id) {
				t.Errorf("Held(%q) while held: got false, want true", id)
			}
			if _, err := Hold(id); err != ErrHeld {
				t.Errorf("second Hold(%q): err %v, want ErrHeld", id, err)
			}
			if Held(id + "-other") {
				t.Errorf("another identity reported held")
			}
			m.Close()
			if Held(id) {
				t.Errorf("Held(%q) after Close: got true, want false", id)
			}
		})
	}
	if m, err := Hold(""); err != nil || Held("") {
		t.Errorf("empty identity: Hold err %v, Held %v; want nil, false", err, Held(""))
	} else {
		m.Close()
	}
}
