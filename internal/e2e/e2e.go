// Package e2e runs fediops's programs the way an admin runs them: each
// program under examples/ is built once per test binary with go build into
// a temporary directory (removed when the tests end, whether they passed
// or not), and the tests exec the binaries with real flags, real
// environments and the files the programs read, against internal/testenv's
// servers and the stand-ins for DigitalOcean (internal/dofake), S3
// (internal/s3fake) and B2 (internal/b2fake).
//
// A test package that drives programs starts with
//
//	func TestMain(m *testing.M) { e2e.Main(m) }
//
// then calls Run (wait for the exit) or Start (a server such as the tunnel,
// stopped with a signal).
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fediops/fediops/internal/testenv"
)

var built struct {
	sync.Mutex
	main bool
	dir  string // the binaries; removed by Main's AfterAll
	once map[string]*buildOnce
}

type buildOnce struct {
	sync.Once
	path string
	err  error
}

// Main runs the tests with testenv.Main (one shared stack of servers) and
// removes the built programs afterwards.
func Main(m *testing.M) {
	built.Lock()
	built.main = true
	built.Unlock()
	testenv.AfterAll(func() {
		built.Lock()
		defer built.Unlock()
		if built.dir != "" {
			os.RemoveAll(built.dir)
		}
	})
	testenv.Main(m)
}

// Build returns the path of examples/<name> built for this test binary
// (once, whatever the number of tests that ask).
func Build(t testing.TB, name string) string {
	t.Helper()
	built.Lock()
	if !built.main {
		built.Unlock()
		t.Fatal("e2e: add `func TestMain(m *testing.M) { e2e.Main(m) }` to this package's tests, so that the built programs are removed")
	}
	if built.once == nil {
		built.once = map[string]*buildOnce{}
	}
	o := built.once[name]
	if o == nil {
		o = &buildOnce{}
		built.once[name] = o
	}
	built.Unlock()
	o.Do(func() { o.path, o.err = build(name) })
	if o.err != nil {
		t.Fatal(o.err)
	}
	return o.path
}

func build(name string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	built.Lock()
	if built.dir == "" {
		if built.dir, err = os.MkdirTemp("", "fediops-e2e-bin-"); err != nil {
			built.Unlock()
			return "", err
		}
	}
	bin := filepath.Join(built.dir, name)
	built.Unlock()
	cmd := exec.Command("go", "build", "-o", bin, "./examples/"+name)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./examples/%s: %v\n%s", name, err, out)
	}
	return bin, nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		return "", fmt.Errorf("e2e: no module root (go env GOMOD: %v)", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// Env is the environment a program runs with: PATH, HOME and TMPDIR from
// the test's own, so that a developer's DIGITALOCEAN_TOKEN or DB_HOST
// never reaches a test, then the given KEY=value pairs.
func Env(kv ...string) []string {
	env := []string{}
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, kv...)
}

// Result is a finished run.
type Result struct {
	Args           []string
	Code           int
	Stdout, Stderr string
	Wall           time.Duration
}

// Output is stdout then stderr.
func (r Result) Output() string { return r.Stdout + r.Stderr }

func (r Result) String() string {
	return fmt.Sprintf("%s: exit %d after %s\nstdout:\n%s\nstderr:\n%s", strings.Join(r.Args, " "), r.Code, r.Wall.Round(time.Millisecond), r.Stdout, r.Stderr)
}

// Run runs the program name with env (see Env) and args, and waits for it
// at most 2 minutes.
func Run(t testing.TB, name string, env []string, args ...string) Result {
	t.Helper()
	p := Start(t, name, env, args...)
	return p.Wait(t, 2*time.Minute)
}

// Proc is a program started by Start.
type Proc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	args           []string
	start          time.Time
	done           chan struct{}
}

// Start starts the program name with env and args; the test's cleanup
// kills it if it still runs.
func Start(t testing.TB, name string, env []string, args ...string) *Proc {
	t.Helper()
	bin := Build(t, name)
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	p := &Proc{cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, args: append([]string{name}, args...), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// Stderr is what the program printed on stderr so far.
func (p *Proc) Stderr() string { return p.stderr.String() }

// Stdout is what the program printed on stdout so far.
func (p *Proc) Stdout() string { return p.stdout.String() }

// Signal sends sig to the program.
func (p *Proc) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// Wait waits for the program to end, killing it (and failing the test)
// after timeout.
func (p *Proc) Wait(t testing.TB, timeout time.Duration) Result {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%s: still running after %s, killed\nstderr:\n%s", strings.Join(p.args, " "), timeout, p.stderr)
	}
	return Result{Args: p.args, Code: p.cmd.ProcessState.ExitCode(), Stdout: p.stdout.String(), Stderr: p.stderr.String(), Wall: time.Since(p.start)}
}

// WaitFor polls cond every 50 ms until it holds, failing the test after
// timeout or when the program ends first.
func (p *Proc) WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !cond() {
		select {
		case <-p.done:
			t.Fatalf("%s ended before %s: exit %d\nstderr:\n%s", strings.Join(p.args, " "), what, p.cmd.ProcessState.ExitCode(), p.stderr)
		case <-ctx.Done():
			t.Fatalf("%s: no %s after %s\nstderr:\n%s", strings.Join(p.args, " "), what, timeout, p.stderr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// NoSecret fails the test when out contains any of secrets.
func NoSecret(t testing.TB, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("the output shows the secret %q:\n%s", s, out)
		}
	}
}

// Contains fails the test for each of subs that s lacks.
func Contains(t testing.TB, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("missing %q in:\n%s", sub, s)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// SeedSecrets are the secrets of testenv.SeedEnv's .env.production (the
// database password as Rails and as the streaming server read it, the S3
// secret key): no program may print any of them.
var SeedSecrets = []string{"Ourpassw0rd", "Noneofyourbu", "$iness", "hahahahahahahahahahahahaha"}

// LogLines fails the test for each line of stderr that is neither a slog
// line of the program's logger ("time=... level=...") nor one of its own
// ("<prog>: <error>", "<prog>: warning: ...", "<prog>: note: ..."): a line
// printed by a library's own logger (go-redis's) would be one.
func LogLines(t testing.TB, prog, stderr string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if line != "" && !strings.HasPrefix(line, "time=") && !strings.HasPrefix(line, prog+": ") {
			t.Errorf("a line in neither slog's nor %s's format: %q", prog, line)
		}
	}
}
