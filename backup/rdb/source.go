// Package rdb backs up Redis (or Valkey) as an RDB snapshot with
// `redis-cli --rdb`: SourceFromEnv reads Mastodon's REDIS_* settings
// through redistls and the Source goes into backup.Runner; FileTarget
// writes a backup back to an RDB file and Drill checks one with
// redis-check-rdb against the live key count.
//
// The snapshot streams over TLS when the settings say so (rediss:// or
// FEDIOPS_REDIS_CA_FILE), verified against CAFile or the system roots
// (DO's Valkey certificates come from Let's Encrypt); the password goes to
// redis-cli in REDISCLI_AUTH, never on its command line.
package rdb

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/internal/tool"
	"github.com/fediops/fediops/redistls"
)

// Source streams an RDB snapshot with `redis-cli --rdb -` (redis-cli 7.0
// writes it to stdout).
type Source struct {
	Label    string // Name(); "" = "redis"
	Host     string
	Port     int // 0 = 6379
	User     string
	Password string
	TLS      bool
	CAFile   string // "" = system roots (DO Valkey: Let's Encrypt)
	SNI      string
	RedisCLI string // redis-cli path; "" = from PATH
}

var (
	_ backup.Source   = (*Source)(nil)
	_ backup.Target   = (*FileTarget)(nil)
	_ backup.Verifier = (*Drill)(nil)
)

// SourceFromEnv reads Mastodon's REDIS_URL (rediss:// means TLS) or
// REDIS_HOST, REDIS_PORT, REDIS_USER and REDIS_PASSWORD by the rules
// redistls.ClientOptionsFromEnv applies for every fediops Redis client.
func SourceFromEnv(env fediops.Lookup) (*Source, error) {
	o, err := redistls.ClientOptionsFromEnv(env, "REDIS_")
	if err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("REDIS_HOST/REDIS_PORT: %w", err)
	}
	n, _ := strconv.Atoi(port)       // ClientOptionsFromEnv checked it
	ca, _ := env(redistls.EnvCAFile) // ClientOptionsFromEnv read it
	return &Source{Host: host, Port: n, User: o.Username, Password: o.Password, TLS: o.TLSConfig != nil, CAFile: ca}, nil
}

// Check reads CAFile, if set, before any connection: a file that cannot
// be read or holds no PEM certificate is an error naming it.
func (s *Source) Check() error {
	if s.CAFile == "" {
		return nil
	}
	b, err := os.ReadFile(s.CAFile)
	if err != nil {
		return fmt.Errorf("read the Redis CA: %w", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		return fmt.Errorf("the Redis CA file %s holds no PEM certificate", s.CAFile)
	}
	return nil
}

// Name is Label or "redis".
func (s *Source) Name() string { return cmp.Or(s.Label, "redis") }

// Kind is "redis".
func (s *Source) Kind() string { return "redis" }

// Version runs redis-cli --version.
func (s *Source) Version(ctx context.Context) (string, error) {
	return tool.Version(ctx, s.RedisCLI, "redis-cli")
}

func (s *Source) args() []string {
	var args []string
	if s.TLS {
		args = append(args, "--tls")
		if s.CAFile != "" {
			args = append(args, "--cacert", s.CAFile)
		}
		if s.SNI != "" {
			args = append(args, "--sni", s.SNI)
		}
	}
	args = append(args, "-h", s.Host, "-p", strconv.Itoa(cmp.Or(s.Port, 6379)), "--no-auth-warning")
	if s.User != "" {
		args = append(args, "--user", s.User)
	}
	return args
}

// cli is redis-cli connected to the source with extra arguments, the
// password in REDISCLI_AUTH.
func (s *Source) cli(extra ...string) (tool.Cmd, error) {
	bin, err := tool.Find(s.RedisCLI, "redis-cli")
	if err != nil {
		return tool.Cmd{}, err
	}
	var env []string
	if s.Password != "" {
		env = append(env, "REDISCLI_AUTH="+s.Password)
	}
	return tool.Cmd{Bin: bin, Args: append(s.args(), extra...), Env: env}, nil
}

// Dump streams the RDB file into w.
func (s *Source) Dump(ctx context.Context, w io.Writer) error {
	t, err := s.cli("--rdb", "-")
	if err != nil {
		return err
	}
	return t.Run(ctx, nil, &rdbCheck{w: w})
}

// rdbCheck refuses a stream that does not start like an RDB file (redis-cli
// exits 0 on some errors after writing nothing useful).
type rdbCheck struct {
	w    io.Writer
	head []byte
}

func (c *rdbCheck) Write(p []byte) (int, error) {
	if len(c.head) < 5 {
		need := min(5-len(c.head), len(p))
		c.head = append(c.head, p[:need]...)
		if len(c.head) == 5 && string(c.head) != "REDIS" {
			return 0, fmt.Errorf("redis-cli --rdb: output does not start with REDIS (got %q)", c.head)
		}
	}
	return c.w.Write(p)
}

// FileTarget writes the RDB to Path (through a temporary file beside it
// and a rename), ready to be put in place of a stopped server's dump.rdb.
type FileTarget struct {
	Path string
}

// Restore writes the file.
func (t *FileTarget) Restore(ctx context.Context, r io.Reader) error {
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
