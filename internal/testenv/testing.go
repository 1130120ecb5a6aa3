package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// shared is the one stack of a test binary, made on first use and closed by
// Main once every test has run.
var shared struct {
	sync.Mutex
	main  bool
	stack *Stack
	err   error
	after []func()
}

// AfterAll registers f to run once Main has run every test, whether they
// passed or not, just before the test binary exits: the way to remove what
// a package's tests share (a directory of programs built once for all of
// them). Functions run in the reverse order of registration.
func AfterAll(f func()) {
	shared.Lock()
	defer shared.Unlock()
	shared.after = append(shared.after, f)
}

// Main runs a package's tests with one shared stack and stops its servers
// afterwards. When a test failed the servers' logs are kept and their paths
// printed. Use it as:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	shared.Lock()
	shared.main = true
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	s, after := shared.stack, shared.after
	shared.Unlock()
	defer func() {
		for i := len(after) - 1; i >= 0; i-- {
			after[i]()
		}
		os.Exit(code)
	}()
	if s != nil {
		keep := code != 0
		if keep {
			fmt.Fprintf(os.Stderr, "testenv: a test failed; server logs kept in %s:\n", s.Dir)
			for _, l := range s.Logs() {
				fmt.Fprintln(os.Stderr, "  ", l)
			}
		}
		if err := s.Close(keep); err != nil {
			fmt.Fprintln(os.Stderr, "testenv: close:", err)
		}
	}
}

// Shared returns the test binary's stack. It fails the test unless the
// package's TestMain calls Main, so that no server outlives the tests.
func Shared(t testing.TB) *Stack {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if !shared.main {
		t.Fatal("testenv: add `func TestMain(m *testing.M) { testenv.Main(m) }` to this package's tests")
	}
	if shared.stack == nil && shared.err == nil {
		shared.stack, shared.err = NewStack("")
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.stack
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// PG returns the shared PostgreSQL (DO's direct port stand-in).
func PG(t testing.TB) *Postgres {
	t.Helper()
	v, err := Shared(t).Postgres(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Bouncer returns the shared pgBouncer (DO's pool stand-in).
func Bouncer(t testing.TB) *PgBouncer {
	t.Helper()
	v, err := Shared(t).PgBouncer(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// RedisTLS returns the shared TLS-only Redis.
func RedisTLS(t testing.TB) *Redis {
	t.Helper()
	v, err := Shared(t).Redis(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// NewRedis starts a further TLS-only Redis with the shared one's password,
// for failover tests; it stops with the stack.
func NewRedis(t testing.TB) *Redis {
	t.Helper()
	s := Shared(t)
	if os.Getenv("FEDIOPS_TEST_REDIS_URL") != "" {
		t.Fatal("testenv: failover tests start their own Redis servers; unset FEDIOPS_TEST_REDIS_URL to run them")
	}
	if _, err := s.Redis(ctx(t)); err != nil {
		t.Fatal(err)
	}
	v, err := s.StartRedis(ctx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Maria returns the shared MariaDB.
func Maria(t testing.TB) *MariaDB {
	t.Helper()
	v, err := Shared(t).MariaDB(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Binary returns the path of a binary a test runs, failing with the
// apt-get line when it is missing.
func Binary(t testing.TB, name string) string {
	t.Helper()
	v, err := LookPath(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Start runs a server that is not part of the stack (prometheus, an
// exporter) for the test's length: bin with args, its output appended to
// logFile, started as the other servers are so that it dies with the test
// process, and stopped (SIGTERM, then SIGKILL after 10 s) when the test
// ends.
func Start(t testing.TB, logFile, bin string, args ...string) {
	t.Helper()
	p, err := startProc(nil, filepath.Base(bin), logFile, bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
}
