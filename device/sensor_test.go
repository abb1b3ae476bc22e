package device

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/glowcast/glowcast/device/sensor"
	"github.com/glowcast/glowcast/ledstrip"
	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
)

// wireMsg is one message as the broker delivered it.
type wireMsg struct {
	payload  string
	qos      byte
	retained bool
}

var sniffers int

// sniff subscribes a plain paho client to topic and records what arrives,
// with the QoS and retain flag the broker delivered.
func sniff(t *testing.T, broker, topic string) (func() []wireMsg, func()) {
	t.Helper()
	var mu sync.Mutex
	var got []wireMsg
	sniffers++
	o := mqtt.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("sniffer-%d", sniffers)).SetAutoReconnect(false)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("sniffer connect: %v", tok.Error())
	}
	tok := c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
		mu.Lock()
		got = append(got, wireMsg{string(m.Payload()), m.Qos(), m.Retained()})
		mu.Unlock()
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("sniffer subscribe: %v", tok.Error())
	}
	return func() []wireMsg {
			mu.Lock()
			defer mu.Unlock()
			return append([]wireMsg(nil), got...)
		}, func() {
			c.Disconnect(100)
		}
}

// fakeW1 is a sysfs tree with one DS18B20 reading milli m°C.
func fakeW1(t *testing.T, milli string) (root, file string) {
	t.Helper()
	root = t.TempDir()
	dir := filepath.Join(root, sensor.W1Dir, "28-0316a2794f11")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(dir, "temperature")
	if err := os.WriteFile(file, []byte(milli), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, file
}

// TestSensorOnTheWire: with --sensor ds18b20 the device publishes the
// reading of a faked 1-wire tree on glowcast/v1/<device>/device/sensor, at
// QoS 0 and not retained, through the shipped Mosquitto config.
func TestSensorOnTheWire(t *testing.T) {
	b := mqtttest.Start(t)
	topic := protocol.DeviceTopic("kitchen", protocol.SideDevice, protocol.MsgSensor)
	got, stopSniff := sniff(t, b.URL(), topic)
	defer stopSniff()
	root, _ := fakeW1(t, "12345\n")

	cfg := Default()
	cfg.Broker, cfg.DeviceID, cfg.Sensor = b.URL(), "kitchen", "ds18b20"
	d, err := New(cfg, &recStrip{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := sensor.ParseSpec(cfg.Sensor)
	d.Sensor = &sensor.Reopening{Spec: spec, Opener: sensor.Opener{Root: root}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	// The first reading goes out once connected; the next is minutes away.
	waitFor(t, "a sensor reading on the wire", func() bool { return len(got()) > 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	msgs := got()
	if want := (wireMsg{`{"temp_c":12.3}`, 0, false}); msgs[0] != want {
		t.Errorf("on %s got %+v, want %+v", topic, msgs[0], want)
	}

	// Not retained: a late subscriber gets nothing.
	late, stopLate := sniff(t, b.URL(), topic)
	defer stopLate()
	time.Sleep(300 * time.Millisecond)
	if l := late(); len(l) != 0 {
		t.Errorf("a late subscriber got %+v, want nothing retained", l)
	}
}

// TestFailingSensorNeverStopsTheStrip: a sensor whose reads fail is logged
// once and the strip still shows the agent's temps.
func TestFailingSensorNeverStopsTheStrip(t *testing.T) {
	b := mqtttest.Start(t)
	payload := func() []byte { tp := temps(time.Now(), time.Hour); out, _ := json.Marshal(tp); return out }
	startFakeAgent(t, b.URL(), payload)
	root, _ := fakeW1(t, "\n") // CRC error: w1_therm leaves the file empty
	var logBuf syncBuffer
	cfg := Default()
	cfg.Broker, cfg.DeviceID, cfg.Sensor = b.URL(), "kitchen", "ds18b20"
	d, err := New(cfg, &recStrip{}, slog.New(slog.NewTextHandler(&logBuf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	strip := &recStrip{}
	d.strip = strip
	spec, _ := sensor.ParseSpec(cfg.Sensor)
	d.Sensor = &sensor.Reopening{Spec: spec, Opener: sensor.Opener{Root: root}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	waitFor(t, "fresh temps", func() bool { return strip.last().State == ledstrip.StateFresh })
	waitFor(t, "sensor failure logged", func() bool { return strings.Contains(logBuf.String(), "sensor read failed") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logBuf.String(), "CRC") {
		t.Errorf("log does not name the cause:\n%s", logBuf.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
