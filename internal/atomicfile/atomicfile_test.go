package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestWriteReplacesWhole(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := Write(p, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []byte("new content"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "new content" {
		t.Fatalf("got %q, %v; want the new content", got, err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode: got %v, want 0600", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only state.json (no temporary files left)", names)
	}
}

func TestFailedWriteKeepsOldContent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := Write(p, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	// A directory where the file should be makes the rename fail after the
	// temporary file was written: the old state must survive untouched.
	bad := filepath.Join(dir, "sub")
	os.Mkdir(bad, 0o750)
	err := Write(bad, []byte("x"), 0o640)
	if err == nil || !strings.Contains(err.Error(), "rename") {
		t.Fatalf("got %v, want a rename error", err)
	}
	if got, _ := os.ReadFile(p); string(got) != "old" {
		t.Fatalf("old file: got %q", got)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	if err := Write(filepath.Join(dir, "missing", "f"), []byte("x"), 0o640); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func TestWriteAllReplacesEachAndReportsEach(t *testing.T) {
	dir := t.TempDir()
	if err := Write(filepath.Join(dir, "a.json"), []byte("old a"), 0o640); err != nil {
		t.Fatal(err)
	}
	// A directory where c.json should be fails its rename alone.
	if err := os.Mkdir(filepath.Join(dir, "c.json"), 0o750); err != nil {
		t.Fatal(err)
	}
	errs := WriteAll(dir, []File{
		{Name: "a.json", Data: []byte("new a"), Perm: 0o600},
		{Name: "b.json", Data: []byte("new b"), Perm: 0o640},
		{Name: "c.json", Data: []byte("new c"), Perm: 0o640},
	})
	if len(errs) != 3 {
		t.Fatalf("got %d errors, want one per file (3)", len(errs))
	}
	for i, want := range []struct {
		name, content string
		perm          os.FileMode
	}{{"a.json", "new a", 0o600}, {"b.json", "new b", 0o640}} {
		if errs[i] != nil {
			t.Errorf("%s: %v", want.name, errs[i])
			continue
		}
		got, err := os.ReadFile(filepath.Join(dir, want.name))
		if err != nil || string(got) != want.content {
			t.Errorf("%s: got %q, %v; want %q", want.name, got, err, want.content)
		}
		if fi, _ := os.Stat(filepath.Join(dir, want.name)); fi.Mode().Perm() != want.perm {
			t.Errorf("%s: mode %v, want %v", want.name, fi.Mode().Perm(), want.perm)
		}
	}
	if errs[2] == nil || !strings.Contains(errs[2].Error(), "rename") {
		t.Errorf("c.json: got %v, want a rename error", errs[2])
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestWriteAllIntoAMissingDirectoryFailsEveryFile(t *testing.T) {
	errs := WriteAll(filepath.Join(t.TempDir(), "missing"), []File{{Name: "a", Data: []byte("x"), Perm: 0o640}, {Name: "b", Data: []byte("y"), Perm: 0o640}})
	for i, err := range errs {
		if err == nil {
			t.Errorf("file %d: written into a missing directory", i)
		}
	}
}

// BenchmarkStateWrites sets the two ways of replacing many small files
// side by side, as the agent's state dir has them (1.5 KB, one a device):
// Write from 16 writers at once, an fsync each, and WriteAll in batches of
// 512, one syncfs each. ns/op is per file.
func BenchmarkStateWrites(b *testing.B) {
	data := []byte(strings.Repeat("x", 1500))
	b.Run("Write-16-writers", func(b *testing.B) {
		dir := b.TempDir()
		sem := make(chan struct{}, 16)
		var wg sync.WaitGroup
		b.ResetTimer()
		for i := range b.N {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := Write(filepath.Join(dir, fmt.Sprintf("d%d.json", i%4096)), data, 0o640); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	})
	b.Run("WriteAll-512", func(b *testing.B) {
		dir := b.TempDir()
		b.ResetTimer()
		for done := 0; done < b.N; {
			n := min(512, b.N-done)
			files := make([]File, n)
			for j := range files {
				files[j] = File{Name: fmt.Sprintf("d%d.json", (done+j)%4096), Data: data, Perm: 0o640}
			}
			for _, err := range WriteAll(dir, files) {
				if err != nil {
					b.Fatal(err)
				}
			}
			done += n
		}
	})
}
