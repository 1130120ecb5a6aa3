package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"sync/atomic"
	"time"
)

// Source produces one database dump as a stream: backup/pgdump (pg_dump
// -Fc over the direct connection), backup/rdb (redis-cli --rdb over TLS),
// backup/mysqldump (mysqldump --single-transaction).
type Source interface {
	// Name labels the backups (the object folder and the Slack line), e.g.
	// "postgres". It must be a single path element.
	Name() string
	// Kind says how to restore: "postgres", "redis" or "mysql".
	Kind() string
	// Version reports the dump tool's version for the manifest.
	Version(ctx context.Context) (string, error)
	// Dump writes the whole dump to w and returns nil only if the tool
	// finished successfully. Cancelling ctx stops the tool.
	Dump(ctx context.Context, w io.Writer) error
}

// Sealer compresses and encrypts a dump on its way to the Store; its
// Unsealer reverses that on restore. backup/agezstd is the one fediops
// ships: zstd, then age to the admins' public keys.
type Sealer interface {
	// Seal returns a writer that compresses and encrypts what is written to
	// it into w. Close writes the rest into w and does not close w. The
	// writer may report the compressed size with a method
	// Compressed() int64; the manifest records it.
	Seal(w io.Writer) (io.WriteCloser, error)
	// Sealing says what the manifest records and how objects are named.
	Sealing() Sealing
}

// Sealing describes a Sealer's output for the manifest.
type Sealing struct {
	Compression string   // e.g. "zstd"
	Encryption  string   // e.g. "age"; backups without it are not the point
	Recipients  []string // who can decrypt: public keys, never private ones
	Extension   string   // appended to the object name, e.g. ".zst.age"
}

// Unsealer turns a stored object back into the dump: backup/agezstd's
// Unsealer holds the private keys (kept off the backup host).
type Unsealer interface {
	// Unseal returns the dump held by the stored object r. It must fail a
	// Read, before the bad bytes reach the caller, when r was tampered with
	// or cut short. Close releases it (not r).
	Unseal(r io.Reader) (io.ReadCloser, error)
}

// Errors callers branch on.
var (
	ErrNoSealer = errors.New("no sealer: backups are compressed and encrypted on their way (backup/agezstd)")
	ErrChecksum = errors.New("sha256 of the stored object does not match its manifest")
)

var extByKind = map[string]string{"postgres": "pgdump", "redis": "rdb", "mysql": "sql"}

// Pipeline turns a Source into a sealed object in a Store:
// dump → Sealer (zstd → age) → sha256 → Store.Put, all streaming through
// an io.Pipe, with no temporary file and memory bounded by the sealer's
// and the store's buffers, whatever the dump's size.
type Pipeline struct {
	Store    Store
	Prefix   string                        // object name prefix, e.g. "db/"; "" allowed
	Sealer   Sealer                        // required: backup/agezstd.Sealer
	Host     string                        // recorded in manifests; "" = os.Hostname
	Now      func() time.Time              // nil = time.Now
	Progress func(source string) io.Writer // optional: receives the raw dump bytes
	Logger   *slog.Logger                  // nil = slog.Default()
}

func (p *Pipeline) now() time.Time {
	if p.Now != nil {
		return p.Now().UTC()
	}
	return time.Now().UTC()
}

func (p *Pipeline) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

// counter counts bytes and optionally tees them to a progress writer.
type counter struct {
	w    io.Writer
	n    atomic.Int64
	tee  io.Writer
	fail error // first write error of the tee is ignored: progress is cosmetic
}

func (c *counter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	if c.tee != nil && n > 0 && c.fail == nil {
		_, c.fail = c.tee.Write(b[:n])
	}
	return n, err
}

// Backup runs one source through the pipeline and stores data then
// manifest. On any failure nothing is listed: the data upload is abandoned
// (and cancelled), or, when only the manifest failed, the data object is
// deleted again. Its errors read "back up <source>: ...".
func (p *Pipeline) Backup(ctx context.Context, src Source) (Manifest, error) {
	name := src.Name()
	if name == "" || path.Base(name) != name || name == "." || name == ".." {
		return Manifest{}, fmt.Errorf("back up %q: the source name must be one path element", name)
	}
	if p.Sealer == nil {
		return Manifest{}, fmt.Errorf("back up %s: %w", name, ErrNoSealer)
	}
	sealing := p.Sealer.Sealing()
	ext := extByKind[src.Kind()]
	if ext == "" {
		ext = "dump"
	}
	start := p.now()
	host := p.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	m := Manifest{Format: ManifestFormat, Source: name, Kind: src.Kind(), ID: start.Format(StampLayout),
		Host: host, Started: start, Compression: sealing.Compression, Encryption: sealing.Encryption,
		Recipients: sealing.Recipients, Tools: moduleVersions()}
	m.Object = p.Prefix + name + "/" + m.ID + "." + ext + sealing.Extension
	v, err := src.Version(ctx)
	if err != nil {
		return m, fmt.Errorf("back up %s: %w", name, err)
	}
	m.Tools[src.Kind()+"_dump_tool"] = v

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	type putResult struct {
		info ObjectInfo
		err  error
	}
	done := make(chan putResult, 1)
	go func() {
		info, err := p.Store.Put(ctx, m.Object, pr)
		if err != nil {
			pr.CloseWithError(err) // stops the producer
			cancel()               // and the dump tool
		} else {
			// A store that returned early must not leave the producer blocked.
			pr.CloseWithError(errors.New("the store finished reading early"))
		}
		done <- putResult{info, err}
	}()

	hash := sha256.New()
	stored := &counter{w: io.MultiWriter(hash, pw)}
	raw := &counter{}
	encErr := func() error {
		sw, err := p.Sealer.Seal(stored)
		if err != nil {
			return err
		}
		raw.w = sw
		if p.Progress != nil {
			raw.tee = p.Progress(name)
		}
		if err := src.Dump(ctx, raw); err != nil {
			sw.Close()
			return err
		}
		if err := sw.Close(); err != nil {
			return err
		}
		m.DumpBytes = raw.n.Load()
		if c, ok := sw.(interface{ Compressed() int64 }); ok {
			m.ZstdBytes = c.Compressed()
		}
		return nil
	}()
	if encErr != nil {
		pw.CloseWithError(encErr)
	} else {
		pw.Close()
	}
	put := <-done
	// How far it got, also when it failed (the report says so).
	m.DumpBytes, m.StoredBytes = raw.n.Load(), stored.n.Load()
	switch {
	case encErr != nil && (put.err == nil || errors.Is(put.err, encErr)):
		if put.err == nil { // the store finished early and kept a truncated object
			p.deleteQuietly(ctx, m.Object)
		}
		return m, fmt.Errorf("back up %s: %w", name, encErr)
	case put.err != nil:
		return m, fmt.Errorf("back up %s: store %s: %w", name, m.Object, put.err)
	}
	m.SHA256 = hex.EncodeToString(hash.Sum(nil))
	if put.info.Size != m.StoredBytes {
		p.deleteQuietly(ctx, m.Object)
		return m, fmt.Errorf("back up %s: store %s: it kept %d bytes of %d", name, m.Object, put.info.Size, m.StoredBytes)
	}
	m.Finished = p.now()
	body, _ := json.MarshalIndent(m, "", "  ")
	mname := p.Prefix + name + "/" + m.ID + manifestSuffix
	if _, err := p.Store.Put(ctx, mname, bytes.NewReader(body)); err != nil {
		p.deleteQuietly(ctx, m.Object)
		return m, fmt.Errorf("back up %s: store %s: %w", name, mname, err)
	}
	p.logger().Info("backup stored", "source", name, "object", m.Object, "dump_bytes", m.DumpBytes,
		"stored_bytes", m.StoredBytes, "duration", m.Finished.Sub(m.Started).Round(time.Millisecond))
	return m, nil
}

func (p *Pipeline) deleteQuietly(ctx context.Context, name string) {
	ctx, cancel := CleanupContext(ctx, time.Minute)
	defer cancel()
	if err := p.Store.Delete(ctx, name); err != nil {
		p.logger().Warn("remove an unlisted data object", "object", name, "err", err)
	}
}
