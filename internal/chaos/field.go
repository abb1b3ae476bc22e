package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/glowcast/glowcast/internal/sim"
)

// Faults of the field: what many hosts, slow links and cloned SD cards do
// that one test host does not.
func init() {
	faults = append(faults,
		fault{name: "net-slow-connect", long: true, inject: netSlowConnect},
		fault{name: "device-duplicate-id", inject: deviceDuplicateID},
		fault{name: "fleet-agent-kill", long: true, fleet: true, inject: fleetAgentKill},
	)
}

// connectTimeout is both programs' MQTT connect timeout (mqttmsg's
// default): the slow-connect fault must outlast it.
const connectTimeout = 10 * time.Second

// netSlowConnect drops every connection and makes the broker's answers
// arrive later than the connect timeout: the CONNACK of every reconnect
// comes too late, so each attempt must fail and be retried — never leave a
// half-up connection — until the link is fast again.
func netSlowConnect(ctx context.Context, e *env, r *rand.Rand, rd *round) string {
	lat := connectTimeout + time.Second + jitter(r, 4*time.Second)
	e.addToxic("slow-ack", "latency", "downstream", fmt.Sprintf(`{"latency":%d,"jitter":0}`, lat.Milliseconds()))
	// Every program reconnects now, into the slow link.
	e.proxy.Stop()
	sleep(ctx, 100*time.Millisecond)
	if err := e.proxy.Start(); err != nil {
		e.t.Fatalf("chaos: restarting the broker proxy: %v", err)
	}
	hold := 2*lat + jitter(r, lat)
	sleep(ctx, hold)
	e.clearToxics()
	// A connect attempt that began under the toxic still waits out its
	// timeout; the reconnect backoff can reach its 30 s ceiling.
	rd.bound = connectTimeout + defaultBound(e)
	return fmt.Sprintf("ack_delay=%v hold=%v", lat.Round(time.Millisecond), hold.Round(time.Millisecond))
}

// deviceDuplicateID runs a second glowcastd with one device's id (a cloned
// SD card: the same config and state) for a few intervals, then stops it.
// While both run, the device's place must not be fetched at more than the
// rate of one cycle: the agent never runs two cycles for one id.
func deviceDuplicateID(ctx context.Context, e *env, r *rand.Rand, rd *round) string {
	i := r.IntN(len(e.devices))
	d := e.devices[i]
	cloneState := filepath.Join(e.dir, fmt.Sprintf("%s-clone-%d", d.id, r.Int64()))
	copyDir(d.stateDir, cloneState)
	args := append([]string(nil), d.proc.args...)
	for k := range args {
		if k > 0 && args[k-1] == "--state-dir" {
			args[k] = cloneState
		}
		if k > 0 && args[k-1] == "--led" {
			args[k] = "jsonl:" + cloneState + ".jsonl"
		}
	}
	clone := newProc(d.id+"-clone", d.proc.bin, cloneState+".log", args)
	clone.allowExit() // it may give up its id; only the original must stay
	if err := clone.start(); err != nil {
		e.t.Fatal(err)
	}
	before := e.weather.Count(d.lat, d.lon)
	from := time.Now()
	hold := 3*e.cfg.Interval + jitter(r, 3*e.cfg.Interval)
	sleep(ctx, hold)
	got := e.weather.Count(d.lat, d.lon) - before
	intervals := int(time.Since(from)/e.cfg.Interval) + 1
	if got > intervals+1 {
		e.violation("device-duplicate-id", fmt.Sprintf("%s's place got %d weather requests in %d intervals while two devices used its id: more than one cycle", d.id, got, intervals))
	}
	clone.signal(syscall.SIGKILL, 10*time.Second)
	os.RemoveAll(cloneState)
	// The original may have been pushed off the broker by the clone's
	// connects; it reconnects on its own.
	return fmt.Sprintf("device=%s hold=%v requests=%d", d.id, hold.Round(time.Millisecond), got)
}

// fleetAgentKill runs a fleet of simulated devices (Config.Fleet) on the
// same broker — the shipped config — and SIGKILLs the agent: the restarted
// agent must have every cycle armed again, and none missing, within the
// bound. The fleet starts at the first draw and stays for the campaign; a
// broker restart that dropped it makes a fresh one.
func fleetAgentKill(ctx context.Context, e *env, r *rand.Rand, rd *round) string {
	if e.fleet != nil && e.fleet.Stats().Down > 0 {
		e.fleet.Kill()
		e.fleet = nil
	}
	want := float64(e.cfg.Fleet + len(e.devices))
	a := e.agent()
	if e.fleet == nil {
		cfg := sim.Default()
		cfg.Broker, cfg.Devices, cfg.Places, cfg.Prefix = e.broker.URL(), e.cfg.Fleet, 20, "fleet"
		f, err := sim.Start(ctx, cfg)
		if err != nil {
			e.t.Fatalf("chaos: starting %d simulated devices: %v", e.cfg.Fleet, err)
		}
		e.fleet = f
		if took, ok := e.waitCycles(ctx, a, want, 2*time.Minute); !ok {
			e.violation("fleet-agent-kill", fmt.Sprintf("a fleet of %d simulated devices did not get every cycle armed within %v", e.cfg.Fleet, took))
		}
	}
	sleep(ctx, jitter(r, 2*e.cfg.Interval))
	a.kill()
	e.restartAgent(a, a.stateDir)
	took, ok := e.waitCycles(ctx, a, want, time.Minute)
	if !ok {
		m, _ := e.metrics(a)
		e.violation("fleet-agent-kill", fmt.Sprintf("after an agent SIGKILL %v of %v cycles armed and %v devices missing after %v",
			m["glowcast_agent_cycles_running"], want, m["glowcast_agent_devices_missing"], took.Round(time.Millisecond)))
	}
	return fmt.Sprintf("fleet=%d rearmed=%v", e.cfg.Fleet, took.Round(time.Millisecond))
}

// waitCycles waits until agent a runs at least want cycles with no device
// missing.
func (e *env) waitCycles(ctx context.Context, a *agentProc, want float64, bound time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < bound && ctx.Err() == nil {
		if m, ok := e.metrics(a); ok && m["glowcast_agent_cycles_running"] >= want && m["glowcast_agent_devices_missing"] == 0 {
			return time.Since(start), true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start), false
}
