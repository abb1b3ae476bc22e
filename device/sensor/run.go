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

// Publish sends one sensor payload (the device sends it at QoS 0, not
// retained).
type Publish func(ctx context.Context, payload []byte) error

// Run reads r at once, then at every 5-minute mark and each full hour of
// the wall clock, and publishes each reading until ctx ends. A failed read
// is logged and reported through onErr (for the daemon's status), and the
// loop goes on: a sensor never stops the strip. onErr(nil) marks a good
// reading. The schedule uses the time package, so testing/synctest drives
// it.
func Run(ctx context.Context, r Reader, pub Publish, log *slog.Logger, onErr func(error)) {
	if onErr == nil {
		onErr = func(error) {}
	}
	failing := false
	once := func() {
		c, err := r.Read(ctx)
		var b []byte
		if err == nil {
			// Bounds are the protocol's: a reading the agent would drop
			// is a fault here too.
			b, err = protocol.EncodeSensor(c)
		}
		if err != nil {
			if !failing {
				log.Warn("sensor read failed; the strip goes on, retrying every 5 minutes", "sensor", r.String(), "err", err)
			} else {
				log.Debug("sensor read failed again", "sensor", r.String(), "err", err)
			}
			failing = true
			onErr(err)
			return
		}
		if failing {
			log.Info("sensor reads again", "sensor", r.String(), "temp_c", c)
		}
		failing = false
		onErr(nil)
		if err := pub(ctx, b); err != nil && ctx.Err() == nil {
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
