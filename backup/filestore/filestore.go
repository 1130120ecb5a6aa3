// Package filestore is a backup.Store in a local directory (a mounted disk,
// an NFS share, a test's t.TempDir): New(dir) and hand it to backup.Runner.
//
// Object names map to paths below the directory ("db/postgres/x" is
// dir/db/postgres/x). Put writes to a hidden ".partial" file beside the
// target, syncs it and renames it into place, so a crash never leaves a
// listed half-object; List skips partial files and Put removes its own on
// failure. CancelUnfinished removes partial files a killed process left.
package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fediops/fediops/backup"
)

const partial = ".partial-"

// Store keeps objects as files below Dir.
type Store struct {
	Dir string
}

var _ backup.Store = (*Store)(nil)
var _ backup.Canceler = (*Store)(nil)

// New returns a store rooted at dir, creating it (0700) if missing.
func New(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err // *PathError names the directory
	}
	return &Store{Dir: dir}, nil
}

func (s *Store) path(name string) (string, error) {
	clean := path.Clean("/" + name)[1:]
	if name == "" || clean != name || strings.Contains(path.Base(name), partial) {
		return "", fmt.Errorf("bad object name %q: want a relative, clean path", name)
	}
	return filepath.Join(s.Dir, filepath.FromSlash(name)), nil
}

// Put copies r to a partial file, syncs it and renames it to name.
func (s *Store) Put(ctx context.Context, name string, r io.Reader) (backup.ObjectInfo, error) {
	p, err := s.path(name)
	if err != nil {
		return backup.ObjectInfo{}, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return backup.ObjectInfo{}, err
	}
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+partial+"*")
	if err != nil {
		return backup.ObjectInfo{}, err
	}
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return backup.ObjectInfo{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return backup.ObjectInfo{}, err
	}
	return backup.ObjectInfo{Name: name, Size: n, Modified: st.ModTime()}, nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Open opens the object's file.
func (s *Store) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	p, err := s.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, backup.ErrNotExist
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Stat describes the object's file.
func (s *Store) Stat(ctx context.Context, name string) (backup.ObjectInfo, error) {
	p, err := s.path(name)
	if err != nil {
		return backup.ObjectInfo{}, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && st.IsDir()) {
		return backup.ObjectInfo{}, backup.ErrNotExist
	}
	if err != nil {
		return backup.ObjectInfo{}, err
	}
	return backup.ObjectInfo{Name: name, Size: st.Size(), Modified: st.ModTime()}, nil
}

// List walks the directory and yields finished files under prefix.
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[backup.ObjectInfo, error] {
	return func(yield func(backup.ObjectInfo, error) bool) {
		var out []backup.ObjectInfo
		err := filepath.WalkDir(s.Dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			rel, _ := filepath.Rel(s.Dir, p)
			name := filepath.ToSlash(rel)
			if d.IsDir() {
				if name != "." && !strings.HasPrefix(name+"/", prefix) && !strings.HasPrefix(prefix, name+"/") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasPrefix(name, prefix) || strings.Contains(d.Name(), partial) {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			out = append(out, backup.ObjectInfo{Name: name, Size: info.Size(), Modified: info.ModTime()})
			return nil
		})
		if err != nil {
			yield(backup.ObjectInfo{}, err)
			return
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		for _, o := range out {
			if !yield(o, nil) {
				return
			}
		}
	}
}

// Delete removes the object's file.
func (s *Store) Delete(ctx context.Context, name string) error {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// CancelUnfinished removes partial files under prefix.
func (s *Store) CancelUnfinished(ctx context.Context, prefix string) (int, error) {
	n := 0
	err := filepath.WalkDir(s.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(d.Name(), partial) {
			return err
		}
		rel, _ := filepath.Rel(s.Dir, p)
		if strings.HasPrefix(filepath.ToSlash(rel), path.Dir(prefix+"x")) {
			if err := os.Remove(p); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("remove partial files: %w", err)
	}
	return n, nil
}
