package backup

import (
	"context"
	"errors"
	"io"
	"iter"
	"time"
)

// ErrNotExist is returned by Store.Open and Store.Stat for an object that
// is not there (errors.Is finds it when wrapped).
var ErrNotExist = errors.New("object does not exist")

// Store is where backups go: an object store with flat, slash-separated
// names, the seam between the pipeline and B2 (backup/b2store), a local
// directory (backup/filestore) or anything else. It is litestream's
// ReplicaClient reduced to whole objects.
//
// Put must be all or nothing: the object is listed only after Put returned
// nil; when Put fails (the reader returned an error, ctx was cancelled, the
// service refused) nothing is listed under name and no unfinished upload is
// left behind. Implementations must stream: Put may not hold r whole in
// memory nor spool it to disk.
//
// A Store's errors name neither the store nor the object: its callers
// (Pipeline, Restore, Scan, Prune) know both and say them once, as in
// "restore db/postgres/20261126T000000Z.pgdump.zst.age: object does not
// exist". backup/storetest checks an implementation against this contract.
type Store interface {
	// Put stores everything r yields under name, replacing an older object.
	Put(ctx context.Context, name string, r io.Reader) (ObjectInfo, error)
	// Open streams an object; the caller closes it.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// Stat describes one object or returns ErrNotExist.
	Stat(ctx context.Context, name string) (ObjectInfo, error)
	// List yields the finished objects whose names start with prefix, in name
	// order. It stops at the first error, which it yields.
	List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error]
	// Delete removes an object; deleting a missing object is not an error.
	Delete(ctx context.Context, name string) error
}

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Name     string
	Size     int64
	Modified time.Time // when the store finished writing it
}

// Canceler is implemented by stores that can leave unfinished uploads
// behind when a process dies mid-upload (B2 large files). The runner calls
// it before each backup so that a killed run costs nothing afterwards.
type Canceler interface {
	// CancelUnfinished cancels unfinished uploads under prefix and reports
	// how many it cancelled.
	CancelUnfinished(ctx context.Context, prefix string) (int, error)
}
