// Package agezstd seals backups with zstd and age: give backup.Pipeline a
// Sealer holding the admins' age public keys, and backup.Restore an
// Unsealer holding a private identity, which stays off the backup host.
//
// A sealed object is an age file (X25519 recipients, ChaCha20-Poly1305 in
// 64 KiB chunks) around a zstd stream: age authenticates every chunk and
// the end of the stream, so tampering or truncation fails a restore before
// the damaged bytes reach pg_restore. Memory is bounded whatever the dump's
// size: one encoder with a 4 MiB window (about 50 MiB of peak RSS for a
// whole backup run), or Workers encoders of 2 MiB segments.
package agezstd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/fediops/fediops/backup"
)

// Errors callers branch on.
var (
	ErrNoRecipients = errors.New("no age recipients: backups are always encrypted")
	ErrNoIdentities = errors.New("no age identities to decrypt with")
)

// Sealer compresses with zstd, then encrypts with age to every recipient.
type Sealer struct {
	Recipients []age.Recipient // at least one; only public keys are needed
	// Level defaults to zstd.SpeedDefault (about zstd -3): on posts-like
	// text it stores 0.8x of pg_dump's gzip output, where SpeedFastest
	// stores 1.08x (BENCHMARKS.md).
	Level zstd.EncoderLevel
	// Workers > 1 compresses 2 MiB segments on that many goroutines as
	// concatenated zstd frames (like pzstd); 0 or 1 is one streaming
	// encoder with a 4 MiB window.
	Workers int
}

var (
	_ backup.Sealer   = (*Sealer)(nil)
	_ backup.Unsealer = (*Unsealer)(nil)
)

// Sealing is zstd, age, the recipients' public keys and ".zst.age".
func (s *Sealer) Sealing() backup.Sealing {
	out := backup.Sealing{Compression: "zstd", Encryption: "age", Extension: ".zst.age"}
	for _, r := range s.Recipients {
		if st, ok := r.(fmt.Stringer); ok {
			out.Recipients = append(out.Recipients, st.String())
		} else {
			out.Recipients = append(out.Recipients, fmt.Sprintf("%T", r))
		}
	}
	return out
}

// Seal returns the writer the dump goes into: zstd, then age, into w.
func (s *Sealer) Seal(w io.Writer) (io.WriteCloser, error) {
	if len(s.Recipients) == 0 {
		return nil, ErrNoRecipients
	}
	aw, err := age.Encrypt(w, s.Recipients...)
	if err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	sw := &sealWriter{aw: aw}
	sw.compressed.w = aw
	level := s.Level
	if level == 0 {
		level = zstd.SpeedDefault
	}
	// One goroutine, a 4 MiB window, and not WithLowerEncoderMem (which
	// triples the time in history copies): ~50 MiB peak RSS in all.
	if s.Workers > 1 {
		sw.zw, err = newParallelZstd(&sw.compressed, level, s.Workers, 2<<20)
	} else {
		sw.zw, err = zstd.NewWriter(&sw.compressed, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(4<<20))
	}
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	return sw, nil
}

// sealWriter is zstd into a byte counter into age.
type sealWriter struct {
	zw         io.WriteCloser
	compressed countWriter
	aw         io.WriteCloser
}

func (s *sealWriter) Write(p []byte) (int, error) { return s.zw.Write(p) }

// Close ends the zstd stream, then the age stream.
func (s *sealWriter) Close() error {
	if err := s.zw.Close(); err != nil {
		return fmt.Errorf("zstd: %w", err)
	}
	if err := s.aw.Close(); err != nil {
		return fmt.Errorf("age: %w", err)
	}
	return nil
}

// Compressed is how many bytes zstd wrote, for the manifest.
func (s *sealWriter) Compressed() int64 { return s.compressed.n.Load() }

type countWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// Unsealer decrypts with age and decompresses with zstd.
type Unsealer struct {
	Identities []age.Identity // the private keys (AGE-SECRET-KEY-1...)
}

// Unseal returns the dump inside the sealed object r.
func (u *Unsealer) Unseal(r io.Reader) (io.ReadCloser, error) {
	if len(u.Identities) == 0 {
		return nil, ErrNoIdentities
	}
	ar, err := age.Decrypt(r, u.Identities...)
	if err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	zr, err := zstd.NewReader(ar, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	return zstdReader{zr}, nil
}

type zstdReader struct{ d *zstd.Decoder }

func (z zstdReader) Read(p []byte) (int, error) { return z.d.Read(p) }

func (z zstdReader) Close() error { z.d.Close(); return nil }

// ParseLevel reads a zstd level by name: fastest, default, better, best.
func ParseLevel(name string) (zstd.EncoderLevel, error) {
	ok, level := zstd.EncoderLevelFromString(name)
	if !ok {
		return 0, fmt.Errorf("zstd level %q: want fastest, default, better or best", name)
	}
	return level, nil
}

// ParseIdentities reads age identities (AGE-SECRET-KEY-1... lines) from an
// identity file.
func ParseIdentities(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read identity file: %w", err) // *PathError names the file
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("read identity file %s: %w", path, err)
	}
	return ids, nil
}

// ErrPrivateKey is an age private key (AGE-SECRET-KEY-1...) given where a
// recipient (a public key) belongs: the backup host must never hold it.
var ErrPrivateKey = errors.New("this is a private key: put its public key (age-keygen -y) here, and keep the private key off this host")

// ParseRecipients parses age1... public keys given directly and read from
// recipient files (one per line, # comments allowed). None at all is
// ErrNoRecipients; a private key is ErrPrivateKey. No error repeats what
// it was given: a key in the wrong place may be the private one.
func ParseRecipients(keys []string, files []string) ([]age.Recipient, error) {
	var out []age.Recipient
	for i, k := range keys {
		r, err := parseRecipient(k)
		if err != nil {
			return nil, fmt.Errorf("age recipient %d: %w", i+1, err)
		}
		out = append(out, r)
	}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read recipients file: %w", err) // *PathError names the file
		}
		n := 0
		for i, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			r, err := parseRecipient(line)
			if err != nil {
				return nil, fmt.Errorf("read recipients file %s: line %d: %w", p, i+1, err)
			}
			out, n = append(out, r), n+1
		}
		if n == 0 {
			return nil, fmt.Errorf("read recipients file %s: %w", p, ErrNoRecipients)
		}
	}
	if len(out) == 0 {
		return nil, ErrNoRecipients
	}
	return out, nil
}

// errNotRecipient is a recipient that does not parse; age's own error
// would quote it.
var errNotRecipient = errors.New("not an age public key (age1...)")

func parseRecipient(k string) (age.Recipient, error) {
	k = strings.TrimSpace(k)
	if strings.Contains(strings.ToUpper(k), "AGE-SECRET-KEY-") {
		return nil, ErrPrivateKey
	}
	rs, err := age.ParseRecipients(strings.NewReader(k)) // every kind age knows (X25519, hybrid post-quantum)
	if err != nil || len(rs) != 1 {
		return nil, errNotRecipient
	}
	return rs[0], nil
}
