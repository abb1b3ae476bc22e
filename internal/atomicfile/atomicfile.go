// Package atomicfile writes files so that a reader, or a process started
// after a power cut, sees either the old content or the new, never a mix.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces path with data: write a temporary file in the same
// directory, fsync it, rename it over path, then fsync the directory so the
// rename itself survives a power cut.
func Write(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := writeTemp(dir, filepath.Base(path), data, perm, true)
	if err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("atomicfile: rename into %s: %w", path, err)
	}
	return syncDir(dir)
}

// File is one file of a WriteAll: its name in the directory, content and
// mode.
type File struct {
	Name string
	Data []byte
	Perm os.FileMode
}

// WriteAll replaces files in dir as Write does each, with one sync of the
// file system for all their contents instead of an fsync each, and one of
// the directory for all the renames. A fleet's state written at once costs
// a sync per batch, not per device. It returns one error per file, nil
// where the file was replaced; a sync that fails fails every file, which
// keeps its old content.
//
// The sync covers the whole file system (syncfs(2)), so other programs'
// unwritten data on it is written too: use it off any path that waits.
func WriteAll(dir string, files []File) []error {
	errs := make([]error, len(files))
	tmps := make([]string, len(files))
	for i, f := range files {
		tmps[i], errs[i] = writeTemp(dir, f.Name, f.Data, f.Perm, false)
	}
	if err := syncFS(dir, tmps); err != nil {
		for i, tmp := range tmps {
			if errs[i] == nil {
				os.Remove(tmp)
				errs[i] = err
			}
		}
		return errs
	}
	renamed := false
	for i, tmp := range tmps {
		if errs[i] != nil {
			continue
		}
		path := filepath.Join(dir, files[i].Name)
		if err := os.Rename(tmp, path); err != nil {
			os.Remove(tmp)
			errs[i] = fmt.Errorf("atomicfile: rename into %s: %w", path, err)
			continue
		}
		renamed = true
	}
	if !renamed {
		return errs
	}
	if err := syncDir(dir); err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	return errs
}

// writeTemp writes data to a new temporary file beside name in dir and
// returns its path; with sync, its content is on disk when it returns.
func writeTemp(dir, name string, data []byte, perm os.FileMode, sync bool) (string, error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("atomicfile: create temporary file in %s: %w", dir, err)
	}
	tmp := f.Name()
	err = fill(f, data, perm, sync)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("atomicfile: close %s: %w", tmp, cerr)
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

func fill(f *os.File, data []byte, perm os.FileMode, sync bool) error {
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", f.Name(), err)
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: chmod %s: %w", f.Name(), err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("atomicfile: fsync %s: %w", f.Name(), err)
		}
	}
	return nil
}

// syncDir makes the renames in dir survive a power cut.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("atomicfile: fsync directory %s: %w", dir, err)
	}
	return nil
}
