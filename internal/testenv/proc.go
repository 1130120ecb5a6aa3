package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// aptPackage names the Debian package that ships each binary the stack runs.
var aptPackage = map[string]string{
	"initdb": "postgresql", "postgres": "postgresql", "pg_dump": "postgresql-client",
	"pg_restore": "postgresql-client", "psql": "postgresql-client", "pgbench": "postgresql",
	"pgbouncer": "pgbouncer", "redis-server": "redis-server", "redis-cli": "redis-tools",
	"redis-benchmark": "redis-tools", "stunnel4": "stunnel4", "stunnel": "stunnel4", "mariadbd": "mariadb-server",
	"mariadb-install-db": "mariadb-server", "mariadb": "mariadb-client", "mysqldump": "mariadb-client",
	"rclone": "rclone", "age": "age", "zstd": "zstd", "prometheus": "prometheus", "promtool": "prometheus",
}

// pgBinDirs are searched after $PATH: Debian keeps the server binaries there.
var pgBinDirs = []string{"/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/sbin"}

// LookPath finds a binary the tests need, or returns an error that carries
// the apt-get line that installs it.
func LookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range pgBinDirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	pkg := aptPackage[name]
	if pkg == "" {
		pkg = name
	}
	return "", fmt.Errorf("%s not found; install it with: apt-get install -y %s", name, pkg)
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// runUser is the unprivileged account servers run as when the tests run as
// root (initdb, postgres, pgbouncer and mariadbd refuse root).
type runUser struct {
	uid, gid uint32
	name     string
}

func serverUser() (*runUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the postgres user to run servers as: apt-get install -y postgresql: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &runUser{uid: uint32(uid), gid: uint32(gid), name: u.Username}, nil
}

// chown gives the server user the tree under dir.
func (u *runUser) chown(paths ...string) error {
	if u == nil {
		return nil
	}
	for _, root := range paths {
		err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, int(u.uid), int(u.gid))
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// spawner starts every child from one goroutine locked to its OS thread, so
// that Pdeathsig (sent when the starting thread dies) fires only when the
// test process itself dies: a crashed test leaves no server behind.
var spawner = struct {
	once sync.Once
	reqs chan func()
}{reqs: make(chan func())}

func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for f := range spawner.reqs {
				f()
			}
		}()
	})
	errc := make(chan error, 1)
	spawner.reqs <- func() { errc <- cmd.Start() }
	return <-errc
}

// proc is one running server.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
	halt func() // stops a server that is not a local process (a container)
}

// command builds a server command that runs as u, logs to logFile and dies
// with the test process.
func command(u *runUser, logFile string, bin string, args ...string) (*exec.Cmd, *os.File, error) {
	lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if u != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.uid, Gid: u.gid}
		// The server's own directory as home and temporary directory: the
		// caller's TMPDIR may be private to it (pam_tmpdir), and mariadbd
		// fails without a writable one.
		cmd.Env = append(cmd.Env, "HOME="+filepath.Dir(logFile), "USER="+u.name, "TMPDIR="+filepath.Dir(logFile))
	}
	return cmd, lf, nil
}

func startProc(u *runUser, name, logFile, bin string, args ...string) (*proc, error) {
	cmd, lf, err := command(u, logFile, bin, args...)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	if err := spawn(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// runOnce runs a set-up command to completion, returning its output on failure.
func runOnce(ctx context.Context, u *runUser, logFile, bin string, args ...string) error {
	return run(ctx, u, logFile, nil, "", bin, args...)
}

// run is runOnce with env added to the command's environment and stdin
// fed to it. Neither appears in the error, which quotes the arguments:
// passwords go there, never into args.
func run(ctx context.Context, u *runUser, logFile string, env []string, stdin, bin string, args ...string) error {
	cmd, lf, err := command(u, logFile, bin, args...)
	if err != nil {
		return err
	}
	defer lf.Close()
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := spawn(cmd); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(bin), err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err = <-waitErr:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		err = errors.Join(ctx.Err(), <-waitErr)
	}
	lf.Write(out.Bytes())
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, lastLines(out.String(), 20))
	}
	return nil
}

// exited reports whether the process has ended, with its log tail.
func (p *proc) exited() error {
	select {
	case <-p.done:
		b, _ := os.ReadFile(p.log)
		return fmt.Errorf("%s exited (%v):\n%s", p.name, p.err, lastLines(string(b), 20))
	default:
		return nil
	}
}

// stop ends the server and its children: SIGTERM, then SIGKILL after 10 s.
func (p *proc) stop() {
	if p == nil {
		return
	}
	if p.halt != nil {
		p.halt()
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// waitReady polls check until it succeeds, the process exits or ctx ends.
func waitReady(ctx context.Context, p *proc, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var last error
	for {
		if err := p.exited(); err != nil {
			return err
		}
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			b, _ := os.ReadFile(p.log)
			return fmt.Errorf("%s not ready: %v\n%s", p.name, last, lastLines(string(b), 20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
