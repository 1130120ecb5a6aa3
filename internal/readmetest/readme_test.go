package readmetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// moduleRoot is where README.md and go.mod are, from this package.
const moduleRoot = "../.."

// commandTimeout bounds each README command.
const commandTimeout = 90 * time.Second

var (
	stackDirRE = regexp.MustCompile(`/tmp/fediops-stack-\d+`)
	addrRE     = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	// absolute paths the text names on a real host, re-rooted into the
	// section's directory
	hostPathRE = regexp.MustCompile(`(^|[\s=>"'])(/(?:etc|srv|var|run|home)/)`)
)

// TestReadme runs every `$ command` of README.md (see the package doc).
func TestReadme(t *testing.T) {
	text, err := os.ReadFile(filepath.Join(moduleRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	cmds := Parse(string(text))
	var serve *Command
	for i := range cmds {
		if strings.HasPrefix(cmds[i].Cmd, "demo -serve") {
			serve = &cmds[i]
		}
	}
	if serve == nil {
		t.Fatal("README.md shows no `$ demo -serve`: the stack the other commands run on")
	}
	bin := buildPrograms(t)

	st := startServe(t, bin, serve)
	defer st.stop(t)

	sandbox := t.TempDir()
	// The servers a command starts (demo) run as the postgres user when
	// the test runs as root, and their directories are under TMPDIR here.
	for _, d := range []string{filepath.Dir(sandbox), sandbox} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var sec *section
	for i, c := range cmds {
		if &cmds[i] == serve {
			continue
		}
		if sec == nil || sec.name != c.Section {
			if sec, err = newSection(sandbox, len(cmds[:i]), c.Section, bin, st); err != nil {
				t.Fatal(err)
			}
		}
		got, code, err := sec.run(c.Cmd)
		where := fmt.Sprintf("README.md:%d (%s): $ %s", c.Line, c.Section, c.Cmd)
		switch {
		case err != nil:
			t.Errorf("%s\n%v\n%s", where, err, got)
			continue
		case code != 0:
			t.Errorf("%s\nexit status %d (a failure the README shows ends with `; echo $?`); it printed:\n%s", where, code, got)
			continue
		}
		if ok, w, g := Match(c.Want, strings.Split(got, "\n")); !ok {
			t.Errorf("%s\nthe output's shape differs from the text at\n  README: %q\n  output: %q\nthe README shows:\n%s\nthe program printed:\n%s",
				where, w, g, strings.Join(c.Want, "\n"), got)
		}
	}
}

// buildPrograms builds every program under examples/ into one directory,
// as the README tells a user to.
func buildPrograms(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	cmd := exec.Command("go", "build", "-o", bin+"/", "./examples/...")
	cmd.Dir = moduleRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/...: %v\n%s", err, out)
	}
	return bin
}

// serving is `demo -serve` running.
type serving struct {
	cmd   *exec.Cmd
	dir   string            // the stack's directory
	vars  map[string]string // stack.env
	addrs []string          // what its table says it serves
	mu    sync.Mutex
	out   bytes.Buffer // everything it printed
	done  chan error
}

func (s *serving) printed() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// startServe runs the README's `demo -serve` line, waits until it serves
// and compares what it printed so far with the README.
func startServe(t *testing.T, bin string, c *Command) *serving {
	t.Helper()
	cmd := exec.Command("sh", "-c", "exec "+c.Cmd) // the signals go to the demo itself
	cmd.Env = []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LC_ALL=C"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &serving{cmd: cmd, done: make(chan error, 1)}
	cmd.Stderr = &lockedWriter{s}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	shell := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.out.WriteString(line + "\n")
			s.mu.Unlock()
			if f, ok := strings.CutPrefix(strings.TrimSpace(line), ". "); ok && strings.HasSuffix(strings.Fields(f)[0], "/stack.env") {
				shell <- strings.Fields(f)[0]
			}
		}
		s.done <- cmd.Wait()
	}()
	var file string
	select {
	case file = <-shell:
	case err := <-s.done:
		t.Fatalf("README.md:%d: $ %s ended before serving (%v):\n%s", c.Line, c.Cmd, err, s.printed())
	case <-time.After(4 * time.Minute):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("README.md:%d: $ %s: not serving after 4 minutes:\n%s", c.Line, c.Cmd, s.printed())
	}
	time.Sleep(500 * time.Millisecond) // the rest of the suggestions
	s.dir = filepath.Dir(file)
	var err2 error
	if s.vars, err2 = readExports(file); err2 != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatal(err2)
	}
	printed := s.printed()
	if i := strings.Index(printed, "\nstack "); i >= 0 {
		line, _, _ := strings.Cut(printed[i+1:], "\n")
		s.addrs = addrRE.FindAllString(line, -1)
	}
	if ok, w, g := Match(c.Want, strings.Split(printed, "\n")); !ok {
		t.Errorf("README.md:%d: $ %s\nthe output's shape differs from the text at\n  README: %q\n  output: %q\nthe program printed:\n%s",
			c.Line, c.Cmd, w, g, printed)
	}
	return s
}

// stop ends demo -serve with Ctrl-C's signal: it must exit 0, say that
// every server stopped, remove its directory and leave nothing listening.
func (s *serving) stop(t *testing.T) {
	t.Helper()
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGINT)
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("demo -serve after Ctrl-C: %v\n%s", err, s.printed())
		}
	case <-time.After(time.Minute):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		t.Errorf("demo -serve still running a minute after Ctrl-C")
		return
	}
	if !strings.Contains(s.printed(), "every server stopped") {
		t.Errorf("demo -serve did not say that every server stopped:\n%s", s.printed())
	}
	if _, err := os.Stat(s.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left after demo -serve stopped: %v", s.dir, err)
		os.RemoveAll(s.dir)
	}
	if len(s.addrs) < 9 {
		t.Errorf("the stack line names %d addresses: %v", len(s.addrs), s.addrs)
	}
	for _, a := range s.addrs {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after demo -serve stopped", a)
		}
	}
}

type lockedWriter struct{ s *serving }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.out.Write(p)
}

// readExports reads stack.env's `export NAME=value` lines (values plain or
// single-quoted).
func readExports(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		kv, ok := strings.CutPrefix(line, "export ")
		if !ok {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(v, "'") {
			v = strings.ReplaceAll(strings.Trim(v, "'"), `'\''`, "'")
		}
		vars[k] = v
	}
	for _, k := range []string{"STACK_DIR", "DIGITALOCEAN_TOKEN", "DIGITALOCEAN_API_URL"} {
		if vars[k] == "" {
			return nil, fmt.Errorf("%s sets no %s", path, k)
		}
	}
	return vars, nil
}

// section is the shell state of one README section: its directory, its
// environment and where the previous command left cd and export.
type section struct {
	name        string
	dir, root   string
	state, cwd  string // files the wrapper writes: export -p, pwd
	env         []string
	stackDir    string
	commandsRun int
}

func newSection(sandbox string, n int, name, bin string, st *serving) (*section, error) {
	dir := filepath.Join(sandbox, fmt.Sprintf("section-%02d", n))
	s := &section{name: name, dir: dir, root: filepath.Join(dir, "root"), stackDir: st.dir,
		state: filepath.Join(sandbox, fmt.Sprintf("state-%02d.sh", n)), cwd: filepath.Join(sandbox, fmt.Sprintf("cwd-%02d", n))}
	tunnelConf, err := os.ReadFile(filepath.Join(st.dir, "stunnel-redis.conf"))
	if err != nil {
		return nil, err
	}
	env := ".env.production"
	if strings.HasPrefix(name, "### provision") {
		env = "seed.env.production"
	}
	files := map[string]string{".env.production": env, "seed.env.production": "seed.env.production"}
	for dst, src := range files {
		b, err := os.ReadFile(filepath.Join(st.dir, src))
		if err != nil {
			return nil, err
		}
		if err := writeFile(filepath.Join(dir, dst), b, 0o600); err != nil {
			return nil, err
		}
		if dst == ".env.production" { // where Mastodon keeps it on a host
			if err := writeFile(filepath.Join(s.root, "home/mastodon/live", dst), b, 0o600); err != nil {
				return nil, err
			}
		}
	}
	// the stack's service with a CA file that does not exist (line 5) and
	// an option stunnel does not have (line 6)
	var port string
	for _, l := range strings.Split(string(tunnelConf), "\n") {
		if v, ok := strings.CutPrefix(l, "connect = "); ok {
			port = v
		}
	}
	broken := "[redis]\nclient = yes\naccept = 127.0.0.1:0\nconnect = " + port + "\nCAfile = /nonexistent.crt\nfoo = bar\n"
	for path, data := range map[string]string{
		filepath.Join(dir, "broken.conf"):                     broken,
		filepath.Join(s.root, "etc/stunnel/redis.conf"):       string(tunnelConf),
		filepath.Join(s.root, "etc/systemd/system/.keep"):     "",
		filepath.Join(s.root, "etc/fediops/backup.env"):       "",
		filepath.Join(sandbox, "tmp", fmt.Sprint(n), ".keep"): "",
	} {
		if err := writeFile(path, []byte(data), 0o644); err != nil {
			return nil, err
		}
	}
	// As after `. stack.env`: the DigitalOcean stand-in's token and URL,
	// the STACK_* addresses.
	s.env = []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "HOME=" + dir, "LC_ALL=C",
		"TMPDIR=" + filepath.Join(sandbox, "tmp", fmt.Sprint(n))}
	for k, v := range st.vars {
		s.env = append(s.env, k+"="+v)
	}
	if err := os.WriteFile(s.state, nil, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(s.cwd, []byte(dir+"\n"), 0o600); err != nil {
		return nil, err
	}
	return s, nil
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, mode)
}

// rewrite points a command at the section: the README's example stack
// directory at the running stack's, and host paths (/etc/...) into the
// section's root.
func (s *section) rewrite(cmd string) string {
	cmd = stackDirRE.ReplaceAllString(cmd, s.stackDir)
	return hostPathRE.ReplaceAllString(cmd, "${1}"+s.root+"${2}")
}

// run runs one command in the section's shell state and returns what it
// printed (stdout and stderr as a terminal interleaves them) and its exit
// status.
func (s *section) run(command string) (string, int, error) {
	cwd, err := os.ReadFile(s.cwd)
	if err != nil {
		return "", 0, err
	}
	script := fmt.Sprintf(". %s\ncd %s || exit 97\n%s\n__readme_rc=$?\nexport -p > %s.new && mv %s.new %s\npwd > %s\nexit $__readme_rc\n",
		shellQuote(s.state), shellQuote(strings.TrimSpace(string(cwd))), s.rewrite(command),
		shellQuote(s.state), shellQuote(s.state), shellQuote(s.state), shellQuote(s.cwd))
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	cmd.Env = s.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	s.commandsRun++
	got := strings.TrimRight(out.String(), "\n")
	if ctx.Err() != nil {
		return got, 0, fmt.Errorf("still running after %s", commandTimeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return got, ee.ExitCode(), nil
	}
	return got, 0, err
}

func shellQuote(v string) string { return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'" }
