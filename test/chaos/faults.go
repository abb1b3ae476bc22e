package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/glowcast/glowcast/test/kit/proc"
)

// fault is one kind of trouble. inject starts it and returns when it has
// cleared (the moment recovery is measured from) with a note for the log.
type fault struct {
	name string
	// long faults take longer than the short campaign affords.
	long bool
	// fleet faults need a simulated fleet (Config.Fleet).
	fleet  bool
	inject func(ctx context.Context, e *env, r *rand.Rand, rd *round) string
}

// round is what one injection leaves for the checks.
type round struct {
	// corruptOK: the fault itself damaged state files, so files moved
	// aside as corrupt are the expected outcome, not a violation.
	corruptOK bool
	// strictFrom: after this moment any two temps for one device closer
	// than half an interval are two cycles, whatever else happened.
	strictFrom time.Time
	// bound replaces the default recovery bound (half-open connections
	// take a keepalive to notice).
	bound time.Duration
}

// faults is every fault the campaign knows, in the order of the report.
var faults = []fault{
	{name: "agent-kill", inject: agentKill},
	{name: "agent-kill-corrupt-state", inject: agentKillCorrupt},
	{name: "broker-restart", inject: brokerRestart},
	{name: "device-kill", inject: deviceKill},
	{name: "device-power-cut", inject: devicePowerCut},
	{name: "net-reset", inject: netReset},
	{name: "net-half-open", long: true, inject: netHalfOpen},
	{name: "net-slow", inject: netSlow},
	{name: "net-flap", inject: netFlap},
	{name: "weather-500", inject: weatherStatus(500)},
	{name: "weather-429", inject: weather429},
	{name: "weather-hang", long: true, inject: weatherHang},
	{name: "weather-malformed", inject: weatherMalformed},
	{name: "agent-overlap", inject: agentOverlap},
	{name: "agent-clock-jump", inject: agentClockJump},
}

func faultByName(name string) (fault, bool) {
	for _, f := range faults {
		if f.name == name {
			return f, true
		}
	}
	return fault{}, false
}

func jitter(r *rand.Rand, max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return time.Duration(r.Int64N(int64(max)))
}

// agentKill SIGKILLs the agent at a random moment — during a fetch, just
// after a publish (before its state is saved), or while it reconnects — and
// restarts it with its state dir or without one.
func agentKill(ctx context.Context, e *env, r *rand.Rand, rd *round) string {
	a := e.agent()
	moment := []string{"fetch", "after-publish", "reconnect", "any"}[r.IntN(4)]
	switch moment {
	case "fetch":
		// Slow answers widen the fetch so the kill lands inside one.
		e.weather.Delay(e.cfg.Interval / 2)
		sleep(ctx, e.cfg.Interval+jitter(r, e.cfg.Interval/2))
	case "after-publish":
		d := e.devices[r.IntN(len(e.devices))]
		n := len(e.tempsBetween(d.id, time.Time{}, time.Now()))
		deadline := time.Now().Add(3 * e.cfg.Interval)
		for len(e.tempsBetween(d.id, time.Time{}, time.Now())) == n && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
	case "reconnect":
		e.proxy.Stop()
		sleep(ctx, 300*time.Millisecond+jitter(r, time.Second))
		e.proxy.Start()
		sleep(ctx, jitter(r, 1500*time.Millisecond))
	default:
		sleep(ctx, jitter(r, 2*e.cfg.Interval))
	}
	a.Kill()
	e.weather.Delay(0)
	keep := r.IntN(3) != 0
	dir := a.stateDir
	if !keep {
		dir = filepath.Join(e.dir, fmt.Sprintf("agent-state-%d", r.Int64()))
	}
	sleep(ctx, jitter(r, e.cfg.Interval))
	e.restartAgent(a, dir)
	return fmt.Sprintf("moment=%s state=%s", moment, map[bool]string{true: "kept", false: "fresh"}[keep])
}

// agentKillCorrupt kills the agent and damages one saved device state file
// (garbage, truncated, or empty) before the restart.
func agentKillCorrupt(ctx context.Context, e *env, r *rand.Rand, rd *round) string {
	a := e.agent()
	sleep(ctx, jitter(r, 2*e.cfg.Interval))
	a.Kill()
	rd.corruptOK = true
	d := e.devices[r.IntN(len(e.devices))]
	p := filepath.Join(a.stateDir, "devices", d.id+".json")
	how := []string{"garbage", "truncated", "empty"}[r.IntN(3)]
	b, _ := os.ReadFile(p)
	switch how {
	case "garbage":
		b = make([]byte, 1+r.IntN(512))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
	case "truncated":
		b = b[:len(b)/2]
	case "empty":
		b = nil
	}
	os.WriteFile(p, b, 0o640)
	e.restartAgent(a, a.stateDir)
	return fmt.Sprintf("device=%s file=%s", d.id, how)
}

// brokerRestart restarts Mosquitto with persistence on (retained state
// kept) or off (retained state lost: the restart timer and rebirth path).
func brokerRestart(ctx context.Context, e *env, r *rand.Rand, rd *round) string {
	persist := r.IntN(2) == 0
	e.broker.Persist = persist
	down := jitter(r, 2*time.Second)
	e.broker.Stop()
	sleep(ctx, down)
	if err := e.broker.Restart(); err != nil { // stopped already: this starts it
		e.violation("broker-restart", err.Error())
	}
	return fmt.Sprintf("persistence=%v down=%v", persist, down.Round(time.Millisecond))
}

// deviceKill SIGKILLs a device and starts it again.
func deviceKill(ctx context.Context, e *env, r *rand.Rand, rd *round) string {
	d := e.devices[r.IntN(len(e.devices))]
	sleep(ctx, jitter(r, e.cfg.Interval))
	d.proc.Kill()
	sleep(ctx, jitter(r, 2*e.cfg.Interval))
	if err := d.proc.Start(); err != nil {
		e.t.Fatal(err)
	}
	return "device=" + d.id
}

// devicePowerCut kills a device the moment temps reach it (while it saves
// them) and leaves what a power cut can leave on disk: a half-written
// temporary file, and sometimes a torn temps.json (zero length or cut off),
// the state an fsync-less write would have after the cut.
func devicePowerCut(ctx context.Context, e *env, r *rand.Rand, rd *round) string {
	d := e.devices[r.IntN(len(e.devices))]
	n := len(e.tempsBetween(d.id, time.Time{}, time.Now()))
	deadline := time.Now().Add(3 * e.cfg.Interval)
	for len(e.tempsBetween(d.id, time.Time{}, time.Now())) == n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(jitter(r, 5*time.Millisecond))
	d.proc.Signal(syscall.SIGKILL, 10*time.Second)
	p := filepath.Join(d.stateDir, "temps.json")
	b, _ := os.ReadFile(p)
	os.WriteFile(filepath.Join(d.stateDir, fmt.Sprintf(".temps.json.tmp-%d", r.Int64())), b[:len(b)/3], 0o640)
	torn := []string{"none", "empty", "cut"}[r.IntN(3)]
	switch torn {
	case "empty":
		os.WriteFile(p, nil, 0o640)
		rd.corruptOK = true
	case "cut":
		os.WriteFile(p, b[:len(b)/2], 0o640)
		rd.corruptOK = true
	}
	if err := d.proc.Start(); err != nil {
		e.t.Fatal(err)
	}
	return fmt.Sprintf("device=%s torn=%s", d.id, torn)
}

func (e *env) addToxic(name, typ, stream string, attrs string) error {
	js := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"toxicity":1,"attributes":%s}`, name, typ, stream, attrs)
	_, err := e.proxy.Toxics.AddToxicJson(strings.NewReader(js))
	return err
}

func (e *env) clearToxics() { e.proxy.Toxics.ResetToxics(context.Background()) }

// netReset resets every connection through the proxy (TCP RST), and any
// new one for a moment.
func netReset(ctx context.Context, e *env, r *rand.Rand, rd *round) string {
	hold := 200*time.Millisecond + jitter(r, 2*time.Second)
	e.addToxic("reset", "reset_peer", "downstream", `{"timeout":0}`)
	e.addToxic("reset-up", "reset_peer", "upstream", `{"timeout":0}`)
	sleep(ctx, hold)
	e.clearToxics()
	return "hold=" + hold.Round(time.Millisecond).String()
}

// netHalfOpen blackholes the link without closing it: the programs learn
// of it only from the MQTT keepalive.
func netHalfOpen(ctx context.Context, e *env, r *rand.Rand, rd *round) string {
	hold := 50*time.Second + jitter(r, 10*time.Second) // past keepalive + ping timeout
	e.addToxic("blackhole", "timeout", "downstream", `{"timeout":0}`)
	e.addToxic("blackhole-up", "timeout", "upstream", `{"timeout":0}`)
	sleep(ctx, hold)
	e.clearToxics()
	return "hold=" + hold.Round(time.Millisecond).String()
}

// netSlow adds latency with jitter, or a bandwidth limit, for a while.
func netSlow(ctx context.Context, e *env, r *rand.Rand, rd *round) string {
	hold := e.cfg.Interval*2 + jitter(r, 2*e.cfg.Interval)
	var note string
	if r.IntN(2) == 0 {
		lat := 100 + r.IntN(700)
		e.addToxic("latency", "latency", "downstream", fmt.Sprintf(`{"latency":%d,"jitter":%d}`, lat, lat/2))
		e.addToxic("latency-up", "latency", "upstream", fmt.Sprintf(`{"latency":%d,"jitter":%d}`, lat, lat/2))
		note = fmt.Sprintf("latency=%dms", lat)
	} else {
		kb := 1 + r.IntN(8)
		e.addToxic("bandwidth", "bandwidth", "downstream", fmt.Sprintf(`{"rate":%d}`, kb))
		e.addToxic("bandwidth-up", "bandwidth", "upstream", fmt.Sprintf(`{"rate":%d}`, kb))
		note = fmt.Sprintf("bandwidth=%dKB/s", kb)
	}
	sleep(ctx, hold)
	e.clearToxics()
	return note + " hold=" + hold.Round(time.Millisecond).String()
}

// netFlap takes the link down and up several times in quick succession.
func netFlap(ctx context.Context, e *env, r *rand.Rand, rd *round) string {
	n := 2 + r.IntN(5)
	for range n {
		e.proxy.Stop()
		sleep(ctx, 100*time.Millisecond+jitter(r, 1500*time.Millisecond))
		e.proxy.Start()
		sleep(ctx, 100*time.Millisecond+jitter(r, 1500*time.Millisecond))
	}
	return fmt.Sprintf("flaps=%d", n)
}

func weatherStatus(code int) func(context.Context, *env, *rand.Rand, *round) string {
	return func(ctx context.Context, e *env, r *rand.Rand, rd *round) string {
		hold := e.cfg.Interval + jitter(r, 3*e.cfg.Interval)
		e.weather.FailWith(code)
		sleep(ctx, hold)
		e.weather.FailWith(0)
		return "hold=" + hold.Round(time.Millisecond).String()
	}
}

func weather429(ctx context.Context, e *env, r *rand.Rand, rd *round) string {
	hold := e.cfg.Interval + jitter(r, 3*e.cfg.Interval)
	after := 1 + r.IntN(3)
	e.weather.FailWithRetryAfter(429, fmt.Sprint(after))
	sleep(ctx, hold)
	e.weather.FailWith(0)
	rd.bound = time.Duration(after)*time.Second + defaultBound(e)
	return fmt.Sprintf("retry_after=%ds hold=%v", after, hold.Round(time.Millisecond))
}

// weatherHang holds every answer past the client's timeout.
func weatherHang(ctx context.Context, e *env, r *rand.Rand, rd *round) string {
	hold := 12*time.Second + jitter(r, 5*time.Second)
	e.weather.Delay(time.Minute)
	sleep(ctx, hold)
	e.weather.Delay(0)
	rd.bound = 15*time.Second + defaultBound(e) // a request in flight runs into its timeout
	return "hold=" + hold.Round(time.Millisecond).String()
}

func weatherMalformed(ctx context.Context, e *env, r *rand.Rand, rd *round) string {
	hold := e.cfg.Interval + jitter(r, 3*e.cfg.Interval)
	e.weather.Malformed(true)
	sleep(ctx, hold)
	e.weather.Malformed(false)
	return "hold=" + hold.Round(time.Millisecond).String()
}

// agentOverlap starts a second agent with the same agent id (a migration
// whose old host is still running): the older one must yield.
func agentOverlap(ctx context.Context, e *env, r *rand.Rand, rd *round) string {
	old := e.agent()
	old.AllowExit()
	dir := filepath.Join(e.dir, fmt.Sprintf("agent-state-%d", r.Int64()))
	if r.IntN(2) == 0 {
		copyDir(filepath.Join(old.stateDir, "devices"), filepath.Join(dir, "devices")) // a migration that took the state along
	}
	sleep(ctx, jitter(r, e.cfg.Interval))
	nw := e.startAgent(dir)
	exited, err := old.WaitExit(15 * time.Second)
	switch {
	case !exited:
		// SIGQUIT makes the Go runtime write every goroutine's stack to
		// the log: the evidence of where it hangs.
		old.Signal(syscall.SIGQUIT, 5*time.Second)
		e.violation("agent-overlap", "the older agent did not yield within 15s of a newer one with the same id; its log ends:\n"+proc.Tail(old.Log(), 80))
	case err != nil:
		e.violation("agent-overlap", fmt.Sprintf("the older agent exited with %v, want 0 (yielded)", err))
	case !strings.Contains(old.Log(), "yielded"):
		e.violation("agent-overlap", "the older agent exited without logging that it yielded")
	}
	// From the newer agent's first temps on, one cycle per device only.
	deadline := time.Now().Add(3 * e.cfg.Interval)
	for time.Now().Before(deadline) {
		if m, ok := e.metrics(nw); ok && m["glowcast_agent_temps_published_total"] >= float64(len(e.devices)) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	rd.strictFrom = time.Now()
	return fmt.Sprintf("state=%v", map[bool]string{true: "copied", false: "fresh"}[fileExists(filepath.Join(dir, "devices"))])
}

// agentClockJump steps the agent's wall clock forward or back for a while
// and then back to the truth (an NTP correction).
func agentClockJump(ctx context.Context, e *env, r *rand.Rand, rd *round) string {
	skew := time.Duration(10+r.IntN(170)) * time.Minute
	if r.IntN(2) == 0 {
		skew = -skew
	}
	hold := 2*e.cfg.Interval + jitter(r, 2*e.cfg.Interval)
	os.WriteFile(e.skewFile, []byte(skew.String()), 0o600)
	sleep(ctx, hold)
	os.WriteFile(e.skewFile, []byte("0s"), 0o600)
	// The agent re-reads its clock every 100ms.
	sleep(ctx, 200*time.Millisecond)
	return fmt.Sprintf("skew=%v hold=%v", skew, hold.Round(time.Millisecond))
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func copyDir(from, to string) {
	os.MkdirAll(to, 0o750)
	ents, _ := os.ReadDir(from)
	for _, en := range ents {
		// Take the state along, not the evidence of earlier rounds: a file
		// already moved aside as corrupt would count again in the new dir.
		if strings.HasSuffix(en.Name(), ".corrupt") {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(from, en.Name())); err == nil {
			os.WriteFile(filepath.Join(to, en.Name()), b, 0o640)
		}
	}
}
