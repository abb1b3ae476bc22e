package mqttmsg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMatch(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b/c", "a/b/c", true},
		{"a/b/c", "a/b/d", false},
		{"a/+/c", "a/x/c", true},
		{"a/+/c", "a/x/y/c", false},
		{"a/#", "a/x/y/c", true},
		{"a/#", "a", true}, // "#" also matches the parent level (MQTT 3.1.1, 4.7.1.2)
		{"a/+", "a/b/c", false},
		{"glowcast/v1/+/device/+", "glowcast/v1/kitchen/device/ready", true},
		{"glowcast/v1/+/device/+", "glowcast/v1/agent/main/status", false},
	}
	for _, tt := range tests {
		t.Run(tt.filter+" "+tt.topic, func(t *testing.T) {
			if got := Match(tt.filter, tt.topic); got != tt.want {
				t.Errorf("Match(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
			}
		})
	}
}

// logBuf collects log lines safely across goroutines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newClient(t *testing.T, broker, id string, p *Presence, up ...func(context.Context)) *Client {
	t.Helper()
	c, err := New(Options{Broker: broker, ClientID: id, Presence: p, OnUp: up, KeepAlive: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// The point of the layer: a hub that answers "ready" at once always reaches
// the node's handler, because the node subscribed before it said ready.
func TestNoMessageBeforeItsHandler(t *testing.T) {
	b := mqtttest.Start(t)
	hc, err := New(Options{Broker: b.URL(), ClientID: "hub"})
	if err != nil {
		t.Fatal(err)
	}
	hub := NewHub(hc, "test/v1", "hub", "node")
	hub.On("ready", func(node string, m Message) {
		go hub.Send(context.Background(), node, "hello", []byte("hi "+node))
	})
	hc.Connect()
	defer hc.Close(context.Background())
	if err := hc.WaitUp(ctx(t), 1); err != nil {
		t.Fatal(err)
	}

	const n = 20
	var wg sync.WaitGroup
	got := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("node%d", i)
			var node *Node
			c := newClient(t, b.URL(), id, nil, func(ctx context.Context) { node.Send(ctx, "ready", []byte(`{}`)) })
			node = NewNode(c, "test/v1", id, "node", "hub")
			done := make(chan struct{})
			node.On("hello", func(data []byte) { got <- string(data); close(done) })
			c.Connect()
			defer c.Close(context.Background())
			select {
			case <-done:
			case <-time.After(5 * time.Second):
			}
		}()
	}
	wg.Wait()
	close(got)
	count := 0
	for s := range got {
		if !strings.HasPrefix(s, "hi node") {
			t.Errorf("unexpected payload %q", s)
		}
		count++
	}
	if count != n {
		t.Fatalf("hello delivered to %d of %d nodes", count, n)
	}
}

type watcher struct {
	c    *Client
	mu   sync.Mutex
	msgs map[string][][]byte
}

func watch(t *testing.T, broker, filter string) *watcher {
	t.Helper()
	w := &watcher{msgs: map[string][][]byte{}}
	c, err := New(Options{Broker: broker, ClientID: "watcher-" + t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	c.Handle(filter, func(m Message) {
		w.mu.Lock()
		w.msgs[m.Topic] = append(w.msgs[m.Topic], m.Payload)
		w.mu.Unlock()
	})
	c.Connect()
	t.Cleanup(func() { c.Close(context.Background()) })
	if err := c.WaitUp(ctx(t), 1); err != nil {
		t.Fatal(err)
	}
	w.c = c
	return w
}

func (w *watcher) last(topic string) map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	ms := w.msgs[topic]
	if len(ms) == 0 {
		return nil
	}
	var v map[string]any
	json.Unmarshal(ms[len(ms)-1], &v)
	return v
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPresenceBirthWillAndClose(t *testing.T) {
	b := mqtttest.Start(t)
	w := watch(t, b.URL(), "p/#")
	since := time.Now().Add(-time.Minute)
	var conns []net.Conn
	var mu sync.Mutex
	c, err := New(Options{
		Broker: b.URL(), ClientID: "dev1", KeepAlive: 5 * time.Second,
		Presence: &Presence{Topic: "p/dev1", ID: "boot-a", Status: protocol.DeviceStatus{BootID: "boot-a", TS: since}},
		Dial: func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", addr)
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			return conn, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Connect()
	if err := c.WaitUp(ctx(t), 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "birth", func() bool {
		v := w.last("p/dev1")
		return v != nil && v["online"] == true && v["boot_id"] == "boot-a"
	})
	if ts := w.last("p/dev1")["ts"]; ts != since.UTC().Format(time.RFC3339Nano) {
		t.Errorf("ts: got %v, want the process start %v", ts, since.UTC().Format(time.RFC3339Nano))
	}

	// Cut the connection as a network fault would (half-close, so the
	// broker sees the end of the stream without a DISCONNECT): the broker
	// publishes the will; the client reconnects and is online again.
	mu.Lock()
	conns[0].(*net.TCPConn).CloseWrite()
	mu.Unlock()
	defer func() {
		if t.Failed() {
			w.mu.Lock()
			for _, m := range w.msgs["p/dev1"] {
				t.Logf("seen: %s", m)
			}
			w.mu.Unlock()
			t.Log(b.Log())
		}
	}()
	waitFor(t, "will then rebirth", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		ms := w.msgs["p/dev1"]
		sawWill := false
		for _, m := range ms {
			if bytes.Contains(m, []byte(`"online":false`)) {
				sawWill = true
			}
		}
		return sawWill && bytes.Contains(ms[len(ms)-1], []byte(`"online":true`))
	})
	if err := c.WaitUp(ctx(t), 2); err != nil {
		t.Fatal(err)
	}

	// A clean close says offline itself.
	if err := c.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "offline on close", func() bool {
		v := w.last("p/dev1")
		return v["online"] == false && v["boot_id"] == "boot-a"
	})
	if err := c.Publish(ctx(t), "p/x", []byte("x"), false); err != ErrNotConnected {
		t.Errorf("publish after close: got %v, want ErrNotConnected", err)
	}
}

func TestLateWillIsOverwritten(t *testing.T) {
	b := mqtttest.Start(t)
	w := watch(t, b.URL(), "p/#")
	c := newClient(t, b.URL(), "dev1", &Presence{Topic: "p/dev1", ID: "new", Status: protocol.DeviceStatus{BootID: "new", TS: time.Now()}})
	c.Connect()
	defer c.Close(context.Background())
	if err := c.WaitUp(ctx(t), 1); err != nil {
		t.Fatal(err)
	}
	tests := []string{
		// An older process's will.
		fmt.Sprintf(`{"online":false,"boot_id":"old","ts":%q}`, time.Now().Add(-time.Hour).Format(time.RFC3339)),
		// Our own will, as a broker publishes it while shutting down.
		fmt.Sprintf(`{"online":false,"boot_id":"new","ts":%q}`, time.Now().Format(time.RFC3339)),
		// An older process's online status replayed.
		fmt.Sprintf(`{"online":true,"boot_id":"old","ts":%q}`, time.Now().Add(-time.Hour).Format(time.RFC3339)),
	}
	for _, payload := range tests {
		if err := w.c.Publish(ctx(t), "p/dev1", []byte(payload), true); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "own online status back after "+payload, func() bool {
			v := w.last("p/dev1")
			return v["online"] == true && v["boot_id"] == "new"
		})
	}
}

func TestSupplantedByNewerProcess(t *testing.T) {
	b := mqtttest.Start(t)
	got := make(chan string, 1)
	old, err := New(Options{
		Broker: b.URL(), ClientID: "agent-x-old",
		Presence:     &Presence{Topic: "p/agent", ID: "s1", Status: protocol.AgentStatus{Session: "s1", TS: time.Now().Add(-time.Hour)}},
		OnSupplanted: []func(string){func(id string) { got <- id }},
	})
	if err != nil {
		t.Fatal(err)
	}
	old.Connect()
	defer old.Abandon()
	if err := old.WaitUp(ctx(t), 1); err != nil {
		t.Fatal(err)
	}
	newer := newClient(t, b.URL(), "agent-x-new", &Presence{Topic: "p/agent", ID: "s2", Status: protocol.AgentStatus{Session: "s2", TS: time.Now()}})
	newer.Connect()
	defer newer.Close(context.Background())
	select {
	case id := <-got:
		if id != "s2" {
			t.Fatalf("supplanted by %q, want s2", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("older process was not told of the newer one")
	}
}

// A watcher of peers' statuses whose filter covers our own status topic
// learns there that our previous process ended: its will is retained there
// until our birth replaces it.
func TestOwnStatusTopicReachesAMatchingHandler(t *testing.T) {
	b := mqtttest.Start(t)
	w := watch(t, b.URL(), "p/#")
	status := protocol.AgentStatus{Session: "s1", TS: time.Now()}
	if err := w.c.Publish(ctx(t), "p/agent/a", status.Payload(false), true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the previous process's will retained", func() bool { return w.last("p/agent/a") != nil })
	seen := make(chan Message, 8)
	c := newClient(t, b.URL(), "agent-a-s2", &Presence{Topic: "p/agent/a", ID: "s2", Status: protocol.AgentStatus{Session: "s2", TS: time.Now()}})
	c.Handle("p/agent/+", func(m Message) { seen <- m })
	c.Connect()
	defer c.Close(context.Background())
	select {
	case m := <-seen:
		id, online, err := status.ParseStatus(m.Payload)
		if err != nil || id != "s1" || online || !m.Retained {
			t.Fatalf("first status seen: %s (retained %v), want s1's retained will", m.Payload, m.Retained)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler for p/agent/+ never saw the previous process's will on our own status topic")
	}
}

func TestOversizedAndUnhandledDropped(t *testing.T) {
	b := mqtttest.Start(t)
	var logs logBuf
	c, err := New(Options{Broker: b.URL(), ClientID: "n", MaxPayload: 1024,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	node := NewNode(c, "t", "n", "node", "hub")
	var mu sync.Mutex
	var got []int
	node.On("data", func(b []byte) { mu.Lock(); got = append(got, len(b)); mu.Unlock() })
	c.Connect()
	defer c.Close(context.Background())
	if err := c.WaitUp(ctx(t), 1); err != nil {
		t.Fatal(err)
	}
	p := newClient(t, b.URL(), "p", nil)
	p.Connect()
	defer p.Close(context.Background())
	if err := p.WaitUp(ctx(t), 1); err != nil {
		t.Fatal(err)
	}
	p.Publish(ctx(t), "t/n/hub/data", bytes.Repeat([]byte("x"), 2048), false)
	p.Publish(ctx(t), "t/n/hub/nobody-listens", []byte("x"), false)
	p.Publish(ctx(t), "t/n/hub/data", []byte("small"), false)
	waitFor(t, "small message", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) > 0 })
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != 5 {
		t.Fatalf("delivered sizes %v, want [5]", got)
	}
	if s := logs.String(); !strings.Contains(s, "oversized") || !strings.Contains(s, "nobody-listens") {
		t.Fatalf("log does not report the dropped messages:\n%s", s)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no broker", Options{ClientID: "x"}, "no broker"},
		{"bad scheme", Options{Broker: "http://x:1", ClientID: "x"}, "scheme"},
		{"no host", Options{Broker: "localhost", ClientID: "x"}, "not of the form"},
		{"no client id", Options{Broker: "tcp://x:1"}, "client id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// Regression: a SUBACK 0x80 was logged and the connection kept, up but
// deaf to the refused filter, until something else dropped it. A refused
// subscription must end in a reconnect, and the client must never count
// itself up on that connection. (Mosquitto grants an ACL-denied filter to an
// MQTT 3.1.1 client; a clustered broker refuses with 0x80 while busy. The
// refusal is made here by rewriting the real broker's SUBACK on the wire.)
func TestRefusedSubscriptionReconnects(t *testing.T) {
	b := mqtttest.Start(t)
	var dials atomic.Int32
	c, err := New(Options{
		Broker: b.URL(), ClientID: "deaf",
		Dial: func(ctx context.Context, addr string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			return &subackRefuser{Conn: conn}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Handle("ok/x", func(Message) {})
	c.Connect()
	defer c.Close(context.Background())
	waitFor(t, "a second connection after the refusal", func() bool { return dials.Load() >= 3 })
	if c.Ups() != 0 {
		t.Fatalf("ups=%d on connections with a refused subscription, want 0", c.Ups())
	}
}

// subackRefuser passes a broker connection through and turns every return
// code of each SUBACK into 0x80 (failure).
type subackRefuser struct {
	net.Conn
	buf []byte // bytes read from the broker, not yet handed up
	out []byte // rewritten bytes ready to hand up
}

func (s *subackRefuser) Read(p []byte) (int, error) {
	for len(s.out) == 0 {
		tmp := make([]byte, 4096)
		n, err := s.Conn.Read(tmp)
		s.buf = append(s.buf, tmp[:n]...)
		s.frame()
		if err != nil && len(s.out) == 0 {
			return 0, err
		}
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

// frame moves every complete packet from buf to out, rewriting SUBACKs.
func (s *subackRefuser) frame() {
	for len(s.buf) >= 2 {
		rem, mul, i := 0, 1, 1
		for ; i < len(s.buf) && i < 5; i++ {
			rem += int(s.buf[i]&0x7f) * mul
			mul *= 128
			if s.buf[i]&0x80 == 0 {
				break
			}
		}
		if i >= len(s.buf) || len(s.buf) < i+1+rem {
			return
		}
		pkt := s.buf[:i+1+rem]
		if pkt[0]>>4 == 9 { // SUBACK: packet id (2 bytes), then one code per filter
			for j := i + 3; j < len(pkt); j++ {
				pkt[j] = 0x80
			}
		}
		s.out = append(s.out, pkt...)
		s.buf = s.buf[len(pkt):]
	}
}

// Regression (fault campaign, net-flap): paho's own reconnect and our
// Disconnect crossed, and paho ended disconnected with no retry pending;
// two devices stayed off the broker for ten minutes. The client now
// notices a paho left idle and connects again.
func TestClientLeftDisconnectedConnectsAgain(t *testing.T) {
	b := mqtttest.Start(t)
	c, err := New(Options{Broker: b.URL(), ClientID: "left"})
	if err != nil {
		t.Fatal(err)
	}
	c.Handle("x/y", func(Message) {})
	c.Connect()
	defer c.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitUp(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// What the crossing leaves: paho disconnected, nothing retrying.
	c.pc.Disconnect(0)
	waitFor(t, "paho disconnected", func() bool { return !c.pc.IsConnected() })
	if err := c.WaitUp(ctx, 2); err != nil {
		t.Fatalf("not connected again after paho was left disconnected: %v", err)
	}
}

// A failure reported for a connection that was already redialed is stale:
// acted upon, it tore down the next connection, whose own on-connect work
// then failed and tore down the one after, once a second for good. Found
// by the fault campaign (device-duplicate-id: the original device, pushed
// off the broker by its clone's connects, redialed every second for
// minutes after the clone stopped).
func TestStaleReconnectRequestDoesNotTearDownTheNextConnection(t *testing.T) {
	b := mqtttest.Start(t)
	c := newClient(t, b.URL(), "stale", &Presence{Topic: "p/stale/status", ID: "b1", Status: protocol.DeviceStatus{BootID: "b1", TS: time.Now()}})
	c.Handle("x/y", func(Message) {})
	c.Connect()
	defer c.Close(context.Background())
	ctx := ctx(t)
	if err := c.WaitUp(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// Two failures of the first connection: the second arrives while the
	// first is being handled (its work failing as we disconnect it).
	c.Reconnect(errors.New("first failure"))
	time.Sleep(200 * time.Millisecond)
	c.Reconnect(errors.New("the same connection failing again"))
	if err := c.WaitUp(ctx, 2); err != nil {
		t.Fatalf("not up again after one redial: %v", err)
	}
	time.Sleep(4 * time.Second)
	if got := c.Ups(); got != 2 || !c.Connected() {
		t.Errorf("after one redial: got %d births (connected %v), want 2 and connected: a stale request redialed again", got, c.Connected())
	}
}
