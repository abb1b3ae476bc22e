package agent

import (
	"log/slog"
	"sync"
	"time"
)

// saver writes device state behind the cycles. A step hands over its
// snapshot and ends; one goroutine writes the newest snapshot of each
// device, in batches that share one sync (atomicfile.WriteAll). One
// writer keeps an older snapshot of a device from landing after a newer
// one. Before it, each step waited for its own write, fsync included: a
// cold start of 100,000 devices kept as many goroutines and their stacks
// alive for the minute the writes took, for the collector to scan.
type saver struct {
	st  *store
	log *slog.Logger

	mu      sync.Mutex
	pending map[string]*Saved // newest snapshot not yet written, by device

	wake     chan struct{} // something is pending
	stop     chan struct{} // close: write what is pending and end
	stopOnce sync.Once
	done     chan struct{} // closed when the writer has ended
}

// maxSaveBatch is how many devices' state share one sync at most: enough
// to spread its cost, few enough that one batch's work stays short.
const maxSaveBatch = 512

func newSaver(st *store, log *slog.Logger) *saver {
	s := &saver{st: st, log: log, pending: map[string]*Saved{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

// put queues v, replacing a snapshot of its device not yet written. It
// does no I/O, so the fleet calls it holding its lock.
func (s *saver) put(v *Saved) {
	s.mu.Lock()
	s.pending[v.Device] = v
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *saver) run() {
	defer close(s.done)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-s.wake:
		case <-retry.C:
		case <-s.stop:
			s.flush()
			return
		}
		if s.flush() {
			// A disk that refused (full, read-only, failing) is tried
			// again, not hammered: the snapshots wait in pending.
			retry.Reset(saveRetry)
		}
	}
}

// saveRetry is how long failed writes wait before the next try.
const saveRetry = 10 * time.Second

// flush writes batches until nothing is pending and reports whether some
// failed. A failed snapshot goes back to pending unless a newer one of its
// device came meanwhile; the next flush after saveRetry tries it again.
func (s *saver) flush() (failed bool) {
	var again []*Saved
	defer func() {
		if len(again) == 0 {
			return
		}
		s.mu.Lock()
		for _, v := range again {
			if _, newer := s.pending[v.Device]; !newer {
				s.pending[v.Device] = v
			}
		}
		s.mu.Unlock()
	}()
	for {
		batch := s.take()
		if len(batch) == 0 {
			return len(again) > 0
		}
		for i, err := range s.st.saveAll(batch) {
			if err != nil {
				s.log.Error("saving device state failed; check that the state dir (--state-dir) is writable and has room; tried again in "+saveRetry.String(), "device", batch[i].Device, "dir", s.st.dir, "err", err)
				again = append(again, batch[i])
			}
		}
	}
}

func (s *saver) take() []*Saved {
	s.mu.Lock()
	defer s.mu.Unlock()
	batch := make([]*Saved, 0, min(len(s.pending), maxSaveBatch))
	for id, v := range s.pending {
		if len(batch) == maxSaveBatch {
			break
		}
		batch = append(batch, v)
		delete(s.pending, id)
	}
	if len(s.pending) == 0 && len(batch) == maxSaveBatch {
		// A map keeps the room it once grew to: a cold start's must not
		// stay for the agent's life.
		s.pending = map[string]*Saved{}
	}
	return batch
}

// close writes what is pending and ends the writer; again, it waits.
func (s *saver) close() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}
