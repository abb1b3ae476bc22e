// Package mqttwatch is the test kit's one MQTT observer: a plain paho
// client beside the programs under test that records what it sees, for the
// suites and the benchmark; and ReadRetained, the benchmarks' timed read of
// retained state by an mqttmsg.Client. It is apart from mqtttest because mqttmsg's own
// tests start brokers with mqtttest, and this package uses mqttmsg.
package mqttwatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/glowcast/glowcast/mqttmsg"
)

// Message is one message a Watcher saw.
type Message struct {
	Topic    string
	Payload  []byte
	Retained bool
	// At is when it arrived here: the watcher's own clock, never a
	// program's.
	At time.Time
}

// Watcher is the test kit's one MQTT observer: a plain paho client beside
// the programs under test that records every message on its filters, in
// arrival order. It reconnects and subscribes again by itself, so it
// survives a broker restart.
type Watcher struct {
	c    mqtt.Client
	mu   sync.Mutex
	msgs []Message
	last map[string][]byte
}

// Start connects to brokerURL as clientID and subscribes to filters (QoS 1).
// It returns once the first subscription is in place.
func Start(brokerURL, clientID string, filters ...string) (*Watcher, error) {
	if len(filters) == 0 {
		return nil, errors.New("mqttwatch: watch needs at least one filter")
	}
	w := &Watcher{last: map[string][]byte{}}
	subs := map[string]byte{}
	for _, f := range filters {
		subs[f] = 1
	}
	subscribed := make(chan error, 1)
	opts := mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID(clientID).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond).
		SetMaxReconnectInterval(250 * time.Millisecond).SetCleanSession(true).SetOrderMatters(true)
	opts.SetOnConnectHandler(func(c mqtt.Client) {
		// On paho's connect goroutine: do not wait here, say when done.
		tok := c.SubscribeMultiple(subs, w.onMsg)
		go func() {
			tok.Wait()
			select {
			case subscribed <- tok.Error():
			default:
			}
		}()
	})
	w.c = mqtt.NewClient(opts)
	w.c.Connect()
	select {
	case err := <-subscribed:
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("mqttwatch: watcher subscribe: %w", err)
		}
	case <-time.After(10 * time.Second):
		w.Close()
		return nil, fmt.Errorf("mqttwatch: watcher not subscribed to %s within 10s", brokerURL)
	}
	return w, nil
}

func (w *Watcher) onMsg(_ mqtt.Client, m mqtt.Message) {
	msg := Message{Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...), Retained: m.Retained(), At: time.Now()}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
	w.last[msg.Topic] = msg.Payload
}

// Last is the newest payload seen on topic, retained or live; nil if none.
func (w *Watcher) Last(topic string) []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last[topic]
}

// Messages returns the messages seen on topics matching filter, oldest
// first.
func (w *Watcher) Messages(filter string) []Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Message
	for _, m := range w.msgs {
		if mqttmsg.Match(filter, m.Topic) {
			out = append(out, m)
		}
	}
	return out
}

// Arrivals returns when live (not retained) messages arrived on topics
// matching filter, oldest first: a retained one is only a replay.
func (w *Watcher) Arrivals(filter string) []time.Time {
	var out []time.Time
	for _, m := range w.Messages(filter) {
		if !m.Retained {
			out = append(out, m.At)
		}
	}
	return out
}

// Publish sends payload at QoS 1 and waits for the broker's ack.
func (w *Watcher) Publish(topic string, payload []byte, retained bool) error {
	tok := w.c.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(5 * time.Second) {
		return fmt.Errorf("mqttwatch: publish %s: no ack within 5s", topic)
	}
	return tok.Error()
}

// Close disconnects.
func (w *Watcher) Close() { w.c.Disconnect(50) }

// ReadRetained times a fresh mqttmsg.Client, as a restarting agent
// connects: from Connect on o until want messages arrived on filters
// (QoS 1, handlers that only count), or an error after within. It closes
// the client.
func ReadRetained(ctx context.Context, o mqttmsg.Options, filters []string, want int64, within time.Duration) (time.Duration, error) {
	c, err := mqttmsg.New(o)
	if err != nil {
		return 0, err
	}
	defer c.Close(ctx)
	var seen atomic.Int64
	done := make(chan struct{})
	count := func(mqttmsg.Message) {
		if seen.Add(1) == want {
			close(done)
		}
	}
	for _, f := range filters {
		c.Handle(f, count)
	}
	start := time.Now()
	c.Connect()
	select {
	case <-done:
		return time.Since(start), nil
	case <-time.After(within):
		return 0, fmt.Errorf("mqttwatch: %d of %d retained messages after %v", seen.Load(), want, within)
	}
}

// PublishRetained connects an mqttmsg.Client with o and publishes msgs
// (topic → payload) retained at QoS 1, many at once, for a benchmark's
// retained state; it returns once the broker acknowledged every one.
func PublishRetained(ctx context.Context, o mqttmsg.Options, msgs map[string][]byte) error {
	pub, err := mqttmsg.New(o)
	if err != nil {
		return err
	}
	defer pub.Close(ctx)
	pub.Connect()
	if err := pub.WaitUp(ctx, 1); err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	sem := make(chan struct{}, 64)
	for topic, payload := range msgs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := pub.Publish(ctx, topic, payload, true); err != nil {
				select {
				case errs <- fmt.Errorf("mqttwatch: publishing %s: %w", topic, err):
				default:
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}
