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
