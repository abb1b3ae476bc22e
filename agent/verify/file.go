package verify

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/glowcast/glowcast/internal/atomicfile"
)

// fileVersion is bumped when the saved layout changes.
const fileVersion = 1

// file is one place's saved history: finished hours, oldest first, and the
// hours still waiting, so a restart or a move to another host loses neither.
type file struct {
	Version int       `json:"version"`
	Place   string    `json:"place"`
	Rows    []rowJSON `json:"rows"`
	Pending []rowJSON `json:"pending"`
}

// rowJSON spells NaN as null, which JSON has and NaN has not.
type rowJSON struct {
	Hour     time.Time   `json:"hour"`
	Pred     [4]*float64 `json:"pred"`
	Obs      *float64    `json:"obs"`
	Sensor   bool        `json:"sensor,omitempty"`
	Provider string      `json:"provider,omitempty"`
}

func ptr(v float32) *float64 {
	if math.IsNaN(float64(v)) {
		return nil
	}
	// Round to what float32 meant, so 7.2 stays 7.2 in the file.
	f := math.Round(float64(v)*1000) / 1000
	return &f
}

func val(p *float64) float32 {
	if p == nil {
		return float32(math.NaN())
	}
	return float32(*p)
}

func (s *Store) encodeRow(r pendingRow) rowJSON {
	j := rowJSON{Hour: time.Unix(int64(r.hour)*3600, 0).UTC(), Obs: ptr(r.obs), Sensor: r.sensor, Provider: s.provName(r.prov)}
	for i, v := range r.pred {
		j.Pred[i] = ptr(v)
	}
	return j
}

func (s *Store) decodeRow(j rowJSON) pendingRow {
	r := pendingRow{hour: unixHour(j.Hour), obs: val(j.Obs), sensor: j.Sensor && j.Obs != nil, prov: s.provIndex(j.Provider)}
	for i, p := range j.Pred {
		r.pred[i] = val(p)
	}
	return r
}

func (s *Store) read(key string) (*file, error) {
	b, err := os.ReadFile(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return &file{Version: fileVersion, Place: key}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	var f file
	if err := json.Unmarshal(b, &f); err != nil || f.Version != fileVersion {
		// A damaged history must not stop forecasts: move it aside for
		// inspection and start again.
		bad := s.path(key) + ".corrupt"
		s.log.Warn("verify: unreadable history moved aside", "file", s.path(key), "to", bad, "err", err)
		os.Rename(s.path(key), bad)
		return &file{Version: fileVersion, Place: key}, nil
	}
	return &f, nil
}

func (s *Store) load(key string, p *place) error {
	if p.loaded {
		return nil
	}
	f, err := s.read(key)
	if err != nil {
		return err
	}
	for _, j := range f.Pending {
		p.pending = append(p.pending, s.decodeRow(j))
	}
	p.loaded = true
	return nil
}

// save appends the finished rows done to the place's file, drops rows older
// than the history bound and writes it atomically with the pending hours.
func (s *Store) save(key string, p *place, done []pendingRow, now time.Time) error {
	f, err := s.read(key)
	if err != nil {
		return err
	}
	for _, r := range done {
		f.Rows = append(f.Rows, s.encodeRow(r))
	}
	cut := now.Add(-s.history)
	i := sort.Search(len(f.Rows), func(i int) bool { return !f.Rows[i].Hour.Before(cut) })
	f.Rows = f.Rows[i:]
	f.Pending = f.Pending[:0]
	for _, r := range p.pending {
		f.Pending = append(f.Pending, s.encodeRow(r))
	}
	f.Version, f.Place = fileVersion, key
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if err := atomicfile.Write(s.path(key), b, 0o640); err != nil {
		return fmt.Errorf("verify: %w: make the state directory (--state-dir) writable by the agent", err)
	}
	return nil
}

// Rows returns a place's hours from since on, finished and pending, oldest
// first.
func (s *Store) Rows(key string, since time.Time) ([]Row, error) {
	p := s.place(key)
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := s.read(key)
	if err != nil {
		return nil, err
	}
	var out []Row
	for _, j := range f.Rows {
		if !j.Hour.Before(since) {
			out = append(out, s.toRow(s.decodeRow(j)))
		}
	}
	if err := s.load(key, p); err != nil {
		return nil, err
	}
	for _, r := range p.pending {
		if row := s.toRow(r); !row.Hour.Before(since) {
			row.Pending = true
			out = append(out, row)
		}
	}
	return out, nil
}

// Places lists the places with a saved history, sorted.
func (s *Store) Places() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".json") || strings.HasPrefix(n, ".") {
			continue
		}
		n = strings.TrimSuffix(n, ".json")
		out = append(out, strings.NewReplacer("_", ",", "m", "-").Replace(n))
	}
	sort.Strings(out)
	return out, nil
}
