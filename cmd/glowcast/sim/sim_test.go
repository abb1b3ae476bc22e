package sim

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"

	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// watcher records the newest payload per topic under glowcast/v1/#.
type watcher struct {
	c    mqtt.Client
	mu   sync.Mutex
	last map[string][]byte
}

func watch(t *testing.T, broker string) *watcher {
	t.Helper()
	w := &watcher{last: map[string][]byte{}}
	w.c = mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("sim-test-watcher"))
	if tok := w.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher connect: %v", tok.Error())
	}
	tok := w.c.Subscribe(protocol.Prefix+"/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		w.mu.Lock()
		w.last[m.Topic()] = append([]byte(nil), m.Payload()...)
		w.mu.Unlock()
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { w.c.Disconnect(50) })
	return w
}

func (w *watcher) get(topic string) []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last[topic]
}

func (w *watcher) publish(t *testing.T, topic string, b []byte) {
	t.Helper()
	if tok := w.c.Publish(topic, 1, false, b); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func validTemps(now time.Time) []byte {
	t := protocol.Temps{
		TempsC: protocol.TempList{1, 2, 3, 4, 5}, OffsetsH: protocol.Offsets,
		IssuedAt: now.UTC(), ValidUntil: now.Add(time.Hour).UTC(), Location: Place(0),
		Hourly: protocol.Hourly{Start: now.UTC().Truncate(time.Hour), TempsC: make(protocol.TempList, 24)},
	}
	b, _ := json.Marshal(t)
	return b
}

func TestFleetSpeaksTheDeviceProtocol(t *testing.T) {
	b := mqtttest.Start(t)
	w := watch(t, b.URL())
	cfg := Default()
	cfg.Broker, cfg.Devices, cfg.Places, cfg.Prefix = b.URL(), 40, 4, "simtest"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := f.Devs[5]
	statusTopic := protocol.DeviceTopic(d.ID, protocol.SideDevice, protocol.MsgStatus)
	readyTopic := protocol.DeviceTopic(d.ID, protocol.SideDevice, protocol.MsgReady)
	mqtttest.WaitFor(t, 5*time.Second, "retained ready of every device", func() bool {
		for _, d := range f.Devs {
			if w.get(protocol.DeviceTopic(d.ID, protocol.SideDevice, protocol.MsgReady)) == nil {
				return false
			}
		}
		return true
	})
	r, err := protocol.ParseReady(w.get(readyTopic))
	if err != nil {
		t.Fatal(err)
	}
	if r.BootID != d.BootID || r.Location == nil || *r.Location != Place(5%4) {
		t.Errorf("ready of %s: got %+v, want boot %s at %+v", d.ID, r, d.BootID, Place(1))
	}

	t.Run("temps are counted, invalid ones apart", func(t *testing.T) {
		topic := protocol.DeviceTopic(d.ID, protocol.SideAgent, protocol.MsgTemps)
		before := time.Now()
		w.publish(t, topic, validTemps(time.Now()))
		w.publish(t, topic, []byte(`{"temps_c":[1]}`))
		mqtttest.WaitFor(t, 5*time.Second, "temps counted", func() bool { return f.Stats().BadTemps == 1 })
		if got := d.Temps(); got != 1 {
			t.Errorf("valid temps: got %d, want 1", got)
		}
		if lt := d.LastTemps(); lt.Before(before) {
			t.Errorf("last temps at %v, want after %v", lt, before)
		}
		if s := f.Stats(); s.WithTemps != 1 {
			t.Errorf("devices with temps: got %d, want 1", s.WithTemps)
		}
		if ok, _ := f.AllTempsSince(before); ok {
			t.Errorf("AllTempsSince: got true with one device of %d served, want false", len(f.Devs))
		}
	})

	t.Run("rebirth re-announces", func(t *testing.T) {
		w.mu.Lock()
		delete(w.last, readyTopic)
		w.mu.Unlock()
		w.publish(t, protocol.DeviceTopic(d.ID, protocol.SideAgent, protocol.MsgRebirth), []byte(`{}`))
		mqtttest.WaitFor(t, 5*time.Second, "ready again after rebirth", func() bool { return w.get(readyTopic) != nil })
	})

	t.Run("kill leaves the will", func(t *testing.T) {
		f.Kill()
		mqtttest.WaitFor(t, 5*time.Second, "offline will", func() bool {
			s, err := protocol.ParseDeviceStatus(w.get(statusTopic))
			return err == nil && !s.Online && s.BootID == d.BootID
		})
	})
}

func TestCloseSaysOffline(t *testing.T) {
	b := mqtttest.Start(t)
	w := watch(t, b.URL())
	cfg := Default()
	cfg.Broker, cfg.Devices = b.URL(), 3
	f, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, d := range f.Devs {
		topic := protocol.DeviceTopic(d.ID, protocol.SideDevice, protocol.MsgStatus)
		mqtttest.WaitFor(t, 5*time.Second, "offline status of "+d.ID, func() bool {
			s, err := protocol.ParseDeviceStatus(w.get(topic))
			return err == nil && !s.Online
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"default", func(*Config) {}, ""},
		{"no devices", func(c *Config) { c.Devices = 0 }, "--devices"},
		{"tls broker", func(c *Config) { c.Broker = "mqtts://x:8883" }, "--broker"},
		{"bad prefix", func(c *Config) { c.Prefix = "a/b" }, "--prefix"},
		{"short keepalive", func(c *Config) { c.KeepAlive = time.Millisecond }, "--keepalive"},
		{"negative retained-only", func(c *Config) { c.Retained = -1 }, "--retained-only"},
		{"no publishers", func(c *Config) { c.Publishers = 0 }, "--publishers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.edit(&c)
			err := c.Validate()
			if tc.want == "" && err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func TestPlacesAreDistinctCells(t *testing.T) {
	seen := map[protocol.Location]int{}
	for p := range 100 {
		l := Place(p)
		if err := l.Validate(); err != nil {
			t.Fatalf("place %d: %v", p, err)
		}
		if q, dup := seen[l]; dup {
			t.Fatalf("places %d and %d: got the same location %+v, want distinct", q, p, l)
		}
		seen[l] = p
	}
}

// TestRetainedOnlyDevices: --retained-only devices exist only as retained
// state published by a few connections, which receive their messages.
func TestRetainedOnlyDevices(t *testing.T) {
	b := mqtttest.Start(t)
	w := watch(t, b.URL())
	cfg := Default()
	cfg.Broker, cfg.Devices, cfg.Retained, cfg.Publishers, cfg.Places, cfg.Prefix = b.URL(), 5, 25, 2, 3, "simret"
	// A retained temps of an earlier run is no temps for this fleet.
	stale := ID(cfg.Prefix, 20)
	if tok := w.c.Publish(protocol.DeviceTopic(stale, protocol.SideAgent, protocol.MsgTemps), 1, true, validTemps(time.Now())); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish stale temps: %v", tok.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Kill()
	if s := f.Stats(); s.Devices != 30 || s.Live != 5 || s.Retained != 25 || s.Down != 0 {
		t.Fatalf("stats: got %+v, want 30 devices, 5 live, 25 retained-only, none down", s)
	}
	for i, d := range f.All() {
		if got, want := d.Live(), i < 5; got != want {
			t.Errorf("device %d: Live() got %v, want %v", i, got, want)
		}
	}
	// Start returned after every publish was acknowledged, so the state
	// is at the broker; the watcher sees it moments later.
	mqtttest.WaitFor(t, 5*time.Second, "retained online status and ready of every device", func() bool {
		for _, d := range f.All() {
			s, err := protocol.ParseDeviceStatus(w.get(protocol.DeviceTopic(d.ID, protocol.SideDevice, protocol.MsgStatus)))
			if err != nil || !s.Online || s.BootID != d.BootID {
				return false
			}
			r, err := protocol.ParseReady(w.get(protocol.DeviceTopic(d.ID, protocol.SideDevice, protocol.MsgReady)))
			if err != nil || r.BootID != d.BootID || r.Location == nil || *r.Location != *d.Location {
				return false
			}
		}
		return true
	})
	if n := f.All()[20].Temps(); n != 0 {
		t.Errorf("device 20 counted %d temps from a retained copy of an earlier run, want 0", n)
	}

	t.Run("temps to every device are counted", func(t *testing.T) {
		before := time.Now()
		for _, d := range f.All() {
			w.publish(t, protocol.DeviceTopic(d.ID, protocol.SideAgent, protocol.MsgTemps), validTemps(time.Now()))
		}
		w.publish(t, protocol.DeviceTopic(f.All()[25].ID, protocol.SideAgent, protocol.MsgTemps), []byte(`{"temps_c":[1]}`))
		mqtttest.WaitFor(t, 5*time.Second, "temps of all 30", func() bool { ok, _ := f.AllTempsSince(before); return ok })
		mqtttest.WaitFor(t, 5*time.Second, "the invalid one counted apart", func() bool { return f.Stats().BadTemps == 1 })
		if s := f.Stats(); s.WithTemps != 30 || s.Temps != 30 {
			t.Errorf("stats: got %+v, want 30 devices with one valid temps each", s)
		}
	})

	t.Run("rebirth re-announces a retained-only device", func(t *testing.T) {
		d := f.All()[17]
		topic := protocol.DeviceTopic(d.ID, protocol.SideDevice, protocol.MsgReady)
		w.mu.Lock()
		delete(w.last, topic)
		w.mu.Unlock()
		w.publish(t, protocol.DeviceTopic(d.ID, protocol.SideAgent, protocol.MsgRebirth), []byte(`{}`))
		mqtttest.WaitFor(t, 5*time.Second, "ready again after rebirth", func() bool { return w.get(topic) != nil })
	})

	t.Run("close says offline for every device", func(t *testing.T) {
		f.Close()
		mqtttest.WaitFor(t, 5*time.Second, "offline statuses", func() bool {
			for _, d := range f.All() {
				s, err := protocol.ParseDeviceStatus(w.get(protocol.DeviceTopic(d.ID, protocol.SideDevice, protocol.MsgStatus)))
				if err != nil || s.Online {
					return false
				}
			}
			return true
		})
	})
}

// TestConnectionsBeyondFileLimit: a fleet whose connections cannot fit
// under the open-file limit is refused before any connect, naming the flags
// that make it fit.
func TestConnectionsBeyondFileLimit(t *testing.T) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	cfg.Broker = "tcp://127.0.0.1:1" // never dialled
	cfg.Devices = int(rl.Cur) + 10
	_, err := Start(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "--retained-only") {
		t.Fatalf("%d devices with connections under a limit of %d: got %v, want an error naming --retained-only", cfg.Devices, rl.Cur, err)
	}
	cfg.Devices, cfg.Retained = 10, int(rl.Cur)
	if err := checkFileLimit(cfg); err != nil {
		t.Errorf("10 live, the rest retained: got %v, want it to fit", err)
	}
}

// Retained-only devices exist as an online status and a ready on the
// broker, numbered after the live ones, without connections: a fresh
// wildcard subscriber (an agent after a restart) sees them all.
func TestRetainedOnlyDevicesAreRetainedState(t *testing.T) {
	b := mqtttest.Start(t)
	cfg := Default()
	cfg.Broker, cfg.Devices, cfg.Retained, cfg.Prefix = b.URL(), 2, 500, "ro"
	f, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := len(f.Devs); got != 2 {
		t.Fatalf("live devices: got %d, want 2", got)
	}
	w := watch(t, b.URL())
	ids := []string{f.Devs[0].ID, f.Devs[1].ID}
	for j := range cfg.Retained {
		ids = append(ids, f.RetainedID(j))
	}
	if ids[2] != ID("ro", 2) || ids[len(ids)-1] != ID("ro", 501) {
		t.Fatalf("retained-only ids: got %s … %s, want %s … %s", ids[2], ids[len(ids)-1], ID("ro", 2), ID("ro", 501))
	}
	mqtttest.WaitFor(t, 10*time.Second, "every device's retained status and ready", func() bool {
		for _, id := range ids {
			st, err := protocol.ParseDeviceStatus(w.get(protocol.DeviceTopic(id, protocol.SideDevice, protocol.MsgStatus)))
			if err != nil || !st.Online {
				return false
			}
			r, err := protocol.ParseReady(w.get(protocol.DeviceTopic(id, protocol.SideDevice, protocol.MsgReady)))
			if err != nil || r.BootID != st.BootID || r.Location == nil {
				return false
			}
		}
		return true
	})
}

func TestValidateRetainedOnly(t *testing.T) {
	cfg := Default()
	cfg.Retained = -1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--retained-only") {
		t.Errorf("negative --retained-only: got %v, want an error naming the flag", err)
	}
}
