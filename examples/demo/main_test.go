package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
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

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/command"
)

// demoBin builds the demo once per test binary, as a user would run it.
var demoBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "fediops-demo-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "demo")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := demoBin(); err == nil {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

func build(t *testing.T) string {
	t.Helper()
	bin, err := demoBin()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

var addrRE = regexp.MustCompile(`127\.0\.0\.1:\d+`)

// refused waits up to 10 s for every address to refuse connections and
// returns the ones still accepting.
func refused(addrs []string) []string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var open []string
		for _, a := range addrs {
			if c, err := net.DialTimeout("tcp", a, 200*time.Millisecond); err == nil {
				c.Close()
				open = append(open, a)
			}
		}
		if len(open) == 0 || time.Now().After(deadline) {
			return open
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// processesIn lists the processes whose command line names dir: the
// servers the stack started there.
func processesIn(dir string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(dir)) {
			out = append(out, filepath.Base(filepath.Dir(p))+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

// TestDemo runs the demo as built: every step passes, the table lists them
// in order with their numbers, nothing printed holds a secret of the
// .env.production it wrote, and when it exits no server it started still
// listens.
func TestDemo(t *testing.T) {
	bin := build(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-keep", "-media", "120")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("demo: %v\n%s\n%s", err, out.String(), errb.String())
	}
	printed := out.String()
	t.Logf("\n%s", printed)
	kept := regexp.MustCompile(`kept (/\S+) \(logs`).FindStringSubmatch(printed)
	if kept == nil {
		t.Fatalf("no kept directory named")
	}
	dir := kept[1]
	t.Cleanup(func() { os.RemoveAll(dir) })

	table := printed[strings.Index(printed, "\nSTEP ")+1:]
	lines := strings.Split(table, "\n")
	for i, name := range Steps {
		if !strings.HasPrefix(lines[i+1], name+" ") || !strings.Contains(lines[i+1], " ok ") {
			t.Errorf("table line %d = %q, want step %s ok", i+1, lines[i+1], name)
		}
	}
	if !strings.Contains(table, "all steps passed") {
		t.Errorf("no verdict in the table")
	}
	// The numbers say what happened, not just that it did.
	for name, want := range map[string]string{
		StepHealth:  "6 checks green",
		StepBackup:  "3 backups listed",
		StepRestore: "statuses 4000=4000",
		StepMirror:  "120 copied",
		StepMirror2: "0 copied",
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` +ok .*` + regexp.QuoteMeta(want)).MatchString(table) {
			t.Errorf("%s: the table lacks %q", name, want)
		}
	}

	// The .env was written for the stack and reads back cleanly.
	envFile := filepath.Join(dir, ".env.production")
	env, err := fediops.ReadEnv(envFile, fediops.WithEnviron(nil))
	if err != nil {
		t.Fatal(err)
	}
	if v := env.Get("PREPARED_STATEMENTS"); v != "false" {
		t.Errorf("PREPARED_STATEMENTS = %q", v)
	}
	if fi, err := os.Stat(envFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("env file mode: %v %v", fi.Mode(), err)
	}
	// No secret value of the .env reaches the output.
	raw, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	secrets := 0
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, "=")
		v = strings.Trim(v, `'"`)
		if ok && fediops.IsSecret(k) && len(v) >= 6 {
			secrets++
			if strings.Contains(printed+errb.String(), v) {
				t.Errorf("the output holds the value of %s", k)
			}
		}
	}
	if secrets < 4 {
		t.Errorf("only %d secrets in %s", secrets, envFile)
	}
	if !strings.Contains(printed, "DB_PASS="+fediops.Redact("DB_PASS", "x")) {
		t.Errorf("the redacted .env is not printed")
	}
	// Everything the stack served is closed now.
	stackLine := lines[1]
	addrs := addrRE.FindAllString(stackLine, -1)
	if len(addrs) < 9 {
		t.Errorf("the stack line names %d addresses: %s", len(addrs), stackLine)
	}
	if open := refused(addrs); len(open) > 0 {
		t.Errorf("still accepting connections after the demo exited: %v", open)
	}
	if ps := processesIn(dir); len(ps) > 0 {
		t.Errorf("processes left running:\n%s", strings.Join(ps, "\n"))
	}
}

// TestServeKilled: a `demo -serve` that is killed (SIGKILL, no chance to
// clean up) leaves no server behind, and while it serves, stack.env names
// a stack that answers.
func TestServeKilled(t *testing.T) {
	bin := build(t)
	cmd := exec.Command(bin, "-serve", "-mysql=false", "-media", "20", "-statuses", "200")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var printed strings.Builder
	shell := ""
	serving := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			printed.WriteString(line + "\n")
			if f, ok := strings.CutPrefix(strings.TrimSpace(line), ". "); ok && strings.HasSuffix(strings.Fields(f)[0], "stack.env") {
				shell = strings.Fields(f)[0]
				serving <- nil
				io.Copy(io.Discard, stdout)
				return
			}
		}
		serving <- fmt.Errorf("demo -serve ended before serving:\n%s\n%s", printed.String(), errb.String())
	}()
	select {
	case err := <-serving:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("not serving after 3 minutes:\n%s", printed.String())
	}
	dir := filepath.Dir(shell)
	t.Cleanup(func() { os.RemoveAll(dir) })
	exports, err := os.ReadFile(shell)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"export STACK_DIR=" + dir, "export DIGITALOCEAN_API_URL=http://127.0.0.1:", "export STACK_SPACES_KEY=media_attachments/"} {
		if !strings.Contains(string(exports), want) {
			t.Errorf("stack.env lacks %q:\n%s", want, exports)
		}
	}
	addrs := addrRE.FindAllString(printed.String(), -1)
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, time.Second)
		if err != nil {
			t.Fatalf("%s named but not served: %v", a, err)
		}
		c.Close()
	}
	if len(processesIn(dir)) < 2 { // postgres, pgbouncer (redis-server rewrites its command line)
		t.Fatalf("servers not found: %v", processesIn(dir))
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if open := refused(addrs); len(open) > 0 {
		t.Errorf("still accepting connections after demo -serve was killed: %v", open)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(processesIn(dir)) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if ps := processesIn(dir); len(ps) > 0 {
		t.Errorf("processes left running after demo -serve was killed:\n%s", strings.Join(ps, "\n"))
	}
}

// TestUsage: bad usage exits 2 before anything starts, with one line on
// stderr; -h prints the help on stdout and exits 0.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string // in stdout
		says string // the whole of stderr
	}{
		{[]string{"-h"}, 0, "\nExit status:\n  0  every step passed", ""},
		{[]string{"-nope"}, 2, "", "demo: flag provided but not defined: -nope (demo -h lists the flags)\n"},
		{[]string{"serve"}, 2, "", "demo: unexpected argument \"serve\" (demo takes flags only)\n"},
		{[]string{"-media", "0"}, 2, "", "demo: -media must be at least 1\n"},
		{[]string{"-statuses", "-3"}, 2, "", "demo: -statuses must be at least 1\n"},
	} {
		var out, errb bytes.Buffer
		p := &command.Program{Name: "demo", Stdout: &out, Stderr: &errb}
		code := p.Exit(run(context.Background(), p, tc.args))
		if code != tc.code || errb.String() != tc.says || !strings.Contains(out.String(), tc.out) || (tc.out == "" && out.Len() > 0) {
			t.Errorf("demo %v: exit %d, want %d\nstdout: %s\nstderr: %q, want %q", tc.args, code, tc.code, out.String(), errb.String(), tc.says)
		}
	}
}
