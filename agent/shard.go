package agent

// Scale-out: several agent processes share one fleet, each device owned by
// exactly one of them at a time. The coordination lives on the broker, not
// in a coordinator of our own:
//
//   - rendezvous hashing over the live members of the shard set: each agent
//     announces its index i of --shard i/N in its retained status, and a
//     device belongs to the live index with the highest score of
//     (device, index). A member that goes offline keeps its devices for the
//     restart grace (a restart moves nothing), then they spread over the
//     survivors; when it returns they come back; a new index takes about
//     1/(N+1) of the devices and moves no other;
//   - a retained ownership claim per device, glowcast/v1/<device>/owner,
//     published when the device changes hands (taken on, released), not
//     every cycle, carrying the due time and the interval's phase. Another
//     agent that should own the device waits while the claim's agent is
//     online with the claiming session, and takes the device over, at the
//     claimed due time moved on by whole intervals, when that agent goes
//     offline or releases the claim.

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glowcast/glowcast/mqttmsg"
	"github.com/glowcast/glowcast/protocol"
)

// PathTakeover counts cycles taken over from another agent.
const PathTakeover = "takeover"

// ShardMap is the seam between the fleet and how a shard set splits the
// devices: the fleet, the inventory and Home Assistant ask it only whether
// this agent serves a device now.
type ShardMap interface {
	Owns(device string) bool
}

// Shard is this agent's index in a shard set of N. Alone (every other
// index offline) it serves the whole fleet. The zero value and 0/1 own
// every device.
type Shard struct{ I, N int }

// ParseShard parses "i/N" with 0 ≤ i < N.
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("%q is not i/N (e.g. 0/3 for the first of three agents)", s)
	}
	if n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("%q: need N ≥ 1 and 0 ≤ i < N", s)
	}
	return Shard{I: i, N: n}, nil
}

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.I, max(s.N, 1)) }

// Owns reports whether the device belongs to this shard when every index
// 0…N-1 is live.
func (s Shard) Owns(device string) bool {
	if s.N <= 1 {
		return true
	}
	return ShardOf(device, s.N) == s.I
}

// ShardOf is the index of a device's agent among n live ones, 0…n-1.
func ShardOf(device string, n int) int {
	best, top := 0, uint64(0)
	for i := range n {
		if sc := score(device, i); i == 0 || sc > top {
			best, top = i, sc
		}
	}
	return best
}

// Rendezvous picks the device's index among the live ones: the highest
// score wins, ties to the lower index. Removing an index moves only its
// own devices, spread over the others; adding one moves only the devices
// it now wins. -1 if live is empty.
func Rendezvous(device string, live []int) int {
	best, top := -1, uint64(0)
	for _, i := range live {
		if sc := score(device, i); best < 0 || sc > top || (sc == top && i < best) {
			best, top = i, sc
		}
	}
	return best
}

// score is FNV-1a (64 bit) of "<device>/<index>", finished with
// SplitMix64's mixer so nearby indices score independently. It is part of
// the deployment contract: every agent of a fleet must compute the same.
func score(device string, i int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(device))
	h.Write([]byte{'/'})
	h.Write(strconv.AppendInt(nil, int64(i), 10))
	z := h.Sum64()
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// publisher is what the ownership needs of the broker client.
type publisher interface {
	Publish(ctx context.Context, topic string, payload []byte, retained bool) error
}

// ownership decides which devices this agent may run. Its maps are guarded
// by fleet.mu: the fleet calls in with mu held, handlers take it.
type ownership struct {
	f       *fleet
	shard   Shard
	agent   string
	session string

	settled bool // retained claims seen (sync echo)
	// onSettled run (under fleet.mu, so they must not block) once the
	// retained messages of the first connect are all in.
	onSettled []func()
	claims    map[string]*protocol.Claim      // newest claim per device
	agents    map[string]protocol.AgentStatus // newest status per agent id
	// ended are the agent sessions seen offline (a will or a goodbye): a
	// claim of one is held by no process. Per session, not per agent id:
	// our own birth replaces our previous process's status, which says
	// nothing of whether that process still runs.
	ended    map[string]bool
	waiting  map[string]bool          // ours by shard, held by a live agent
	deferred map[string]deferredStart // waiting for the claims to settle
	mine     map[string]held          // the cycles we run, as last claimed

	// The shard set's membership: the index each other agent announced,
	// and the indices of members gone offline whose restart grace runs
	// (they keep their devices meanwhile). live is the sorted set of
	// indices that own devices now, this agent's included.
	members map[string]int
	gone    map[string]*time.Timer
	live    []int

	pub     publisher
	qmu     sync.Mutex
	queue   []string                  // device ids with a claim to publish, in order
	pending map[string]protocol.Claim // newest claim to publish per device
	// inflight devices have a claim being published: a newer one waits
	// for it, or two workers could reach the broker in reverse order and
	// leave the older claim retained.
	inflight map[string]bool
	kick     chan struct{}

	waitingG  prometheus.Gauge
	handovers *prometheus.CounterVec
}

// held is what we last claimed for a cycle we run: when (by our clock) and
// at which epoch we took it on, for which boot; a claim is published again
// only when it changes, not every interval.
type held struct {
	start time.Time
	epoch uint64
	boot  string
	// stepped: the claim carries the due time after a served step, the
	// cycle's phase from then on.
	stepped bool
	// due is the due time last claimed: a taker moves it on by whole
	// intervals, so the claim is published again when the cycle leaves
	// that phase.
	due time.Time
}

type deferredStart struct {
	path     string
	retained bool
}

// claimWorkers bound the claims in flight; one ack round trip each.
const claimWorkers = 4

// newOwnership attaches shard and claim checks to f. shardSpec is "i/N" as
// validated by Config.Validate; empty means 0/1.
func newOwnership(f *fleet, shardSpec, agentID, session string, reg prometheus.Registerer) *ownership {
	shard, _ := ParseShard(shardSpec)
	o := &ownership{
		f: f, shard: shard, agent: agentID, session: session,
		claims: map[string]*protocol.Claim{}, agents: map[string]protocol.AgentStatus{}, ended: map[string]bool{},
		waiting: map[string]bool{}, deferred: map[string]deferredStart{}, mine: map[string]held{},
		members: map[string]int{}, gone: map[string]*time.Timer{}, live: []int{shard.I},
		pending: map[string]protocol.Claim{}, inflight: map[string]bool{}, kick: make(chan struct{}, 1),
		waitingG: prometheus.NewGauge(prometheus.GaugeOpts{Name: "glowcast_agent_devices_waiting",
			Help: "Devices of this agent's shard whose cycle another live agent still holds."}),
		handovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glowcast_agent_ownership_changes_total",
			Help: "Ownership changes: released (handed over), yielded (a later claim won), taken (taken over)."}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(o.waitingG, o.handovers)
	}
	f.own = o
	return o
}

var _ ShardMap = (*ownership)(nil)

// Owns reports whether device belongs to this agent among the live members
// of its shard set. Called with fleet.mu held.
func (o *ownership) Owns(device string) bool {
	if len(o.live) == 1 {
		return true // alone, or the set is 0/1
	}
	return Rendezvous(device, o.live) == o.shard.I
}

// OwnsLocked is Owns for callers outside the fleet's lock.
func (o *ownership) OwnsLocked(device string) bool {
	o.f.mu.Lock()
	defer o.f.mu.Unlock()
	return o.Owns(device)
}

// setLive recomputes the live indices; on a change, once the claims are
// known, it hands over the cycles that left us and starts the ones that
// came to us. Called with fleet.mu held.
func (o *ownership) setLive() {
	live := []int{o.shard.I}
	for id, i := range o.members {
		if st := o.agents[id]; st.Online || o.gone[id] != nil {
			live = append(live, i)
		}
	}
	slices.Sort(live)
	live = slices.Compact(live)
	if slices.Equal(live, o.live) {
		return
	}
	o.f.log.Info("shard set changed", "live", fmt.Sprint(live), "was", fmt.Sprint(o.live), "shard", o.shard)
	o.live = live
	if o.settled || o.f.graceDone {
		o.rebalance(true)
	}
}

// rebalance releases the cycles this agent no longer owns, with their due
// time, and with start starts (or waits for) the ones it now owns.
// O(devices), on a membership change only. Called with fleet.mu held.
func (o *ownership) rebalance(start bool) {
	f := o.f
	for id, d := range f.devices {
		switch owns := o.Owns(id); {
		case d.cycle && !owns:
			f.log.Info("device moves to another agent of the shard set; releasing it", "device", id, "next_due", d.due.UTC().Format(time.RFC3339))
			o.handovers.WithLabelValues("released").Inc()
			epoch := o.mine[id].epoch
			// The released claim names the first step we did not serve:
			// a step in flight that took its seq sends its temps anyway.
			next := d.due
			if d.running && d.numbered.Equal(d.due) {
				next = d.due.Add(f.cfg.Interval)
			}
			o.yield(d)
			o.enqueue(id, protocol.Claim{Agent: o.agent, Session: o.session, TS: f.now().UTC(), Epoch: epoch, BootID: d.cycleBoot, NextDue: next.UTC(), TempsSeq: d.tempsSeq, Released: true})
		case !d.cycle && !owns && o.waiting[id]:
			delete(o.waiting, id)
			o.waitingG.Set(float64(len(o.waiting)))
		case !d.cycle && owns && start:
			f.maybeStart(d, PathTakeover, false)
		}
	}
	o.releaseStale()
}

// releaseStale hands over the devices a previous process of this agent
// claimed and this one does not own. Called with fleet.mu held.
func (o *ownership) releaseStale() {
	f := o.f
	for id, c := range o.claims {
		if c.Agent != o.agent || c.Session == o.session || c.Released || o.Owns(id) {
			continue
		}
		f.log.Info("device left this agent's shard; releasing it", "device", id, "shard", o.shard, "next_due", c.NextDue.Format(time.RFC3339))
		o.handovers.WithLabelValues("released").Inc()
		rel := *c
		rel.Session, rel.TS, rel.Released = o.session, f.now().UTC(), true
		// That process claimed once and then served a step per interval:
		// release the first of its due times not yet past, numbered above
		// one temps per interval since (a released claim is taken as exact).
		rel.NextDue, rel.TempsSeq = o.resumeFrom(c, f.now())
		o.claims[id] = &rel
		o.enqueue(id, rel)
	}
}

// stop ends the membership timers. Called with fleet.mu held.
func (o *ownership) stop() {
	for id, t := range o.gone {
		t.Stop()
		delete(o.gone, id)
	}
}

// attach subscribes the ownership topics on cl (before Connect) and starts
// the claim publishers, which end with the fleet's runs.
func (o *ownership) attach(cl *mqttmsg.Client) {
	o.pub = cl
	cl.Handle(protocol.OwnerFilter, o.onClaimMsg)
	cl.Handle(protocol.AgentStatusFilter, o.onAgentMsg)
	cl.Handle(protocol.SyncTopic(o.agent), o.onSync)
	for range claimWorkers {
		o.f.wg.Add(1)
		go o.publishLoop()
	}
}

// up runs after each connect: the echo of this message arrives after every
// retained message of our subscriptions, so when it is back we know every
// claim the broker holds.
func (o *ownership) up(ctx context.Context) {
	if err := o.pub.Publish(ctx, protocol.SyncTopic(o.agent), []byte(o.session), false); err != nil {
		o.f.log.Warn("publishing ownership sync failed; the restart timer settles claims instead", "err", err)
	}
	o.wake()
}

func (o *ownership) onSync(m mqttmsg.Message) {
	if string(m.Payload) != o.session {
		return
	}
	f := o.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || o.settled {
		return
	}
	o.settled = true
	for _, fn := range o.onSettled {
		fn()
	}
	for id, ds := range o.deferred {
		if d := f.devices[id]; d != nil && !d.cycle {
			f.maybeStart(d, ds.path, ds.retained)
		}
	}
	clear(o.deferred)
	// The restart timer may have started cycles before the membership was
	// all in: hand over those that belong elsewhere. (Starts are the
	// deferred ones' and the resume strategy's business.)
	o.rebalance(false)
}

// mayStart reports whether this agent may start d's cycle now, and adopts
// the claimed due time when it may. Called with fleet.mu held.
func (o *ownership) mayStart(d *dev, path string, retained bool) bool {
	if !o.Owns(d.id) {
		return false
	}
	if !o.settled && !o.f.graceDone {
		o.deferred[d.id] = deferredStart{path: path, retained: retained}
		return false
	}
	c := o.claims[d.id]
	if c != nil {
		// The claim may have arrived before anything else of the device
		// (the owner topics' retained messages come first), when there
		// was no device to give its seq to.
		d.tempsSeq = max(d.tempsSeq, c.TempsSeq)
	}
	if o.liveOther(c) {
		if !o.waiting[d.id] {
			o.waiting[d.id] = true
			o.waitingG.Set(float64(len(o.waiting)))
			o.f.log.Info("device held by another agent; waiting for it to go offline or release", "device", d.id, "owner", c.Agent)
		}
		return false
	}
	if o.waiting[d.id] {
		delete(o.waiting, d.id)
		o.waitingG.Set(float64(len(o.waiting)))
		o.handovers.WithLabelValues("taken").Inc()
	}
	if c != nil && o.f.cfg.Resume != ResumeTimerOnly && c.BootID != "" && c.BootID == d.readyBoot && !c.NextDue.IsZero() {
		// Claims are published on a change of hands and after the first
		// step, not every cycle: a claimed due time k intervals past means
		// the claimant has served k more steps since, at those times,
		// numbered one above the other. Resume in its phase, at the first
		// of its due times not before now, and number above all it sent:
		// stepping at once would follow the claimant's own last step (or
		// the step of a claimant still running: the older of two
		// processes of one agent id yields only when it sees the newer),
		// and numbering from the claim would be refused by the device.
		// A released claim is exact: its due time is the first step the
		// releaser did not serve, so one past is due now.
		due, now := c.NextDue, o.f.now()
		if !c.Released {
			var seq uint64
			due, seq = o.resumeFrom(c, now)
			d.tempsSeq = max(d.tempsSeq, seq)
		}
		// The claim's due time was written by another host's clock: one
		// hours ahead would leave the device without temps for hours.
		// A due time is never more than one interval away.
		if lim := now.Add(o.f.cfg.Interval); due.After(lim) {
			due = lim
		}
		switch {
		case d.saved == nil || d.saved.BootID != c.BootID:
			d.saved = &Saved{Device: d.id, BootID: c.BootID, NextDue: due}
		case due.After(d.saved.NextDue):
			d.saved.NextDue = due
		}
	}
	return true
}

// liveOther reports whether c is held by another agent that is online with
// the session that claimed it.
func (o *ownership) liveOther(c *protocol.Claim) bool {
	if c == nil || c.Released || c.Agent == o.agent {
		return false
	}
	st, ok := o.agents[c.Agent]
	return ok && st.Online && st.Session == c.Session
}

// armed publishes our claim for d's cycle when we take it on or it serves a
// new boot: a claim costs a message per change of hands, not per cycle.
// Called with fleet.mu held.
func (o *ownership) armed(d *dev) {
	h, ok := o.mine[d.id]
	if ok && h.boot == d.cycleBoot {
		if !h.stepped || o.inPhase(d.due, h.due) {
			return
		}
		// The cycle's phase moved (a renumbered step, a step that ran
		// more than an interval late): a taker would resume on the old
		// one, right after one of our steps. Claim the new phase.
		h.due = d.due
		o.mine[d.id] = h
		o.enqueue(d.id, protocol.Claim{Agent: o.agent, Session: o.session, TS: h.start.UTC(), Epoch: h.epoch, BootID: d.cycleBoot, NextDue: d.due.UTC(), TempsSeq: d.tempsSeq})
		return
	}
	if !ok {
		h = held{start: o.f.now(), epoch: 1}
		if c := o.claims[d.id]; c != nil {
			h.epoch = c.Epoch + 1
		}
	}
	h.boot, h.stepped, h.due = d.cycleBoot, false, d.due
	o.mine[d.id] = h
	o.enqueue(d.id, protocol.Claim{Agent: o.agent, Session: o.session, TS: h.start.UTC(), Epoch: h.epoch, BootID: d.cycleBoot, NextDue: d.due.UTC(), TempsSeq: d.tempsSeq})
}

// reclaim publishes our claim for d's running cycle again, as it was:
// another claim landed after ours. Called with fleet.mu held.
func (o *ownership) reclaim(d *dev) {
	h, ok := o.mine[d.id]
	if !ok {
		o.armed(d)
		return
	}
	o.enqueue(d.id, protocol.Claim{Agent: o.agent, Session: o.session, TS: h.start.UTC(), Epoch: h.epoch, BootID: d.cycleBoot, NextDue: d.due.UTC(), TempsSeq: d.tempsSeq})
}

// stepped publishes the claim once more after the first step served by
// this cycle, so that it carries the cycle's phase: a taker resumes at the
// next due time instead of fetching at once. Called with fleet.mu held.
func (o *ownership) stepped(d *dev) {
	h, ok := o.mine[d.id]
	if !ok || h.stepped || h.boot != d.cycleBoot {
		return
	}
	h.stepped, h.due = true, d.due
	o.mine[d.id] = h
	o.enqueue(d.id, protocol.Claim{Agent: o.agent, Session: o.session, TS: h.start.UTC(), Epoch: h.epoch, BootID: d.cycleBoot, NextDue: d.due.UTC(), TempsSeq: d.tempsSeq})
}

// inPhaseFrom moves a held claim's due time on by whole intervals to the
// first not before now, and its seq by one per interval: the claimant
// served those steps (claims are not published every cycle).
func (o *ownership) inPhaseFrom(due time.Time, seq uint64, now time.Time) (time.Time, uint64) {
	iv := o.f.cfg.Interval
	if iv <= 0 || due.IsZero() || !due.Before(now) {
		return due, seq
	}
	k := (now.Sub(due) + iv - 1) / iv
	return due.Add(k * iv), seq + uint64(k)
}

// resumeFrom is where a new owner resumes a held claim's cycle: in the
// claimant's phase while the claimant may still run. A claimant whose
// session ended may have died just before the due time now past: that
// step is served at once (a missed step would leave the device an
// interval longer without a fetch), numbered above every step the
// claimant could have sent.
func (o *ownership) resumeFrom(c *protocol.Claim, now time.Time) (time.Time, uint64) {
	due, seq := o.inPhaseFrom(c.NextDue, c.TempsSeq, now)
	if o.ended[c.Session] && !due.Equal(c.NextDue) {
		return c.NextDue, seq
	}
	return due, seq
}

// inPhase reports whether due lies whole intervals from the claimed one.
func (o *ownership) inPhase(due, claimed time.Time) bool {
	iv := o.f.cfg.Interval
	return iv <= 0 || due.Sub(claimed)%iv == 0
}

func (o *ownership) onClaimMsg(m mqttmsg.Message) {
	id, ok := protocol.DeviceOfOwnerTopic(m.Topic)
	if !ok || protocol.ValidDeviceID(id) != nil {
		return
	}
	var c *protocol.Claim
	if len(m.Payload) > 0 {
		var err error
		if c, err = protocol.ParseClaim(m.Payload); err != nil {
			o.f.log.Warn("malformed owner claim dropped", "device", id, "err", err)
			return
		}
	}
	f := o.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	if c == nil {
		delete(o.claims, id)
	} else {
		o.claims[id] = c
		if d := f.devices[id]; d != nil {
			d.tempsSeq = max(d.tempsSeq, c.TempsSeq)
		}
	}
	switch {
	case c == nil:
	case c.Agent == o.agent && c.Session == o.session:
		return // our own claim echoing back
	case c.Agent == o.agent && !c.Released && o.settled && !o.Owns(id):
		// Our previous process held this device, which has left our
		// shard: hand it over at the due time it had. (Before the
		// retained state is all in, the membership is not known: the
		// sync echo runs the same check.)
		o.releaseStale()
		return
	}
	d := f.devices[id]
	if d == nil {
		return
	}
	if d.cycle && !o.liveOther(c) && c != nil && (c.Agent != o.agent || c.Session != o.session) {
		// A release or a dead process's claim landed after ours (its
		// publisher saw the broker's state before our claim): say again
		// that the cycle is ours.
		o.reclaim(d)
		return
	}
	if d.cycle && o.liveOther(c) {
		mine := o.mine[id]
		if c.Epoch > mine.epoch || (c.Epoch == mine.epoch && c.Agent > o.agent) {
			// Two agents took the device on (a flapping connection or an
			// overlapping shard map): the higher epoch, then the greater
			// agent id, wins — the same answer in every agent, which two
			// hosts' clocks would not give.
			f.log.Warn("another agent's claim on this device wins; yielding its cycle", "device", id, "owner", c.Agent, "epoch", c.Epoch, "our_epoch", mine.epoch)
			o.handovers.WithLabelValues("yielded").Inc()
			o.yield(d)
			o.waiting[id] = true
			o.waitingG.Set(float64(len(o.waiting)))
		}
		return
	}
	if o.waiting[id] && !d.cycle {
		f.maybeStart(d, PathTakeover, false)
	}
}

func (o *ownership) onAgentMsg(m mqttmsg.Message) {
	agentID, ok := protocol.AgentOfStatusTopic(m.Topic)
	if !ok || len(m.Payload) == 0 {
		return
	}
	st, err := protocol.ParseAgentStatus(m.Payload)
	if err != nil {
		o.f.log.Warn("malformed agent status dropped", "topic", m.Topic, "err", err)
		return
	}
	f := o.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	if !st.Online && st.Session != "" && st.Session != o.session {
		o.ended[st.Session] = true
	}
	if prev, ok := o.agents[agentID]; ok && !st.Online && prev.Online && st.Session != prev.Session {
		return // a late will of an older process; the broker's order, not ts, says so
	}
	o.agents[agentID] = *st
	if agentID != o.agent {
		o.member(agentID, st, m.Retained)
	}
	for id := range o.waiting {
		c := o.claims[id]
		if d := f.devices[id]; d != nil && !d.cycle && !o.liveOther(c) {
			f.log.Info("owner agent gone; taking the device over", "device", id, "owner", agentID)
			f.maybeStart(d, PathTakeover, false)
		}
	}
}

// member follows another agent's place in our shard set: the index it
// announced counts as live while it is online, and for the restart grace
// after it went offline while we watched (a restart moves nothing). An
// offline status found retained at our start is of an agent gone for an
// unknown time: its devices are served at once, and handed back when it
// returns. An agent that announces no shard is no member. Called with
// fleet.mu held.
func (o *ownership) member(id string, st *protocol.AgentStatus, retained bool) {
	sh, err := ParseShard(st.Shard)
	if st.Shard == "" || err != nil {
		delete(o.members, id)
	} else {
		o.members[id] = sh.I
	}
	if t := o.gone[id]; t != nil && (st.Online || o.members[id] != sh.I || err != nil) {
		t.Stop()
		delete(o.gone, id)
	}
	if _, ok := o.members[id]; ok && !st.Online && !retained && o.gone[id] == nil && o.f.cfg.RestartGrace > 0 {
		o.gone[id] = time.AfterFunc(o.f.cfg.RestartGrace, func() {
			f := o.f
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.closed || o.gone[id] == nil {
				return
			}
			delete(o.gone, id)
			o.setLive()
		})
	}
	o.setLive()
}

// yield stops d's cycle without parking it. Called with fleet.mu held.
func (o *ownership) yield(d *dev) {
	o.f.stopCycle(d)
	delete(o.mine, d.id)
	// A claim of ours still queued would, published after the winner's,
	// take the device back: drop it.
	o.qmu.Lock()
	delete(o.pending, d.id)
	o.qmu.Unlock()
}

func (o *ownership) enqueue(id string, c protocol.Claim) {
	o.qmu.Lock()
	if _, ok := o.pending[id]; !ok {
		o.queue = append(o.queue, id)
	}
	o.pending[id] = c
	o.qmu.Unlock()
	o.wake()
}

func (o *ownership) wake() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

func (o *ownership) next() (string, protocol.Claim, bool) {
	o.qmu.Lock()
	defer o.qmu.Unlock()
	for n := len(o.queue); n > 0; n-- {
		id := o.queue[0]
		o.queue = o.queue[1:]
		c, ok := o.pending[id]
		if !ok {
			continue
		}
		if o.inflight[id] {
			o.queue = append(o.queue, id) // after the one in flight
			continue
		}
		delete(o.pending, id)
		o.inflight[id] = true
		if len(o.queue) > 0 {
			o.wake() // let another worker share the backlog
		}
		return id, c, true
	}
	return "", protocol.Claim{}, false
}

// publishLoop publishes queued claims, newest per device, until the
// fleet's runs end. A failed claim is queued again for the next connect.
func (o *ownership) publishLoop() {
	defer o.f.wg.Done()
	ctx := o.f.ctx
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.kick:
		}
		for {
			id, c, ok := o.next()
			if !ok {
				break
			}
			b := c.Marshal()
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := o.pub.Publish(pctx, protocol.OwnerTopic(id), b, true)
			cancel()
			o.qmu.Lock()
			delete(o.inflight, id)
			_, newer := o.pending[id]
			if err != nil && !newer {
				o.pending[id] = c
				o.queue = append(o.queue, id)
			}
			o.qmu.Unlock()
			if newer {
				o.wake() // the claim that waited for this one
			}
			if err != nil {
				if ctx.Err() == nil {
					o.f.log.Debug("publishing owner claim failed; retried on reconnect", "device", id, "err", err)
				}
				break // wait for the next kick (a connect or a new claim)
			}
		}
	}
}
