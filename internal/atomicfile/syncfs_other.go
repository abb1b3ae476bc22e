//go:build !linux

package atomicfile

import (
	"fmt"
	"os"
)

// syncFS writes out the temporary files of a WriteAll one fsync each,
// where there is no syncfs(2); "" marks a file that failed before.
func syncFS(_ string, tmps []string) error {
	for _, tmp := range tmps {
		if tmp == "" {
			continue
		}
		f, err := os.OpenFile(tmp, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("atomicfile: open %s: %w", tmp, err)
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("atomicfile: fsync %s: %w", tmp, err)
		}
	}
	return nil
}
