package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glowcast/glowcast/ledstrip/backend"
	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
	"github.com/glowcast/glowcast/test/kit/proc"
	"github.com/glowcast/glowcast/test/kit/weathertest"
)

// fresh waits until the device shows fresh temps equal to the local weather.
func waitFresh(t *testing.T, jsonl string, timeout time.Duration) backend.Record {
	t.Helper()
	var got backend.Record
	mqtttest.WaitFor(t, timeout, "a fresh frame with the forecast's temps", func() bool {
		f, ok := lastFrame(t, jsonl)
		got = f
		return ok && f.State == "fresh" && weathertest.SameTemps(f.Temps, weathertest.Shown(time.Now()))
	})
	return got
}

func TestEndToEnd(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	jsonl := filepath.Join(dir, "strip.jsonl")
	ag := start(t, "glowcast-agent", e.agentArgs(filepath.Join(dir, "agent"))...)
	start(t, "glowcastd", e.deviceArgs("kitchen", jsonl, filepath.Join(dir, "device"))...)

	f := waitFresh(t, jsonl, 10*time.Second)
	if len(f.RGB) != 5 {
		t.Fatalf("rgb: got %d colours, want 5", len(f.RGB))
	}
	frames := readFrames(t, jsonl)
	if frames[0].State != "starting" && frames[0].State != "waiting" {
		t.Errorf("first frame state: got %q, want starting or waiting", frames[0].State)
	}

	// The retained topics carry the fixed protocol.
	var st protocol.DeviceStatus
	if err := json.Unmarshal(e.watch.Last("glowcast/v1/kitchen/device/status"), &st); err != nil || !st.Online || st.BootID == "" {
		t.Fatalf("device status: %+v, %v", st, err)
	}
	var rd protocol.Ready
	if err := json.Unmarshal(e.watch.Last("glowcast/v1/kitchen/device/ready"), &rd); err != nil || rd.BootID != st.BootID || rd.LEDs != 5 {
		t.Fatalf("ready: %+v (status boot %q), %v", rd, st.BootID, err)
	}
	tp, err := protocol.ParseTemps(e.watch.Last("glowcast/v1/kitchen/agent/temps"))
	if err != nil {
		t.Fatalf("temps: %v", err)
	}
	if tp.Location.Lat != lat || tp.Location.Lon != lon {
		t.Errorf("temps location: got %+v, want %v,%v", tp.Location, lat, lon)
	}
	if !tp.Hourly.Start.Equal(time.Now().UTC().Truncate(time.Hour)) || len(tp.Hourly.TempsC) < 24 {
		t.Errorf("hourly: start %v, %d values", tp.Hourly.Start, len(tp.Hourly.TempsC))
	}
	var as protocol.AgentStatus
	if err := json.Unmarshal(e.watch.Last("glowcast/v1/agent/main/status"), &as); err != nil || !as.Online {
		t.Fatalf("agent status: %+v, %v", as, err)
	}

	// Cycles continue every interval: count publications over 3 intervals.
	n0 := len(e.tempsTimes("kitchen"))
	time.Sleep(3*interval + interval/2)
	if got := len(e.tempsTimes("kitchen")) - n0; got < 3 || got > 4 {
		t.Errorf("temps in 3.5 intervals: got %d, want 3 or 4", got)
	}
	addr := agentHTTP(t, ag)
	if got := metric(t, addr, "glowcast_agent_cycles_running"); got != 1 {
		t.Errorf("cycles running: got %v, want 1", got)
	}
	if got := metric(t, addr, "glowcast_agent_parallel_cycle_violations_total"); got != 0 {
		t.Errorf("parallel cycle violations: got %v", got)
	}
}

// The reason glowcast exists: the agent is killed and comes back, the
// device says nothing, and its cycle resumes at once — not after the
// restart timer — and never twice.
func TestAgentMigration(t *testing.T) {
	for _, withState := range []bool{true, false} {
		t.Run(fmt.Sprintf("state_dir=%v", withState), func(t *testing.T) {
			e := newEnv(t)
			dir := t.TempDir()
			jsonl := filepath.Join(dir, "strip.jsonl")
			state := ""
			if withState {
				state = filepath.Join(dir, "agent")
			}
			ag := start(t, "glowcast-agent", e.agentArgs(state)...)
			start(t, "glowcastd", e.deviceArgs("kitchen", jsonl, filepath.Join(dir, "device"))...)
			waitFresh(t, jsonl, 10*time.Second)
			mqtttest.WaitFor(t, 3*interval, "a second cycle", func() bool { return len(e.tempsTimes("kitchen")) >= 2 })

			for round := range 3 {
				time.Sleep(time.Duration(round+1) * interval / 3) // kill at different phases
				before := e.tempsTimes("kitchen")
				lastBefore := before[len(before)-1]
				ag.Kill()
				restart(t, ag)
				// Next temps within one interval of the last cycle, plus
				// a little: the restart timer is 60s and cannot be it.
				mqtttest.WaitFor(t, 2*interval+2*time.Second, "temps after the agent restart", func() bool {
					return len(e.tempsTimes("kitchen")) > len(before)
				})
				next := e.tempsTimes("kitchen")[len(before)]
				if gap := next.Sub(lastBefore); gap > interval+1500*time.Millisecond {
					t.Errorf("round %d: next temps %v after the last one, want within an interval (%v) plus ~1s; the restarted agent's log:\n%s", round, gap, interval, proc.Tail(ag.Log(), 30))
				}
				addr := agentHTTP(t, ag)
				if got := metric(t, addr, `glowcast_agent_cycle_starts_total{path="fast"}`); got != 1 {
					t.Errorf("round %d: fast-path resumes: got %v, want 1\n%s", round, got, ag.Log())
				}
			}
			// Never two cycles: over 4 intervals, at most 5 publications.
			n0 := len(e.tempsTimes("kitchen"))
			time.Sleep(4 * interval)
			if got := len(e.tempsTimes("kitchen")) - n0; got > 5 || got < 3 {
				t.Errorf("temps in 4 intervals after migrations: got %d, want 4±1", got)
			}
			if f, _ := lastFrame(t, jsonl); f.State != "fresh" {
				t.Errorf("device state after migrations: %q, want fresh", f.State)
			}
		})
	}
}

func TestDeviceRestartShowsFreshTempsAtOnce(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	jsonl := filepath.Join(dir, "strip.jsonl")
	start(t, "glowcast-agent", e.agentArgs(filepath.Join(dir, "agent"))...)
	dev := start(t, "glowcastd", e.deviceArgs("kitchen", jsonl, filepath.Join(dir, "device"))...)
	waitFresh(t, jsonl, 10*time.Second)

	dev.Kill()
	n := len(readFrames(t, jsonl))
	t0 := time.Now()
	restart(t, dev)
	var after []backend.Record
	mqtttest.WaitFor(t, 3*time.Second, "a fresh frame from the restarted device", func() bool {
		after = readFrames(t, jsonl)[n:]
		return len(after) > 0 && after[len(after)-1].State == "fresh" && weathertest.SameTemps(after[len(after)-1].Temps, weathertest.Shown(time.Now()))
	})
	took := time.Since(t0)
	if after[0].State != "stale" || !weathertest.SameTemps(after[0].Temps, weathertest.Shown(time.Now())) {
		t.Errorf("first frame after restart: %+v, want the saved temps shown as stale", after[0])
	}
	t.Logf("fresh temps %v after restart", took)
}

func TestBrokerRestart(t *testing.T) {
	for _, persist := range []bool{true, false} {
		t.Run(fmt.Sprintf("persistence=%v", persist), func(t *testing.T) {
			var opts []mqtttest.Option
			if persist {
				opts = append(opts, mqtttest.WithPersistence())
			}
			e := newEnv(t, opts...)
			dir := t.TempDir()
			jsonl := filepath.Join(dir, "strip.jsonl")
			ag := start(t, "glowcast-agent", e.agentArgs(filepath.Join(dir, "agent"))...)
			start(t, "glowcastd", e.deviceArgs("kitchen", jsonl, filepath.Join(dir, "device"))...)
			waitFresh(t, jsonl, 10*time.Second)
			time.Sleep(1500 * time.Millisecond) // let an autosave happen

			if err := e.broker.Restart(); err != nil {
				t.Fatal(err)
			}
			n := len(e.tempsTimes("kitchen"))
			mqtttest.WaitFor(t, 3*interval+15*time.Second, "temps after the broker restart", func() bool {
				return len(e.tempsTimes("kitchen")) > n
			})
			waitFresh(t, jsonl, 5*time.Second)
			addr := agentHTTP(t, ag)
			if got := metric(t, addr, "glowcast_agent_cycles_running"); got != 1 {
				t.Errorf("cycles running: got %v, want 1", got)
			}
			// The device's retained status is online again (it re-publishes
			// on reconnect; Mosquitto published its will while stopping).
			mqtttest.WaitFor(t, 5*time.Second, "device status online", func() bool {
				var st protocol.DeviceStatus
				return json.Unmarshal(e.watch.Last("glowcast/v1/kitchen/device/status"), &st) == nil && st.Online
			})
		})
	}
}

// The broker lost the device's retained status and ready while the device
// stayed connected (it does not notice a cleared topic), and the agent
// restarted: only its saved state knows the device. The restart timer sends
// rebirth; the device answers by announcing itself again.
func TestRebirthAfterBrokerLostRetainedAndAgentRestart(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	jsonl := filepath.Join(dir, "strip.jsonl")
	state := filepath.Join(dir, "agent")
	ag := start(t, "glowcast-agent", e.agentArgs(state, "--restart-grace", "2s")...)
	start(t, "glowcastd", e.deviceArgs("kitchen", jsonl, filepath.Join(dir, "device"))...)
	waitFresh(t, jsonl, 10*time.Second)

	ag.Kill()
	restarted := time.Now()
	if err := e.broker.Restart(); err != nil { // no persistence: retained status and ready are gone
		t.Fatal(err)
	}
	// Wait for the device to reconnect and announce itself, then wipe what
	// it re-published, as if the broker had come back after the device's
	// announcement was lost.
	mqtttest.WaitFor(t, 30*time.Second, "the device's ready after the broker restart", func() bool {
		for _, m := range e.watch.Messages("glowcast/v1/kitchen/device/ready") {
			if m.At.After(restarted) && len(m.Payload) > 0 {
				return true
			}
		}
		return false
	})
	e.publish("glowcast/v1/kitchen/device/status", nil, true)
	e.publish("glowcast/v1/kitchen/device/ready", nil, true)
	restart(t, ag)
	addr := agentHTTP(t, ag)
	mqtttest.WaitFor(t, 10*time.Second, "a rebirth request", func() bool {
		return metric(t, addr, "glowcast_agent_rebirth_requests_total") >= 1
	})
	mqtttest.WaitFor(t, 10*time.Second, "the cycle resumed by the rebirth answer", func() bool {
		return metric(t, addr, `glowcast_agent_cycle_starts_total{path="rebirth"}`) == 1
	})
	if got := metric(t, addr, "glowcast_agent_cycles_running"); got != 1 {
		t.Errorf("cycles running: got %v, want 1", got)
	}
}

func TestLateWillDoesNotWin(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	jsonl := filepath.Join(dir, "strip.jsonl")
	ag := start(t, "glowcast-agent", e.agentArgs(filepath.Join(dir, "agent"))...)
	start(t, "glowcastd", e.deviceArgs("kitchen", jsonl, filepath.Join(dir, "device"))...)
	waitFresh(t, jsonl, 10*time.Second)
	var st protocol.DeviceStatus
	json.Unmarshal(e.watch.Last("glowcast/v1/kitchen/device/status"), &st)

	// A will of an earlier boot of the device, arriving late, retained.
	will := fmt.Sprintf(`{"online":false,"boot_id":"0ld","ts":%q}`, st.TS.Add(-time.Hour).Format(time.RFC3339))
	e.publish("glowcast/v1/kitchen/device/status", []byte(will), true)
	// And the device's own will (same boot) as Mosquitto would publish it.
	own := fmt.Sprintf(`{"online":false,"boot_id":%q,"ts":%q}`, st.BootID, st.TS.Format(time.RFC3339Nano))
	e.publish("glowcast/v1/kitchen/device/status", []byte(own), true)
	mqtttest.WaitFor(t, 5*time.Second, "the device to re-publish its online status", func() bool {
		var now protocol.DeviceStatus
		return json.Unmarshal(e.watch.Last("glowcast/v1/kitchen/device/status"), &now) == nil && now.Online && now.BootID == st.BootID
	})
	// An older agent's will must not overwrite the agent's online status.
	var as protocol.AgentStatus
	json.Unmarshal(e.watch.Last("glowcast/v1/agent/main/status"), &as)
	e.publish("glowcast/v1/agent/main/status",
		[]byte(fmt.Sprintf(`{"online":false,"session":"old","ts":%q}`, as.TS.Add(-time.Minute).Format(time.RFC3339))), true)
	mqtttest.WaitFor(t, 5*time.Second, "the agent to re-publish its online status", func() bool {
		var now protocol.AgentStatus
		return json.Unmarshal(e.watch.Last("glowcast/v1/agent/main/status"), &now) == nil && now.Online && now.Session == as.Session
	})
	addr := agentHTTP(t, ag)
	if got := metric(t, addr, "glowcast_agent_cycles_running"); got != 1 {
		t.Errorf("cycles running: got %v, want 1", got)
	}
}

func TestBadInputIsDroppedNotFatal(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	jsonl := filepath.Join(dir, "strip.jsonl")
	ag := start(t, "glowcast-agent", e.agentArgs(filepath.Join(dir, "agent"), "--interval", "1h")...)
	dev := start(t, "glowcastd", e.deviceArgs("kitchen", jsonl, filepath.Join(dir, "device"))...)
	good := waitFresh(t, jsonl, 10*time.Second)

	bad := map[string]string{
		"not json":       `{"temps_c":[1,2`,
		"wrong count":    `{"temps_c":[1,2,3],"offsets_h":[0,3,6],"issued_at":"2030-01-01T00:00:00Z","valid_until":"2030-01-01T01:00:00Z","location":{"lat":1,"lon":1},"hourly":{"start":"2030-01-01T00:00:00Z","temps_c":[]}}`,
		"out of range":   strings.Replace(string(e.watch.Last("glowcast/v1/kitchen/agent/temps")), `"temps_c":[`, `"temps_c":[95,`, 1),
		"string not num": `{"temps_c":["a","b","c","d","e"]}`,
		// Over the device's 64 KiB limit but under the shipped broker's
		// max_packet_size (which refuses anything larger outright).
		"oversized":       `{"pad":"` + strings.Repeat("x", 64<<10+100) + `"}`,
		"empty":           ``,
		"json null":       `null`,
		"array":           `[1,2,3]`,
		"deeply nested":   strings.Repeat("[", 5000) + strings.Repeat("]", 5000),
		"unknown message": "",
	}
	for name, payload := range bad {
		topic := "glowcast/v1/kitchen/agent/temps"
		if name == "unknown message" {
			topic = "glowcast/v1/kitchen/agent/no-such-name"
		}
		e.publish(topic, []byte(payload), false)
		// Garbage the agent must survive too.
		e.publish("glowcast/v1/kitchen/device/ready", []byte(payload), false)
		e.publish("glowcast/v1/other/device/status", []byte(payload), false)
		e.publish("glowcast/v1/bad$id/device/ready", []byte(payload), false)
	}
	time.Sleep(time.Second)
	if !dev.Alive() || !ag.Alive() {
		t.Fatalf("a process died on bad input\nagent:\n%s\ndevice:\n%s", ag.Log(), dev.Log())
	}
	f, _ := lastFrame(t, jsonl)
	if f.State != "fresh" || !weathertest.SameTemps(f.Temps, weathertest.Shown(time.Now())) {
		t.Fatalf("device after bad input shows %+v, want the last valid temps %+v", f, good)
	}
	if !strings.Contains(dev.Log(), "invalid temps dropped") {
		t.Errorf("device log does not report the dropped temps")
	}
	if !strings.Contains(dev.Log(), "dropping oversized message") {
		t.Errorf("device log does not report the oversized message")
	}
	if !strings.Contains(dev.Log(), "no-such-name") {
		t.Errorf("device log does not name the unhandled message")
	}
}

func TestDeviceOfflineAndBack(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	jsonl := filepath.Join(dir, "strip.jsonl")
	ag := start(t, "glowcast-agent", e.agentArgs(filepath.Join(dir, "agent"))...)
	dev := start(t, "glowcastd", e.deviceArgs("kitchen", jsonl, filepath.Join(dir, "device"))...)
	waitFresh(t, jsonl, 10*time.Second)

	if err := dev.Stop(); err != nil {
		t.Fatalf("%v\n%s", err, dev.Log())
	}
	if f, _ := lastFrame(t, jsonl); f.State != "off" {
		t.Errorf("last frame after SIGTERM: %q, want off", f.State)
	}
	mqtttest.WaitFor(t, 5*time.Second, "device status offline", func() bool {
		var st protocol.DeviceStatus
		return json.Unmarshal(e.watch.Last("glowcast/v1/kitchen/device/status"), &st) == nil && !st.Online
	}, dev.Log)
	addr := agentHTTP(t, ag)
	// The cycle keeps running while the device is away (up to --offline-park).
	if got := metric(t, addr, "glowcast_agent_cycles_running"); got != 1 {
		t.Errorf("cycles while offline: got %v, want 1", got)
	}
	time.Sleep(interval)
	restart(t, dev) // a new boot: fetch at once, replacing the cycle
	waitFresh(t, jsonl, 5*time.Second)
	n0 := len(e.tempsTimes("kitchen"))
	time.Sleep(3 * interval)
	if got := len(e.tempsTimes("kitchen")) - n0; got > 4 {
		t.Errorf("temps in 3 intervals after the device came back: got %d, want ≤ 4", got)
	}
	if got := metric(t, addr, "glowcast_agent_cycles_running"); got != 1 {
		t.Errorf("cycles: got %v, want 1", got)
	}
}
