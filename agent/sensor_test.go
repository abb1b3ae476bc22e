package agent

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glowcast/glowcast/agent/verify"
	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
	"github.com/glowcast/glowcast/test/kit/weathertest"
)

// setClock is a wall clock the test moves.
type setClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *setClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *setClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSensorReadingScoresForecast: a device's sensor message, through
// Mosquitto with the shipped limits, becomes the observation of its place's
// hour in verification (source sensor), and the +3 h error is the one
// worked out by hand. Malformed readings are logged and dropped.
//
//	13:10 fetch: weathertest.Temp(16:00) = round(4 + 3.5·sin(2π·8/24), 1) = 7.0
//	      is the +3 h promise for 16:00
//	16:02 sensor 99.5 → dropped (outside −90…70), {"temp_c":"warm"} dropped,
//	      then 4.5 °C: the observation of 16:00
//	17:05 fetch: finishes 16:00, +3 h error |7.0 − 4.5| = 2.5, source sensor
func TestSensorReadingScoresForecast(t *testing.T) {
	b := mqtttest.Start(t)
	ws := weathertest.New()
	defer ws.Close()
	clk := &setClock{t: time.Date(2025, 11, 25, 13, 10, 0, 0, time.UTC)}
	ws.SetClock(clk.Now)

	cfg := Default()
	cfg.Broker, cfg.AgentID, cfg.Interval, cfg.RestartGrace = b.URL(), "t", time.Hour, time.Hour
	cfg.StateDir = t.TempDir()
	cfg.Weather.URL = ws.URL
	cfg.Geo.GeolocateURL, cfg.Geo.IPURL = "", ""
	cfg.Devices = map[string]DeviceConfig{"lamp": {Location: "52.52,13.42"}}
	var logs lockedBuffer
	a, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	a.Clock = clk
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	lamp := startSimDevice(t, b.URL(), "lamp")
	waitUntil(t, 10*time.Second, "temps for the lamp", func() bool { return lamp.last() != nil })
	places, err := a.src.verify.Places()
	if err != nil || len(places) != 1 {
		t.Fatalf("verification places: %v, %v; want one", places, err)
	}
	key := places[0]
	hour := time.Date(2025, 11, 25, 16, 0, 0, 0, time.UTC)
	row16 := func() verify.Row {
		rows, err := a.src.verify.Rows(key, hour)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.Hour.Equal(hour) {
				return r
			}
		}
		t.Fatalf("no row for %v in %+v", hour, rows)
		return verify.Row{}
	}
	if r := row16(); r.Pred[0] != 7.0 || !math.IsNaN(r.Obs) {
		t.Fatalf("16:00 before the reading: %+v, want +3 h promise 7.0 and no observation", r)
	}

	clk.set(time.Date(2025, 11, 25, 16, 2, 0, 0, time.UTC))
	send := func(p string) {
		t.Helper()
		if err := lamp.node.SendQoS0(context.Background(), protocol.MsgSensor, []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	send(`{"temp_c": 99.5}`)
	send(`{"temp_c": "warm"}`)
	waitUntil(t, 5*time.Second, "two malformed readings logged", func() bool {
		return strings.Count(logs.String(), "malformed sensor reading dropped") == 2
	})
	send(`{"temp_c": 4.5}`)
	waitUntil(t, 5*time.Second, "the reading filed for 16:00", func() bool {
		r := row16()
		return r.Source == verify.SourceSensor
	})
	if r := row16(); r.Obs != 4.5 {
		t.Fatalf("16:00 observation %v, want the sensor's 4.5 (not a malformed 99.5)", r.Obs)
	}

	// The next fetch after the hour finishes it and scores it.
	clk.set(time.Date(2025, 11, 25, 17, 5, 0, 0, time.UTC))
	if _, err := a.src.Forecast(context.Background(), "lamp", 52.52, 13.42); err != nil {
		t.Fatal(err)
	}
	mfs, err := a.stats.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var count uint64
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != verify.MetricName {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["lead"] == "3h" && labels["source"] == verify.SourceSensor {
				count, sum = m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
			}
		}
	}
	if count != 1 || math.Abs(sum-2.5) > 1e-4 {
		t.Errorf("%s{lead=3h,source=sensor}: count %d sum %v, want 1 and |7.0 − 4.5| = 2.5", verify.MetricName, count, sum)
	}

	// Sensor messages count against the per-device limit (10 a second).
	for range 30 {
		send(`{"temp_c": 5}`)
	}
	waitUntil(t, 5*time.Second, "sensor messages over the limit dropped", func() bool {
		mfs, _ := a.stats.Registry.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "glowcast_agent_device_messages_dropped_total" {
				return mf.GetMetric()[0].GetCounter().GetValue() >= 1
			}
		}
		return false
	})
}
