package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/glowcast/glowcast/device"
	"github.com/glowcast/glowcast/ledstrip/backend"
	"github.com/glowcast/glowcast/ledstrip/ledstriptest"
	"github.com/glowcast/glowcast/protocol"
)

// lightTemps is a valid temps message whose every hour reads v, so each
// new v changes every LED.
func lightTemps(now time.Time, v float64) []byte {
	h := make(protocol.TempList, 48)
	for i := range h {
		h[i] = v
	}
	t := protocol.Temps{
		TempsC: protocol.TempList{v, v, v, v, v}, OffsetsH: protocol.Offsets,
		IssuedAt: now.UTC(), ValidUntil: now.Add(time.Hour).UTC(), Location: protocol.Location{Lat: 52.52, Lon: 13.4},
		Hourly: protocol.Hourly{Start: now.UTC().Truncate(time.Hour), TempsC: h},
	}
	b, _ := json.Marshal(t)
	return b
}

// MessageToLight runs a device on a recording SPI port with fade off and
// returns, for n temps messages published to it through the broker, the
// time from the publish call to the start of the SPI transfer that shows
// them. The path includes one broker hop over loopback.
func MessageToLight(ctx context.Context, brokerURL string, n int) ([]time.Duration, error) {
	cfg := device.Default()
	cfg.Broker, cfg.DeviceID, cfg.LED = brokerURL, "light-bench", "none"
	opts := cfg.StripOptions()
	opts.Fade = 0
	port := &ledstriptest.Port{}
	strip, err := backend.OpenSPI(port, opts)
	if err != nil {
		return nil, fmt.Errorf("bench: strip on the recording SPI port: %w", err)
	}
	d, err := device.New(cfg, strip, slog.New(slog.DiscardHandler))
	if err != nil {
		strip.Close()
		return nil, err
	}
	dctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(dctx) }()
	defer func() { stop(); <-done }()

	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID("light-bench-agent"))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("bench: publisher connect: %v", tok.Error())
	}
	defer c.Disconnect(50)
	if err := poll(ctx, 10*time.Second, time.Millisecond, d.Connected); err != nil {
		return nil, fmt.Errorf("bench: device never connected: %w", err)
	}
	topic := protocol.DeviceTopic(cfg.DeviceID, protocol.SideAgent, protocol.MsgTemps)
	out := make([]time.Duration, 0, n)
	for i := range n {
		payload := lightTemps(time.Now(), float64(i%40)-10)
		before := len(port.Times())
		t0 := time.Now()
		tok := c.Publish(topic, 1, false, payload)
		var at time.Time
		err := poll(ctx, 5*time.Second, 20*time.Microsecond, func() bool {
			ts := port.Times()
			if len(ts) > before {
				at = ts[before]
				return true
			}
			return false
		})
		tok.WaitTimeout(5 * time.Second)
		if err != nil {
			return nil, fmt.Errorf("bench: message %d never reached the strip: %w", i, err)
		}
		out = append(out, at.Sub(t0))
		// Let the strip's frame gap pass, so each message is its own frame.
		time.Sleep(2 * backend.MinFrameGap)
	}
	return out, nil
}
