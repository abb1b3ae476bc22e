package agent

import (
	"context"
	"errors"
	"fmt"
	"github.com/glowcast/glowcast/internal/atomicfile"
	dto "github.com/prometheus/client_model/go"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/glowcast/glowcast/agent/geo"
	"github.com/glowcast/glowcast/agent/weather"
	"github.com/glowcast/glowcast/mqttmsg"
	"github.com/glowcast/glowcast/protocol"
)

// fakeForecaster answers with a flat forecast and counts requests; it can
// be told to fail.
type fakeForecaster struct {
	mu    sync.Mutex
	calls int
	fail  error
	delay time.Duration
}

func (f *fakeForecaster) Forecast(ctx context.Context, _ string, lat, lon float64) (*weather.Forecast, error) {
	f.mu.Lock()
	f.calls++
	fail, delay := f.fail, f.delay
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail != nil {
		return nil, fail
	}
	now := time.Now()
	fc := &weather.Forecast{Start: now.UTC().Truncate(time.Hour), FetchedAt: now, Provider: "test"}
	for i := range 48 {
		fc.Temps = append(fc.Temps, float64(i))
	}
	return fc, nil
}

func (f *fakeForecaster) n() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeForecaster) setFail(err error) {
	f.mu.Lock()
	f.fail = err
	f.mu.Unlock()
}

// fakeSender records what the fleet sends.
type fakeSender struct {
	mu      sync.Mutex
	temps   map[string][]time.Time
	seqs    map[string][]uint64
	rebirth map[string]int
	fail    error
	// gate, when set, holds every SendRetained until it is closed.
	gate chan struct{}
}

func newFakeSender() *fakeSender {
	return &fakeSender{temps: map[string][]time.Time{}, seqs: map[string][]uint64{}, rebirth: map[string]int{}}
}

func (s *fakeSender) Send(ctx context.Context, id, name string, b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == protocol.MsgRebirth {
		s.rebirth[id]++
	}
	return s.fail
}

func (s *fakeSender) SendRetained(ctx context.Context, id, name string, b []byte) error {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	tp, err := protocol.ParseTemps(b)
	if err != nil {
		panic("fleet sent invalid temps: " + err.Error())
	}
	s.temps[id] = append(s.temps[id], time.Now())
	s.seqs[id] = append(s.seqs[id], tp.Seq)
	return nil
}

func (s *fakeSender) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.temps[id])
}

func (s *fakeSender) rebirths(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rebirth[id]
}

type harness struct {
	f     *fleet
	fc    *fakeForecaster
	snd   *fakeSender
	stats *Stats
	stop  context.CancelFunc
}

const (
	tInterval = 30 * time.Minute
	tGrace    = 30 * time.Second
	tPark     = 6 * time.Hour
)

func newHarness(t testing.TB, dir string, mode string) *harness {
	t.Helper()
	st, err := openStore(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{fc: &fakeForecaster{}, snd: newFakeSender(), stats: newStats(), stop: cancel}
	loc := &protocol.Location{Lat: 52.52, Lon: 13.4}
	h.f = newFleet(ctx, fleetConfig{
		Interval: tInterval, RestartGrace: tGrace, OfflinePark: tPark, Resume: mode, Retry: 5 * time.Second,
		Locate: func(context.Context, string, locateInput) (*geo.Saved, error) {
			return &geo.Saved{Result: geo.Result{Location: *loc, Source: geo.SourceDefault}}, nil
		},
	}, slog.New(slog.DiscardHandler), h.snd, h.fc, st, h.stats)
	t.Cleanup(func() { h.close() })
	return h
}

func (h *harness) close() {
	h.stop()
	h.f.close()
}

func online(boot string, ts time.Time) *protocol.DeviceStatus {
	return &protocol.DeviceStatus{Online: true, BootID: boot, TS: ts}
}

func offline(boot string, ts time.Time) *protocol.DeviceStatus {
	return &protocol.DeviceStatus{Online: false, BootID: boot, TS: ts}
}

func ready(boot string) *protocol.Ready { return &protocol.Ready{BootID: boot, LEDs: 5} }

// announce is what a device does at start: status online, then ready.
func (h *harness) announce(id, boot string, retained bool) {
	h.f.onStatus(id, online(boot, time.Now()), retained)
	h.f.onReady(id, ready(boot), retained)
}

func (h *harness) cycles(id string) (running bool) {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	d := h.f.devices[id]
	return d != nil && d.cycle
}

func TestNewDeviceGetsTempsAtOnceAndEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, "", ResumeFast)
		h.f.connected()
		h.announce("kitchen", "b1", false)
		synctest.Wait()
		if got := h.snd.count("kitchen"); got != 1 {
			t.Fatalf("temps after ready: got %d, want 1", got)
		}
		time.Sleep(3*tInterval + time.Second)
		synctest.Wait()
		if got := h.snd.count("kitchen"); got != 4 {
			t.Fatalf("temps after 3 intervals: got %d, want 4", got)
		}
		if got := h.fc.n(); got != 4 {
			t.Fatalf("fetches: got %d, want 4", got)
		}
	})
}

// The invariant of the project: whatever arrives, one cycle per device.
func TestExactlyOneCycle(t *testing.T) {
	tests := []struct {
		name   string
		events func(h *harness)
		// wantTemps is the number of publications within 2 intervals + 1s.
		wantTemps int
	}{
		{"repeated ready, same boot", func(h *harness) {
			for range 5 {
				h.announce("d", "b1", false)
				time.Sleep(time.Minute)
			}
		}, 3},
		{"retained and live ready of the same boot", func(h *harness) {
			h.announce("d", "b1", true)
			h.announce("d", "b1", false)
		}, 3},
		{"rebirth answer while the cycle runs", func(h *harness) {
			h.announce("d", "b1", false)
			time.Sleep(10 * time.Minute)
			h.announce("d", "b1", false)
		}, 3},
		{"status flapping online/offline", func(h *harness) {
			h.announce("d", "b1", false)
			for i := range 10 {
				h.f.onStatus("d", offline("b1", time.Now()), false)
				time.Sleep(time.Second)
				h.f.onStatus("d", online("b1", time.Now()), false)
				_ = i
			}
		}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, "", ResumeFast)
				h.f.connected()
				start := time.Now()
				tt.events(h)
				time.Sleep(start.Add(2*tInterval + time.Second).Sub(time.Now()))
				synctest.Wait()
				if got := h.snd.count("d"); got != tt.wantTemps {
					t.Errorf("temps published: got %d, want %d", got, tt.wantTemps)
				}
				if got := h.f.countCycles(); got != 1 {
					t.Errorf("cycles: got %d, want 1", got)
				}
			})
		})
	}
}

func TestNewBootReplacesCycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, "", ResumeFast)
		h.f.connected()
		h.announce("d", "b1", false)
		time.Sleep(10 * time.Minute)
		h.announce("d", "b2", false) // device restarted
		synctest.Wait()
		if got := h.snd.count("d"); got != 2 {
			t.Fatalf("temps after new boot: got %d, want 2 (one per boot)", got)
		}
		// The old cadence (due at 30m) is gone; the new one is due at 40m.
		time.Sleep(25 * time.Minute) // t = 35m
		synctest.Wait()
		if got := h.snd.count("d"); got != 2 {
			t.Fatalf("temps at 35m: got %d, want 2 (old timer must be replaced)", got)
		}
		time.Sleep(6 * time.Minute) // t = 41m
		synctest.Wait()
		if got := h.snd.count("d"); got != 3 {
			t.Fatalf("temps at 41m: got %d, want 3", got)
		}
	})
}

func TestNewBootDuringFetchDoesNotDoubleTheCycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, "", ResumeFast)
		h.fc.delay = 5 * time.Second
		h.f.connected()
		h.announce("d", "b1", false)
		time.Sleep(2 * time.Second) // fetch in flight
		h.announce("d", "b2", false)
		time.Sleep(tInterval * 3)
		synctest.Wait()
		if v := h.stats.violationsN(); v != 0 {
			t.Fatalf("parallel runs of one device: %v", v)
		}
		// One publication per boot start plus one per interval of the
		// second boot's cycle; never a second cadence.
		if got, want := h.snd.count("d"), 3+1; got > want {
			t.Fatalf("temps: got %d, want at most %d", got, want)
		}
	})
}

func TestFastPathResumesAtSavedDueTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		// First agent: serves the device, then dies.
		h1 := newHarness(t, dir, ResumeFast)
		h1.f.connected()
		h1.announce("d", "b1", false)
		synctest.Wait()
		time.Sleep(20 * time.Minute)
		h1.close()

		// Second agent, same state dir: the retained status and ready
		// arrive at subscribe time.
		h2 := newHarness(t, dir, ResumeFast)
		h2.f.connected()
		h2.announce("d", "b1", true)
		if !h2.cycles("d") {
			t.Fatal("cycle not resumed at once by the fast path")
		}
		if got := h2.stats.Resumed()[PathFast]; got != 1 {
			t.Fatalf("fast-path resumes: got %d, want 1", got)
		}
		time.Sleep(9 * time.Minute) // t = 29m: not yet due
		synctest.Wait()
		if got := h2.snd.count("d"); got != 0 {
			t.Fatalf("temps before the saved due time: got %d, want 0", got)
		}
		time.Sleep(2 * time.Minute) // t = 31m
		synctest.Wait()
		if got := h2.snd.count("d"); got != 1 {
			t.Fatalf("temps after the saved due time: got %d, want 1", got)
		}
	})
}

func TestOverdueResumeRunsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		h1 := newHarness(t, dir, ResumeFast)
		h1.f.connected()
		h1.announce("d", "b1", false)
		synctest.Wait()
		h1.close()
		time.Sleep(45 * time.Minute) // the agent was away longer than an interval

		h2 := newHarness(t, dir, ResumeFast)
		h2.f.connected()
		h2.announce("d", "b1", true)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := h2.snd.count("d"); got != 1 {
			t.Fatalf("temps right after an overdue resume: got %d, want 1", got)
		}
		// Regression (fault campaign at a 1 s interval): the spread step
		// kept the moment it was armed as its due time, so the next step
		// came an interval after that — up to the spread early, two
		// messages milliseconds apart when the interval is short.
		time.Sleep(tInterval)
		synctest.Wait()
		h2.snd.mu.Lock()
		ts := append([]time.Time(nil), h2.snd.temps["d"]...)
		h2.snd.mu.Unlock()
		if len(ts) != 2 || ts[1].Sub(ts[0]) != tInterval {
			t.Fatalf("steps after an overdue resume at %v, want two exactly one interval (%v) apart", ts, tInterval)
		}
	})
}

func TestRestartTimerAndRebirth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		h1 := newHarness(t, dir, ResumeFast)
		h1.f.connected()
		h1.announce("known", "b1", false)
		h1.announce("online-no-ready", "b2", false)
		synctest.Wait()
		h1.close()

		h2 := newHarness(t, dir, ResumeFast)
		h2.f.connected()
		// The broker lost retained state: only a status for one device
		// arrives, nothing for the other.
		h2.f.onStatus("online-no-ready", online("b2", time.Now()), true)
		if h2.cycles("online-no-ready") {
			t.Fatal("resumed without ready before the restart timer")
		}
		time.Sleep(tGrace + time.Second)
		synctest.Wait()
		if !h2.cycles("online-no-ready") {
			t.Fatal("restart timer did not resume the online device")
		}
		if got := h2.snd.rebirths("known"); got != 1 {
			t.Fatalf("rebirth requests to the silent device: got %d, want 1", got)
		}
		if got := h2.snd.rebirths("online-no-ready"); got != 0 {
			t.Fatalf("rebirth requests to the online device: got %d, want 0", got)
		}
		// The device answers the rebirth: status and ready, same boot.
		h2.announce("known", "b1", false)
		if !h2.cycles("known") {
			t.Fatal("rebirth answer did not resume the cycle")
		}
		if got := h2.stats.Resumed()[PathRebirth]; got != 1 {
			t.Fatalf("rebirth resumes: got %d, want 1", got)
		}
	})
}

func TestTimerOnlyWaitsForGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, t.TempDir(), ResumeTimerOnly)
		h.f.connected()
		h.announce("d", "b1", true)
		if h.cycles("d") {
			t.Fatal("timer-only mode resumed before the restart timer")
		}
		time.Sleep(tGrace - time.Second)
		synctest.Wait()
		if got := h.snd.count("d"); got != 0 {
			t.Fatalf("temps before grace: got %d, want 0", got)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := h.snd.count("d"); got != 1 {
			t.Fatalf("temps after grace: got %d, want 1 (fetch at once)", got)
		}
	})
}

// The restart timer locates a device with what its ready says (the
// location hint from its own config), like every other path: an agent
// with no default location must still serve it.
func TestRestartTimerUsesTheReadyPayload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, t.TempDir(), ResumeTimerOnly)
		var got []locateInput
		var mu sync.Mutex
		h.f.cfg.Locate = func(_ context.Context, _ string, in locateInput) (*geo.Saved, error) {
			mu.Lock()
			got = append(got, in)
			mu.Unlock()
			if in.Ready == nil || in.Ready.Location == nil {
				return nil, ErrNoLocation
			}
			return &geo.Saved{Result: geo.Result{Location: *in.Ready.Location, Source: geo.SourceDevice}}, nil
		}
		h.f.connected()
		hint := &protocol.Location{Lat: 47.37, Lon: 8.54}
		h.f.onStatus("d", online("b1", time.Now()), true)
		h.f.onReady("d", &protocol.Ready{BootID: "b1", LEDs: 5, Location: hint}, true)
		time.Sleep(tGrace + 2*time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(got) == 0 || got[0].Ready == nil || got[0].Ready.Location == nil || *got[0].Ready.Location != *hint {
			t.Fatalf("locate input on the timer path: %+v, want the ready's location hint %v", got, *hint)
		}
		if n := h.snd.count("d"); n != 1 {
			t.Fatalf("temps after the restart timer: got %d, want 1", n)
		}
	})
}

func TestOfflineDeviceParksAndResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, "", ResumeFast)
		h.f.connected()
		h.announce("d", "b1", false)
		synctest.Wait()
		h.f.onStatus("d", offline("b1", time.Now()), false)
		time.Sleep(tPark - time.Minute)
		synctest.Wait()
		if !h.cycles("d") {
			t.Fatal("cycle stopped before --offline-park")
		}
		n := h.snd.count("d")
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if h.cycles("d") {
			t.Fatal("cycle still running after --offline-park")
		}
		time.Sleep(3 * tInterval)
		synctest.Wait()
		if got := h.snd.count("d"); got > n+1 {
			t.Fatalf("temps while parked: got %d more", got-n)
		}
		h.f.onStatus("d", online("b1", time.Now()), false)
		synctest.Wait()
		if !h.cycles("d") {
			t.Fatal("cycle not resumed when the device came back")
		}
	})
}

func TestLateWillOfAnOldBootIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, "", ResumeFast)
		h.f.connected()
		t0 := time.Now()
		time.Sleep(time.Minute)
		h.announce("d", "b2", false)
		// The will of the previous boot arrives late.
		h.f.onStatus("d", offline("b1", t0), false)
		// Dated hours ahead, it is still the late will of another boot.
		h.f.onStatus("d", offline("b1", t0.Add(5*time.Hour)), false)
		h.f.mu.Lock()
		d := h.f.devices["d"]
		on, boot := d.online, d.statusBoot
		h.f.mu.Unlock()
		if !on || boot != "b2" {
			t.Fatalf("device online=%v boot=%q, want online with b2", on, boot)
		}
	})
}

func TestFailedFetchKeepsCycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, "", ResumeFast)
		h.f.connected()
		h.fc.setFail(errors.New("HTTP 503"))
		h.announce("d", "b1", false)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if got := h.fc.n(); got < 3 {
			t.Fatalf("fetch attempts in 2 minutes: got %d, want retries", got)
		}
		if got := h.snd.count("d"); got != 0 {
			t.Fatalf("temps published on failure: got %d, want 0", got)
		}
		if !h.cycles("d") {
			t.Fatal("a failed fetch ended the cycle")
		}
		h.fc.setFail(nil)
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if got := h.snd.count("d"); got != 1 {
			t.Fatalf("temps after recovery: got %d, want 1", got)
		}
		// Backoff is bounded by the interval: no fetch storm.
		if got := h.fc.n(); got > 12 {
			t.Fatalf("fetch attempts: got %d, want a bounded backoff", got)
		}
	})
}

func TestManyDevicesRandomEventsNeverOverlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, t.TempDir(), ResumeFast)
		h.fc.delay = 3 * time.Second
		h.f.connected()
		ids := []string{"a", "b", "c", "d", "e"}
		boots := map[string]int{}
		for step := range 400 {
			id := ids[step%len(ids)]
			switch (step * 7919) % 5 {
			case 0:
				boots[id]++
				h.announce(id, string(rune('A'+boots[id])), false)
			case 1:
				h.announce(id, string(rune('A'+boots[id])), true)
			case 2:
				h.f.onStatus(id, offline(string(rune('A'+boots[id])), time.Now()), false)
			case 3:
				h.f.onStatus(id, online(string(rune('A'+boots[id])), time.Now()), false)
			}
			time.Sleep(time.Duration(step%13) * time.Second)
		}
		time.Sleep(2 * tInterval)
		synctest.Wait()
		if v := h.stats.violationsN(); v != 0 {
			t.Fatalf("overlapping runs: %v", v)
		}
		if got := h.f.countCycles(); got > len(ids) {
			t.Fatalf("cycles: got %d, want at most %d", got, len(ids))
		}
	})
}

func (s *fakeSender) seqsOf(id string) []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint64(nil), s.seqs[id]...)
}

// Temps are numbered per device, and the numbering goes on across an agent
// restart (saved state) and for an agent that knows the device only from
// its ready (temps_seq of what it shows), so a device can order them
// without trusting issued_at, the fetch time of a possibly cached forecast.
func TestTempsSeqIsMonotonicAcrossRestarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		h1 := newHarness(t, dir, ResumeFast)
		h1.f.connected()
		h1.announce("d", "b1", false)
		synctest.Wait()
		time.Sleep(tInterval + time.Second)
		synctest.Wait()
		if got := h1.snd.seqsOf("d"); !slices.Equal(got, []uint64{1, 2}) {
			t.Fatalf("first agent's seqs: got %v, want [1 2]", got)
		}
		h1.close()

		h2 := newHarness(t, dir, ResumeFast)
		h2.f.connected()
		h2.announce("d", "b2", false) // a new boot: fetched at once
		synctest.Wait()
		if got := h2.snd.seqsOf("d"); !slices.Equal(got, []uint64{3}) {
			t.Fatalf("restarted agent's seqs: got %v, want [3]", got)
		}

		h3 := newHarness(t, "", ResumeFast) // no state at all
		h3.f.connected()
		h3.f.onStatus("e", online("b1", time.Now()), false)
		h3.f.onReady("e", &protocol.Ready{BootID: "b1", LEDs: 5, TempsSeq: 41}, false)
		synctest.Wait()
		if got := h3.snd.seqsOf("e"); !slices.Equal(got, []uint64{42}) {
			t.Fatalf("seqs after a ready with temps_seq 41: got %v, want [42]", got)
		}
	})
}

// Regression (chaos, agent-overlap after a device power cut): an agent that
// read an old copy of the state numbered its temps far below those the
// device showed; the device dropped every message and its strip went stale.
// The device now re-publishes its ready with the seq it shows, and the
// agent sends again at once, numbered above it, in the same cycle.
func TestReadyShowingAHigherSeqGetsTempsAgainAboveIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, "", ResumeFast)
		h.f.connected()
		h.announce("d", "b1", false)
		synctest.Wait()
		if got := h.snd.seqsOf("d"); !slices.Equal(got, []uint64{1}) {
			t.Fatalf("seqs after ready: got %v, want [1]", got)
		}
		time.Sleep(time.Minute)
		h.f.onReady("d", &protocol.Ready{BootID: "b1", LEDs: 5, TempsSeq: 113}, false)
		time.Sleep(time.Second)
		synctest.Wait()
		if got := h.snd.seqsOf("d"); !slices.Equal(got, []uint64{1, 114}) {
			t.Fatalf("seqs after a ready showing 113: got %v, want [1 114]", got)
		}
		// The same ready again (the device's own echo, or a duplicate
		// delivery) is not a refusal: nothing more is sent.
		h.f.onReady("d", &protocol.Ready{BootID: "b1", LEDs: 5, TempsSeq: 114}, false)
		synctest.Wait()
		if got := h.snd.seqsOf("d"); len(got) != 2 {
			t.Fatalf("seqs after a ready showing our own seq: got %v, want 2 messages", got)
		}
		// The cycle goes on from the renumbered step: one interval later.
		time.Sleep(tInterval + time.Second)
		synctest.Wait()
		if got := h.snd.seqsOf("d"); !slices.Equal(got, []uint64{1, 114, 115}) {
			t.Fatalf("seqs an interval later: got %v, want [1 114 115]", got)
		}
		if n := h.f.countCycles(); n != 1 {
			t.Fatalf("cycles: got %d, want 1", n)
		}

		// A restarted agent that has sent nothing yet only takes the seq:
		// its next step numbers above it; sending at once as well would
		// be two messages for one step.
		h.close()
		h2 := newHarness(t, "", ResumeFast)
		h2.f.connected()
		h2.f.onStatus("d", online("b1", time.Now()), true)
		h2.f.onReady("d", &protocol.Ready{BootID: "b1", LEDs: 5, TempsSeq: 115}, true)
		synctest.Wait()
		// The device reconnects meanwhile: its ready is live now.
		h2.f.onReady("d", &protocol.Ready{BootID: "b1", LEDs: 5, TempsSeq: 200}, false)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := h2.snd.seqsOf("d"); !slices.Equal(got, []uint64{201}) {
			t.Fatalf("restarted agent's seqs: got %v, want [201]: its resume step only, above the ready", got)
		}
	})
}

// Regression: after the agent's connection dropped and came back while a
// device restarted, the device's new ready arrived retained (at subscribe
// time) while the old boot's cycle still ran; it was taken for resume state
// and the old cycle went on, with the old boot's location, until the next
// interval.
func TestRetainedReadyOfANewBootAfterReconnectRestartsTheCycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, "", ResumeFast)
		var mu sync.Mutex
		var boots []string
		h.f.cfg.Locate = func(_ context.Context, _ string, in locateInput) (*geo.Saved, error) {
			mu.Lock()
			boots = append(boots, in.Boot)
			mu.Unlock()
			return &geo.Saved{Result: geo.Result{Location: protocol.Location{Lat: 1, Lon: 2}, Source: geo.SourceDefault}}, nil
		}
		h.f.connected()
		h.announce("d", "b1", false)
		synctest.Wait()
		time.Sleep(5 * time.Minute)
		h.announce("d", "b2", true) // retained, after a reconnect
		synctest.Wait()
		if got := h.snd.count("d"); got != 2 {
			t.Fatalf("temps after the new boot's retained ready: got %d, want 2", got)
		}
		// Ready before status: retained messages of a wildcard arrive in
		// no set order.
		time.Sleep(5 * time.Minute)
		h.f.onReady("d", ready("b3"), true)
		h.f.onStatus("d", online("b3", time.Now()), true)
		synctest.Wait()
		if got := h.snd.count("d"); got != 3 {
			t.Fatalf("temps after b3's retained ready then status: got %d, want 3", got)
		}
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(boots, []string{"b1", "b2", "b3"}) {
			t.Fatalf("located for boots %v, want [b1 b2 b3]", boots)
		}
	})
}

// Two devices with one id (a cloned SD card) announce in turn: the agent
// says so (log, metric, status page) and keeps one cycle instead of
// restarting it at every announcement.
func TestDuplicateDeviceIDDetectedWithoutFlapping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, "", ResumeFast)
		h.f.connected()
		h.announce("d", "b1", false)
		synctest.Wait()
		h.announce("d", "b2", false) // a restart, as far as anyone can tell
		synctest.Wait()
		if got := h.snd.count("d"); got != 2 {
			t.Fatalf("temps after the second boot: got %d, want 2", got)
		}
		for range 5 { // the clones take turns
			time.Sleep(10 * time.Second)
			h.announce("d", "b1", false)
			time.Sleep(10 * time.Second)
			h.announce("d", "b2", false)
		}
		synctest.Wait()
		if got := h.snd.count("d"); got != 2 {
			t.Fatalf("temps while two devices share the id: got %d, want 2 (no cycle restarts)", got)
		}
		var dup []string
		for _, v := range h.f.snapshot() {
			if v.ID == "d" {
				dup = v.Duplicate
			}
		}
		if !slices.Equal(dup, []string{"b1", "b2"}) {
			t.Fatalf("duplicate boot ids: got %v, want [b1 b2]", dup)
		}
		var m dto.Metric
		h.stats.duplicates.Write(&m)
		if got := m.GetGauge().GetValue(); got != 1 {
			t.Fatalf("glowcast_agent_duplicate_device_ids: got %v, want 1", got)
		}
		if !h.cycles("d") {
			t.Fatal("the device's cycle stopped")
		}
	})
}

// The clone is stopped: once it has been unheard for dupQuiet, the id is
// one device's again. The status page and metric stop saying duplicate,
// and a restart of the device that remains gets fresh temps at once
// (before, the mark stayed for good and the restart was taken for the
// clones taking turns: no temps until the next interval).
func TestDuplicateDeviceIDClearsWhenOneGoesQuiet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, "", ResumeFast)
		h.f.connected()
		h.announce("d", "b1", false)
		synctest.Wait()
		h.announce("d", "b2", false)
		for range 3 {
			time.Sleep(10 * time.Second)
			h.announce("d", "b1", false)
			time.Sleep(10 * time.Second)
			h.announce("d", "b2", false)
		}
		synctest.Wait()
		dupOf := func() []string {
			for _, v := range h.f.snapshot() {
				if v.ID == "d" {
					return v.Duplicate
				}
			}
			return nil
		}
		gauge := func() float64 {
			var m dto.Metric
			h.stats.duplicates.Write(&m)
			return m.GetGauge().GetValue()
		}
		if dupOf() == nil || gauge() != 1 {
			t.Fatalf("while both run: duplicate %v, gauge %v; want marked", dupOf(), gauge())
		}
		// b2 stops; b1 reconnects once more, then is quiet too (a device
		// that stays connected says nothing).
		time.Sleep(10 * time.Second)
		h.announce("d", "b1", false)
		time.Sleep(dupQuiet - 15*time.Second)
		if dupOf() == nil {
			t.Fatal("duplicate cleared before b2 was unheard for dupQuiet")
		}
		time.Sleep(10 * time.Second)
		if got := dupOf(); got != nil || gauge() != 0 {
			t.Fatalf("b2 unheard for %v: duplicate %v, gauge %v; want cleared", dupQuiet, got, gauge())
		}
		// The device that remains restarts: a new cycle at once.
		n := h.snd.count("d")
		h.announce("d", "b3", false)
		synctest.Wait()
		if got := h.snd.count("d"); got != n+1 {
			t.Fatalf("temps after the remaining device restarted: got %d, want %d (at once)", got, n+1)
		}
		// The clone comes back: known at once, by its boot id.
		h.announce("d", "b2", false)
		synctest.Wait()
		if got := dupOf(); !slices.Equal(got, []string{"b2", "b3"}) || gauge() != 1 {
			t.Fatalf("the clone back: duplicate %v, gauge %v; want [b2 b3], 1", got, gauge())
		}
		if got := h.snd.count("d"); got != n+1 {
			t.Fatalf("temps after the clone came back: got %d, want %d (one cycle serves both)", got, n+1)
		}
	})
}

// Regression: device state was written (with fsync) while holding the
// fleet's lock, so one slow disk write stalled every MQTT handler.
func TestStateIsWrittenOutsideTheFleetLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, t.TempDir(), ResumeFast)
		var mu sync.Mutex
		writes, underLock := 0, 0
		h.f.st.write = func(dir string, files []atomicfile.File) []error {
			mu.Lock()
			writes += len(files)
			if h.f.mu.TryLock() {
				h.f.mu.Unlock()
			} else {
				underLock++
			}
			mu.Unlock()
			return atomicfile.WriteAll(dir, files)
		}
		h.f.connected()
		h.announce("d", "b1", false)
		synctest.Wait()
		time.Sleep(tInterval + time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if writes < 2 || underLock != 0 {
			t.Fatalf("state writes: %d, of them under the fleet lock: %d; want ≥ 2 and 0", writes, underLock)
		}
	})
}

// Regression: the restart timer sent rebirth to every device of the state
// dir, including those of other shards, whose own agents serve them.
func TestRestartTimerRebirthsOnlyItsShard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		st, err := openStore(dir, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		var mine, other string
		for i := 0; mine == "" || other == ""; i++ {
			id := fmt.Sprintf("dev-%d", i)
			if ShardOf(id, 2) == 0 {
				mine = id
			} else {
				other = id
			}
		}
		for _, id := range []string{mine, other} {
			if err := st.save(&Saved{Device: id, BootID: "b"}); err != nil {
				t.Fatal(err)
			}
		}
		h := newHarness(t, dir, ResumeFast)
		o := newOwnership(h.f, "0/2", "a0", "s0", nil)
		// The other member of the set is online: its devices are its own.
		o.onAgentMsg(mqttmsg.Message{Topic: protocol.AgentStatusTopic("a1"), Retained: true,
			Payload: []byte(`{"online":true,"session":"s1","ts":"2026-01-02T03:04:05Z","shard":"1/2"}`)})
		h.f.connected()
		time.Sleep(tGrace + time.Second)
		synctest.Wait()
		if got := h.snd.rebirths(mine); got != 1 {
			t.Errorf("rebirths to this shard's device: got %d, want 1", got)
		}
		if got := h.snd.rebirths(other); got != 0 {
			t.Errorf("rebirths to another shard's device: got %d, want 0", got)
		}
	})
}

// Regression: every device's state write ran at once after its step, each
// blocked in its fsync on an OS thread of its own; a cold start of 100,000
// devices passed Go's 10,000-thread limit and crashed the agent. Bounded
// to 16 at a time, the steps still waited for their writes, and their
// goroutines stayed alive a minute. Now one writer takes the newest state
// of every device in batches, and the steps end at their publish.
func TestStateWritesAreBatchedBehindTheSteps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, t.TempDir(), ResumeFast)
		var mu sync.Mutex
		inFlight, most, written, batches := 0, 0, map[string]int{}, 0
		h.f.st.write = func(dir string, files []atomicfile.File) []error {
			mu.Lock()
			inFlight++
			batches++
			most = max(most, inFlight)
			for _, f := range files {
				written[f.Name]++
			}
			mu.Unlock()
			time.Sleep(50 * time.Millisecond) // a slow disk
			mu.Lock()
			inFlight--
			mu.Unlock()
			return atomicfile.WriteAll(dir, files)
		}
		h.f.connected()
		const n = 64
		for i := range n {
			h.announce(fmt.Sprintf("d%02d", i), "b", false)
		}
		synctest.Wait()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(written) != n || most != 1 || batches > n/2 {
			t.Fatalf("devices written: %d in %d batches, at most %d at once; want %d, in fewer than %d batches, 1 at once", len(written), batches, most, n, n/2)
		}
	})
}

// Regression (chaos, agent-overlap): the step sent again above a seq the
// device showed was spread over a second like a resume, while the next step
// stayed due one interval after the refusal: the two temps came that much
// closer than an interval. It goes at once.
func TestRenumberedStepGoesAtOnceAndTheNextAnIntervalLater(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, "", ResumeFast)
		h.f.connected()
		h.announce("d", "b1", false)
		synctest.Wait()
		time.Sleep(time.Minute)
		refused := time.Now()
		h.f.onReady("d", &protocol.Ready{BootID: "b1", LEDs: 5, TempsSeq: 113}, false)
		synctest.Wait()
		time.Sleep(tInterval + time.Second)
		synctest.Wait()
		h.snd.mu.Lock()
		at := slices.Clone(h.snd.temps["d"])
		h.snd.mu.Unlock()
		if got := h.snd.seqsOf("d"); !slices.Equal(got, []uint64{1, 114, 115}) {
			t.Fatalf("seqs: got %v, want [1 114 115]", got)
		}
		if got := at[1].Sub(refused); got != 0 {
			t.Errorf("renumbered step: sent %v after the device's ready, want at once", got)
		}
		if got := at[2].Sub(at[1]); got != tInterval {
			t.Errorf("next step: %v after the renumbered one, want one interval (%v)", got, tInterval)
		}
	})
}

// A temps publish waiting for the broker's acknowledgement must hold back
// no other device's forecast.
// Regression (make bench-100k): a cold start of 100,000 devices in 100
// places took as long as 100,000 broker round trips, 16 at a time.
func TestPublishesWaitingForTheBrokerHoldNoFetchSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, "", ResumeFast)
		h.fc.delay = time.Second
		gate := make(chan struct{})
		h.snd.gate = gate
		h.f.connected()
		const n = 40
		for i := range n {
			h.announce(fmt.Sprintf("d%02d", i), "b1", false)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if calls := h.fc.n(); calls != n {
			t.Errorf("forecasts with every publish held by the broker: got %d, want %d (one a device)", calls, n)
		}
		close(gate)
		synctest.Wait()
		sent := 0
		for i := range n {
			sent += h.snd.count(fmt.Sprintf("d%02d", i))
		}
		if sent != n {
			t.Errorf("temps once the broker acknowledged: got %d, want %d", sent, n)
		}
	})
}

// placeForecaster answers at once for every place but one, whose request
// hangs until released: a provider slow for one grid cell.
type placeForecaster struct {
	fakeForecaster
	slow    protocol.Location
	release chan struct{}
}

func (p *placeForecaster) Forecast(ctx context.Context, id string, lat, lon float64) (*weather.Forecast, error) {
	if (protocol.Location{Lat: lat, Lon: lon}) == p.slow {
		select {
		case <-p.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return p.fakeForecaster.Forecast(ctx, id, lat, lon)
}

// A device waiting on its place's forecast must not hold back devices of
// other places. Regression (make bench-100k): the fleet's fetch slots were
// held through the forecast, so devices of places already cached waited
// behind the jittered first requests of others, and a cold start took
// places × jitter / slots.
func TestASlowPlaceDoesNotHoldBackOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow, fast := protocol.Location{Lat: 59.9, Lon: 10.7}, protocol.Location{Lat: 52.52, Lon: 13.4}
		pf := &placeForecaster{slow: slow, release: make(chan struct{})}
		snd := newFakeSender()
		ctx, cancel := context.WithCancel(context.Background())
		f := newFleet(ctx, fleetConfig{
			Interval: tInterval, RestartGrace: tGrace, OfflinePark: tPark, Resume: ResumeFast, Retry: 5 * time.Second,
			Concurrency: 2,
			Locate: func(_ context.Context, id string, _ locateInput) (*geo.Saved, error) {
				loc := fast
				if strings.HasPrefix(id, "slow") {
					loc = slow
				}
				return &geo.Saved{Result: geo.Result{Location: loc, Source: geo.SourceDefault}}, nil
			},
		}, slog.New(slog.DiscardHandler), snd, pf, nil, newStats())
		defer func() { close(pf.release); cancel(); f.close() }()
		f.connected()
		announce := func(id string) {
			f.onStatus(id, online("b1", time.Now()), false)
			f.onReady(id, ready("b1"), false)
		}
		for i := range 4 {
			announce(fmt.Sprintf("slow%d", i))
		}
		synctest.Wait()
		for i := range 10 {
			announce(fmt.Sprintf("fast%d", i))
		}
		synctest.Wait()
		for i := range 10 {
			if id := fmt.Sprintf("fast%d", i); snd.count(id) != 1 {
				t.Errorf("%s: %d temps while another place's forecast hangs, want 1", id, snd.count(id))
			}
		}
		if n := snd.count("slow0"); n != 0 {
			t.Errorf("slow0: %d temps before its forecast came, want 0", n)
		}
	})
}

// A step cut short by the next boot still placed its device: the next
// step starts from that place, so the relocation budget sees it. Before,
// only a published step's place counted, and a device announcing boot
// after boot at new places, each boot before its step was done, was
// placed anew for free every time (security.TestReadyFlood, under load).
func TestAStepCutShortStillPlacesTheDevice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var prevs []*geo.Saved
		snd := newFakeSender()
		fc := &fakeForecaster{delay: time.Minute} // every step outlives its boot
		ctx, cancel := context.WithCancel(context.Background())
		f := newFleet(ctx, fleetConfig{
			Interval: tInterval, RestartGrace: tGrace, OfflinePark: tPark, Resume: ResumeFast, Retry: 5 * time.Second,
			Locate: func(_ context.Context, _ string, in locateInput) (*geo.Saved, error) {
				mu.Lock()
				prevs = append(prevs, in.Prev)
				n := len(prevs)
				mu.Unlock()
				g := geo.Save(geo.Result{Location: protocol.Location{Lat: float64(n), Lon: 10}, Source: geo.SourceDevice}, in.Boot, "k", geo.Input{})
				return &g, nil
			},
		}, slog.New(slog.DiscardHandler), snd, fc, nil, newStats())
		defer func() { cancel(); f.close() }()
		f.connected()
		for i := range 3 {
			boot := fmt.Sprintf("b%d", i)
			f.onStatus("d", online(boot, time.Now()), false)
			f.onReady("d", ready(boot), false)
			time.Sleep(time.Second)
			synctest.Wait()
		}
		mu.Lock()
		defer mu.Unlock()
		if len(prevs) != 3 {
			t.Fatalf("locations resolved: %d, want 3 (one a boot)", len(prevs))
		}
		for i, p := range prevs[1:] {
			if p == nil || p.BootID != fmt.Sprintf("b%d", i) {
				t.Errorf("boot b%d located from %+v, want the place boot b%d's unfinished step resolved", i+1, p, i)
			}
		}
		if n := snd.count("d"); n != 0 {
			t.Errorf("temps: %d, want none (every step was cut short)", n)
		}
	})
}

// A state write the disk refused is tried again, not only logged: the
// device's state lands once the disk takes writes again.
func TestRefusedStateWriteIsTriedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, t.TempDir(), ResumeFast)
		var mu sync.Mutex
		refuse, tries := true, 0
		h.f.st.write = func(dir string, files []atomicfile.File) []error {
			mu.Lock()
			defer mu.Unlock()
			tries++
			if refuse {
				errs := make([]error, len(files))
				for i := range errs {
					errs[i] = errors.New("no space left on device")
				}
				return errs
			}
			return atomicfile.WriteAll(dir, files)
		}
		h.f.connected()
		h.announce("d", "b1", false)
		synctest.Wait()
		mu.Lock()
		if tries != 1 {
			t.Fatalf("writes before the disk recovers: %d, want 1", tries)
		}
		refuse = false
		mu.Unlock()
		time.Sleep(saveRetry + time.Second)
		synctest.Wait()
		if _, ok := h.f.st.loadAll()["d"]; !ok {
			t.Errorf("device state not written after the disk recovered and %v passed", saveRetry)
		}
	})
}
