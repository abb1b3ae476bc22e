package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"github.com/glowcast/glowcast/protocol"
)

// retainedPublisher publishes one retained message and waits for the
// broker's ack.
type retainedPublisher func(ctx context.Context, topic string, payload []byte, retained bool) error

// settingsBook holds each device's desired settings (the retained message
// the agent owns) and the settings the device reports. The retained desired
// message is the source of truth: a new agent adopts its version, so
// versions only grow across restarts and migrations.
type settingsBook struct {
	log *slog.Logger
	pub retainedPublisher

	// patch serialises changes, so two requests never publish the same
	// version; message handlers never wait on it.
	patch sync.Mutex

	// settled closes when the retained messages of the first connect are
	// in: a change waits for it, so its version passes the retained one.
	settled     chan struct{}
	settledOnce sync.Once

	mu       sync.Mutex
	desired  map[string]protocol.Desired
	reported map[string]protocol.Reported
	software map[string]string // device software version from ready
}

func newSettingsBook(pub retainedPublisher, log *slog.Logger) *settingsBook {
	return &settingsBook{log: log, pub: pub, settled: make(chan struct{}),
		desired: map[string]protocol.Desired{}, reported: map[string]protocol.Reported{}, software: map[string]string{}}
}

// onDesired takes a retained desired message seen on the broker: ours, or
// one a previous agent left.
func (b *settingsBook) onDesired(id string, payload []byte) {
	d, cleared, err := protocol.ParseDesired(payload)
	if err != nil && !cleared {
		if _, ok := err.(protocol.FieldErrors); !ok {
			b.log.Warn("malformed retained desired settings ignored", "device", id, "err", err)
			return
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.desired[id]
	if cleared {
		cur.Settings = protocol.Settings{}
		b.desired[id] = cur
		return
	}
	if d.Version >= cur.Version {
		b.desired[id] = d
	}
}

// settle marks the retained messages as read.
func (b *settingsBook) settle() { b.settledOnce.Do(func() { close(b.settled) }) }

func (b *settingsBook) onReported(id string, payload []byte) {
	if len(payload) == 0 {
		b.mu.Lock()
		delete(b.reported, id)
		b.mu.Unlock()
		return
	}
	r, err := protocol.ParseReported(payload)
	if err != nil {
		b.log.Warn("malformed settings report dropped", "device", id, "err", err)
		return
	}
	b.mu.Lock()
	b.reported[id] = *r
	b.mu.Unlock()
}

func (b *settingsBook) onReady(id, version string) {
	b.mu.Lock()
	b.software[id] = version
	b.mu.Unlock()
}

// get returns what the book knows of one device.
func (b *settingsBook) get(id string) (d protocol.Desired, r *protocol.Reported, sw string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d = b.desired[id]
	if rep, ok := b.reported[id]; ok {
		r = &rep
	}
	return d, r, b.software[id]
}

// known reports whether the book has heard of id.
func (b *settingsBook) known(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, d := b.desired[id]
	_, r := b.reported[id]
	return d || r
}

// change merges s into the device's desired settings, clears the fields in
// clear, and publishes the result, retained, with the next version. The
// version passes both the one held and the one the device last reported,
// so a device that kept newer settings through an agent's loss of state
// still takes the change.
func (b *settingsBook) change(ctx context.Context, id string, s protocol.Settings, clear []string) (protocol.Desired, error) {
	select {
	case <-b.settled:
	case <-ctx.Done():
		return protocol.Desired{}, fmt.Errorf("the agent has not yet read the broker's retained settings (is it connected?): %w", ctx.Err())
	}
	b.patch.Lock()
	defer b.patch.Unlock()
	b.mu.Lock()
	d := b.desired[id]
	if r, ok := b.reported[id]; ok && r.Version > d.Version {
		d.Version = r.Version
	}
	b.mu.Unlock()
	d.Settings.Clear(clear...)
	d.Settings = s.Over(d.Settings)
	d.Version++
	payload, err := json.Marshal(d)
	if err != nil {
		return protocol.Desired{}, err
	}
	if err := b.pub(ctx, protocol.DeviceTopic(id, protocol.SideAgent, protocol.MsgSettings), payload, true); err != nil {
		return protocol.Desired{}, fmt.Errorf("publishing desired settings: %w", err)
	}
	b.mu.Lock()
	if d.Version >= b.desired[id].Version {
		b.desired[id] = d
	}
	b.mu.Unlock()
	return d, nil
}
