package agent

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	dto "github.com/prometheus/client_model/go"

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
	// FNV-1a 32 of "a" is 0xe40c292c: a fixed value every agent of a fleet
	// must agree on, whatever its version.
	if got, want := ShardOf("a", 1000), int(0xe40c292c%1000); got != want {
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

func (e *shardEnv) startAgent(id, shard string) *runningAgent {
	e.t.Helper()
	cfg := Default()
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	cfg.Bind(fs)
	err := fs.Parse([]string{"--broker", e.broker.URL(), "--agent-id", id, "--shard", shard,
		"--weather", "open-meteo", "--weather-url", e.weather.URL, "--geolocate-url", "", "--ip-geolocation-url", "",
		"--interval", "1h", "--restart-grace", "1m"})
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
	var last string
	deadline := time.Now().Add(15 * time.Second)
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
			e.t.Fatalf("%s: after 15s %d devices are not where they belong:\n%s", what, len(bad), last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settle waits until every device has temps and its next step is armed an
// interval ahead, and returns the due times.
func (e *shardEnv) settle(what string, want func(device string) string) map[string]time.Time {
	e.t.Helper()
	var due map[string]time.Time
	mqtttest.WaitFor(e.t, 15*time.Second, what+": every device served and re-armed", func() bool {
		due = e.waitLayout(what, want)
		for _, d := range e.fleet.Devs {
			if d.Temps() == 0 || time.Until(due[d.ID]) < 30*time.Minute {
				return false
			}
		}
		return true
	})
	return due
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

func TestChangingNHandsDevicesOverWithoutTwoCycles(t *testing.T) {
	e := newShardEnv(t, 40)
	e.startAgent("b0", "0/2")
	b1 := e.startAgent("b1", "1/2")
	due := e.settle("two agents", agentOf("b", 2))
	requests := e.weather.Total()

	// A third agent for 2/3 waits: its devices are held by live agents.
	b2 := e.startAgent("b2", "2/3")
	time.Sleep(300 * time.Millisecond)
	got, _ := e.owners()
	for _, d := range e.fleet.Devs {
		if len(got[d.ID]) != 1 || got[d.ID][0] != agentOf("b", 2)(d.ID) {
			t.Errorf("%s with b2 waiting: got cycles in %v, want only %s", d.ID, got[d.ID], agentOf("b", 2)(d.ID))
		}
	}
	mqtttest.WaitFor(t, 5*time.Second, "b2 waiting for its devices", func() bool {
		b2.a.mu.Lock()
		f := b2.a.fleet
		b2.a.mu.Unlock()
		if f == nil {
			return false
		}
		var m dto.Metric
		f.own.waitingG.Write(&m)
		return m.GetGauge().GetValue() > 0
	})

	// Rolling restart onto the new map.
	e.mu.Lock()
	b0 := e.agents["b0"]
	e.mu.Unlock()
	e.stopAgent(b0, nil)
	e.startAgent("b0", "0/3")
	e.stopAgent(b1, nil)
	e.startAgent("b1", "1/3")

	after := e.waitLayout("three agents", agentOf("b", 3))
	sameDue(t, "after the handover", after, due)
	if got := e.weather.Total(); got != requests {
		t.Errorf("forecast requests after the handover: got %d, want %d (a handover costs no fetch)", got, requests)
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
			if c != nil && c.Agent == want && c.Session == r.a.Session() && !c.Released && c.NextDue.Equal(due[d.ID]) {
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
				h := newHarness(t, "", ResumeFast)
				o := newOwnership(h.f, "0/1", "m", "sm", nil)
				o.settled = true
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
		h := newHarness(t, "", ResumeFast)
		o := newOwnership(h.f, "0/1", "main", "s-new", nil)
		o.settled = true
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
