package atomicfile

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// syncFS writes out the temporary files of a WriteAll with one syncfs(2)
// of the file system holding dir.
func syncFS(dir string, _ []string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("atomicfile: syncfs %s: %w", dir, err)
	}
	return nil
}
