package sensor

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"time"
)

// Interval is how often a reading is published; one more goes out at each
// full hour, the moment the agent scores the forecasts for that hour.
const Interval = 5 * time.Minute

// Payload is the message on glowcast/v1/<device>/device/sensor.
type Payload struct {
	TempC float64 `json:"temp_c"`
}

// Encode returns the payload for a reading, rounded to 0.1 °C: no
// thermometer at a window is finer.
func Encode(c float64) []byte {
	b, _ := json.Marshal(Payload{TempC: math.Round(c*10) / 10})
	return b
}

// Publish sends one payload (QoS 0, not retained).
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
		if err := pub(ctx, Encode(c)); err != nil {
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
