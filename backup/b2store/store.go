// Package b2store keeps backups in a Backblaze B2 bucket: Open a bucket
// with a Config (ConfigFromEnv reads B2_APPLICATION_KEY_ID,
// B2_APPLICATION_KEY and B2_BUCKET) and hand the *Store to backup.Runner.
//
// It speaks B2's native API call by call through Backblaze/blazer's base
// package, in one Client that the media mirror (backup/mirror) shares:
// authorization and re-authorization, retries as B2 advises bounded by
// RetryFor (blazer's own writer and reader retry some failures for ever),
// large files, and cancelling unfinished ones. Put streams in ChunkSize
// parts with a bounded number in memory, about (ConcurrentUploads + 1) ×
// ChunkSize; a failed Put cancels its unfinished large file, so a failed
// backup costs no storage and is never listed. Config.APIBase points it at
// a stand-in such as internal/b2fake.
package b2store

import (
	"context"
	"io"
	"iter"

	"github.com/fediops/fediops/backup"
)

// Store is a B2 bucket as a backup.Store.
type Store struct {
	c *Client
}

var (
	_ backup.Store    = (*Store)(nil)
	_ backup.Canceler = (*Store)(nil)
)

// Open authorizes with B2 and finds the bucket (it does not create one),
// giving up after Config.RetryFor.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	c, err := Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Store{c: c}, nil
}

// Client is the store's B2 client, for what the Store interface does not
// cover (every version of a name, file info).
func (s *Store) Client() *Client { return s.c }

// Put streams r into name: one b2_upload_file up to ChunkSize, a large
// file of ChunkSize parts above it. On any error the upload is abandoned
// and its unfinished large file cancelled.
func (s *Store) Put(ctx context.Context, name string, r io.Reader) (backup.ObjectInfo, error) {
	f, err := s.c.Put(ctx, name, r, nil)
	if err != nil {
		return backup.ObjectInfo{}, err
	}
	return backup.ObjectInfo{Name: name, Size: f.Size, Modified: f.Uploaded}, nil
}

// Open streams an object with ConcurrentDownloads ranged reads of
// ChunkSize bytes. A download that gets no usable answer from B2 for
// RetryFor (connection errors, 5xx, 429, bodies cut short) fails, and Read
// returns that cause.
func (s *Store) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	return s.c.Download(ctx, name)
}

// Stat reads an object's size and upload time.
func (s *Store) Stat(ctx context.Context, name string) (backup.ObjectInfo, error) {
	f, err := s.c.Stat(ctx, name)
	if err != nil {
		return backup.ObjectInfo{}, err
	}
	return backup.ObjectInfo{Name: name, Size: f.Size, Modified: f.Uploaded}, nil
}

// List yields finished objects under prefix in name order, 1000 per
// b2_list_file_names call.
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[backup.ObjectInfo, error] {
	return func(yield func(backup.ObjectInfo, error) bool) {
		for f, err := range s.c.List(ctx, prefix) {
			if err != nil {
				yield(backup.ObjectInfo{}, err)
				return
			}
			if f.Action != "upload" {
				continue
			}
			if !yield(backup.ObjectInfo{Name: f.Name, Size: f.Size, Modified: f.Uploaded}, nil) {
				return
			}
		}
	}
}

// Delete removes every version of name (B2 keeps old versions of a name).
func (s *Store) Delete(ctx context.Context, name string) error {
	return s.c.Delete(ctx, name)
}

// CancelUnfinished cancels every unfinished large file under prefix, such
// as the ones a killed process left behind.
func (s *Store) CancelUnfinished(ctx context.Context, prefix string) (int, error) {
	return s.c.CancelUnfinished(ctx, prefix)
}
