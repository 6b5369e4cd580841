// Package atomicfile writes files so that a reader sees either the old
// file or the complete new one, never a part: the CAPF key and certificate,
// trust files a TFTP server hands to phones, signing keys.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/capf-server/capf/internal/fault"
)

// Write writes data to path so that a reader (a TFTP or HTTP
// server serving the directory) sees either the old file or the complete
// new one, never a part: a temporary file in the same directory, fsync,
// rename, then a best-effort fsync of the directory. With exclusive set it
// refuses (fault.Conflict) to replace an existing file. On any error
// nothing is left behind.
func Write(path string, data []byte, perm fs.FileMode, exclusive bool) (err error) {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if exclusive {
		if _, err := os.Lstat(path); err == nil {
			return fault.Conflictf("%s exists; not overwriting it", path)
		}
	}
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if exclusive {
		// Link fails if path appeared meanwhile; rename would replace it.
		if err = os.Link(tmp, path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				err = fault.Conflictf("%s exists; not overwriting it", path)
			} else {
				err = fmt.Errorf("write %s: %w", path, err)
			}
			return err
		}
		_ = os.Remove(tmp)
	} else if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync() // best effort: not every file system syncs directories
		_ = d.Close()
	}
	return nil
}
