package mqttmsg

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// MaxNameLen is the longest message name or node id this layer accepts.
const MaxNameLen = 64

// ValidName reports whether s is a safe message name or node id: 1 to
// MaxNameLen letters, digits, '.', '_' or '-'. MQTT wildcards and
// separators can never appear, so a name can never widen a subscription.
func ValidName(s string) error {
	if s == "" {
		return errors.New("mqttmsg: empty name")
	}
	if len(s) > MaxNameLen {
		return fmt.Errorf("mqttmsg: name %.20q… is longer than %d characters", s, MaxNameLen)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("mqttmsg: name %q may only hold letters, digits, '.', '_' and '-'", s)
		}
	}
	return nil
}

// Node speaks named messages for one node: Send publishes to
// <root>/<node>/<out>/<name>; On receives <root>/<node>/<in>/<name>.
type Node struct {
	c        *Client
	out, in  string
	mu       sync.Mutex
	handlers map[string]func([]byte)
}

// NewNode attaches a node's named messages to c. Call On for every name
// before c.Connect.
func NewNode(c *Client, root, node, out, in string) *Node {
	n := &Node{
		c:        c,
		out:      root + "/" + node + "/" + out + "/",
		in:       root + "/" + node + "/" + in + "/",
		handlers: map[string]func([]byte){},
	}
	c.Handle(n.in+"+", n.dispatch)
	return n
}

// On registers the handler for messages named name. Handlers must not block.
func (n *Node) On(name string, h func(data []byte)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.handlers[name] = h
}

// Send publishes data as message name and waits for the broker's ack.
func (n *Node) Send(ctx context.Context, name string, data []byte) error {
	if err := ValidName(name); err != nil {
		return err
	}
	return n.c.Publish(ctx, n.out+name, data, false)
}

// SendQoS0 publishes data as message name at QoS 0, not retained (see
// Client.PublishQoS0).
func (n *Node) SendQoS0(ctx context.Context, name string, data []byte) error {
	if err := ValidName(name); err != nil {
		return err
	}
	return n.c.PublishQoS0(ctx, n.out+name, data)
}

// SendRetained is Send with the retain flag: the broker keeps the last one
// for peers that subscribe later.
func (n *Node) SendRetained(ctx context.Context, name string, data []byte) error {
	if err := ValidName(name); err != nil {
		return err
	}
	return n.c.Publish(ctx, n.out+name, data, true)
}

func (n *Node) dispatch(m Message) {
	name := strings.TrimPrefix(m.Topic, n.in)
	if err := ValidName(name); err != nil {
		n.c.log.Warn("named message with an invalid name dropped", "err", err)
		return
	}
	n.mu.Lock()
	h := n.handlers[name]
	n.mu.Unlock()
	if h == nil {
		n.c.log.Warn("no handler for named message; dropped", "name", name)
		return
	}
	h(m.Payload)
}

// Hub speaks named messages with many nodes: On receives
// <root>/+/<in>/<name> with the node's id; Send publishes to
// <root>/<node>/<out>/<name>.
type Hub struct {
	c        *Client
	root     string
	out, in  string
	mu       sync.Mutex
	handlers map[string]func(node string, m Message)
}

// NewHub attaches a hub's named messages to c. Call On for every name
// before c.Connect.
func NewHub(c *Client, root, out, in string) *Hub {
	h := &Hub{c: c, root: root, out: out, in: in, handlers: map[string]func(string, Message){}}
	c.Handle(root+"/+/"+in+"/+", h.dispatch)
	return h
}

// On registers the handler for messages named name from any node.
func (h *Hub) On(name string, fn func(node string, m Message)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.handlers[name] = fn
}

// Send publishes data as message name to one node.
func (h *Hub) Send(ctx context.Context, node, name string, data []byte) error {
	if err := errors.Join(ValidName(node), ValidName(name)); err != nil {
		return err
	}
	return h.c.Publish(ctx, h.Topic(node, name), data, false)
}

// SendRetained is Send with the retain flag.
func (h *Hub) SendRetained(ctx context.Context, node, name string, data []byte) error {
	if err := errors.Join(ValidName(node), ValidName(name)); err != nil {
		return err
	}
	return h.c.Publish(ctx, h.Topic(node, name), data, true)
}

// Topic is the topic of message name sent to node.
func (h *Hub) Topic(node, name string) string {
	return h.root + "/" + node + "/" + h.out + "/" + name
}

func (h *Hub) dispatch(m Message) {
	rest, ok := strings.CutPrefix(m.Topic, h.root+"/")
	if !ok {
		return
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return
	}
	node, name := parts[0], parts[2]
	if err := ValidName(name); err != nil {
		h.c.log.Warn("named message with an invalid name dropped", "err", err)
		return
	}
	if err := ValidName(node); err != nil {
		h.c.log.Warn("named message from an invalid node id dropped", "err", err)
		return
	}
	h.mu.Lock()
	fn := h.handlers[name]
	h.mu.Unlock()
	if fn == nil {
		h.c.log.Warn("no handler for named message; dropped", "node", node, "name", name)
		return
	}
	fn(node, m)
}
