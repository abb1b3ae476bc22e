package mqttmsg

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glowcast/glowcast/test/kit/mqtttest"
)

// A client given several broker URLs connects to the first that answers and,
// when that node dies, reconnects to another and subscribes again there.
func TestFailoverBetweenBrokers(t *testing.T) {
	a, b := mqtttest.Start(t), mqtttest.Start(t)
	dead := fmt.Sprintf("tcp://127.0.0.1:%d", mqtttest.FreePort(t))

	var got atomic.Int64
	c, err := New(Options{Broker: dead + ", " + a.URL() + "," + b.URL(), ClientID: "multi"})
	if err != nil {
		t.Fatal(err)
	}
	c.Handle("t/#", func(Message) { got.Add(1) })
	c.Connect()
	defer c.Close(ctx(t))
	if err := c.WaitUp(ctx(t), 1); err != nil {
		t.Fatal(err)
	}
	if c.Broker() != a.URL() {
		t.Errorf("first connect: got broker %q, want %q (the first one that answers)", c.Broker(), a.URL())
	}

	a.Kill()
	if err := c.WaitUp(ctx(t), 2); err != nil {
		t.Fatal(err)
	}
	if c.Broker() != b.URL() {
		t.Errorf("after the node died: got broker %q, want %q", c.Broker(), b.URL())
	}
	// Subscribed again on the surviving node: a message published there arrives.
	p := connected(t, Options{Broker: b.URL(), ClientID: "pub"})
	if err := p.Publish(ctx(t), "t/x", []byte("x"), false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "message through the surviving node", func() bool { return got.Load() == 1 })
}

func TestParseBrokers(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"tcp://a:1883", []string{"tcp://a:1883"}, ""},
		{" tcp://a:1883 , mqtts://b:8883,", []string{"tcp://a:1883", "mqtts://b:8883"}, ""},
		{"", nil, "no broker"},
		{" , ", nil, "no broker"},
		{"tcp://a:1883,http://b:1", nil, "scheme"},
		{"tcp://a:1883,b", nil, "not of the form"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseBrokers(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// With Resubscribe, each connection subscribes once more after that long,
// and the broker sends the retained messages again: what a node of a
// clustered broker had not loaded for the first subscribe comes with the
// second. Each connection does it once; Close ends the wait.
func TestResubscribeGetsRetainedMessagesAgain(t *testing.T) {
	b := mqtttest.Start(t)
	p := connected(t, Options{Broker: b.URL(), ClientID: "pub"})
	if err := p.Publish(ctx(t), "t/x", []byte("x"), true); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name        string
		resubscribe time.Duration
		want        int64
	}{
		{"once", 0, 1},
		{"again after 300ms", 300 * time.Millisecond, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got atomic.Int64
			c, err := New(Options{Broker: b.URL(), ClientID: "sub", Resubscribe: tc.resubscribe})
			if err != nil {
				t.Fatal(err)
			}
			c.Handle("t/#", func(m Message) {
				if m.Retained {
					got.Add(1)
				}
			})
			c.Connect()
			defer c.Close(ctx(t))
			if err := c.WaitUp(ctx(t), 1); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the retained message", func() bool { return got.Load() >= 1 })
			time.Sleep(time.Second) // three times the resubscribe delay
			if n := got.Load(); n != tc.want {
				t.Errorf("retained message delivered %d times, want %d", n, tc.want)
			}
		})
	}
}

// connected returns a client made with o, connected, closed at the test's end.
func connected(t *testing.T, o Options) *Client {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	c.Connect()
	t.Cleanup(func() { c.Close(context.Background()) })
	if err := c.WaitUp(ctx(t), 1); err != nil {
		t.Fatal(err)
	}
	return c
}
