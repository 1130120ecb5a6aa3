package envfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Save writes the file back to the path it was read from; see WriteFile.
func (f *File) Save() error {
	if f.name == "" {
		return errors.New("save: the file has no name")
	}
	return f.WriteFile(f.name)
}

// WriteFile writes the file's content to path without ever leaving a
// half-written file: it writes a temporary file in the same directory,
// syncs it, renames it over path and syncs the directory. An existing
// file keeps its permission bits and, where the system allows, its owner
// and group (so a file owned by the mastodon user stays readable by it);
// a new file gets mode 0600. A symbolic link at path is followed, so the
// file it points to is replaced and the link is kept.
func (f *File) WriteFile(path string) error {
	if err := writeAtomic(path, f.data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func writeAtomic(path string, data []byte) (err error) {
	target := path
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		target = resolved
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	mode := fs.FileMode(0o600)
	var old fs.FileInfo
	if fi, err := os.Stat(target); err == nil {
		mode, old = fi.Mode().Perm(), fi
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}

	dir := filepath.Dir(target)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(target)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if old != nil {
		if err := keepOwner(tmp, old); err != nil {
			return err
		}
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return fmt.Errorf("sync directory: %w", err)
	}
	return d.Close()
}
