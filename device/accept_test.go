package device

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/glowcast/glowcast/protocol"
)

func tempsPayload(t *testing.T, issued time.Time) []byte {
	t.Helper()
	h := make(protocol.TempList, 24)
	tp := protocol.Temps{
		TempsC: protocol.TempList{1, 2, 3, 4, 5}, OffsetsH: protocol.Offsets,
		IssuedAt: issued, ValidUntil: issued.Add(time.Hour), Location: protocol.Location{Lat: 52.5, Lon: 13.4},
		Hourly: protocol.Hourly{Start: issued.Truncate(time.Hour), TempsC: h},
	}
	b, err := json.Marshal(tp)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Regression: after an agent's clock ran ahead and was corrected, the
// device refused every correct forecast as "older than those shown" until
// the bogus future date arrived.
func TestAcceptOrdering(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	tests := []struct {
		name          string
		shown, next   time.Time
		wantIssuedNow time.Time
	}{
		{"newer replaces", now.Add(-time.Minute), now, now},
		{"older dropped", now, now.Add(-time.Minute), now},
		{"shown from a clock 2h ahead is replaced", now.Add(2 * time.Hour), now, now},
		{"shown slightly ahead still orders", now.Add(time.Minute), now, now.Add(time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Device{log: slog.New(slog.DiscardHandler)}
			var v view
			d.accept(&v, tempsPayload(t, tt.shown))
			d.accept(&v, tempsPayload(t, tt.next))
			if v.cur == nil {
				t.Fatal("got no current temps")
			}
			if got := v.cur.IssuedAt; !got.Equal(tt.wantIssuedNow) {
				t.Errorf("shown issued_at: got %v, want %v", got, tt.wantIssuedNow)
			}
		})
	}
}

// Regression: temporary files left by a save that a crash interrupted were
// never removed, one more per crash.
func TestLoadSavedRemovesInterruptedSaves(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{".temps.json.tmp-1", ".temps.json.tmp-2"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(`{"temps_c":[1,`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	d := &Device{cfg: Config{StateDir: dir}, log: slog.New(slog.DiscardHandler)}
	if got := d.loadSaved(); got != nil {
		t.Errorf("loadSaved: got %+v, want nil (no temps.json)", got)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".temps.json.tmp-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: got %v, want none", left)
	}
}

// Temps numbered by agents are ordered by seq, not issued_at: a forecast
// fetched earlier (cached) but published later must replace the one shown,
// and a late lower seq must not.
func TestAcceptOrdersBySeq(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	payload := func(issued time.Time, seq uint64) []byte {
		var tp protocol.Temps
		if err := json.Unmarshal(tempsPayload(t, issued), &tp); err != nil {
			t.Fatal(err)
		}
		tp.Seq = seq
		b, _ := json.Marshal(tp)
		return b
	}
	tests := []struct {
		name    string
		shown   []byte
		next    []byte
		wantSeq uint64
	}{
		{"higher seq with an older issued_at replaces", payload(now, 5), payload(now.Add(-20*time.Minute), 6), 6},
		{"lower seq with a newer issued_at dropped", payload(now, 5), payload(now.Add(20*time.Minute), 4), 5},
		{"unnumbered shown: issued_at decides", payload(now.Add(-time.Minute), 0), payload(now, 3), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Device{log: slog.New(slog.DiscardHandler)}
			var v view
			d.accept(&v, tt.shown)
			d.accept(&v, tt.next)
			if v.cur == nil || v.cur.Seq != tt.wantSeq {
				t.Fatalf("shown seq: got %+v, want %d", v.cur, tt.wantSeq)
			}
		})
	}
}

// The boot counter is raised and saved before each start, and survives in
// the state dir.
func TestBootSeqRaisedEachStart(t *testing.T) {
	dir := t.TempDir()
	d := &Device{cfg: Config{StateDir: dir}, log: slog.New(slog.DiscardHandler)}
	for want := uint64(1); want <= 3; want++ {
		if got := d.nextBootSeq(); got != want {
			t.Fatalf("boot %d: got boot_seq %d", want, got)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "boot_seq"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := d.nextBootSeq(); got != 1 {
		t.Fatalf("after a damaged counter: got %d, want 1", got)
	}
}
