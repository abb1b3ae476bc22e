package instance

import (
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHold(t *testing.T) {
	const br = "tcp://127.0.0.1:1883"
	for _, id := range []string{"kitchen", "glowcast-agent", strings.Repeat("x", 200)} {
		t.Run(id[:min(len(id), 20)], func(t *testing.T) {
			if Held(br, id) {
				t.Fatalf("Held(%q) before Hold: got true, want false", id)
			}
			m, err := Hold(br, id)
			if err != nil {
				t.Fatal(err)
			}
			if !Held(br, id) {
				t.Errorf("Held(%q) while held: got false, want true", id)
			}
			if _, err := Hold(br, id); err != ErrHeld {
				t.Errorf("second Hold(%q): err %v, want ErrHeld", id, err)
			}
			if Held(br, id+"-other") {
				t.Errorf("another identity reported held")
			}
			if Held("tcp://127.0.0.1:1884", id) {
				t.Errorf("the identity on another broker reported held")
			}
			m.Close()
			if Held(br, id) {
				t.Errorf("Held(%q) after Close: got true, want false", id)
			}
		})
	}
	if m, err := Hold(br, ""); err != nil || Held(br, "") {
		t.Errorf("empty identity: Hold err %v, Held %v; want nil, false", err, Held(br, ""))
	} else {
		m.Close()
	}
}
