// Package sharding runs a shard set of real glowcast-agent processes over
// 1,000 simulated devices on one Mosquitto with the shipped config: three
// agents, one SIGKILLed and brought back, then a fourth index added. It
// checks what the broker and the devices show, never the agents' insides:
// the retained ownership claims, each agent's cycles_running gauge, the
// temps each device received and the forecast requests made.
package sharding

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/glowcast/glowcast/agent"
	"github.com/glowcast/glowcast/cmd/glowcast/sim"
	"github.com/glowcast/glowcast/protocol"
	"github.com/glowcast/glowcast/test/kit/binaries"
	"github.com/glowcast/glowcast/test/kit/metrics"
	"github.com/glowcast/glowcast/test/kit/mqtttest"
	"github.com/glowcast/glowcast/test/kit/mqttwatch"
	"github.com/glowcast/glowcast/test/kit/proc"
	"github.com/glowcast/glowcast/test/kit/weathertest"
)

var binDir string

func TestMain(m *testing.M) { binaries.Main(m, &binDir) }

const (
	devices  = 1000
	interval = time.Hour
	grace    = 3 * time.Second
)

type world struct {
	t       *testing.T
	broker  *mqtttest.Broker
	weather *weathertest.Server
	fleet   *sim.Fleet
	claims  *mqttwatch.Watcher
	agents  map[string]*runner
}

type runner struct {
	index string // "i/N"
	p     *proc.Proc
	http  string
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, broker: mqtttest.Start(t), weather: weathertest.New(), agents: map[string]*runner{}}
	t.Cleanup(w.weather.Close)
	cfg := sim.Default()
	cfg.Broker, cfg.Devices, cfg.Places, cfg.Prefix = w.broker.URL(), devices, 100, "shp"
	f, err := sim.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	w.fleet = f
	cw, err := mqttwatch.Start(w.broker.URL(), "sharding-claims", protocol.OwnerFilter)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cw.Close)
	w.claims = cw
	return w
}

// start runs agent id as index shard ("i/N"), with a state dir of its own
// kept across restarts.
func (w *world) start(id, shard string) *runner {
	w.t.Helper()
	if r := w.agents[id]; r != nil {
		if err := r.p.Start(); err != nil {
			w.t.Fatal(err)
		}
		return r
	}
	state := filepath.Join(w.t.TempDir(), id)
	if err := os.MkdirAll(state, 0o700); err != nil {
		w.t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", mqtttest.FreePort(w.t))
	p := binaries.Start(w.t, binDir, "glowcast-agent", nil,
		"--broker", w.broker.URL(), "--agent-id", id, "--shard", shard, "--state-dir", state,
		"--weather", "open-meteo", "--weather-url", w.weather.URL, "--geolocate-url", "", "--ip-geolocation-url", "",
		"--interval", interval.String(), "--restart-grace", grace.String(), "--http", addr, "--log-level", "warn",
		"--hass-discovery=false")
	r := &runner{index: shard, p: p, http: addr}
	w.agents[id] = r
	return r
}

// owner names the agent a device belongs to among the live agents.
func owner(device string, live map[string]int) string {
	idx := make([]int, 0, len(live))
	by := map[int]string{}
	for id, i := range live {
		idx = append(idx, i)
		by[i] = id
	}
	sort.Ints(idx)
	return by[agent.Rendezvous(device, idx)]
}

// layout waits until every device's retained claim is held (not released)
// by the agent that owns it among live, each live agent runs exactly the
// cycles of its devices, and every device has temps and a due time at
// least half an interval ahead. It returns the claimed due times.
func (w *world) layout(what string, within time.Duration, live map[string]int) map[string]time.Time {
	w.t.Helper()
	deadline := time.Now().Add(within)
	for {
		due, bad := w.check(live)
		if len(bad) == 0 {
			return due
		}
		if time.Now().After(deadline) {
			sort.Strings(bad)
			w.t.Fatalf("%s: after %v, %d problems; first:\n%s", what, within, len(bad), strings.Join(bad[:min(len(bad), 10)], "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (w *world) check(live map[string]int) (map[string]time.Time, []string) {
	var bad []string
	due := map[string]time.Time{}
	want := map[string]int{}
	for _, d := range w.fleet.Devs {
		o := owner(d.ID, live)
		want[o]++
		b := w.claims.Last(protocol.OwnerTopic(d.ID))
		var c protocol.Claim
		if err := json.Unmarshal(b, &c); err != nil || len(b) == 0 {
			bad = append(bad, fmt.Sprintf("%s: no claim yet", d.ID))
			continue
		}
		switch {
		case c.Agent != o || c.Released:
			bad = append(bad, fmt.Sprintf("%s: claim by %s (released %v), want held by %s", d.ID, c.Agent, c.Released, o))
		case d.Temps() == 0:
			bad = append(bad, fmt.Sprintf("%s: no temps", d.ID))
		case time.Until(c.NextDue) < interval/2:
			bad = append(bad, fmt.Sprintf("%s: next_due %v, want the step served and the next one armed", d.ID, time.Until(c.NextDue).Round(time.Second)))
		}
		due[d.ID] = c.NextDue
	}
	for id := range live {
		r := w.agents[id]
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := metrics.Scrape(ctx, "http://"+r.http+"/metrics")
		cancel()
		if err != nil {
			bad = append(bad, fmt.Sprintf("agent %s: metrics: %v", id, err))
			continue
		}
		if got := int(s["glowcast_agent_cycles_running"]); got != want[id] {
			bad = append(bad, fmt.Sprintf("agent %s: %d cycles running, want %d", id, got, want[id]))
		}
	}
	return due, bad
}

// sameDue checks that the due times moved with the devices: a handover
// costs no step.
func sameDue(t *testing.T, what string, got, want map[string]time.Time) {
	t.Helper()
	n := 0
	for id, w := range want {
		if g := got[id]; !g.Equal(w) {
			if n < 5 {
				t.Errorf("%s: %s next_due %v, want %v (the due time travels with the device)", what, id, g, w)
			}
			n++
		}
	}
	if n > 0 {
		t.Errorf("%s: %d of %d due times moved", what, n, len(want))
	}
}

func (w *world) violations() {
	w.t.Helper()
	for id, r := range w.agents {
		if !r.p.Alive() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := metrics.Scrape(ctx, "http://"+r.http+"/metrics")
		cancel()
		if err != nil {
			w.t.Errorf("agent %s: metrics: %v", id, err)
			continue
		}
		if v := s["glowcast_agent_parallel_cycle_violations_total"]; v != 0 {
			w.t.Errorf("agent %s: %v parallel runs of one device's cycle, want 0", id, v)
		}
	}
}

// Three agents share 1,000 devices; one is SIGKILLed: its devices stay
// put for the restart grace, then move to the survivors at their due
// times; it comes back and gets them back; a fourth index joins and takes
// only the devices it wins. Every device has one cycle throughout (each
// agent's gauge and the claims agree), no move costs a forecast request
// or sends a device a second temps, and the due times travel.
func TestShardSetOfProcessesFailsOverHandsBackAndGrows(t *testing.T) {
	w := newWorld(t)
	for i := range 3 {
		w.start(fmt.Sprintf("s%d", i), fmt.Sprintf("%d/3", i))
	}
	all := map[string]int{"s0": 0, "s1": 1, "s2": 2}
	due := w.layout("three agents", 90*time.Second, all)
	requests := w.weather.Total()
	// Each agent fetches once per place of its own devices: devices of
	// every place are spread over the three.
	if requests > 3*100 {
		t.Errorf("forecast requests for 100 places and 3 agents: got %d, want at most 300", requests)
	}

	killed := time.Now()
	w.agents["s1"].p.Kill()
	// Within the grace a restart would keep its devices: nobody takes them.
	time.Sleep(grace / 3)
	for _, d := range w.fleet.Devs {
		var c protocol.Claim
		json.Unmarshal(w.claims.Last(protocol.OwnerTopic(d.ID)), &c)
		if owner(d.ID, all) == "s1" && c.Agent != "s1" {
			t.Errorf("%s within the grace: claimed by %s, want still s1", d.ID, c.Agent)
		}
	}
	after := w.layout("s1 killed", grace+30*time.Second, map[string]int{"s0": 0, "s2": 2})
	if took := time.Since(killed); took > grace+interval {
		t.Errorf("takeover: %v after the kill, want within the grace plus one interval", took)
	}
	sameDue(t, "taken over", after, due)

	w.start("s1", "1/3")
	after = w.layout("s1 back", 30*time.Second, all)
	sameDue(t, "handed back", after, due)

	w.start("s3", "3/4")
	four := map[string]int{"s0": 0, "s1": 1, "s2": 2, "s3": 3}
	after = w.layout("a fourth agent", 30*time.Second, four)
	sameDue(t, "after the fourth joined", after, due)
	moved := 0
	for _, d := range w.fleet.Devs {
		if owner(d.ID, four) == "s3" {
			moved++
		} else if owner(d.ID, four) != owner(d.ID, all) {
			t.Errorf("%s moved from %s to %s when s3 joined, want only moves to s3", d.ID, owner(d.ID, all), owner(d.ID, four))
		}
	}
	if moved < devices/4*7/10 || moved > devices/4*13/10 {
		t.Errorf("devices moved to the fourth index: got %d, want about %d", moved, devices/4)
	}

	if got := w.weather.Total(); got != requests {
		t.Errorf("forecast requests after the moves: got %d, want %d (a move costs no fetch)", got, requests)
	}
	for _, d := range w.fleet.Devs {
		if n := d.Temps(); n != 1 {
			t.Errorf("%s: %d temps, want 1 (no move sends a second)", d.ID, n)
		}
	}
	w.violations()
}
