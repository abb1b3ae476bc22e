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
	"log/slog"
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

// cycles is the ownership's seam to the fleet: the device cycles it decides
// on. The ownership keeps no lock of its own, since what it knows and the
// cycles it decides on must change together: it runs under the lock of
// the fleet, which calls in with it held (mayStart, armed, stepped, stop)
// and which the ownership's handlers and timers enter through locked.
type cycles interface {
	// locked runs fn under the fleet's lock and reports whether it ran
	// (not once the fleet has closed).
	locked(fn func()) bool
	// cycle is a device's cycle as its owner sees it; false for a device
	// never seen.
	cycle(id string) (cycleView, bool)
	// cycleIDs are the devices seen.
	cycleIDs() []string
	// start starts a device's cycle unless something stops it (offline,
	// ready and status disagree, or mayStart says no).
	start(id, path string, retained bool)
	// stop ends a device's cycle without parking it.
	stop(id string)
	// raiseSeq raises the highest temps seq known for a device.
	raiseSeq(id string, seq uint64)
	// restartDone reports whether the restart timer has fired: cycles
	// then start without waiting for the ownership to settle.
	restartDone() bool
	now() time.Time
}

// cycleView is one device's cycle as the ownership reads it.
type cycleView struct {
	ID        string
	Cycle     bool   // a cycle runs (armed or in flight)
	Boot      string // the boot the cycle serves
	ReadyBoot string // the boot of the device's last ready
	// Due is the pending or running step's due time; Unserved the first
	// step this process will not have served if it stops now (one past
	// Due when the step in flight has taken its seq).
	Due, Unserved time.Time
	Seq           uint64 // the highest temps seq known
}

// ownershipConfig is what the ownership needs of the agent's settings.
type ownershipConfig struct {
	Interval, RestartGrace time.Duration
	Resume                 string // one of the Resume strategies
}

// ownership decides which devices this agent may run. Its state is guarded
// by the fleet's lock (see cycles).
type ownership struct {
	cy      cycles
	cfg     ownershipConfig
	log     *slog.Logger
	ctx     context.Context // ends the claim publishers
	wg      *sync.WaitGroup // waits for them
	shard   Shard
	agent   string
	session string

	settled bool // retained claims seen (sync echo)
	// onSettled run (under the fleet's lock, so they must not block) once the
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
	// The maps a restart fills with every device (claims, cycles held off
	// until the retained state is read, claims to publish) are sized for
	// the devices of the state dir: grown from empty on the burst, their
	// rehashing took a fifth of the handlers' time.
	f.mu.Lock()
	n := len(f.devices)
	f.mu.Unlock()
	mineN := n / max(shard.N, 1)
	o := &ownership{
		cy: f, cfg: ownershipConfig{Interval: f.cfg.Interval, RestartGrace: f.cfg.RestartGrace, Resume: f.cfg.Resume},
		log: f.log, ctx: f.ctx, wg: &f.wg,
		shard: shard, agent: agentID, session: session,
		claims: make(map[string]*protocol.Claim, n), agents: map[string]protocol.AgentStatus{}, ended: map[string]bool{},
		waiting: map[string]bool{}, deferred: make(map[string]deferredStart, mineN), mine: make(map[string]held, mineN),
		members: map[string]int{}, gone: map[string]*time.Timer{}, live: []int{shard.I},
		pending: make(map[string]protocol.Claim, mineN), inflight: map[string]bool{}, kick: make(chan struct{}, 1),
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
// of its shard set. Called under the fleet's lock.
func (o *ownership) Owns(device string) bool {
	if len(o.live) == 1 {
		return true // alone, or the set is 0/1
	}
	return Rendezvous(device, o.live) == o.shard.I
}

// OwnsLocked is Owns for callers outside the fleet's lock.
func (o *ownership) OwnsLocked(device string) bool {
	var owns bool
	o.cy.locked(func() { owns = o.Owns(device) })
	return owns
}

// setLive recomputes the live indices; on a change, once the claims are
// known, it hands over the cycles that left us and starts the ones that
// came to us. Called under the fleet's lock.
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
	o.log.Info("shard set changed", "live", fmt.Sprint(live), "was", fmt.Sprint(o.live), "shard", o.shard)
	o.live = live
	if o.settled || o.cy.restartDone() {
		o.rebalance(true)
	}
}

// rebalance releases the cycles this agent no longer owns, with their due
// time, and with start starts (or waits for) the ones it now owns.
// O(devices), on a membership change only. Called under the fleet's lock.
func (o *ownership) rebalance(start bool) {
	for _, id := range o.cy.cycleIDs() {
		v, _ := o.cy.cycle(id)
		switch owns := o.Owns(id); {
		case v.Cycle && !owns:
			o.log.Info("device moves to another agent of the shard set; releasing it", "device", id, "next_due", v.Due.UTC().Format(time.RFC3339))
			o.handovers.WithLabelValues("released").Inc()
			epoch := o.mine[id].epoch
			o.yield(id)
			// The released claim names the first step we did not serve:
			// a step in flight that took its seq sends its temps anyway.
			o.enqueue(id, protocol.Claim{Agent: o.agent, Session: o.session, TS: o.cy.now().UTC(), Epoch: epoch, BootID: v.Boot, NextDue: v.Unserved.UTC(), TempsSeq: v.Seq, Released: true})
		case !v.Cycle && !owns && o.waiting[id]:
			delete(o.waiting, id)
			o.waitingG.Set(float64(len(o.waiting)))
		case !v.Cycle && owns && start:
			o.cy.start(id, PathTakeover, false)
		}
	}
	o.releaseStale()
}

// releaseStale hands over the devices a previous process of this agent
// claimed and this one does not own. Called under the fleet's lock.
func (o *ownership) releaseStale() {
	for id, c := range o.claims {
		if c.Agent != o.agent || c.Session == o.session || c.Released || o.Owns(id) {
			continue
		}
		o.log.Info("device left this agent's shard; releasing it", "device", id, "shard", o.shard, "next_due", c.NextDue.Format(time.RFC3339))
		o.handovers.WithLabelValues("released").Inc()
		rel := *c
		now := o.cy.now()
		rel.Session, rel.TS, rel.Released = o.session, now.UTC(), true
		// That process claimed once and then served a step per interval:
		// release the first of its due times not yet past, numbered above
		// one temps per interval since (a released claim is taken as exact).
		rel.NextDue, rel.TempsSeq = o.resumeFrom(c, now)
		o.claims[id] = &rel
		o.enqueue(id, rel)
	}
}

// stop ends the membership timers. Called under the fleet's lock.
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
		o.wg.Add(1)
		go o.publishLoop()
	}
}

// up runs after each connect: the echo of this message arrives after every
// retained message of our subscriptions, so when it is back we know every
// claim the broker holds.
func (o *ownership) up(ctx context.Context) {
	if err := o.pub.Publish(ctx, protocol.SyncTopic(o.agent), []byte(o.session), false); err != nil {
		o.log.Warn("publishing ownership sync failed; the restart timer settles claims instead", "err", err)
	}
	o.wake()
}

func (o *ownership) onSync(m mqttmsg.Message) {
	if string(m.Payload) != o.session {
		return
	}
	o.cy.locked(func() {
		if o.settled {
			return
		}
		o.settled = true
		for _, fn := range o.onSettled {
			fn()
		}
		for id, ds := range o.deferred {
			if v, ok := o.cy.cycle(id); ok && !v.Cycle {
				o.cy.start(id, ds.path, ds.retained)
			}
		}
		clear(o.deferred)
		// The restart timer may have started cycles before the membership
		// was all in: hand over those that belong elsewhere. (Starts are
		// the deferred ones' and the resume strategy's business.)
		o.rebalance(false)
	})
}

// mayStart reports whether this agent may start v's cycle now; seq is the
// temps seq the device's claim knows of, and due, unless zero, the due time
// at which the cycle takes up the claimant's. Called under the fleet's lock.
func (o *ownership) mayStart(v cycleView, path string, retained bool) (ok bool, seq uint64, due time.Time) {
	if !o.Owns(v.ID) {
		return false, 0, time.Time{}
	}
	if !o.cy.restartDone() && !o.settled {
		o.deferred[v.ID] = deferredStart{path: path, retained: retained}
		return false, 0, time.Time{}
	}
	c := o.claims[v.ID]
	if c != nil {
		// The claim may have arrived before anything else of the device
		// (the owner topics' retained messages come first), when there
		// was no device to give its seq to.
		seq = c.TempsSeq
	}
	if o.liveOther(c) {
		if !o.waiting[v.ID] {
			o.waiting[v.ID] = true
			o.waitingG.Set(float64(len(o.waiting)))
			o.log.Info("device held by another agent; waiting for it to go offline or release", "device", v.ID, "owner", c.Agent)
		}
		return false, seq, time.Time{}
	}
	if o.waiting[v.ID] {
		delete(o.waiting, v.ID)
		o.waitingG.Set(float64(len(o.waiting)))
		o.handovers.WithLabelValues("taken").Inc()
	}
	if c != nil && o.cfg.Resume != ResumeTimerOnly && c.BootID != "" && c.BootID == v.ReadyBoot && !c.NextDue.IsZero() {
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
		now := o.cy.now()
		due = c.NextDue
		if !c.Released {
			due, seq = o.resumeFrom(c, now)
		}
		// The claim's due time was written by another host's clock: one
		// hours ahead would leave the device without temps for hours.
		// A due time is never more than one interval away.
		if lim := now.Add(o.cfg.Interval); due.After(lim) {
			due = lim
		}
	}
	return true, seq, due
}

// claimedByUs reports whether our agent id (this process or a previous
// one) holds the claim of a device of our shard. Called under the fleet's
// lock.
func (o *ownership) claimedByUs(id string) bool {
	c := o.claims[id]
	return c != nil && c.Agent == o.agent && !c.Released && o.Owns(id)
}

// eachClaimedByUs calls fn for every device claimedByUs. Called under the
// fleet's lock.
func (o *ownership) eachClaimedByUs(fn func(id string)) {
	for id := range o.claims {
		if o.claimedByUs(id) {
			fn(id)
		}
	}
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

// armed publishes our claim for v's cycle when we take it on or it serves a
// new boot: a claim costs a message per change of hands, not per cycle.
// Called under the fleet's lock.
func (o *ownership) armed(v cycleView) {
	h, ok := o.mine[v.ID]
	if ok && h.boot == v.Boot {
		if !h.stepped || o.inPhase(v.Due, h.due) {
			return
		}
		// The cycle's phase moved (a renumbered step, a step that ran
		// more than an interval late): a taker would resume on the old
		// one, right after one of our steps. Claim the new phase.
		h.due = v.Due
		o.mine[v.ID] = h
		o.enqueue(v.ID, o.claim(v, h))
		return
	}
	if !ok {
		h = held{start: o.cy.now(), epoch: 1}
		if c := o.claims[v.ID]; c != nil {
			h.epoch = c.Epoch + 1
		}
	}
	h.boot, h.stepped, h.due = v.Boot, false, v.Due
	o.mine[v.ID] = h
	o.enqueue(v.ID, o.claim(v, h))
}

// claim is our claim on v's cycle, held as h.
func (o *ownership) claim(v cycleView, h held) protocol.Claim {
	return protocol.Claim{Agent: o.agent, Session: o.session, TS: h.start.UTC(), Epoch: h.epoch, BootID: v.Boot, NextDue: v.Due.UTC(), TempsSeq: v.Seq}
}

// reclaim publishes our claim for v's running cycle again, as it was:
// another claim landed after ours. Called under the fleet's lock.
func (o *ownership) reclaim(v cycleView) {
	h, ok := o.mine[v.ID]
	if !ok {
		o.armed(v)
		return
	}
	o.enqueue(v.ID, o.claim(v, h))
}

// stepped publishes the claim once more after the first step served by
// this cycle, so that it carries the cycle's phase: a taker resumes at the
// next due time instead of fetching at once. Called under the fleet's lock.
func (o *ownership) stepped(v cycleView) {
	h, ok := o.mine[v.ID]
	if !ok || h.stepped || h.boot != v.Boot {
		return
	}
	h.stepped, h.due = true, v.Due
	o.mine[v.ID] = h
	o.enqueue(v.ID, o.claim(v, h))
}

// inPhaseFrom moves a held claim's due time on by whole intervals to the
// first not before now, and its seq by one per interval: the claimant
// served those steps (claims are not published every cycle).
func (o *ownership) inPhaseFrom(due time.Time, seq uint64, now time.Time) (time.Time, uint64) {
	iv := o.cfg.Interval
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
	iv := o.cfg.Interval
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
			o.log.Warn("malformed owner claim dropped", "device", id, "err", err)
			return
		}
	}
	o.cy.locked(func() { o.claimed(id, c) })
}

// claimed follows the device's retained claim, c (nil: cleared). Called
// under the fleet's lock.
func (o *ownership) claimed(id string, c *protocol.Claim) {
	if c == nil {
		delete(o.claims, id)
	} else {
		o.claims[id] = c
		o.cy.raiseSeq(id, c.TempsSeq)
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
	v, ok := o.cy.cycle(id)
	if !ok {
		return
	}
	if v.Cycle && !o.liveOther(c) && c != nil && (c.Agent != o.agent || c.Session != o.session) {
		// A release or a dead process's claim landed after ours (its
		// publisher saw the broker's state before our claim): say again
		// that the cycle is ours.
		o.reclaim(v)
		return
	}
	if v.Cycle && o.liveOther(c) {
		mine := o.mine[id]
		if c.Epoch > mine.epoch || (c.Epoch == mine.epoch && c.Agent > o.agent) {
			// Two agents took the device on (a flapping connection or an
			// overlapping shard map): the higher epoch, then the greater
			// agent id, wins — the same answer in every agent, which two
			// hosts' clocks would not give.
			o.log.Warn("another agent's claim on this device wins; yielding its cycle", "device", id, "owner", c.Agent, "epoch", c.Epoch, "our_epoch", mine.epoch)
			o.handovers.WithLabelValues("yielded").Inc()
			o.yield(id)
			o.waiting[id] = true
			o.waitingG.Set(float64(len(o.waiting)))
		}
		return
	}
	if o.waiting[id] && !v.Cycle {
		o.cy.start(id, PathTakeover, false)
	}
}

func (o *ownership) onAgentMsg(m mqttmsg.Message) {
	agentID, ok := protocol.AgentOfStatusTopic(m.Topic)
	if !ok || len(m.Payload) == 0 {
		return
	}
	st, err := protocol.ParseAgentStatus(m.Payload)
	if err != nil {
		o.log.Warn("malformed agent status dropped", "topic", m.Topic, "err", err)
		return
	}
	o.cy.locked(func() { o.agentStatus(agentID, st, m.Retained) })
}

// agentStatus follows an agent's status. Called under the fleet's lock.
func (o *ownership) agentStatus(agentID string, st *protocol.AgentStatus, retained bool) {
	if !st.Online && st.Session != "" && st.Session != o.session {
		o.ended[st.Session] = true
		if len(o.ended) > endedMax {
			o.pruneEnded()
		}
	}
	if prev, ok := o.agents[agentID]; ok && !st.Online && prev.Online && st.Session != prev.Session {
		return // a late will of an older process; the broker's order, not ts, says so
	}
	o.agents[agentID] = *st
	if agentID != o.agent {
		o.member(agentID, st, retained)
	}
	for id := range o.waiting {
		c := o.claims[id]
		if v, ok := o.cy.cycle(id); ok && !v.Cycle && !o.liveOther(c) {
			o.log.Info("owner agent gone; taking the device over", "device", id, "owner", agentID)
			o.cy.start(id, PathTakeover, false)
		}
	}
}

// endedMax bounds the ended sessions kept beyond those a claim names: one
// is added per agent process that ends, for as long as this one runs.
const endedMax = 1024

// pruneEnded forgets the ended sessions no claim names: only a claim's
// session is ever looked up. O(claims), once per endedMax sessions ended.
func (o *ownership) pruneEnded() {
	named := make(map[string]bool, len(o.ended))
	for _, c := range o.claims {
		if o.ended[c.Session] {
			named[c.Session] = true
		}
	}
	o.ended = named
}

// member follows another agent's place in our shard set: the index it
// announced counts as live while it is online, and for the restart grace
// after it went offline while we watched (a restart moves nothing). An
// offline status found retained at our start is of an agent gone for an
// unknown time: its devices are served at once, and handed back when it
// returns. An agent that announces no shard is no member. Called under
// the fleet's lock.
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
	if _, ok := o.members[id]; ok && !st.Online && !retained && o.gone[id] == nil && o.cfg.RestartGrace > 0 {
		o.gone[id] = time.AfterFunc(o.cfg.RestartGrace, func() {
			o.cy.locked(func() {
				if o.gone[id] == nil {
					return
				}
				delete(o.gone, id)
				o.setLive()
			})
		})
	}
	o.setLive()
}

// yield stops a device's cycle without parking it. Called under the
// fleet's lock.
func (o *ownership) yield(id string) {
	o.cy.stop(id)
	delete(o.mine, id)
	// A claim of ours still queued would, published after the winner's,
	// take the device back: drop it.
	o.qmu.Lock()
	delete(o.pending, id)
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
	defer o.wg.Done()
	ctx := o.ctx
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
					o.log.Debug("publishing owner claim failed; retried on reconnect", "device", id, "err", err)
				}
				break // wait for the next kick (a connect or a new claim)
			}
		}
	}
}
