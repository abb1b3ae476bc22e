package agent

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/glowcast/glowcast/cmd/glowcast/sim"
	"github.com/glowcast/glowcast/mqttmsg"
	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
	"github.com/glowcast/glowcast/test/kit/weathertest"
)

func TestParseShard(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Shard
		wantErr bool
	}{
		{"0/1", Shard{0, 1}, false},
		{"2/3", Shard{2, 3}, false},
		{" 1 / 4 ", Shard{1, 4}, false},
		{"3/3", Shard{}, true},
		{"-1/3", Shard{}, true},
		{"0/0", Shard{}, true},
		{"1", Shard{}, true},
		{"a/b", Shard{}, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseShard(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err: got %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestShardOfIsStableAndEveryDeviceHasOneOwner(t *testing.T) {
	// Fixed values every agent of a fleet must agree on, whatever its
	// version: the rendezvous score of FNV-1a 64 and SplitMix64's mixer.
	if got, want := score("a", 0), uint64(0x4ee2a8fdd19da1b1); got != want {
		t.Errorf("score(a, 0): got %#x, want %#x", got, want)
	}
	if got, want := ShardOf("a", 1000), 119; got != want {
		t.Errorf("ShardOf(a, 1000): got %d, want %d", got, want)
	}
	for _, n := range []int{1, 2, 3, 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			per := make([]int, n)
			for i := range 1000 {
				id := sim.ID("dev", i)
				owners := 0
				for s := range n {
					if (Shard{s, n}).Owns(id) {
						owners++
						per[s]++
					}
				}
				if owners != 1 {
					t.Fatalf("%s: got %d owners among %d shards, want 1", id, owners, n)
				}
			}
			for s, c := range per {
				if c < 1000/n/2 {
					t.Errorf("shard %d/%d: got %d of 1000 devices, want about %d", s, n, c, 1000/n)
				}
			}
		})
	}
	if !(Shard{}).Owns("x") {
		t.Error("zero Shard: got Owns false, want true (serves every device)")
	}
}

// Rendezvous hashing: losing an index moves only that index's devices,
// spread over the others; adding one moves only the devices it wins, about
// 1/(N+1) of them.
func TestRendezvousMovesOnlyTheChangedIndexDevices(t *testing.T) {
	const n = 3000
	all := []int{0, 1, 2}
	lost, added := 0, 0
	spread := map[int]int{}
	for i := range n {
		id := sim.ID("dev", i)
		before := Rendezvous(id, all)
		if got := Rendezvous(id, []int{0, 2}); before != 1 && got != before {
			t.Fatalf("%s: index 1 left and the device moved from %d to %d", id, before, got)
		} else if before == 1 {
			lost++
			spread[got]++
		}
		after := Rendezvous(id, []int{0, 1, 2, 3})
		if after != before {
			if after != 3 {
				t.Fatalf("%s: index 3 joined and the device moved from %d to %d", id, before, after)
			}
			added++
		}
	}
	if lost < n/3*8/10 || lost > n/3*12/10 {
		t.Errorf("devices of index 1: got %d, want about %d", lost, n/3)
	}
	if spread[0] < lost/3 || spread[2] < lost/3 {
		t.Errorf("index 1's devices over the survivors: got %v, want about half each", spread)
	}
	if added < n/4*8/10 || added > n/4*12/10 {
		t.Errorf("devices moved to a fourth index: got %d, want about %d", added, n/4)
	}
	if got := Rendezvous("x", nil); got != -1 {
		t.Errorf("no live index: got %d, want -1", got)
	}
}

// A claim is published when a device changes hands or boots, and once
// after its first step (to carry the cycle's phase), not each time its
// cycle re-arms: O(changes), not a message per device per cycle.
func TestClaimIsPublishedOnChangeNotEveryCycle(t *testing.T) {
	h := newHarness(t, t.TempDir(), ResumeFast)
	o := newOwnership(h.f, "0/1", "a0", "s0", nil)
	queued := func() int {
		o.qmu.Lock()
		defer o.qmu.Unlock()
		n := len(o.pending)
		clear(o.pending)
		o.queue = nil
		return n
	}
	v := cycleView{ID: "d1", Boot: "b1", Due: time.Now()}
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	for i, tc := range []struct {
		name string
		boot string
		step bool // the step ran (else the cycle was armed)
		want int
	}{
		{"taken on", "b1", false, 1},
		{"first step", "b1", true, 1},
		{"next interval", "b1", false, 0},
		{"its step", "b1", true, 0},
		{"and the next", "b1", false, 0},
		{"device rebooted", "b2", false, 1},
		{"first step of the new boot", "b2", true, 1},
		{"next interval of the new boot", "b2", false, 0},
	} {
		v.Boot = tc.boot
		v.Due = v.Due.Add(time.Hour)
		if tc.step {
			o.stepped(v)
		} else {
			o.armed(v)
		}
		if got := queued(); got != tc.want {
			t.Errorf("%d %s: got %d claims queued, want %d", i, tc.name, got, tc.want)
		}
	}
	o.yield(v.ID)
	o.armed(v)
	if got := queued(); got != 1 {
		t.Errorf("taken on again after yielding: got %d claims queued, want 1", got)
	}
}

// shardEnv is one Mosquitto, one local Open-Meteo, simulated devices and
// the agents under test.
type shardEnv struct {
	t       *testing.T
	broker  *mqtttest.Broker
	weather *weathertest.Server
	fleet   *sim.Fleet

	mu     sync.Mutex
	agents map[string]*runningAgent // the live ones, sampled for overlaps
	double []string                 // devices seen cycling in two agents
	stop   chan struct{}
	done   chan struct{}
}

type runningAgent struct {
	id, shard string
	a         *Agent
	cancel    context.CancelCauseFunc
	done      chan error
}

func newShardEnv(t *testing.T, devices int) *shardEnv {
	e := &shardEnv{t: t, broker: mqtttest.Start(t), weather: weathertest.New(), agents: map[string]*runningAgent{},
		stop: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(e.weather.Close)
	cfg := sim.Default()
	cfg.Broker, cfg.Devices, cfg.Places, cfg.Prefix = e.broker.URL(), devices, devices, "shd"
	f, err := sim.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.fleet = f
	go e.sample()
	t.Cleanup(func() {
		close(e.stop)
		<-e.done
		e.mu.Lock()
		as := make([]*runningAgent, 0, len(e.agents))
		for _, r := range e.agents {
			as = append(as, r)
		}
		e.mu.Unlock()
		for _, r := range as {
			e.stopAgent(r, nil)
		}
		f.Close()
	})
	return e
}

// sample checks, every few milliseconds, that no device has a cycle in two
// live agents.
func (e *shardEnv) sample() {
	defer close(e.done)
	for {
		select {
		case <-e.stop:
			return
		case <-time.After(5 * time.Millisecond):
		}
		e.mu.Lock()
		seen := map[string]string{}
		for id, r := range e.agents {
			for _, v := range r.a.Devices() {
				if !v.Cycle {
					continue
				}
				if other, dup := seen[v.ID]; dup {
					e.double = append(e.double, fmt.Sprintf("%s in %s and %s", v.ID, other, id))
				}
				seen[v.ID] = id
			}
		}
		e.mu.Unlock()
	}
}

func (e *shardEnv) startAgent(id, shard string, extra ...string) *runningAgent {
	e.t.Helper()
	cfg := Default()
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	cfg.Bind(fs)
	err := fs.Parse(append([]string{"--broker", e.broker.URL(), "--agent-id", id, "--shard", shard,
		"--weather", "open-meteo", "--weather-url", e.weather.URL, "--geolocate-url", "", "--ip-geolocation-url", "",
		"--interval", "1h", "--restart-grace", "1m"}, extra...))
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := New(cfg, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	r := &runningAgent{id: id, shard: shard, a: a, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	e.mu.Lock()
	e.agents[id] = r
	e.mu.Unlock()
	return r
}

// stopAgent ends r: abruptly (as a SIGKILL would) when cause is ErrAbrupt,
// else cleanly. It leaves the sampled set first.
func (e *shardEnv) stopAgent(r *runningAgent, cause error) {
	e.t.Helper()
	e.mu.Lock()
	if e.agents[r.id] == r {
		delete(e.agents, r.id)
	}
	e.mu.Unlock()
	r.cancel(cause)
	select {
	case err := <-r.done:
		if err != nil {
			e.t.Errorf("agent %s: Run returned %v, want nil", r.id, err)
		}
	case <-time.After(10 * time.Second):
		e.t.Fatalf("agent %s did not stop within 10s", r.id)
	}
}

// owners maps each device with a cycle to the agents running it.
func (e *shardEnv) owners() (map[string][]string, map[string]time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out, due := map[string][]string{}, map[string]time.Time{}
	for id, r := range e.agents {
		for _, v := range r.a.Devices() {
			if v.Cycle {
				out[v.ID] = append(out[v.ID], id)
				due[v.ID] = v.Due
			}
		}
	}
	return out, due
}

// waitLayout waits until every device's cycle runs in exactly the agent
// that want names for it.
func (e *shardEnv) waitLayout(what string, want func(device string) string) map[string]time.Time {
	e.t.Helper()
	return e.waitLayoutWithin(what, 15*time.Second, want)
}

func (e *shardEnv) waitLayoutWithin(what string, within time.Duration, want func(device string) string) map[string]time.Time {
	e.t.Helper()
	var last string
	deadline := time.Now().Add(within)
	for {
		got, due := e.owners()
		var bad []string
		for _, d := range e.fleet.Devs {
			if w := want(d.ID); len(got[d.ID]) != 1 || got[d.ID][0] != w {
				bad = append(bad, fmt.Sprintf("%s: got %v, want [%s]", d.ID, got[d.ID], w))
			}
		}
		if len(bad) == 0 {
			return due
		}
		sort.Strings(bad)
		last = strings.Join(bad[:min(len(bad), 8)], "\n")
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: after %v %d devices are not where they belong:\n%s\nlive indices: %s", what, within, len(bad), last, e.liveSets())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitClaims waits until the broker has sent every device's owner back
// its claim with the device's due time.
func (e *shardEnv) waitClaims(what string, want func(device string) string, due map[string]time.Time) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var bad []string
		e.mu.Lock()
		for _, d := range e.fleet.Devs {
			r := e.agents[want(d.ID)]
			r.a.fleet.mu.Lock()
			c := r.a.fleet.own.claims[d.ID]
			r.a.fleet.mu.Unlock()
			if c == nil || c.Session != r.a.Session() || !c.NextDue.Equal(due[d.ID]) {
				bad = append(bad, d.ID)
			}
		}
		e.mu.Unlock()
		if len(bad) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: %d claims not out with their due time, e.g. %v", what, len(bad), bad[:min(len(bad), 8)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settle waits until every device has temps and its next step is armed an
// interval ahead, and returns the due times.
func (e *shardEnv) settle(what string, want func(device string) string) map[string]time.Time {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		due := e.waitLayout(what, want)
		var bad []string
		for _, d := range e.fleet.Devs {
			if d.Temps() == 0 || time.Until(due[d.ID]) < 30*time.Minute {
				bad = append(bad, fmt.Sprintf("%s: %d temps, due in %v", d.ID, d.Temps(), time.Until(due[d.ID]).Round(time.Second)))
			}
		}
		if len(bad) == 0 {
			return due
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: after 15s %d devices not served and re-armed:\n%s", what, len(bad), strings.Join(bad[:min(len(bad), 8)], "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// liveSets tells each agent's view of its shard set, for failure messages.
func (e *shardEnv) liveSets() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for id, r := range e.agents {
		r.a.mu.Lock()
		f := r.a.fleet
		r.a.mu.Unlock()
		if f == nil {
			continue
		}
		f.mu.Lock()
		out = append(out, fmt.Sprintf("%s=%v (waiting %d)", id, f.own.live, len(f.own.waiting)))
		f.mu.Unlock()
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func (e *shardEnv) checkNoDouble() {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.double) > 0 {
		e.t.Errorf("devices seen with two cycles at once: got %d, want 0; first: %s", len(e.double), e.double[0])
	}
}

func sameDue(t *testing.T, what string, got, want map[string]time.Time) {
	t.Helper()
	for id, w := range want {
		// Wall instants: the due time travels through the broker as wall
		// time, and the receiver re-anchors it on its monotonic clock.
		if g := got[id]; !g.Round(0).Equal(w.Round(0)) {
			t.Errorf("%s: %s due: got %v, want %v (the due time must travel with the device)", what, id, g, w)
		}
	}
}

func agentOf(prefix string, n int) func(string) string {
	return func(id string) string { return fmt.Sprintf("%s%d", prefix, ShardOf(id, n)) }
}

// agentAmong names the agent of a device among the live indices.
func agentAmong(prefix string, live ...int) func(string) string {
	return func(id string) string { return fmt.Sprintf("%s%d", prefix, Rendezvous(id, live)) }
}

func TestThreeAgentsShareAFleetAndAKilledOneResumes(t *testing.T) {
	e := newShardEnv(t, 30)
	start := time.Now()
	for i := range 3 {
		e.startAgent(fmt.Sprintf("a%d", i), fmt.Sprintf("%d/3", i))
	}
	due := e.settle("start", agentOf("a", 3))
	if ok, _ := e.fleet.AllTempsSince(start); !ok {
		t.Fatal("some device has no temps from this run")
	}
	requests := e.weather.Total()
	if requests != len(e.fleet.Devs) {
		t.Errorf("forecast requests for %d devices in %d places: got %d, want %d", len(e.fleet.Devs), len(e.fleet.Devs), requests, len(e.fleet.Devs))
	}

	e.mu.Lock()
	a1 := e.agents["a1"]
	e.mu.Unlock()
	e.stopAgent(a1, ErrAbrupt)
	// Nobody else takes a1's devices: they are in no other shard.
	time.Sleep(300 * time.Millisecond)
	got, _ := e.owners()
	for _, d := range e.fleet.Devs {
		if ShardOf(d.ID, 3) == 1 && len(got[d.ID]) != 0 {
			t.Errorf("%s with a1 down: got cycles in %v, want none", d.ID, got[d.ID])
		}
	}

	e.startAgent("a1", "1/3")
	after := e.waitLayout("a1 restarted", agentOf("a", 3))
	sameDue(t, "a1 restarted", after, due)
	if got := e.weather.Total(); got != requests {
		t.Errorf("forecast requests after the restart: got %d, want %d (no device was overdue)", got, requests)
	}
	e.checkNoDouble()
}

// A new index joins a running set: it takes over the devices it wins, at
// their due times and without a fetch, and no other device moves.
func TestAddingAShardMovesOnlyItsDevices(t *testing.T) {
	e := newShardEnv(t, 40)
	e.startAgent("b0", "0/2")
	e.startAgent("b1", "1/2")
	due := e.settle("two agents", agentOf("b", 2))
	requests := e.weather.Total()

	e.startAgent("b2", "2/3")
	after := e.waitLayout("three agents", agentOf("b", 3))
	sameDue(t, "after the handover", after, due)
	if got := e.weather.Total(); got != requests {
		t.Errorf("forecast requests after the handover: got %d, want %d (a handover costs no fetch)", got, requests)
	}
	moved := 0
	for _, d := range e.fleet.Devs {
		if ShardOf(d.ID, 3) == 2 {
			moved++
		}
	}
	if moved == 0 || moved == len(e.fleet.Devs) {
		t.Errorf("devices moved to the new index: got %d of %d, want some, not all", moved, len(e.fleet.Devs))
	}
	e.checkNoDouble()

	// Every claim names the device's new owner.
	for _, d := range e.fleet.Devs {
		want := agentOf("b", 3)(d.ID)
		e.mu.Lock()
		r := e.agents[want]
		e.mu.Unlock()
		var last string
		deadline := time.Now().Add(5 * time.Second)
		for {
			r.a.fleet.mu.Lock()
			c := r.a.fleet.own.claims[d.ID]
			r.a.fleet.mu.Unlock()
			// Claims are published on a change of hands: the claimed due
			// time may be whole intervals before the current one.
			if c != nil && c.Agent == want && c.Session == r.a.Session() && !c.Released && due[d.ID].Sub(c.NextDue)%time.Hour == 0 {
				break
			}
			b, _ := json.Marshal(c)
			last = string(b)
			if time.Now().After(deadline) {
				t.Errorf("%s claim: got %s, want agent %s session %s next_due %v", d.ID, last, want, r.a.Session(), due[d.ID])
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// The scenario on one Mosquitto with the shipped config and 1,000
// simulated devices: three agents; one is killed and, after the restart
// grace, the survivors serve its devices at their due times; it returns
// and gets them back; a fourth joins and takes about a quarter. Never two
// cycles at once, no device without an agent longer than the grace plus
// one interval, and no forecast fetched twice.
func TestShardSetFailsOverHandsBackAndGrows(t *testing.T) {
	const grace = 3 * time.Second
	e := newShardEnv(t, 1000)
	args := []string{"--restart-grace", grace.String()}
	for i := range 3 {
		e.startAgent(fmt.Sprintf("s%d", i), fmt.Sprintf("%d/3", i), args...)
	}
	var due map[string]time.Time
	mqtttest.WaitFor(t, 90*time.Second, "every device served and re-armed", func() bool {
		due = e.waitLayoutWithin("three agents", 60*time.Second, agentAmong("s", 0, 1, 2))
		for _, d := range e.fleet.Devs {
			if d.Temps() == 0 || time.Until(due[d.ID]) < 30*time.Minute {
				return false
			}
		}
		return true
	})
	// The kill must find every first step's claim out: a claim still
	// queued dies with its agent, and a new owner then serves the step of
	// the older claim at once (resumeFrom), which is right after a crash
	// but not what this test measures.
	e.waitClaims("three agents", agentAmong("s", 0, 1, 2), due)
	requests := e.weather.Total()
	e.mu.Lock()
	s1 := e.agents["s1"]
	e.mu.Unlock()
	killed := time.Now()
	e.stopAgent(s1, ErrAbrupt)
	// Within the grace nobody takes s1's devices (a restart would keep them).
	time.Sleep(grace / 3)
	got, _ := e.owners()
	for _, d := range e.fleet.Devs {
		if Rendezvous(d.ID, []int{0, 1, 2}) == 1 && len(got[d.ID]) != 0 {
			t.Errorf("%s within the grace: got cycles in %v, want none", d.ID, got[d.ID])
		}
	}
	after := e.waitLayoutWithin("s1 dead", 30*time.Second, agentAmong("s", 0, 2))
	if took := time.Since(killed); took > grace+10*time.Second {
		t.Errorf("takeover after the kill: got %v, want about the %v grace", took, grace)
	}
	sameDue(t, "taken over", after, due)

	e.startAgent("s1", "1/3", args...)
	after = e.waitLayoutWithin("s1 back", 30*time.Second, agentAmong("s", 0, 1, 2))
	sameDue(t, "handed back", after, due)

	e.startAgent("s3", "3/4", args...)
	after = e.waitLayoutWithin("a fourth agent", 30*time.Second, agentAmong("s", 0, 1, 2, 3))
	sameDue(t, "after the fourth joined", after, due)

	if got := e.weather.Total(); got != requests {
		t.Errorf("forecast requests after the moves: got %d, want %d (a move costs no fetch)", got, requests)
	}
	e.checkNoDouble()
}

func TestSecondAgentOnTheSameShardWaitsThenTakesOver(t *testing.T) {
	// Two agents that both hold the devices in their shard (an overlapping
	// map) never run two cycles: the second waits for the first's claims,
	// and takes the devices over at their due time when the first dies.
	e := newShardEnv(t, 6)
	c0 := e.startAgent("c0", "0/1")
	due := e.settle("one agent", func(string) string { return "c0" })
	e.startAgent("c1", "0/1")
	time.Sleep(300 * time.Millisecond)
	e.waitLayout("second agent waits", func(string) string { return "c0" })
	e.stopAgent(c0, ErrAbrupt)
	after := e.waitLayout("taken over", func(string) string { return "c1" })
	sameDue(t, "taken over", after, due)
	e.checkNoDouble()
}

// Two live agents holding one device's cycle (a flapping connection, an
// overlapping shard map) must agree on one winner without comparing their
// clocks: the higher claim epoch, then the greater agent id. Before, the
// later ts won, so an agent whose clock ran hours ahead won every
// collision, even with a stale claim.
func TestClaimCollisionIsDecidedByEpochNotClock(t *testing.T) {
	tests := []struct {
		name      string
		agent     string
		epoch     uint64
		skew      time.Duration
		wantYield bool
	}{
		{"same epoch, greater id, clock behind", "z", 1, -3 * time.Hour, true},
		{"same epoch, smaller id, clock ahead", "b", 1, 3 * time.Hour, false},
		{"higher epoch, smaller id, clock behind", "b", 2, -3 * time.Hour, true},
		{"no epoch (an older agent), greater id, clock ahead", "z", 0, 3 * time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h, o := settledOwnership(t, "0/1", "m", "sm")
				h.f.connected()
				st, _ := json.Marshal(protocol.AgentStatus{Online: true, Session: "s-" + tt.agent, TS: time.Now().Add(tt.skew)})
				o.onAgentMsg(mqttmsg.Message{Topic: protocol.AgentStatusTopic(tt.agent), Payload: st})
				h.announce("d", "b1", false)
				synctest.Wait()
				if !h.cycles("d") {
					t.Fatal("no cycle after ready")
				}
				c, _ := json.Marshal(protocol.Claim{Agent: tt.agent, Session: "s-" + tt.agent, Epoch: tt.epoch, TS: time.Now().Add(tt.skew).UTC(), BootID: "b1"})
				o.onClaimMsg(mqttmsg.Message{Topic: protocol.OwnerTopic("d"), Payload: c, Retained: false})
				synctest.Wait()
				if got := !h.cycles("d"); got != tt.wantYield {
					t.Errorf("yielded: got %v, want %v", got, tt.wantYield)
				}
			})
		})
	}
}

// Regression (chaos, agent-overlap with a fresh state dir): the retained
// owner claim, with the seq of the last temps sent, arrived before
// anything else of the device, when there was no device to give it to; the
// new agent numbered from the device's ready, far below what the device
// showed, and every first message was dropped.
func TestClaimSeqArrivingBeforeTheDeviceIsKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, o := settledOwnership(t, "0/1", "main", "s-new")
		h.f.connected()
		c := protocol.Claim{Agent: "main", Session: "s-old", Epoch: 3, TS: time.Now().UTC(), BootID: "b1", TempsSeq: 105}
		o.onClaimMsg(mqttmsg.Message{Topic: protocol.OwnerTopic("d"), Payload: c.Marshal(), Retained: true})
		h.f.onStatus("d", online("b1", time.Now()), true)
		h.f.onReady("d", &protocol.Ready{BootID: "b1", LEDs: 5, TempsSeq: 60}, true)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := h.snd.seqsOf("d"); len(got) == 0 || got[0] != 106 {
			t.Fatalf("first seq: got %v, want 106 (above the claim's 105)", got)
		}
	})
}

// Regression (chaos, agent-overlap): a claim is published when a device
// changes hands and after the first step, not every cycle, so a newer
// process of the same agent id (the older still running until it sees the
// newer's status) found a claimed due time long past and a temps seq many
// steps old. It stepped at once, right after the older's own step (two
// temps a fraction of an interval apart), numbered below what the device
// showed. It must resume in the claimant's phase, at the first of its due
// times not before now, numbered above one temps per interval since.
func TestClaimPastItsDueTimeResumesInPhaseAndNumbersAbove(t *testing.T) {
	tests := []struct {
		name     string
		released bool
		ended    bool          // the claimant's session was seen offline
		claimDue time.Duration // claimed next_due, from now
		wantAt   time.Duration // when the first temps goes, from now
		wantSeq  uint64
	}{
		{"due ahead", false, false, 20 * time.Minute, 20 * time.Minute, 41},
		{"one step behind", false, false, -10 * time.Minute, 20 * time.Minute, 42},
		{"three steps behind", false, false, -70 * time.Minute, 20 * time.Minute, 44},
		{"hours behind", false, false, -5*time.Hour - 25*time.Minute, 5 * time.Minute, 52},
		// A released claim names the first step its releaser did not
		// serve (regression: taken as held, it waited a whole interval
		// and the device had no temps from this boot for an hour).
		{"released, due ahead", true, false, 20 * time.Minute, 20 * time.Minute, 41},
		{"released, due just past", true, false, -2 * time.Second, time.Second, 41},
		{"released, hours past", true, false, -5 * time.Hour, time.Second, 41},
		// A claimant whose session ended (SIGKILLed: its will) may have
		// died just before the step now past: serve it at once, numbered
		// above every step it could have sent (regression, e2e
		// TestAgentMigration without a state dir: killed just before its
		// step, the new agent waited a whole interval more).
		{"claimant ended, due ahead", false, true, 20 * time.Minute, 20 * time.Minute, 41},
		{"claimant ended, one step behind", false, true, -10 * time.Minute, time.Second, 42},
		{"claimant ended, three steps behind", false, true, -70 * time.Minute, time.Second, 44},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h, o := settledOwnership(t, "0/1", "main", "s-new")
				h.f.connected()
				start := time.Now()
				c := protocol.Claim{Agent: "main", Session: "s-old", Epoch: 1, TS: start.Add(-6 * time.Hour).UTC(),
					BootID: "b1", NextDue: start.Add(tt.claimDue).UTC(), TempsSeq: 40, Released: tt.released}
				o.onClaimMsg(mqttmsg.Message{Topic: protocol.OwnerTopic("d"), Payload: c.Marshal(), Retained: true})
				if tt.ended {
					st, _ := json.Marshal(protocol.AgentStatus{Online: false, Session: "s-old", TS: start})
					o.onAgentMsg(mqttmsg.Message{Topic: protocol.AgentStatusTopic("main"), Payload: st, Retained: true})
				}
				h.f.onStatus("d", online("b1", start), true)
				h.f.onReady("d", &protocol.Ready{BootID: "b1", LEDs: 5, TempsSeq: 12}, true)
				if !h.cycles("d") {
					t.Fatal("no cycle resumed")
				}
				time.Sleep(tt.wantAt - time.Second)
				synctest.Wait()
				if got := h.snd.count("d"); got != 0 {
					t.Fatalf("temps before the claimant's next due time (%v from now): got %d, want 0", tt.wantAt, got)
				}
				time.Sleep(2 * time.Second)
				synctest.Wait()
				if got := h.snd.seqsOf("d"); !slices.Equal(got, []uint64{tt.wantSeq}) {
					t.Fatalf("seqs at the claimant's next due time: got %v, want [%d]", got, tt.wantSeq)
				}
			})
		})
	}
}

// A taker resumes on the claimed due time moved on by whole intervals, so a
// cycle whose phase moves (here a renumbered step, sent at once rather than
// at its due time) claims the new phase; staying in phase costs nothing.
func TestClaimIsPublishedAgainWhenThePhaseMoves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, o := settledOwnership(t, "0/1", "a0", "s0")
		claims := func() []protocol.Claim {
			o.qmu.Lock()
			defer o.qmu.Unlock()
			var out []protocol.Claim
			for _, id := range o.queue {
				if c, ok := o.pending[id]; ok {
					out = append(out, c)
				}
			}
			clear(o.pending)
			o.queue = nil
			return out
		}
		h.f.connected()
		h.announce("d", "b1", false)
		synctest.Wait()
		if got := len(claims()); got != 1 {
			t.Fatalf("claims after taking on and the first step: got %d, want 1 (the newest)", got)
		}
		time.Sleep(2*tInterval + time.Minute)
		synctest.Wait()
		if got := claims(); len(got) != 0 {
			t.Fatalf("claims after two steps in phase: got %+v, want none", got)
		}
		h.f.onReady("d", &protocol.Ready{BootID: "b1", LEDs: 5, TempsSeq: 50}, false)
		moved := time.Now()
		synctest.Wait()
		got := claims()
		// The renumbered step is due now, numbered above 50: a taker
		// moves that on by whole intervals.
		if len(got) != 1 || !got[0].NextDue.Equal(moved.UTC()) || got[0].TempsSeq != 50 {
			t.Fatalf("claims after the renumbered step: got %+v, want one with next_due %v and temps_seq 50", got, moved.UTC())
		}
		time.Sleep(tInterval)
		synctest.Wait()
		if got := claims(); len(got) != 0 {
			t.Fatalf("claims after a step in the new phase: got %+v, want none", got)
		}
	})
}

// A device handed to a new index while its step is in flight: the released
// claim names the first step not served. A step that took its seq before
// the handover sends its temps, and the taker goes on an interval later; one
// that had not yet is the taker's to serve at once. Regression (three
// agents starting together): the step in flight was dropped, the claim
// named its past due time, and the taker waited a whole interval.
func TestReleaseDuringAStepNamesTheFirstStepNotServed(t *testing.T) {
	id := deviceOfIndex("rel", 1, 0, 1)
	for _, numbered := range []bool{false, true} {
		t.Run(fmt.Sprintf("numbered=%v", numbered), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h, o := settledOwnership(t, "0/2", "a0", "s0")
				gate := make(chan struct{})
				if numbered {
					h.snd.gate = gate
				} else {
					h.fc.delay = time.Minute
				}
				h.f.connected()
				h.announce(id, "b1", false)
				time.Sleep(2 * time.Second) // past the first due time; the step hangs
				synctest.Wait()
				h.f.mu.Lock()
				first := h.f.devices[id].due
				h.f.mu.Unlock()

				st, _ := json.Marshal(protocol.AgentStatus{Online: true, Session: "s1", TS: time.Now(), Shard: "1/2"})
				o.onAgentMsg(mqttmsg.Message{Topic: protocol.AgentStatusTopic("a1"), Payload: st})
				close(gate)
				time.Sleep(2 * time.Minute)
				synctest.Wait()
				if h.cycles(id) {
					t.Fatal("cycle still here after the handover")
				}
				c, ok := o.queued(id)
				if !ok || !c.Released {
					t.Fatalf("claim after the handover: got %+v, want a released one", c)
				}
				wantDue, wantSeq, wantSent := first, uint64(0), 0
				if numbered {
					wantDue, wantSeq, wantSent = first.Add(tInterval), 1, 1
				}
				if !c.NextDue.Equal(wantDue.UTC()) || c.TempsSeq != wantSeq {
					t.Errorf("released claim: got next_due %v temps_seq %d, want %v and %d", c.NextDue, c.TempsSeq, wantDue.UTC(), wantSeq)
				}
				if got := h.snd.count(id); got != wantSent {
					t.Errorf("temps sent by the releaser: got %d, want %d", got, wantSent)
				}
			})
		})
	}
}

// An agent restarted under a shard set that gives a device to another
// index releases its previous process's claim: that process claimed once
// and served a step every interval since, so the release names the first
// of its due times not yet past, numbered above one temps per interval (a
// released claim is taken as exact: a past due time would be stepped at
// once, right after that process's last step).
func TestStaleClaimOfOurPreviousProcessIsReleasedInPhase(t *testing.T) {
	id := deviceOfIndex("stale", 1, 0, 1)
	synctest.Test(t, func(t *testing.T) {
		h, o := settledOwnership(t, "0/2", "a0", "s-new")
		h.f.connected()
		now := time.Now()
		c := protocol.Claim{Agent: "a0", Session: "s-old", Epoch: 2, TS: now.Add(-5 * time.Hour).UTC(),
			BootID: "b1", NextDue: now.Add(-70 * time.Minute).UTC(), TempsSeq: 40}
		o.onClaimMsg(mqttmsg.Message{Topic: protocol.OwnerTopic(id), Payload: c.Marshal(), Retained: true})
		st, _ := json.Marshal(protocol.AgentStatus{Online: true, Session: "s1", TS: now, Shard: "1/2"})
		o.onAgentMsg(mqttmsg.Message{Topic: protocol.AgentStatusTopic("a1"), Payload: st, Retained: true})
		got, ok := o.queued(id)
		if !ok || !got.Released || got.Session != "s-new" {
			t.Fatalf("claim queued: got %+v (queued %v), want a release by this process", got, ok)
		}
		// 70 minutes behind at a 30-minute interval: three steps served.
		if want := now.Add(20 * time.Minute).UTC(); !got.NextDue.Equal(want) || got.TempsSeq != 43 {
			t.Errorf("release: got next_due %v temps_seq %d, want %v and 43", got.NextDue, got.TempsSeq, want)
		}
	})
}

// deviceOfIndex is the first device id with prefix that rendezvous hashing
// gives to index among live.
func deviceOfIndex(prefix string, index int, live ...int) string {
	for i := 0; ; i++ {
		if id := sim.ID(prefix, i); Rendezvous(id, live) == index {
			return id
		}
	}
}

// queued is the claim waiting to be published for device id, if any.
func (o *ownership) queued(id string) (protocol.Claim, bool) {
	o.qmu.Lock()
	defer o.qmu.Unlock()
	c, ok := o.pending[id]
	return c, ok
}

// The ended sessions are kept while a claim names one, not for ever: an
// agent that runs for years sees a session end at every restart of every
// agent of its set.
func TestEndedSessionsArePrunedToThoseClaimsName(t *testing.T) {
	h := newHarness(t, "", ResumeFast)
	o := newOwnership(h.f, "0/1", "main", "s-new", nil)
	c := protocol.Claim{Agent: "other", Session: "s-claimed", Epoch: 1, TS: time.Now().UTC(), BootID: "b1", NextDue: time.Now().UTC(), TempsSeq: 1}
	o.onClaimMsg(mqttmsg.Message{Topic: protocol.OwnerTopic("d"), Payload: c.Marshal(), Retained: true})
	offline := func(session string) {
		st, _ := json.Marshal(protocol.AgentStatus{Online: false, Session: session, TS: time.Now()})
		o.onAgentMsg(mqttmsg.Message{Topic: protocol.AgentStatusTopic("other"), Payload: st})
	}
	offline("s-claimed")
	for i := range endedMax + 10 {
		offline(fmt.Sprintf("s-%d", i))
	}
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	if len(o.ended) > endedMax {
		t.Errorf("ended sessions kept: %d, want at most %d", len(o.ended), endedMax)
	}
	if !o.ended["s-claimed"] {
		t.Error("the session a claim names was forgotten: its device would wait an interval after a kill")
	}
}

// settledOwnership is an agent with shard spec, agent id and session whose
// ownership has read the broker's retained state (nothing in it).
func settledOwnership(t *testing.T, shard, agentID, session string) (*harness, *ownership) {
	t.Helper()
	h := newHarness(t, "", ResumeFast)
	o := newOwnership(h.f, shard, agentID, session, nil)
	o.settled = true
	return h, o
}
