package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
)

// Target receives a dump on restore: backup/pgdump's Target (pg_restore
// into a database), backup/rdb's FileTarget (an RDB file), backup/mysqldump's
// Target (the mariadb client).
type Target interface {
	Restore(ctx context.Context, r io.Reader) error
}

// RestoreStats says what a restore read.
type RestoreStats struct {
	StoredBytes int64
	DumpBytes   int64
	SHA256      string
}

// Restore streams a backup from the store into dst: download → sha256 →
// Unseal (decrypt with the private keys, kept off the backup host, then
// decompress) → dst. The Unsealer fails on tampering or truncation before
// dst sees the bad bytes; the whole object's sha256 is compared with the
// manifest at the end (ErrChecksum). Its errors read "restore <object>: ...".
func Restore(ctx context.Context, store Store, m Manifest, u Unsealer, dst Target) (RestoreStats, error) {
	var st RestoreStats
	if u == nil {
		return st, fmt.Errorf("restore %s: no unsealer (the private keys)", m.Object)
	}
	rc, err := store.Open(ctx, m.Object)
	if err != nil {
		return st, fmt.Errorf("restore %s: %w", m.Object, err)
	}
	defer rc.Close()
	hash := sha256.New()
	stored := &countReader{r: io.TeeReader(rc, hash)}
	dump, err := u.Unseal(stored)
	if err != nil {
		return st, fmt.Errorf("restore %s: %w", m.Object, err)
	}
	defer dump.Close()
	raw := &countReader{r: dump}
	if err := dst.Restore(ctx, raw); err != nil {
		return st, fmt.Errorf("restore %s: %w", m.Object, err)
	}
	// A target may stop before EOF (pg_restore reads the archive's end
	// marker); drain so that the checksum covers the whole object.
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return st, fmt.Errorf("restore %s: %w", m.Object, err)
	}
	if _, err := io.Copy(io.Discard, stored); err != nil {
		return st, fmt.Errorf("restore %s: %w", m.Object, err)
	}
	st = RestoreStats{StoredBytes: stored.n, DumpBytes: raw.n, SHA256: hex.EncodeToString(hash.Sum(nil))}
	if st.SHA256 != m.SHA256 || st.StoredBytes != m.StoredBytes {
		return st, fmt.Errorf("restore %s: %w: got %s (%d bytes), manifest %s (%d bytes)", m.Object, ErrChecksum,
			st.SHA256, st.StoredBytes, m.SHA256, m.StoredBytes)
	}
	return st, nil
}

// Check downloads a backup and compares its sha256 and size with the
// manifest without unsealing it: no private key needed.
func Check(ctx context.Context, store Store, m Manifest) error {
	rc, err := store.Open(ctx, m.Object)
	if err != nil {
		return fmt.Errorf("check %s: %w", m.Object, err)
	}
	defer rc.Close()
	hash := sha256.New()
	n, err := io.Copy(hash, rc)
	if err != nil {
		return fmt.Errorf("check %s: %w", m.Object, err)
	}
	if got := hex.EncodeToString(hash.Sum(nil)); got != m.SHA256 || n != m.StoredBytes {
		return fmt.Errorf("check %s: %w: got %s (%d bytes)", m.Object, ErrChecksum, got, n)
	}
	return nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
