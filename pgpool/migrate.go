package pgpool

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"

	"github.com/fediops/fediops/internal/envfile"
)

// SidecarSuffix names the file ToDirect keeps the original .env in:
// .env.production.fediops-pooled, mode 0600 (it holds DB_PASS).
const SidecarSuffix = ".fediops-pooled"

// Migration-mode errors.
var (
	// ErrAlreadyDirect: ToDirect found the sidecar of an earlier ToDirect.
	ErrAlreadyDirect = errors.New("already in direct (migration) mode")
	// ErrNotDirect: ToPooled found no sidecar to restore from.
	ErrNotDirect = errors.New("not in direct (migration) mode")
	// ErrEnvChanged: the .env file changed since ToDirect wrote it; restoring
	// would lose that change.
	ErrEnvChanged = errors.New(".env changed while in direct mode")
)

// sidecar is what ToDirect stores to go back. Original holds the exact
// bytes of the pooled file; DirectSHA256 the file ToDirect wrote, so that
// ToPooled can refuse to drop someone's later edit.
type sidecar struct {
	Version      int    `json:"version"`
	Original     []byte `json:"original"`
	DirectSHA256 string `json:"direct_sha256"`
	Direct       string `json:"direct"` // host:port/db, for people reading it
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// ToDirect is the seed's manual step before a schema migration as one
// reversible rewrite of the .env file at path: DB_PORT becomes the direct
// port, DB_NAME the database behind the pool, PREPARED_STATEMENTS is
// removed (Mastodon's default, true, applies); with DATABASE_URL its port,
// path and prepared_statements parameter change instead. The direct
// target comes from FromEnv's rules (FEDIOPS_DB_DIRECT_NAME, 25061 →
// 25060, or opt). The original bytes go to path+SidecarSuffix first, then
// the file is replaced atomically (envfile's temp file and rename, mode
// and owner kept). Run it only on the machine that runs the migration;
// ToPooled goes back.
func ToDirect(path string, opt Options) (Endpoint, error) {
	d, err := toDirect(path, opt)
	if err != nil {
		return Endpoint{}, fmt.Errorf("point %s at the database: %w", path, err)
	}
	return d, nil
}

func toDirect(path string, opt Options) (Endpoint, error) {
	side := path + SidecarSuffix
	f, err := envfile.Read(path)
	if err != nil {
		return Endpoint{}, err
	}
	orig := f.Bytes()
	if b, err := os.ReadFile(side); err == nil {
		var sc sidecar
		if json.Unmarshal(b, &sc) == nil && bytes.Equal(sc.Original, orig) {
			// A ToDirect that stopped between the two writes: start again.
		} else {
			return Endpoint{}, fmt.Errorf("%s: %w (run ToPooled first)", side, ErrAlreadyDirect)
		}
	}
	ep, err := resolveEndpoints(f.Get, &opt)
	// A pooled file Rails could not use (prepared statements on, DB_NAME
	// not a pool) is no reason to refuse the migration; a bad value is.
	if err != nil && errors.Is(err, ErrInvalid) {
		return Endpoint{}, err
	}
	if !ep.pooled {
		return Endpoint{}, fmt.Errorf("it already points at the database (%s), not a pool", ep.direct)
	}
	if ep.directOK != nil {
		return Endpoint{}, ep.directOK
	}
	d := ep.direct
	if raw, ok := f.Get("DATABASE_URL"); ok && raw != "" {
		u, err := url.Parse(raw)
		if err != nil {
			return Endpoint{}, fmt.Errorf("DATABASE_URL: %w", ErrInvalid)
		}
		if u.Port() != "" || ep.s.portVar == "DATABASE_URL" {
			u.Host = hostPort(u.Hostname(), d.Port)
		}
		if ep.s.dbVar == "DATABASE_URL" {
			u.Path = "/" + d.Database
		}
		q := u.Query()
		if q.Has("prepared_statements") {
			q.Del("prepared_statements")
			u.RawQuery = q.Encode()
		}
		if err := f.Set("DATABASE_URL", u.String()); err != nil {
			return Endpoint{}, fmt.Errorf("set DATABASE_URL: %w", err)
		}
	}
	if ep.s.portVar == "DB_PORT" {
		if err := f.Set("DB_PORT", strconv.Itoa(d.Port)); err != nil {
			return Endpoint{}, fmt.Errorf("set DB_PORT: %w", err)
		}
	}
	if ep.s.dbVar == "DB_NAME" {
		if err := f.Set("DB_NAME", d.Database); err != nil {
			return Endpoint{}, fmt.Errorf("set DB_NAME: %w", err)
		}
	}
	if err := f.Delete("PREPARED_STATEMENTS"); err != nil {
		return Endpoint{}, fmt.Errorf("delete PREPARED_STATEMENTS: %w", err)
	}
	if _, pooled := f.Get(EnvPooled); pooled {
		// The file itself says "pooled": it must not any more.
		if err := f.Set(EnvPooled, "false"); err != nil {
			return Endpoint{}, fmt.Errorf("set %s: %w", EnvPooled, err)
		}
	}
	sc := sidecar{Version: 1, Original: orig, DirectSHA256: sum(f.Bytes()), Direct: d.String()}
	b, err := json.Marshal(sc)
	if err != nil {
		return Endpoint{}, err
	}
	if err := writeSidecar(side, b); err != nil {
		return Endpoint{}, err
	}
	if err := f.WriteFile(path); err != nil {
		return Endpoint{}, err
	}
	return d, nil
}

// ToPooled undoes ToDirect: it writes back the exact original bytes
// (atomically) and removes the sidecar. It refuses with ErrEnvChanged when
// the file is no longer what ToDirect wrote, unless force is set; when the
// file already holds the original bytes it only removes the sidecar.
func ToPooled(path string, force bool) error {
	if err := toPooled(path, force); err != nil {
		return fmt.Errorf("point %s at the pool again: %w", path, err)
	}
	return nil
}

func toPooled(path string, force bool) error {
	side := path + SidecarSuffix
	b, err := os.ReadFile(side)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", side, ErrNotDirect)
	}
	if err != nil {
		return err
	}
	var sc sidecar
	if err := json.Unmarshal(b, &sc); err != nil || sc.Version != 1 {
		return fmt.Errorf("%s: %w: not a fediops sidecar", side, ErrInvalid)
	}
	cur, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !bytes.Equal(cur, sc.Original) {
		if sum(cur) != sc.DirectSHA256 && !force {
			return fmt.Errorf("%w; merge by hand from %s, or force", ErrEnvChanged, side)
		}
		// envfile.Parse keeps the bytes; WriteFile replaces atomically and
		// keeps the file's mode and owner.
		f, err := envfile.Parse(path, sc.Original, envfile.WithLookup(nil))
		if err != nil {
			return err
		}
		if err := f.WriteFile(path); err != nil {
			return err
		}
	}
	if err := os.Remove(side); err != nil {
		return err
	}
	return nil
}

// InDirectMode reports whether ToDirect's sidecar exists for path.
func InDirectMode(path string) bool {
	_, err := os.Stat(path + SidecarSuffix)
	return err == nil
}

func hostPort(h string, p int) string {
	if bytes.ContainsRune([]byte(h), ':') {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(p)
}

// writeSidecar writes b to path through a temporary file and a rename,
// readable by its owner only. A temporary file an interrupted run left
// behind is removed first: os.WriteFile would keep its mode.
func writeSidecar(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
