package device

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/glowcast/glowcast/protocol"
)

// FuzzLoadSaved: the temps a device keeps on disk, as a power cut or a
// full SD card may leave them. Loading shows them only when they are
// valid, and otherwise moves the file aside and starts as if new.
func FuzzLoadSaved(f *testing.F) {
	dir := f.TempDir() // one for all inputs: a fresh one each is slow
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "temps.json")
		os.Remove(p + ".corrupt")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		d := &Device{cfg: Config{StateDir: dir}, log: slog.New(slog.DiscardHandler)}
		got := d.loadSaved()
		_, perr := protocol.ParseTemps(b)
		if (got != nil) != (perr == nil) {
			t.Fatalf("loaded %v, but ParseTemps says %v", got != nil, perr)
		}
		if got != nil {
			if err := got.Validate(); err != nil {
				t.Fatalf("loaded invalid temps: %v", err)
			}
			return
		}
		if _, err := os.Stat(p + ".corrupt"); err != nil {
			t.Fatalf("unreadable temps not moved aside: %v", err)
		}
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("unreadable temps still in place: %v", err)
		}
	})
}
