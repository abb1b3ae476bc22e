package mqttwatch

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/glowcast/glowcast/test/kit/mqtttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestWatcher(t *testing.T) {
	b := mqtttest.Start(t)
	pub, err := Start(b.URL(), "pub", "x/none")
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.Publish("a/retained", []byte("old"), true); err != nil {
		t.Fatal(err)
	}
	w, err := Start(b.URL(), "watch", "a/#")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	mqtttest.WaitFor(t, 5*time.Second, "the retained message", func() bool { return string(w.Last("a/retained")) == "old" })
	before := time.Now()
	for _, m := range []struct{ topic, payload string }{{"a/live", "1"}, {"b/other", "no"}, {"a/live", "2"}} {
		if err := pub.Publish(m.topic, []byte(m.payload), false); err != nil {
			t.Fatal(err)
		}
	}
	mqtttest.WaitFor(t, 5*time.Second, "two live messages", func() bool { return len(w.Arrivals("a/#")) == 2 })
	if got := string(w.Last("a/live")); got != "2" {
		t.Errorf("Last(a/live) = %q, want the newest, 2", got)
	}
	if w.Last("b/other") != nil {
		t.Error("a message outside the filters was recorded")
	}
	ms := w.Messages("a/#")
	if len(ms) != 3 || !ms[0].Retained || ms[1].Retained || string(ms[2].Payload) != "2" {
		t.Fatalf("messages %+v: want the retained one, then 1 and 2 live, in order", ms)
	}
	if at := w.Arrivals("a/live"); len(at) != 2 || at[0].Before(before) || at[1].Before(at[0]) {
		t.Errorf("arrivals %v: want two, after %v, in order", at, before)
	}
	// A restarted broker: the watcher subscribes again by itself.
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	mqtttest.WaitFor(t, 10*time.Second, "a message after the broker restart", func() bool {
		pub.Publish("a/live", []byte("3"), false)
		return string(w.Last("a/live")) == "3"
	})
}
