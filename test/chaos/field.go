package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/glowcast/glowcast/cmd/glowcast/sim"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
	"github.com/glowcast/glowcast/test/kit/proc"
	"github.com/glowcast/glowcast/test/kit/weathertest"
)

// Faults of the field: what many hosts, slow links and cloned SD cards do
// that one test host does not.
func init() {
	faults = append(faults,
		fault{name: "net-slow-connect", long: true, inject: netSlowConnect},
		fault{name: "device-duplicate-id", inject: deviceDuplicateID},
		fault{name: "fleet-agent-kill", long: true, fleet: true, inject: fleetAgentKill},
		fault{name: "device-clock-boot", inject: deviceClockBoot},
		fault{name: "agent-clock-ahead-restart", inject: agentClockAheadRestart},
	)
}

// deviceClockBoot is a Pi without a real-time clock losing power: it boots
// with the time fake-hwclock saved (behind, up to an hour) or, after a
// bad NTP answer or an SD card moved from another Pi, ahead; NTP corrects
// it a few intervals later. The device must show the agent's temps once
// its clock is right, whatever its wrong clock made of them meanwhile.
func deviceClockBoot(ctx context.Context, e *env, r *rand.Rand, rd *round) string {
	d := e.devices[r.IntN(len(e.devices))]
	skew := -time.Duration(1+r.IntN(60)) * time.Minute
	if r.IntN(3) == 0 {
		skew = time.Duration(1+r.IntN(30)) * time.Minute
	}
	d.proc.Signal(syscall.SIGKILL, 10*time.Second)
	os.WriteFile(d.skewFile, []byte(skew.String()), 0o600)
	if err := d.proc.Start(); err != nil {
		e.t.Fatal(err)
	}
	hold := 2*e.cfg.Interval + jitter(r, 2*e.cfg.Interval)
	sleep(ctx, hold)
	os.WriteFile(d.skewFile, []byte("0s"), 0o600)
	// The device re-reads its clock every 100ms.
	sleep(ctx, 200*time.Millisecond)
	return fmt.Sprintf("device=%s skew=%v hold=%v", d.id, skew, hold.Round(time.Millisecond))
}

// agentClockAheadRestart is an agent host that started with its clock
// ahead: everything it wrote (its status, its will, claims, saved due
// times) is dated in the future. It is killed, the clock is stepped back,
// and it starts again: a retained will dated ahead of the new process's
// start must not make it yield, and saved due times from the future must
// not stall a cycle.
func agentClockAheadRestart(ctx context.Context, e *env, r *rand.Rand, rd *round) string {
	a := e.agent()
	skew := time.Duration(10+r.IntN(170)) * time.Minute
	os.WriteFile(e.skewFile, []byte(skew.String()), 0o600)
	hold := 2*e.cfg.Interval + jitter(r, 2*e.cfg.Interval)
	sleep(ctx, hold)
	a.Kill()
	os.WriteFile(e.skewFile, []byte("0s"), 0o600)
	sleep(ctx, jitter(r, e.cfg.Interval))
	e.restartAgent(a, a.stateDir)
	return fmt.Sprintf("skew=%v hold=%v", skew, hold.Round(time.Millisecond))
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
	args := d.proc.Args()
	for k := range args {
		if k > 0 && args[k-1] == "--state-dir" {
			args[k] = cloneState
		}
		if k > 0 && args[k-1] == "--led" {
			args[k] = "jsonl:" + cloneState + ".jsonl"
		}
	}
	clone := proc.New(d.id+"-clone", d.proc.Bin(), cloneState+".log", args)
	if err := clone.Start(); err != nil {
		e.t.Fatal(err)
	}
	clone.AllowExit() // it may give up its id; only the original must stay
	before := e.weather.Count(d.lat, d.lon)
	from := time.Now()
	hold := 3*e.cfg.Interval + jitter(r, 3*e.cfg.Interval)
	sleep(ctx, hold)
	got := e.weather.Count(d.lat, d.lon) - before
	intervals := int(time.Since(from)/e.cfg.Interval) + 1
	if got > intervals+1 {
		e.violation("device-duplicate-id", fmt.Sprintf("%s's place got %d weather requests in %d intervals while two devices used its id: more than one cycle", d.id, got, intervals))
	}
	clone.Signal(syscall.SIGKILL, 10*time.Second)
	os.RemoveAll(cloneState)
	// The original may have been pushed off the broker by the clone's
	// connects; it reconnects on its own.
	return fmt.Sprintf("device=%s hold=%v requests=%d", d.id, hold.Round(time.Millisecond), got)
}

// fleetRig is the fleet faults' world: a Mosquitto of its own with the
// shipped config, an agent at the real 30-minute interval (a compressed
// interval would turn thousands of devices into a publish storm that tests
// the machine, not the product), and Config.Fleet simulated devices.
type fleetRig struct {
	broker  *mqtttest.Broker
	weather *weathertest.Server
	agent   *agentProc
	sim     *sim.Fleet
}

func (e *env) startRig(ctx context.Context) *fleetRig {
	rg := &fleetRig{broker: mqtttest.Start(e.t), weather: weathertest.New()}
	state := filepath.Join(e.dir, "fleet-agent-state")
	args := []string{"-config", e.agentConfig(), "--broker", rg.broker.URL(), "--agent-id", "fleet",
		"--weather", "open-meteo", "--weather-url", rg.weather.URL, "--interval", "30m",
		"--restart-grace", "10s", "--offline-park", "1h", "--state-dir", state,
		"--http", "127.0.0.1:0", "--log-level", "info"}
	rg.agent = &agentProc{Proc: proc.New("fleet-agent", filepath.Join(e.cfg.BinDir, "glowcast-agent"),
		filepath.Join(e.dir, "fleet-agent.log"), args), stateDir: state}
	if err := rg.agent.Start(); err != nil {
		e.t.Fatal(err)
	}
	return rg
}

func (rg *fleetRig) close() {
	if rg.sim != nil {
		rg.sim.Kill()
	}
	if rg.agent.Alive() {
		rg.agent.Signal(sigterm, 10*time.Second)
	}
	rg.weather.Close()
}

// fleetAgentKill SIGKILLs the agent of a fleet of Config.Fleet simulated
// devices (the code of glowcast sim) on the shipped broker config: the
// restarted agent must have every cycle armed again, no device missing,
// within the bound, and no device may get a second temps for one due time.
func fleetAgentKill(ctx context.Context, e *env, r *rand.Rand, rd *round) string {
	const name = "fleet-agent-kill"
	if e.rig == nil {
		e.rig = e.startRig(ctx)
	}
	rg := e.rig
	want := float64(e.cfg.Fleet)
	if rg.sim == nil {
		// Before the start: devices get temps while the fleet connects.
		started := time.Now()
		cfg := sim.Default()
		cfg.Broker, cfg.Devices, cfg.Places, cfg.Prefix = rg.broker.URL(), e.cfg.Fleet, 100, "fleet"
		f, err := sim.Start(ctx, cfg)
		if err != nil {
			e.t.Fatalf("chaos: starting %d simulated devices: %v", e.cfg.Fleet, err)
		}
		rg.sim = f
		if took, ok := e.waitCycles(ctx, rg.agent, want, 3*time.Minute); !ok {
			e.violation(name, fmt.Sprintf("cold start: a fleet of %d simulated devices did not get every cycle armed within %v", e.cfg.Fleet, took))
		}
		if err := poll(3*time.Minute, func() bool { ok, _ := f.AllTempsSince(started); return ok }); err != nil {
			e.violation(name, fmt.Sprintf("cold start: not every simulated device got temps: %+v", f.Stats()))
		}
		fmt.Fprintf(e.cfg.Out, "chaos: fleet of %d: every cycle armed and every device with temps %v after it connected\n", e.cfg.Fleet, time.Since(started).Round(time.Millisecond))
	}
	before := make([]int64, len(rg.sim.Devs))
	for i, d := range rg.sim.Devs {
		before[i] = d.Temps()
	}
	sleep(ctx, jitter(r, 5*time.Second))
	rg.agent.Kill()
	if err := rg.agent.Start(); err != nil {
		e.t.Fatal(err)
	}
	rg.agent.setHTTPAddr("")
	took, ok := e.waitCycles(ctx, rg.agent, want, time.Minute)
	if !ok {
		m, _ := e.metrics(rg.agent)
		e.violation(name, fmt.Sprintf("after an agent SIGKILL %v of %v cycles armed and %v devices missing after %v",
			m["glowcast_agent_cycles_running"], want, m["glowcast_agent_devices_missing"], took.Round(time.Millisecond)))
	}
	// A cycle re-armed from saved state sends nothing until it is due; at
	// a 30-minute interval at most one due time falls in this window.
	sleep(ctx, 2*time.Second)
	var doubled []string
	for i, d := range rg.sim.Devs {
		if n := d.Temps() - before[i]; n > 1 {
			doubled = append(doubled, fmt.Sprintf("%s:%d", d.ID, n))
		}
	}
	if len(doubled) > 0 {
		e.violation(name, fmt.Sprintf("%d simulated devices got more than one temps across the agent restart (two cycles): %v", len(doubled), doubled[:min(len(doubled), 10)]))
	}
	if st := rg.sim.Stats(); st.Down > 0 || st.BadTemps > 0 {
		e.violation(name, fmt.Sprintf("simulated fleet: %+v", st))
	}
	return fmt.Sprintf("fleet=%d rearmed=%v", e.cfg.Fleet, took.Round(time.Millisecond))
}

func poll(bound time.Duration, cond func() bool) error {
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", bound)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
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
