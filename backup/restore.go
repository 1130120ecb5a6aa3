package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
)

// Target receives a decrypted, decompressed dump: PostgresTarget
// (pg_restore into a database), RedisFileTarget (an RDB file), MySQLTarget
// (the mariadb client).
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
// age decrypt (identities: the private keys, kept off the backup host) →
// zstd → dst. age authenticates every 64 KiB chunk and the end of the
// stream, so tampering or truncation fails before dst sees the bad bytes;
// the whole object's sha256 is compared with the manifest at the end
// (ErrChecksum).
func Restore(ctx context.Context, store Store, m Manifest, identities []age.Identity, dst Target) (RestoreStats, error) {
	var st RestoreStats
	if len(identities) == 0 {
		return st, errors.New("backup: restore: no age identities")
	}
	rc, err := store.Open(ctx, m.Object)
	if err != nil {
		return st, fmt.Errorf("backup: restore: %w", err)
	}
	defer rc.Close()
	hash := sha256.New()
	stored := &countReader{r: io.TeeReader(rc, hash)}
	ar, err := age.Decrypt(stored, identities...)
	if err != nil {
		return st, fmt.Errorf("backup: restore %s: age: %w", m.Object, err)
	}
	zr, err := zstd.NewReader(ar, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		return st, fmt.Errorf("backup: restore: zstd: %w", err)
	}
	defer zr.Close()
	raw := &countReader{r: zr}
	if err := dst.Restore(ctx, raw); err != nil {
		return st, fmt.Errorf("backup: restore %s: %w", m.Object, err)
	}
	// A target may stop before EOF (pg_restore reads the archive's end
	// marker); drain so that the checksum covers the whole object.
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return st, fmt.Errorf("backup: restore %s: %w", m.Object, err)
	}
	if _, err := io.Copy(io.Discard, stored); err != nil {
		return st, fmt.Errorf("backup: restore %s: %w", m.Object, err)
	}
	st = RestoreStats{StoredBytes: stored.n, DumpBytes: raw.n, SHA256: hex.EncodeToString(hash.Sum(nil))}
	if st.SHA256 != m.SHA256 || st.StoredBytes != m.StoredBytes {
		return st, fmt.Errorf("%w: %s: got %s (%d bytes), manifest %s (%d bytes)", ErrChecksum, m.Object,
			st.SHA256, st.StoredBytes, m.SHA256, m.StoredBytes)
	}
	return st, nil
}

// Check downloads a backup and compares its sha256 and size with the
// manifest without decrypting it: no private key needed.
func Check(ctx context.Context, store Store, m Manifest) error {
	rc, err := store.Open(ctx, m.Object)
	if err != nil {
		return fmt.Errorf("backup: check: %w", err)
	}
	defer rc.Close()
	hash := sha256.New()
	n, err := io.Copy(hash, rc)
	if err != nil {
		return fmt.Errorf("backup: check %s: %w", m.Object, err)
	}
	if got := hex.EncodeToString(hash.Sum(nil)); got != m.SHA256 || n != m.StoredBytes {
		return fmt.Errorf("%w: %s: got %s (%d bytes)", ErrChecksum, m.Object, got, n)
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

// ParseIdentities reads age identities (AGE-SECRET-KEY-1... lines) from an
// identity file.
func ParseIdentities(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("backup: identity file: %w", err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("backup: identity file %s: %w", path, err)
	}
	return ids, nil
}

// ParseRecipients parses age1... public keys given directly and read from
// recipient files (one per line, # comments allowed).
func ParseRecipients(keys []string, files []string) ([]age.Recipient, error) {
	var out []age.Recipient
	for i, k := range keys {
		r, err := age.ParseX25519Recipient(k)
		if err != nil {
			return nil, fmt.Errorf("backup: recipient %d: %w", i+1, err)
		}
		out = append(out, r)
	}
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("backup: recipients file: %w", err)
		}
		rs, err := age.ParseRecipients(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("backup: recipients file %s: %w", p, err)
		}
		out = append(out, rs...)
	}
	if len(out) == 0 {
		return nil, ErrNoRecipients
	}
	return out, nil
}

// PostgresTarget restores a custom-format archive with pg_restore into an
// existing database (--no-owner --no-privileges --exit-on-error). The
// connection settings are a PostgresSource's; only Database differs.
type PostgresTarget struct {
	Conn      PostgresSource // Host, Port, User, Password, SSL settings; Database = the target
	PgRestore string         // path; "" = from PATH
	Clean     bool           // --clean --if-exists: replace objects that exist
	ExtraArgs []string
}

// Restore pipes r into pg_restore.
func (t *PostgresTarget) Restore(ctx context.Context, r io.Reader) error {
	bin, err := lookTool(t.PgRestore, "pg_restore")
	if err != nil {
		return err
	}
	args := []string{"--no-owner", "--no-privileges", "--exit-on-error"}
	if t.Clean {
		args = append(args, "--clean", "--if-exists")
	}
	args = append(append(args, t.ExtraArgs...), t.Conn.connArgs(t.Conn.Database)...)
	return tool{bin: bin, args: args, env: t.Conn.env()}.run(ctx, r, nil)
}

// RedisFileTarget writes the RDB to Path (through a temporary file beside
// it and a rename), ready to be put in place of a stopped server's dump.rdb.
type RedisFileTarget struct {
	Path string
}

// Restore writes the file.
func (t *RedisFileTarget) Restore(ctx context.Context, r io.Reader) error {
	f, err := os.CreateTemp(filepath.Dir(t.Path), "."+filepath.Base(t.Path)+".partial-*")
	if err != nil {
		return err
	}
	_, err = io.Copy(f, &rdbCheckReader{r: r})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), t.Path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", t.Path, err)
	}
	return nil
}

type rdbCheckReader struct {
	r    io.Reader
	seen int
	head [5]byte
}

func (c *rdbCheckReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.seen < 5 {
		k := copy(c.head[c.seen:], p[:n])
		c.seen += k
		if c.seen == 5 && string(c.head[:]) != "REDIS" {
			return 0, errors.New("not an RDB file (no REDIS magic)")
		}
	}
	return n, err
}

// MySQLTarget pipes an SQL dump into the mariadb (or mysql) client.
type MySQLTarget struct {
	Host     string
	Port     int
	User     string
	Password string // passed in MYSQL_PWD
	Database string
	Client   string // path; "" = mariadb from PATH
}

// Restore runs the client with r as stdin.
func (t *MySQLTarget) Restore(ctx context.Context, r io.Reader) error {
	bin, err := lookTool(t.Client, "mariadb")
	if err != nil {
		return err
	}
	args := append(mysqlConn(t.Host, t.Port, t.User), "--batch", t.Database)
	return tool{bin: bin, args: args, env: []string{"MYSQL_PWD=" + t.Password}}.run(ctx, r, nil)
}
