package mqttmsg

import (
	"strings"
	"testing"
	"time"

	"github.com/glowcast/glowcast/protocol"
)

// FuzzMatch: topic matching never panics, a filter without wildcards
// matches only itself, and "#" matches every topic.
func FuzzMatch(f *testing.F) {
	f.Fuzz(func(t *testing.T, filter, topic string) {
		got := Match(filter, topic)
		if !strings.ContainsAny(filter, "+#") && got != (filter == topic) {
			t.Fatalf("Match(%q, %q) = %v, want %v", filter, topic, got, filter == topic)
		}
		if !Match("#", topic) {
			t.Fatalf("Match(\"#\", %q) = false", topic)
		}
		if !strings.ContainsAny(topic, "+#") && !Match(topic, topic) {
			t.Fatalf("Match(%q, itself) = false", topic)
		}
	})
}

// fuzzMsg is a received message as paho hands it over.
type fuzzMsg struct {
	topic    string
	payload  []byte
	retained bool
}

func (m fuzzMsg) Duplicate() bool   { return false }
func (m fuzzMsg) Qos() byte         { return 1 }
func (m fuzzMsg) Retained() bool    { return m.retained }
func (m fuzzMsg) Topic() string     { return m.topic }
func (m fuzzMsg) MessageID() uint16 { return 1 }
func (m fuzzMsg) Payload() []byte   { return m.payload }
func (m fuzzMsg) Ack()              {}

// FuzzEnvelope feeds arbitrary topics and payloads to a hub's and a node's
// dispatch, and to the client's own presence topic: oversized payloads
// never reach a handler, a handler sees only its own name and node, and a
// "takeover" is reported only for a newer status of another process.
func FuzzEnvelope(f *testing.F) {
	f.Fuzz(func(t *testing.T, topic string, payload []byte, maxPayload uint16) {
		since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		var supplanted []string
		c, err := New(Options{
			Broker: "tcp://127.0.0.1:1", ClientID: "fuzz", MaxPayload: int(maxPayload) + 1,
			Presence:     &Presence{Topic: "r/agent/a/status", ID: "me", Status: protocol.AgentStatus{Session: "me", TS: since}},
			OnSupplanted: []func(string){func(id string) { supplanted = append(supplanted, id) }},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.cancel()
		var hubGot, nodeGot []string
		hub := NewHub(c, "r", "agent", "device")
		hub.On("ready", func(node string, m Message) {
			if m.Topic != "r/"+node+"/device/ready" {
				t.Fatalf("hub handler for ready got topic %q as node %q", m.Topic, node)
			}
			hubGot = append(hubGot, node)
		})
		node := NewNode(c, "r", "n1", "device", "agent")
		node.On("temps", func(b []byte) { nodeGot = append(nodeGot, string(b)) })

		c.dispatch(nil, fuzzMsg{topic: topic, payload: payload})
		if len(payload) > c.opts.MaxPayload && (len(hubGot)+len(nodeGot)+len(supplanted)) > 0 {
			t.Fatalf("a %d-byte payload over the %d limit reached a handler", len(payload), c.opts.MaxPayload)
		}
		if len(nodeGot) > 0 && topic != "r/n1/agent/temps" {
			t.Fatalf("node handler for temps ran for topic %q", topic)
		}
		if len(supplanted) > 0 {
			if topic != "r/agent/a/status" || supplanted[0] == "me" {
				t.Fatalf("takeover reported for topic %q by %q", topic, supplanted[0])
			}
		}
		// Drain a rebirth kick, if any: nothing runs the loop here.
		select {
		case <-c.rebirth:
		default:
		}
	})
}
