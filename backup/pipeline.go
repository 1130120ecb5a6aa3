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

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
)

// Source produces one database dump as a stream: PostgresSource (pg_dump
// -Fc over the direct connection), RedisSource (redis-cli --rdb over TLS),
// MySQLSource (mysqldump --single-transaction).
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

// Sentinel errors callers branch on.
var (
	ErrNoRecipients = errors.New("backup: no age recipients: backups are always encrypted")
	ErrChecksum     = errors.New("backup: sha256 of the stored object does not match its manifest")
)

var extByKind = map[string]string{"postgres": "pgdump", "redis": "rdb", "mysql": "sql"}

// Pipeline turns a Source into an encrypted object in a Store:
// dump → zstd → age → sha256 → Store.Put, all streaming through an
// io.Pipe, with no temporary file and memory bounded by the encoder
// window and the store's buffers, whatever the dump's size.
type Pipeline struct {
	Store      Store
	Prefix     string          // object name prefix, e.g. "db/"; "" allowed
	Recipients []age.Recipient // at least one; only public keys are needed
	// ZstdLevel defaults to zstd.SpeedDefault (about zstd -3): on posts-like
	// text it stores 0.8x of pg_dump's gzip output, where SpeedFastest
	// stores 1.08x (BENCHMARKS.md).
	ZstdLevel zstd.EncoderLevel
	// ZstdWorkers > 1 compresses 2 MiB segments on that many goroutines as
	// concatenated zstd frames (like pzstd); 0 or 1 is one streaming
	// encoder with a 4 MiB window.
	ZstdWorkers int
	Host        string                        // recorded in manifests; "" = os.Hostname
	Now         func() time.Time              // nil = time.Now
	Progress    func(source string) io.Writer // optional: receives the raw dump bytes
	Logger      *slog.Logger                  // nil = slog.Default()
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
// deleted again.
func (p *Pipeline) Backup(ctx context.Context, src Source) (Manifest, error) {
	name := src.Name()
	if name == "" || path.Base(name) != name || name == "." || name == ".." {
		return Manifest{}, fmt.Errorf("backup: source name %q must be one path element", name)
	}
	if len(p.Recipients) == 0 {
		return Manifest{}, ErrNoRecipients
	}
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
		Host: host, Started: start, Compression: "zstd", Encryption: "age", Tools: moduleVersions()}
	m.Object = p.Prefix + name + "/" + m.ID + "." + ext + ".zst.age"
	for _, r := range p.Recipients {
		if s, ok := r.(fmt.Stringer); ok {
			m.Recipients = append(m.Recipients, s.String())
		} else {
			m.Recipients = append(m.Recipients, fmt.Sprintf("%T", r))
		}
	}
	v, err := src.Version(ctx)
	if err != nil {
		return m, fmt.Errorf("backup: %s: tool version: %w", name, err)
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
			pr.CloseWithError(errors.New("backup: store finished reading early"))
		}
		done <- putResult{info, err}
	}()

	hash := sha256.New()
	stored := &counter{w: io.MultiWriter(hash, pw)}
	encErr := func() error {
		aw, err := age.Encrypt(stored, p.Recipients...)
		if err != nil {
			return fmt.Errorf("age: %w", err)
		}
		compressed := &counter{w: aw}
		level := p.ZstdLevel
		if level == 0 {
			level = zstd.SpeedDefault
		}
		// One goroutine, a 4 MiB window, and not WithLowerEncoderMem (which
		// triples the time in history copies): ~50 MiB peak RSS in all.
		var zw io.WriteCloser
		if p.ZstdWorkers > 1 {
			zw, err = newParallelZstd(compressed, level, p.ZstdWorkers, 2<<20)
		} else {
			zw, err = zstd.NewWriter(compressed, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
				zstd.WithWindowSize(4<<20))
		}
		if err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		raw := &counter{w: zw}
		if p.Progress != nil {
			raw.tee = p.Progress(name)
		}
		if err := src.Dump(ctx, raw); err != nil {
			zw.Close()
			return err
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		if err := aw.Close(); err != nil {
			return fmt.Errorf("age: %w", err)
		}
		m.DumpBytes, m.ZstdBytes = raw.n.Load(), compressed.n.Load()
		return nil
	}()
	if encErr != nil {
		pw.CloseWithError(encErr)
	} else {
		pw.Close()
	}
	put := <-done
	switch {
	case encErr != nil && (put.err == nil || errors.Is(put.err, encErr)):
		if put.err == nil { // the store finished early and kept a truncated object
			p.deleteQuietly(ctx, m.Object)
		}
		return m, fmt.Errorf("backup: %s: %w", name, encErr)
	case put.err != nil:
		return m, fmt.Errorf("backup: %s: store %s: %w", name, m.Object, put.err)
	}
	m.StoredBytes = stored.n.Load()
	m.SHA256 = hex.EncodeToString(hash.Sum(nil))
	if put.info.Size != m.StoredBytes {
		p.deleteQuietly(ctx, m.Object)
		return m, fmt.Errorf("backup: %s: store kept %d bytes of %d", name, put.info.Size, m.StoredBytes)
	}
	m.Finished = p.now()
	body, _ := json.MarshalIndent(m, "", "  ")
	mname := p.Prefix + name + "/" + m.ID + manifestSuffix
	if _, err := p.Store.Put(ctx, mname, bytes.NewReader(body)); err != nil {
		p.deleteQuietly(ctx, m.Object)
		return m, fmt.Errorf("backup: %s: store manifest: %w", name, err)
	}
	p.logger().Info("backup stored", "source", name, "object", m.Object, "dump_bytes", m.DumpBytes,
		"stored_bytes", m.StoredBytes, "duration", m.Finished.Sub(m.Started).Round(time.Millisecond))
	return m, nil
}

func (p *Pipeline) deleteQuietly(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := p.Store.Delete(ctx, name); err != nil {
		p.logger().Warn("backup: remove unlisted data object", "object", name, "err", err)
	}
}
