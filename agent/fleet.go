package agent

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/glowcast/glowcast/agent/geo"
	"github.com/glowcast/glowcast/agent/weather"
	"github.com/glowcast/glowcast/internal/clock"
	"github.com/glowcast/glowcast/protocol"
)

// Sender is how the fleet talks to devices.
type Sender interface {
	Send(ctx context.Context, device, name string, data []byte) error
	SendRetained(ctx context.Context, device, name string, data []byte) error
}

// Forecaster fetches an hourly forecast for a device's place. Every due
// device calls it at once, so it bounds its own requests to the provider
// (weather.Fetcher: one a place, a few at a time).
type Forecaster interface {
	Forecast(ctx context.Context, device string, lat, lon float64) (*weather.Forecast, error)
}

// locateInput is what is known of a device when its location is chosen.
type locateInput struct {
	Boot  string
	Ready *protocol.Ready
	Scan  *protocol.WiFiScan
	Prev  *geo.Saved
}

// Resume paths, as counted in metrics and logs.
const (
	PathReady   = "ready"   // a device announced a new boot
	PathFast    = "fast"    // retained online status and ready seen at subscribe time
	PathTimer   = "timer"   // the restart timer found it online without a cycle
	PathRebirth = "rebirth" // it answered our rebirth request
	PathOnline  = "online"  // it came back online after its cycle was parked
	// PathRenumber: the device dropped our temps as numbered below those
	// it shows and said so in a new ready; the step runs again at once.
	PathRenumber = "renumber"
)

// Resume strategies.
const (
	ResumeFast      = "fast"       // glowcast: retained presence + ready at once, timer as fallback
	ResumeTimerOnly = "timer-only" // the original design: wait the restart grace, then fetch at once
)

// fleetConfig is what the scheduling needs of the agent's configuration.
type fleetConfig struct {
	Interval     time.Duration
	RestartGrace time.Duration
	OfflinePark  time.Duration
	Resume       string
	// Retry is the first backoff after a failed fetch or publish.
	Retry time.Duration
	// Locate picks a device's location (it may ask geolocation services,
	// so it runs outside the fleet's lock).
	Locate func(ctx context.Context, device string, in locateInput) (*geo.Saved, error)
	// Concurrency bounds locations being resolved at once: Locate may ask
	// geolocation services. Forecasts are bounded by the Forecaster.
	Concurrency int
	// Clock tells the wall time; nil is the system clock.
	Clock clock.Clock
}

// fleet owns every device's cycle. All fields of dev are guarded by mu;
// no I/O happens while mu is held, so MQTT handlers can call in directly.
type fleet struct {
	cfg  fleetConfig
	log  *slog.Logger
	send Sender
	fc   Forecaster
	st   *store
	// saver writes the state behind the steps; nil without a state dir.
	saver *saver
	stats *Stats
	// sem bounds locations being resolved: they may reach geolocation
	// services, whose rate is what costs.
	sem chan struct{}
	// pubs bounds temps publishes waiting for their acknowledgement. A
	// publish costs the broker a round trip, not the provider a request:
	// held under sem, a cold start of many devices in few places took as
	// long as their round trips one after the other, 16 at a time.
	pubs  chan struct{}
	own   *ownership // shard and ownership claims; nil runs every device
	clock clock.Clock

	ctx context.Context // ends all runs
	wg  sync.WaitGroup

	mu        sync.Mutex
	devices   map[string]*dev
	nCycles   int       // devices with cycle set
	nOnline   int       // devices with online set
	nDup      int       // devices with dup set
	started   time.Time // when the agent connected; resume latency is measured from it
	graceDone bool
	closed    bool
	graceT    *time.Timer
	invT      *time.Timer // the next round of rebirth requests to missing devices

	// The last count of missing devices, for scrapes (missMu).
	missMu sync.Mutex
	missAt time.Time
	missN  float64
}

// dev is one device as the agent sees it.
type dev struct {
	id string

	// Presence, from the retained status topic.
	online     bool
	statusSeen bool
	statusBoot string
	statusTS   time.Time

	// liveBoot is the boot last seen live (a live birth or ready), and
	// prevBoots the few it replaced. A boot id that comes back after
	// another replaced it means two processes run with this one id (a
	// cloned SD card): no restarted process reuses its random boot id.
	liveBoot  string
	prevBoots []string
	dup       []string // the two boot ids, once detected
	// dupHeard is when each of dup's boots last announced itself live;
	// dupPast is the pair last cleared, so the same two coming back are
	// not reported as news.
	dupHeard [2]time.Time
	dupPast  []string

	// Readiness.
	readyBoot string
	ready     *protocol.Ready
	// scan is the device's last WiFi scan this boot.
	scan *protocol.WiFiScan

	// Saved state.
	saved *Saved
	// located is a location resolved by a step that has not published
	// yet (nil once one has: saved.Geo holds it). The next step starts
	// from it, so a step cut short by the next boot still counts: the
	// relocation budget saw no place before the first published step,
	// and a device announcing boot after boot at new places never got
	// that far (security.TestReadyFlood).
	located *geo.Saved
	// tempsSeq is the highest temps seq known for the device: published
	// by us, saved, claimed by another agent or reported in its ready.
	tempsSeq uint64
	// pubSeq is the seq of the last temps this process published for
	// the device (0: none yet).
	pubSeq uint64

	// The cycle. cycle is true while a timer is armed or a run is in
	// flight; gen invalidates superseded timers and runs.
	cycle     bool
	parked    bool
	gen       uint64
	timer     *time.Timer
	due       time.Time          // nominal time of the pending or running step
	attempt   int                // failed attempts for the current step
	cycleBoot string             // boot id the cycle serves
	running   bool               // a run is in flight
	runCancel context.CancelFunc // stops the run in flight
	// numbered is the due time of the last step that took a temps seq:
	// from then on its temps goes out even if the cycle moves on.
	numbered   time.Time
	pendingRun bool // a newer run waits for it to end

	parkTimer *time.Timer
}

func newFleet(ctx context.Context, cfg fleetConfig, log *slog.Logger, send Sender, fc Forecaster, st *store, stats *Stats) *fleet {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 5 * time.Second
	}
	f := &fleet{
		cfg: cfg, log: log, send: send, fc: fc, st: st, stats: stats,
		sem: make(chan struct{}, cfg.Concurrency), pubs: make(chan struct{}, maxPublishes), ctx: ctx,
		clock: cfg.Clock,
	}
	if f.clock == nil {
		f.clock = clock.System{}
	}
	saved := st.loadAll()
	if st != nil {
		f.saver = newSaver(st, log)
	}
	f.devices = make(map[string]*dev, len(saved))
	for id, s := range saved {
		d := &dev{id: id, saved: s}
		if s.LastTemps != nil {
			d.tempsSeq = s.LastTemps.Seq
		}
		f.devices[id] = d
	}
	return f
}

func (f *fleet) now() time.Time { return f.clock.Now() }

func (f *fleet) get(id string) *dev {
	d := f.devices[id]
	if d == nil {
		d = &dev{id: id}
		f.devices[id] = d
	}
	return d
}

// connected is called when the agent's subscriptions are in place (on every
// connect). The first call starts the restart timer.
func (f *fleet) connected() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.started.IsZero() || f.closed {
		return
	}
	f.started = f.now()
	f.graceT = time.AfterFunc(f.cfg.RestartGrace, f.graceExpired)
}

// onStatus handles a device's presence.
func (f *fleet) onStatus(id string, st *protocol.DeviceStatus, retained bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	d := f.get(id)
	dup := st.Online && !retained && f.sawLive(d, st.BootID)
	// Statuses of one device arrive in the broker's order of its topic: the
	// last one is the newest, whatever its ts says (a Pi without a
	// real-time clock boots with a stale time; a will can be dated hours
	// ahead by a host whose clock was fast).
	if !st.Online && d.statusSeen && st.BootID != d.statusBoot {
		// A late will of an earlier boot: the device is running as another.
		f.log.Debug("late will of an old boot ignored", "device", id, "boot_id", st.BootID, "current", d.statusBoot)
		return
	}
	if !st.Online && d.readyBoot != "" && st.BootID != d.readyBoot && !d.statusSeen {
		return
	}
	d.statusSeen, d.statusBoot, d.statusTS = true, st.BootID, st.TS
	was := d.online
	f.setOnline(d, st.Online)
	if st.Online {
		if d.parkTimer != nil {
			d.parkTimer.Stop()
			d.parkTimer = nil
		}
		path := PathFast
		if !retained {
			path = PathOnline
		}
		if !was {
			f.maybeStart(d, path, retained)
		} else if d.cycle && !dup && st.BootID != d.cycleBoot && st.BootID == d.readyBoot {
			// The ready of a new boot came first (retained messages of a
			// wildcard arrive in no set order): now both agree.
			f.log.Info("device restarted; new cycle replaces the old", "device", id, "boot_id", st.BootID)
			f.startNow(d, PathReady, true)
		}
		return
	}
	f.log.Info("device offline", "device", id)
	if d.cycle && d.parkTimer == nil {
		d.parkTimer = time.AfterFunc(f.cfg.OfflinePark, func() { f.park(id) })
	}
}

// onReady handles a device's readiness.
func (f *fleet) onReady(id string, r *protocol.Ready, retained bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	d := f.get(id)
	dup := !retained && f.sawLive(d, r.BootID)
	same := r.BootID == d.readyBoot
	if !same && !retained {
		d.scan = nil // a scan belongs to one boot
	}
	d.readyBoot, d.ready = r.BootID, r
	// A live ready of the running boot that shows a seq above ours says
	// the device dropped our temps as older than those it shows (we lost
	// the seq with our state, or read an old copy of it).
	// Only a seq above one this process sent counts: after a restart the
	// next step numbers above the ready anyway, and sending at once would
	// make two messages of one step.
	refusedOurs := !retained && same && d.cycle && d.cycleBoot == r.BootID && d.pubSeq > 0 && r.TempsSeq > d.pubSeq
	d.tempsSeq = max(d.tempsSeq, r.TempsSeq)
	if !retained {
		// A live ready proves the device is connected even if its status
		// was lost (a broker restarted without persistence).
		if !d.online || d.statusBoot != r.BootID {
			d.statusSeen, d.statusBoot = true, r.BootID
			f.setOnline(d, true)
		}
	}
	if refusedOurs && !d.running {
		// Send again now, numbered above what the device shows; the
		// cycle stays the same one (its timer is replaced).
		f.log.Info("device shows temps numbered above ours; sending again above them", "device", id, "temps_seq", r.TempsSeq)
		f.startNow(d, PathRenumber, true)
		return
	}
	if d.cycle && (same || r.BootID == d.cycleBoot) {
		return // exactly one cycle: a repeated ready changes nothing
	}
	if d.cycle && dup {
		// Two devices with one id announce in turn. Both read the same
		// temps topic, so the one cycle serves both; restarting it at
		// every announcement would fetch and relocate in a loop.
		return
	}
	if d.cycle && (!retained || d.statusBoot == r.BootID) {
		// A new boot while a cycle runs: restart it for the new process
		// (re-locate and fetch now); arming replaces the old timer. A
		// retained ready counts too when the status names the same boot:
		// it is what a reconnect shows of a device that restarted while
		// we were away.
		f.log.Info("device restarted; new cycle replaces the old", "device", id, "boot_id", r.BootID)
		f.startNow(d, PathReady, true)
		return
	}
	path := PathFast
	if !retained {
		path = PathReady
		if d.saved != nil && d.saved.BootID == r.BootID {
			path = PathRebirth
		}
	}
	f.maybeStart(d, path, retained)
}

// dupQuiet is how long one of two devices sharing an id must be unheard
// before the id counts as one device's again. Two processes with one
// client id push each other off the broker, and each announces itself at
// every reconnect, at least every 30 s (the reconnect backoff's ceiling):
// one unheard for four times that has stopped.
const dupQuiet = 2 * time.Minute

// sawLive records a live announcement of boot and reports whether d is
// known to be two devices with one id. Called with mu held.
func (f *fleet) sawLive(d *dev, boot string) bool {
	if i := slices.Index(d.dup, boot); i >= 0 {
		d.dupHeard[i] = f.now()
	}
	f.dupEnded(d)
	if boot == d.liveBoot || boot == "" {
		return d.dup != nil
	}
	if slices.Contains(d.prevBoots, boot) {
		pair := []string{d.liveBoot, boot}
		slices.Sort(pair)
		if d.dup == nil {
			f.nDup++
			f.stats.duplicates.Set(float64(f.nDup))
			if slices.Equal(pair, d.dupPast) {
				f.log.Warn("the two devices with one device id are both running again: give one a device_id of its own; one cycle serves both meanwhile", "device", d.id, "boot_id", d.liveBoot, "other_boot_id", boot)
			} else {
				f.log.Error("two devices are running with one device id (a cloned SD card?): give one a device_id of its own; one cycle serves both meanwhile",
					"device", d.id, "boot_id", d.liveBoot, "other_boot_id", boot)
			}
		}
		if !slices.Equal(pair, d.dup) {
			now := f.now()
			d.dupHeard = [2]time.Time{now, now}
		}
		d.dup = pair
	} else if d.liveBoot != "" {
		d.prevBoots = append(d.prevBoots, d.liveBoot)
		if len(d.prevBoots) > 4 {
			d.prevBoots = d.prevBoots[1:]
		}
	}
	d.liveBoot = boot
	return d.dup != nil
}

// dupEnded clears d's duplicate mark once one of its two boots has been
// unheard for dupQuiet (the clone was stopped or given an id of its own):
// the status page and metric stop saying so, and a restart of the device
// that remains is served as one again. Called with mu held.
func (f *fleet) dupEnded(d *dev) {
	if d.dup == nil {
		return
	}
	now := f.now()
	gone := -1
	for i, t := range d.dupHeard {
		if now.Sub(t) >= dupQuiet && (gone < 0 || t.Before(d.dupHeard[gone])) {
			gone = i
		}
	}
	if gone < 0 {
		return
	}
	stays := d.dup[1-gone]
	f.log.Info("one of the two devices with this id has been unheard; the id names one device again",
		"device", d.id, "boot_id", stays, "gone_boot_id", d.dup[gone], "unheard", dupQuiet)
	// Should the quiet one come back, its boot id is known: it is a
	// duplicate again at once, not a restart.
	d.prevBoots = slices.DeleteFunc(d.prevBoots, func(b string) bool { return b == stays })
	if !slices.Contains(d.prevBoots, d.dup[gone]) {
		d.prevBoots = append(d.prevBoots, d.dup[gone])
	}
	d.liveBoot = stays
	d.dupPast, d.dup = d.dup, nil
	f.nDup--
	f.stats.duplicates.Set(float64(f.nDup))
}

// onWiFi keeps a device's WiFi scan for the next location choice.
func (f *fleet) onWiFi(id string, scan *protocol.WiFiScan) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	d := f.get(id)
	d.scan = scan
	// A first scan can beat a default or IP location: use it now rather
	// than one interval later. Arming replaces the timer, so this stays
	// the device's one cycle.
	if d.cycle && (d.saved == nil || d.saved.Geo == nil ||
		(!d.saved.Geo.ScanTried && (d.saved.Geo.Source == geo.SourceDefault || d.saved.Geo.Source == geo.SourceIP))) {
		f.log.Info("wifi scan received; locating the device by it now", "device", id)
		f.arm(d, d.due, 0)
	}
}

// maybeStart starts or resumes d's cycle when it is online, its ready
// matches its status, and no cycle runs. Called with mu held.
func (f *fleet) maybeStart(d *dev, path string, retained bool) {
	if d.cycle || !d.online || d.readyBoot == "" || d.readyBoot != d.statusBoot {
		return
	}
	if retained && f.cfg.Resume == ResumeTimerOnly {
		return // the original design knew nothing of retained state
	}
	if !f.ownerAllows(d, path, retained) {
		return
	}
	if d.parked {
		path = PathOnline
	}
	f.startNow(d, path, false)
}

// ownerAllows asks the shard ownership, if any, whether this agent may
// start d's cycle now, and takes up the claimant's due time and seq when
// the device's claim has them. Called with mu held.
func (f *fleet) ownerAllows(d *dev, path string, retained bool) bool {
	if f.own == nil {
		return true
	}
	ok, seq, due := f.own.mayStart(f.view(d), path, retained)
	d.tempsSeq = max(d.tempsSeq, seq)
	if !ok || due.IsZero() {
		return ok
	}
	switch {
	case d.saved == nil || d.saved.BootID != d.readyBoot:
		d.saved = &Saved{Device: d.id, BootID: d.readyBoot, NextDue: due}
	case due.After(d.saved.NextDue):
		d.saved.NextDue = due
	}
	return true
}

// The fleet is the ownership's cycles. Its methods run with mu held, but
// locked.

func (f *fleet) locked(fn func()) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	fn()
	return true
}

func (f *fleet) view(d *dev) cycleView {
	v := cycleView{ID: d.id, Cycle: d.cycle, Boot: d.cycleBoot, ReadyBoot: d.readyBoot, Due: d.due, Unserved: d.due, Seq: d.tempsSeq}
	if d.running && d.numbered.Equal(d.due) {
		// The step in flight took its seq: it sends its temps anyway.
		v.Unserved = d.due.Add(f.cfg.Interval)
	}
	return v
}

func (f *fleet) cycle(id string) (cycleView, bool) {
	d := f.devices[id]
	if d == nil {
		return cycleView{}, false
	}
	return f.view(d), true
}

func (f *fleet) cycleIDs() []string {
	ids := make([]string, 0, len(f.devices))
	for id := range f.devices {
		ids = append(ids, id)
	}
	return ids
}

func (f *fleet) start(id, path string, retained bool) {
	if d := f.devices[id]; d != nil {
		f.maybeStart(d, path, retained)
	}
}

func (f *fleet) stop(id string) {
	if d := f.devices[id]; d != nil {
		f.stopCycle(d)
	}
}

func (f *fleet) raiseSeq(id string, seq uint64) {
	if d := f.devices[id]; d != nil {
		d.tempsSeq = max(d.tempsSeq, seq)
	}
}

func (f *fleet) restartDone() bool { return f.graceDone }

// startNow arms d's cycle: at the saved due time when it serves the same
// boot as before, else at once. Arming always replaces the previous timer.
func (f *fleet) startNow(d *dev, path string, forceNow bool) {
	now := f.now()
	due := now
	newBoot := d.saved == nil || d.saved.BootID != d.readyBoot
	if !newBoot && !forceNow && !d.saved.NextDue.IsZero() && d.saved.NextDue.After(now) {
		due = anchor(now, d.saved.NextDue)
	}
	if newBoot || forceNow {
		d.attempt = 0
	}
	d.parked = false
	d.cycleBoot = d.readyBoot
	wait := due.Sub(now)
	if wait <= 0 && path != PathReady && path != PathRenumber {
		// Overdue after a restart: spread them a little so a fleet does
		// not fetch in one burst (the fetch cache and limit do the rest).
		// The step is due when it fires: the next one follows a whole
		// interval after it, not after the moment it was armed (at a
		// short interval the two came milliseconds apart). A renumbered
		// step goes at once: the refused one was just sent.
		wait = time.Duration(rand.Int64N(int64(time.Second)))
		due = now.Add(wait)
	}
	f.arm(d, due, wait)
	f.stats.resumed(path, now.Sub(f.started), f.started.IsZero())
	f.log.Info("cycle armed", "device", d.id, "path", path, "due", due.UTC().Format(time.RFC3339), "boot_id", d.readyBoot)
}

// anchor re-expresses t, a wall time read from disk or the broker (no
// monotonic reading), as now plus the wait until it. Every later due time
// is derived from this one: anchored, the chain is measured by the
// monotonic clock, and a wall-clock step (NTP) cannot stall the cycle for
// the size of the step.
func anchor(now, t time.Time) time.Time { return now.Add(t.Sub(now)) }

// arm (re)places d's timer. Called with mu held.
func (f *fleet) arm(d *dev, due time.Time, wait time.Duration) {
	if d.timer != nil {
		d.timer.Stop()
	}
	d.gen++
	gen := d.gen
	f.setCycle(d, true)
	d.due = due
	f.stats.setCycles(f.countCycles())
	id := d.id
	// No wait is longer than one interval: a due time computed before a
	// wall-clock step back (or read from another host's claim) must not
	// stall the cycle for the size of the step.
	wait = min(max(wait, 0), f.cfg.Interval)
	d.timer = time.AfterFunc(wait, func() { f.fire(id, gen) })
	if f.own != nil {
		f.own.armed(f.view(d))
	}
}

func (f *fleet) fire(id string, gen uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.devices[id]
	if f.closed || d == nil || d.gen != gen {
		return
	}
	d.timer = nil
	if d.running {
		// A superseded run is still in flight: stop it, and start this
		// one when it has ended, so two runs of a device never overlap.
		d.pendingRun = true
		d.runCancel()
		return
	}
	f.startRun(d)
}

// startRun starts the run for d's current generation. Called with mu held.
func (f *fleet) startRun(d *dev) {
	in := locateInput{Boot: d.cycleBoot, Ready: d.ready, Scan: d.scan, Prev: d.located}
	if in.Prev == nil && d.saved != nil {
		in.Prev = d.saved.Geo
	}
	// One context a run, bounding its step too: a cold start starts one
	// for every device at once.
	ctx, cancel := context.WithTimeout(f.ctx, stepTimeout)
	d.running, d.runCancel = true, cancel
	f.wg.Add(1)
	go f.run(ctx, d.id, d.gen, d.due, in)
}

// stepTimeout bounds one step: location, forecast and publish.
const stepTimeout = 60 * time.Second

// run performs one step of a cycle: fetch, publish, save, arm the next.
func (f *fleet) run(ctx context.Context, id string, gen uint64, due time.Time, in locateInput) {
	defer f.wg.Done()
	f.stats.runStarted(id)
	err := f.step(ctx, id, gen, due, in)
	f.stats.runEnded(id)
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.devices[id]
	if d == nil {
		return
	}
	d.running = false
	d.runCancel()
	if f.closed {
		return
	}
	if d.gen != gen {
		// Superseded while we worked; start the newer run if it waited.
		if d.pendingRun {
			d.pendingRun = false
			f.startRun(d)
		}
		return
	}
	now := f.now()
	if err != nil {
		d.attempt++
		backoff := f.cfg.Retry << min(d.attempt-1, 10)
		next := due.Add(f.cfg.Interval)
		if next.Before(now) {
			next = now.Add(f.cfg.Interval)
		}
		retryAt := now.Add(min(backoff, f.cfg.Interval))
		if retryAt.After(next) {
			// Give up on this step; the next one is due anyway.
			d.attempt = 0
			retryAt = next
			due = next
		}
		f.log.Warn("forecast step failed; cycle continues", "device", id, "err", err, "attempt", d.attempt, "retry_at", retryAt.UTC().Format(time.RFC3339))
		f.arm(d, due, retryAt.Sub(now))
		return
	}
	d.attempt = 0
	f.dupEnded(d)
	next := due.Add(f.cfg.Interval)
	if !next.After(now) {
		next = now.Add(f.cfg.Interval)
	}
	if d.saved != nil {
		d.saved.NextDue = next
	}
	f.arm(d, next, next.Sub(now))
	if f.own != nil {
		f.own.stepped(f.view(d))
	}
	if d.saved != nil && f.saver != nil {
		d.saved.Updated = now
		snap := *d.saved // its pointers are replaced, never written through
		f.saver.put(&snap)
	}
}

// ErrNoLocation is a device's cycle error when nothing tells where it is.
var ErrNoLocation = errors.New("no location known: set --location, a location for this device in the agent config (devices.<id>.location), or one in the device's config")

// step locates, fetches and publishes without holding mu.
func (f *fleet) step(ctx context.Context, id string, gen uint64, due time.Time, in locateInput) error {
	if f.cfg.Locate == nil {
		return ErrNoLocation
	}
	g, fc, err := f.fetch(ctx, id, in)
	if err != nil {
		return err
	}
	loc, src := &g.Location, g.Source
	now := f.now()
	t := buildTemps(fc, now, *loc, f.cfg.Interval)
	// Check we are still the cycle before we speak for it, and number the
	// message above every temps the device may have seen.
	f.mu.Lock()
	d := f.devices[id]
	live := !f.closed && d != nil && d.gen == gen
	if live {
		d.tempsSeq++
		t.Seq = d.tempsSeq
		d.numbered = due
	}
	f.mu.Unlock()
	if !live {
		return nil
	}
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	select {
	case f.pubs <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	err = f.send.SendRetained(ctx, id, protocol.MsgTemps, b)
	<-f.pubs
	if err != nil {
		return err
	}
	f.stats.published(id)
	f.mu.Lock()
	d.pubSeq = t.Seq
	if d.saved == nil || d.saved.BootID != d.cycleBoot {
		d.saved = &Saved{Device: id}
	}
	d.saved.BootID = d.cycleBoot
	d.saved.Location, d.saved.LocationSource, d.saved.Geo = loc, src, g
	d.located = nil
	d.saved.LastTemps = t
	f.mu.Unlock()
	f.log.Info("temps published", "device", id, "temps_c", []float64(t.TempsC), "issued_at", t.IssuedAt.Format(time.RFC3339), "location_source", src)
	return nil
}

// fetch locates the device and gets its place's forecast. Only the
// location holds a fleet slot: the forecaster bounds its own requests and
// makes one per place, and a slot held while waiting on a place's request
// kept devices of places already cached waiting behind it (a cold start
// took places × jitter / slots instead of the jitter).
func (f *fleet) fetch(ctx context.Context, id string, in locateInput) (*geo.Saved, *weather.Forecast, error) {
	g, err := f.locate(ctx, id, in)
	if err != nil {
		return nil, nil, err
	}
	if g != in.Prev {
		f.mu.Lock()
		if d := f.devices[id]; d != nil {
			d.located = g
		}
		f.mu.Unlock()
	}
	start := f.now()
	fc, err := f.fc.Forecast(ctx, id, g.Location.Lat, g.Location.Lon)
	f.stats.fetched(err, time.Since(start))
	if err != nil {
		return nil, nil, err
	}
	return g, fc, nil
}

// locate resolves the device's location within the fleet's bound.
func (f *fleet) locate(ctx context.Context, id string, in locateInput) (*geo.Saved, error) {
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-f.sem }()
	return f.cfg.Locate(ctx, id, in)
}

// maxPublishes is how many temps publishes may wait for their
// acknowledgement at once: enough to keep a broker's round trip out of a
// cold start's length, few enough not to flood a slow link.
const maxPublishes = 256

// buildTemps turns a forecast into the temps message for now.
func buildTemps(fc *weather.Forecast, now time.Time, loc protocol.Location, interval time.Duration) *protocol.Temps {
	start, hourly := fc.Hourly(now, 48)
	issued := fc.FetchedAt
	if issued.IsZero() {
		issued = now
	}
	return &protocol.Temps{
		TempsC:     fc.Select(now, protocol.Offsets),
		OffsetsH:   append([]int(nil), protocol.Offsets...),
		IssuedAt:   issued.UTC(),
		ValidUntil: issued.Add(2 * interval).UTC(),
		Location:   loc,
		Hourly:     protocol.Hourly{Start: start, TempsC: trimHourly(hourly)},
		Provider:   fc.Provider,
	}
}

// trimHourly drops trailing missing hours beyond the first 24.
func trimHourly(h []float64) protocol.TempList {
	n := len(h)
	for n > protocol.HourlyMin && h[n-1] != h[n-1] {
		n--
	}
	return protocol.TempList(h[:n])
}

// graceExpired is the restart timer: the fallback for devices the fast path
// did not resume.
func (f *fleet) graceExpired() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.graceDone = true
	for _, d := range f.devices {
		if d.cycle || d.parked {
			continue
		}
		switch {
		case d.online:
			if d.readyBoot == "" {
				d.readyBoot = d.statusBoot
			}
			if d.readyBoot != d.statusBoot {
				d.readyBoot = d.statusBoot
			}
			if !f.ownerAllows(d, PathTimer, false) {
				continue
			}
			f.startNow(d, PathTimer, f.cfg.Resume == ResumeTimerOnly)
		}
	}
	f.askMissingLocked(f.cfg.RestartGrace)
}

func (f *fleet) sendRebirth(ids []string) {
	defer f.wg.Done()
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
		err := f.send.Send(ctx, id, protocol.MsgRebirth, []byte(`{}`))
		cancel()
		if err != nil {
			f.log.Warn("rebirth request failed", "device", id, "err", err)
			continue
		}
		f.stats.rebirthSent()
		f.log.Info("rebirth requested from a device missing from the broker's retained state", "device", id)
	}
}

// park stops an offline device's cycle after --offline-park.
func (f *fleet) park(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.devices[id]
	if f.closed || d == nil || d.online || !d.cycle {
		return
	}
	f.stopCycle(d)
	d.parked = true
	f.log.Info("device offline too long; cycle parked until it returns", "device", id, "after", f.cfg.OfflinePark)
}

// stopCycle ends d's cycle: its timers, its run in flight and any run
// waiting behind that one. Called with mu held.
func (f *fleet) stopCycle(d *dev) {
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if d.parkTimer != nil {
		d.parkTimer.Stop()
		d.parkTimer = nil
	}
	d.gen++
	if d.running {
		d.runCancel()
	}
	d.pendingRun = false
	f.setCycle(d, false)
}

// setCycle and setOnline keep the fleet's counts as flags change, so a
// restart with many devices costs O(N), not a walk of the fleet per device.
// Called with mu held.
func (f *fleet) setCycle(d *dev, v bool) {
	if d.cycle == v {
		return
	}
	d.cycle = v
	if v {
		f.nCycles++
	} else {
		f.nCycles--
	}
	f.stats.setCycles(f.nCycles)
}

func (f *fleet) setOnline(d *dev, v bool) {
	if d.online == v {
		return
	}
	d.online = v
	if v {
		f.nOnline++
	} else {
		f.nOnline--
	}
	f.stats.setOnline(f.nOnline)
}

func (f *fleet) countCycles() int { return f.nCycles }

// close stops every timer and waits for runs in flight.
func (f *fleet) close() {
	f.mu.Lock()
	f.closed = true
	if f.own != nil {
		f.own.stop()
	}
	if f.graceT != nil {
		f.graceT.Stop()
	}
	if f.invT != nil {
		f.invT.Stop()
	}
	for _, d := range f.devices {
		if d.timer != nil {
			d.timer.Stop()
		}
		if d.parkTimer != nil {
			d.parkTimer.Stop()
		}
		d.gen++
	}
	f.mu.Unlock()
	f.wg.Wait()
	if f.saver != nil {
		f.saver.close()
	}
}

// DeviceView is a snapshot of one device for the status page and tests.
type DeviceView struct {
	ID             string
	Online         bool
	Cycle          bool
	Parked         bool
	Due            time.Time
	BootID         string
	Version        string // from the device's ready
	Location       *protocol.Location
	LocationSource string
	LastTemps      *protocol.Temps
	// Duplicate holds the boot ids of two devices running with this id.
	Duplicate []string
}

func (f *fleet) snapshot() []DeviceView {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]DeviceView, 0, len(f.devices))
	for _, d := range f.devices {
		f.dupEnded(d)
		v := DeviceView{ID: d.id, Online: d.online, Cycle: d.cycle, Parked: d.parked, BootID: d.readyBoot, Duplicate: slices.Clone(d.dup)}
		if d.cycle {
			v.Due = d.due
		}
		if d.ready != nil {
			v.Version = d.ready.Version
		}
		if d.saved != nil {
			v.Location, v.LocationSource, v.LastTemps = d.saved.Location, d.saved.LocationSource, d.saved.LastTemps
		}
		out = append(out, v)
	}
	return out
}
