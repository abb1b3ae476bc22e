package agent

import (
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
