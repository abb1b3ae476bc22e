package agent

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// Regression: temporary files left by a save that a crash interrupted were
// skipped but never removed, one more per crash.
func TestLoadAllRemovesInterruptedSaves(t *testing.T) {
	dir := t.TempDir()
	st, err := openStore(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "devices", ".kitchen.json.tmp-123")
	if err := os.WriteFile(tmp, []byte(`{"device":"kit`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := st.loadAll(); len(got) != 0 {
		t.Errorf("loaded %d devices, want 0", len(got))
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary file: got stat error %v, want it removed", err)
	}
}

// A state dir of many devices loads whole, by several workers, and an
// unreadable file among them is moved aside without losing the others.
func TestLoadAllManyDevices(t *testing.T) {
	dir := t.TempDir()
	st, err := openStore(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n {
		id := fmt.Sprintf("dev-%03d", i)
		if err := st.save(&Saved{Device: id, BootID: "b" + id}); err != nil {
			t.Fatal(err)
		}
	}
	bad := filepath.Join(dir, "devices", "broken.json")
	if err := os.WriteFile(bad, []byte(`{"device":`), 0o600); err != nil {
		t.Fatal(err)
	}
	got := st.loadAll()
	if len(got) != n {
		t.Fatalf("loaded %d devices, want %d", len(got), n)
	}
	for i := range n {
		id := fmt.Sprintf("dev-%03d", i)
		if s := got[id]; s == nil || s.Device != id || s.BootID != "b"+id {
			t.Fatalf("device %s: got %+v, want its own saved state", id, s)
		}
	}
	if _, err := os.Stat(bad + ".corrupt"); err != nil {
		t.Errorf("unreadable file: %v, want it moved aside", err)
	}
}
