package agent

// Scale-out: several agent processes share one fleet, each device owned by
// exactly one of them at a time. The coordination lives on the broker, not
// in a coordinator of our own:
//
//   - a static shard map: --shard i/N owns the devices whose FNV-1a hash of
//     the id is i modulo N;
//   - a retained ownership claim per device, glowcast/v1/<device>/owner,
//     published by the agent that runs the device's cycle, carrying the next
//     due time. Another agent whose shard includes the device waits while
//     the claim's agent is online with the claiming session, and takes the
//     device over, at the claimed due time, when that agent goes offline or
//     releases the claim.
//
// So a shard's restart is the migration a single agent already survives,
// and a changed N hands devices over without two cycles: the old owner,
// restarted with the new map, releases the claims its previous process held
// for devices that left its shard.

import (
	"context"
	"fmt"
	"hash/fnv"
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

// Shard is this agent's part of the fleet: devices whose id hashes to I
// modulo N. The zero value and 0/1 own every device.
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

// Owns reports whether the device belongs to this shard.
func (s Shard) Owns(device string) bool {
	if s.N <= 1 {
		return true
	}
	return ShardOf(device, s.N) == s.I
}

// ShardOf is the shard index of a device among n: FNV-1a (32 bit) of its
// id modulo n. It is part of the deployment contract: every agent of a
// fleet must compute the same value.
func ShardOf(device string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(device))
	return int(h.Sum32() % uint32(n))
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
	waiting   map[string]bool                 // ours by shard, held by a live agent
	deferred  map[string]deferredStart        // waiting for the claims to settle
	mine      map[string]mineClaim            // the running cycles we took on

	pub     publisher
	qmu     sync.Mutex
	queue   []string                  // device ids with a claim to publish, in order
	pending map[string]protocol.Claim // newest claim to publish per device
	kick    chan struct{}

	waitingG  prometheus.Gauge
	handovers *prometheus.CounterVec
}

// mineClaim is when (by our clock) and at which epoch we took a cycle on.
type mineClaim struct {
	start time.Time
	epoch uint64
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
		claims: map[string]*protocol.Claim{}, agents: map[string]protocol.AgentStatus{},
		waiting: map[string]bool{}, deferred: map[string]deferredStart{}, mine: map[string]mineClaim{},
		pending: map[string]protocol.Claim{}, kick: make(chan struct{}, 1),
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
}

// mayStart reports whether this agent may start d's cycle now, and adopts
// the claimed due time when it may. Called with fleet.mu held.
func (o *ownership) mayStart(d *dev, path string, retained bool) bool {
	if !o.shard.Owns(d.id) {
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
		// The claim's due time was written by another host's clock: one
		// hours ahead would leave the device without temps for hours.
		// A due time is never more than one interval away.
		due := c.NextDue
		if lim := o.f.now().Add(o.f.cfg.Interval); due.After(lim) {
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

// armed publishes our claim for d's cycle with its new due time. Called
// with fleet.mu held.
func (o *ownership) armed(d *dev) {
	m, ok := o.mine[d.id]
	if !ok {
		m = mineClaim{start: o.f.now(), epoch: 1}
		if c := o.claims[d.id]; c != nil {
			m.epoch = c.Epoch + 1
		}
		o.mine[d.id] = m
	}
	o.enqueue(d.id, protocol.Claim{Agent: o.agent, Session: o.session, TS: m.start.UTC(), Epoch: m.epoch, BootID: d.cycleBoot, NextDue: d.due.UTC(), TempsSeq: d.tempsSeq})
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
	case c.Agent == o.agent && !c.Released && !o.shard.Owns(id):
		// Our previous process held this device, which has left our
		// shard: hand it over at the due time it had.
		f.log.Info("device left this agent's shard; releasing it", "device", id, "shard", o.shard, "next_due", c.NextDue.Format(time.RFC3339))
		o.handovers.WithLabelValues("released").Inc()
		o.enqueue(id, protocol.Claim{Agent: o.agent, Session: o.session, TS: f.now().UTC(), Epoch: c.Epoch, BootID: c.BootID, NextDue: c.NextDue, TempsSeq: c.TempsSeq, Released: true})
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
		o.armed(d)
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
	if prev, ok := o.agents[agentID]; ok && !st.Online && prev.Online && st.Session != prev.Session {
		return // a late will of an older process; the broker's order, not ts, says so
	}
	o.agents[agentID] = *st
	for id := range o.waiting {
		c := o.claims[id]
		if d := f.devices[id]; d != nil && !d.cycle && !o.liveOther(c) {
			f.log.Info("owner agent gone; taking the device over", "device", id, "owner", agentID)
			f.maybeStart(d, PathTakeover, false)
		}
	}
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
	for len(o.queue) > 0 {
		id := o.queue[0]
		o.queue = o.queue[1:]
		if c, ok := o.pending[id]; ok {
			delete(o.pending, id)
			if len(o.queue) > 0 {
				o.wake() // let another worker share the backlog
			}
			return id, c, true
		}
	}
	o.queue = nil
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
			if err != nil {
				o.qmu.Lock()
				if _, newer := o.pending[id]; !newer {
					o.pending[id] = c
					o.queue = append(o.queue, id)
				}
				o.qmu.Unlock()
				if ctx.Err() == nil {
					o.f.log.Debug("publishing owner claim failed; retried on reconnect", "device", id, "err", err)
				}
				break // wait for the next kick (a connect or a new claim)
			}
		}
	}
}
