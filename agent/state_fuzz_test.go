package agent

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/glowcast/glowcast/protocol"
)

// FuzzParseSaved: a device's state file, as a crash, a full disk or a
// careless hand may leave it. Parsing rejects or returns state that holds
// its promises; it never panics.
func FuzzParseSaved(f *testing.F) {
	f.Fuzz(func(t *testing.T, id string, b []byte) {
		v, err := ParseSaved(id, b)
		if err != nil {
			return
		}
		if v.Device != id {
			t.Fatalf("device: got %q, want %q", v.Device, id)
		}
		if err := protocol.ValidDeviceID(id); err != nil {
			t.Fatalf("accepted state for invalid id %q: %v", id, err)
		}
		if v.Location != nil && v.Location.Validate() != nil {
			t.Fatalf("accepted location %+v", *v.Location)
		}
		if v.LastTemps != nil && v.LastTemps.Validate() != nil {
			t.Fatalf("kept invalid last temps: %v", v.LastTemps.Validate())
		}
		// What was accepted is written back and read again the same.
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		again, err := ParseSaved(id, out)
		if err != nil {
			t.Fatalf("re-parsing saved state: %v\n%s", err, out)
		}
		if !again.NextDue.Equal(v.NextDue) || again.BootID != v.BootID {
			t.Fatalf("round trip: got due %v boot %q, want %v %q", again.NextDue, again.BootID, v.NextDue, v.BootID)
		}
	})
}

// FuzzLoadAll: whatever lies in the state dir, loading moves the
// unreadable aside and never fails the agent.
func FuzzLoadAll(f *testing.F) {
	// One directory for all inputs: a fresh one per input is slow enough
	// to starve the fuzzer.
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		os.RemoveAll(filepath.Join(dir, "devices"))
		st, err := openStore(dir, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "devices", "kitchen.json")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		got := st.loadAll()
		_, perr := ParseSaved("kitchen", b)
		if (perr == nil) != (got["kitchen"] != nil) {
			t.Fatalf("loaded %v, but ParseSaved says %v", got["kitchen"] != nil, perr)
		}
		if perr != nil {
			if _, err := os.Stat(p + ".corrupt"); err != nil {
				t.Fatalf("unreadable state not moved aside: %v", err)
			}
		}
	})
}
