package sensor

import (
	"context"
	"log/slog"
	"time"

	"github.com/glowcast/glowcast/protocol"
)

// Interval is how often a reading is published; one more goes out at each
// full hour, the moment the agent scores the forecasts for that hour.
const Interval = 5 * time.Minute

// Publish sends one protocol.MsgSensor payload (QoS 0, not retained).
type Publish func(ctx context.Context, payload []byte) error

// Run reads r every Interval and at each full hour and publishes the
// reading until ctx ends. A failed read is logged and reported through
// onErr (for the doctor and status), and the loop goes on: a sensor never
// stops the strip. onErr(nil) marks a good reading.
func Run(ctx context.Context, r Reader, pub Publish, log *slog.Logger, onErr func(error)) {
	if onErr == nil {
		onErr = func(error) {}
	}
	once := func() {
		c, err := r.Read(ctx)
		if err != nil {
			log.Warn("sensor read failed", "sensor", r.String(), "err", err)
			onErr(err)
			return
		}
		onErr(nil)
		if err := pub(ctx, protocol.Sensor{TempC: c}.Marshal()); err != nil {
			log.Warn("sensor reading not published", "err", err)
		}
	}
	once()
	for {
		now := time.Now()
		next := now.Truncate(Interval).Add(Interval)
		if hour := now.Truncate(time.Hour).Add(time.Hour); hour.Before(next) {
			next = hour
		}
		t := time.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			once()
		}
	}
}
