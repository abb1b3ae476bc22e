package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glowcast/glowcast/agent/geo"
	"github.com/glowcast/glowcast/internal/atomicfile"
	"github.com/glowcast/glowcast/protocol"
)

// Saved is what the agent keeps of a device across restarts and migrations:
// the analogue of the original platform's server.save().
type Saved struct {
	Device         string             `json:"device"`
	BootID         string             `json:"boot_id"`
	Location       *protocol.Location `json:"location,omitempty"`
	LocationSource string             `json:"location_source,omitempty"`
	// Geo is the location choice with what it was based on, so it is
	// refreshed only on a new boot or a configuration change.
	Geo *geo.Saved `json:"geo,omitempty"`
	// NextDue is when the device's next forecast is due.
	NextDue time.Time `json:"next_due"`
	// LastTemps is the last temps message published to the device.
	LastTemps *protocol.Temps `json:"last_temps,omitempty"`
	Updated   time.Time       `json:"updated"`
}

// store keeps one JSON file per device under <state-dir>/devices, each
// replaced atomically, so a crash mid-write loses at most that write.
type store struct {
	dir string
	log *slog.Logger
	// write replaces files of dir atomically, one error each; tests
	// observe it.
	write func(dir string, files []atomicfile.File) []error
}

func openStore(dir string, log *slog.Logger) (*store, error) {
	if dir == "" {
		return nil, nil
	}
	d := filepath.Join(dir, "devices")
	if err := os.MkdirAll(d, 0o750); err != nil {
		return nil, fmt.Errorf("agent: state dir (--state-dir %s): %w", dir, err)
	}
	return &store{dir: d, log: log, write: atomicfile.WriteAll}, nil
}

func (s *store) path(id string) string { return filepath.Join(s.dir, id+".json") }

func (s *store) save(v *Saved) error {
	if s == nil {
		return nil
	}
	return s.saveAll([]*Saved{v})[0]
}

// saveAll writes several devices' state with one sync; one error each.
func (s *store) saveAll(vs []*Saved) []error {
	errs := make([]error, len(vs))
	files := make([]atomicfile.File, 0, len(vs))
	idx := make([]int, 0, len(vs))
	for i, v := range vs {
		b, err := json.Marshal(v)
		if err != nil {
			errs[i] = err
			continue
		}
		files = append(files, atomicfile.File{Name: v.Device + ".json", Data: b, Perm: 0o640})
		idx = append(idx, i)
	}
	if len(files) > 0 {
		for j, err := range s.write(s.dir, files) {
			errs[idx[j]] = err
		}
	}
	return errs
}

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
	for {
		select {
		case <-s.wake:
			s.flush()
		case <-s.stop:
			s.flush()
			return
		}
	}
}

// flush writes batches until nothing is pending.
func (s *saver) flush() {
	for {
		batch := s.take()
		if len(batch) == 0 {
			return
		}
		for i, err := range s.st.saveAll(batch) {
			if err != nil {
				s.log.Error("saving device state", "device", batch[i].Device, "err", err)
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

// loadAll reads every saved device. A file that cannot be read or parsed is
// renamed aside (kept for inspection) and reported, never fatal.
func (s *store) loadAll() map[string]*Saved {
	out := map[string]*Saved{}
	if s == nil {
		return out
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		s.log.Error("reading state dir", "dir", s.dir, "err", err)
		return out
	}
	var ids []string
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() && strings.HasPrefix(name, ".") && strings.Contains(name, ".json.tmp-") {
			// Left by a crash between creating and renaming a save: no one
			// else writes here while we start, and one per crash adds up.
			os.Remove(filepath.Join(s.dir, name))
			continue
		}
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".json") {
			continue
		}
		ids = append(ids, strings.TrimSuffix(name, ".json"))
	}
	// Read and parsed by a few workers: one by one, 100,000 devices' files
	// took ten seconds of an agent's restart before it could connect.
	saved := make([]*Saved, len(ids))
	errs := make([]error, len(ids))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(loadWorkers, len(ids)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ids) {
					return
				}
				saved[i], errs[i] = parseSaved(ids[i], s.path(ids[i]))
			}
		}()
	}
	wg.Wait()
	for i, id := range ids {
		if errs[i] != nil {
			bad := s.path(id) + ".corrupt"
			s.log.Error("unreadable device state; moved aside, device starts fresh", "device", id, "err", errs[i], "moved_to", bad)
			os.Rename(s.path(id), bad)
			continue
		}
		out[id] = saved[i]
	}
	return out
}

// loadWorkers read the state dir at start.
const loadWorkers = 8

func parseSaved(id, path string) (*Saved, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseSaved(id, b)
}

// ParseSaved decodes and checks one device's saved state.
func ParseSaved(id string, b []byte) (*Saved, error) {
	if len(b) > 1<<20 {
		return nil, errors.New("state file larger than 1 MiB")
	}
	var v Saved
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	if v.Device != id {
		return nil, fmt.Errorf("state file names device %q, want %q", v.Device, id)
	}
	if err := protocol.ValidDeviceID(id); err != nil {
		return nil, err
	}
	if v.Location != nil {
		if err := v.Location.Validate(); err != nil {
			return nil, fmt.Errorf("state file location: %w", err)
		}
	}
	if v.Geo != nil {
		if err := v.Geo.Location.Validate(); err != nil {
			v.Geo = nil // resolved again on the next cycle
		}
	}
	if v.LastTemps != nil {
		if err := v.LastTemps.Validate(); err != nil {
			v.LastTemps = nil // keep the rest; the next cycle replaces it
		}
	}
	return &v, nil
}
