package agent

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/glowcast/glowcast/protocol"
)

// sensorReading is one thermometer reading at a device, stamped with the
// agent's own clock when it arrived.
type sensorReading struct {
	at    time.Time
	tempC float64
}

// sensorInbox carries readings from the MQTT delivery goroutine to the one
// worker that files them in verification: filing can write a file, and a
// handler must never wait on a disk. It keeps the newest reading per
// device, so its memory is bounded by the fleet and a burst at the full
// hour costs one filing per device.
type sensorInbox struct {
	mu      sync.Mutex
	pending map[string]sensorReading
	wake    chan struct{}
}

func newSensorInbox() *sensorInbox {
	return &sensorInbox{pending: map[string]sensorReading{}, wake: make(chan struct{}, 1)}
}

// put never blocks.
func (q *sensorInbox) put(device string, r sensorReading) {
	q.mu.Lock()
	q.pending[device] = r
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *sensorInbox) take() map[string]sensorReading {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		return nil
	}
	out := q.pending
	q.pending = map[string]sensorReading{}
	return out
}

// run files readings until ctx ends. where tells a device's location (the
// one the agent fetches for it); file records a reading for that place.
func (q *sensorInbox) run(ctx context.Context, log *slog.Logger,
	where func(device string) *protocol.Location,
	file func(lat, lon float64, at time.Time, tempC float64) error) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		}
		for id, r := range q.take() {
			loc := where(id)
			if loc == nil {
				// No forecast fetched for it yet: nothing to score.
				log.Debug("sensor reading from a device without a location ignored", "device", id)
				continue
			}
			if err := file(loc.Lat, loc.Lon, r.at, r.tempC); err != nil {
				log.Warn("sensor reading not filed in verification", "device", id, "err", err)
			}
		}
	}
}

// location is the location the agent last fetched a forecast for device
// at, nil before the first. It does no I/O.
func (f *fleet) location(id string) *protocol.Location {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.devices[id]
	if d == nil || d.saved == nil || d.saved.Location == nil {
		return nil
	}
	l := *d.saved.Location
	return &l
}
