package command

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestExitCode(t *testing.T) {
	wrapped := fmt.Errorf("read .env: %w", Usagef("line %d", 3))
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, 0}, {flag.ErrHelp, 0}, {fmt.Errorf("parse: %w", flag.ErrHelp), 0},
		{errors.New("connection refused"), 1},
		{Usagef("-cluster is required"), 2}, {wrapped, 2}, {Usage(errors.New("x")), 2},
		{&StatusError{Status: 3, Err: errors.New("notify: 404")}, 3}, {fmt.Errorf("run: %w", &StatusError{Status: 3, Err: errors.New("x")}), 3},
	} {
		if got := ExitCode(c.err); got != c.want {
			t.Errorf("ExitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
	if Usage(nil) != nil {
		t.Error("Usage(nil) is not nil")
	}
	if u := Usagef("x"); Usage(u) != u {
		t.Error("Usage wraps a usage error twice")
	}
}

func TestCheckListen(t *testing.T) {
	for _, c := range []struct {
		addr   string
		unsafe bool
		want   string // "" for no error
	}{
		{"127.0.0.1:9102", false, ""}, {"localhost:9102", false, ""}, {"[::1]:9102", false, ""}, {"127.0.0.2:1", false, ""},
		{"0.0.0.0:9102", false, "not a loopback address"}, {":9102", false, "not a loopback address"},
		{"10.0.0.5:9102", false, "-unsafe-listen"}, {"0.0.0.0:9102", true, ""},
		{"127.0.0.1:99999", false, `port "99999" is not a number from 1 to 65535`}, {"127.0.0.1:0", false, "port"},
		{"0.0.0.0:99999", true, "port"}, {"127.0.0.1", false, "want host:port"},
	} {
		err := CheckListen(c.addr, c.unsafe)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || ExitCode(err) != 2) {
			t.Errorf("CheckListen(%q, %t) = %v, want %q", c.addr, c.unsafe, err, c.want)
		}
	}
}

func TestCheckCredentialURL(t *testing.T) {
	const token = "T0kSecret"
	for _, c := range []struct{ url, want string }{
		{"https://status.example/api/push/" + token, ""}, {"http://127.0.0.1:3001/api/push/" + token, ""}, {"http://localhost/x", ""},
		{"http://status.example/api/push/" + token, "must be https unless its host is loopback"},
		{"https://status.example:99999/api/push/" + token, "port"},
		{"ftp://status.example/" + token, "want https://host"}, {"status.example/" + token, "want https://host"},
		{"https://user:" + token + "@h.example/", ""},
		{"http://user:" + token + "@h.example/", "must be https"},
	} {
		err := CheckCredentialURL(c.url)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || ExitCode(err) != 2) {
			t.Errorf("CheckCredentialURL(%q) = %v, want %q", c.url, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), token) {
			t.Errorf("the error shows the token: %v", err)
		}
	}
	if err := CheckURL("http://127.0.0.1:99999"); ExitCode(err) != 2 {
		t.Errorf("CheckURL with port 99999: %v", err)
	}
}

func newProgram() (*Program, *bytes.Buffer, *bytes.Buffer) {
	var o, e bytes.Buffer
	return &Program{Name: "prog", Stdout: &o, Stderr: &e}, &o, &e
}

func TestParseAndHelp(t *testing.T) {
	h := Help{Usage: "prog sub [flags]", About: "Does a thing.", Env: []Var{{"PROG_TOKEN", "the token"}}, Exit: [3]string{1: "the thing failed"},
		More: []string{"done, but nobody was told"}}
	newFS := func() *flag.FlagSet {
		fs := flag.NewFlagSet("prog sub", flag.ContinueOnError)
		fs.Duration("timeout", 10e9, "how long to wait")
		return fs
	}
	p, out, errb := newProgram()
	err := p.Parse(newFS(), []string{"-h"}, h)
	if !errors.Is(err, flag.ErrHelp) || ExitCode(err) != 0 || errb.Len() != 0 {
		t.Fatalf("-h: %v, stderr %q", err, errb)
	}
	for _, want := range []string{"usage: prog sub [flags]\n\nDoes a thing.\n", "-timeout duration\n    \thow long to wait (default 10s)",
		"Environment:\n  PROG_TOKEN  the token\n", "Exit status:\n  0  done\n  1  the thing failed\n  2  a usage or configuration error", "\n  3  done, but nobody was told\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
	for args, want := range map[string]string{
		"-nope":           "flag provided but not defined: -nope (prog sub -h lists the flags)",
		"-timeout soon":   `invalid value "soon" for flag -timeout`,
		"-timeout 1s odd": `unexpected argument "odd" (prog sub takes flags only)`,
	} {
		p, out, errb := newProgram()
		err := p.Parse(newFS(), strings.Fields(args), h)
		if ExitCode(err) != 2 || !strings.Contains(err.Error(), want) || out.Len()+errb.Len() != 0 {
			t.Errorf("%s: %v (stdout %q, stderr %q), want %q", args, err, out, errb, want)
		}
	}
	p, _, errb = newProgram()
	if code := p.Exit(Usagef("-cluster is required")); code != 2 || errb.String() != "prog: -cluster is required\n" {
		t.Errorf("Exit: %d %q", code, errb)
	}
}

func TestDispatch(t *testing.T) {
	var ran []string
	cmd := func(name string) Command {
		return Command{Name: name, Summary: "the " + name + " command", Run: func(_ context.Context, _ *Program, args []string) error {
			ran = append(ran, name+":"+strings.Join(args, " "))
			return nil
		}}
	}
	p, out, _ := newProgram()
	cmds := []Command{cmd("web"), cmd("sidekiq")}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"web", "-vcpu", "2"}, 0, "web:-vcpu 2"},
		{[]string{"sidekiq"}, 0, "sidekiq:"},
		{nil, 2, "no command: want one of sidekiq, web"},
		{[]string{"-vcpu"}, 2, `unknown command "-vcpu"`},
		{[]string{"webb"}, 2, `unknown command "webb": want one of sidekiq, web (prog -h)`},
	} {
		ran = nil
		err := p.Dispatch(context.Background(), "prog plans.", cmds, c.args)
		if ExitCode(err) != c.code || c.code == 0 && strings.Join(ran, ",") != c.want || c.code != 0 && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, ran %q; want %d %q", c.args, err, ran, c.code, c.want)
		}
	}
	if err := p.Dispatch(context.Background(), "prog plans.", cmds, []string{"help"}); !errors.Is(err, flag.ErrHelp) ||
		!strings.Contains(out.String(), "  sidekiq      the sidekiq command\n") {
		t.Errorf("help: %v\n%s", err, out)
	}
	// A default command takes the flags.
	ran = nil
	if err := p.Dispatch(context.Background(), "", append(cmds, cmd("")), []string{"-cluster", "x"}); err != nil || ran[0] != ":-cluster x" {
		t.Errorf("default: %v %q", err, ran)
	}
}

func TestReadEnv(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".env.production")
	if err := os.WriteFile(path, []byte("DB_PASS=Ourpassw0rd!sNoneofyourbu$iness\nDB_USER=u\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, out, errb := newProgram()
	env, findings, err := p.ReadEnv(path)
	if err != nil || len(findings) != 1 || env.Get("DB_USER") != "u" {
		t.Fatalf("%v %v", err, findings)
	}
	if !strings.HasPrefix(errb.String(), "prog: warning: "+path+":1: DB_PASS: ") || strings.Count(errb.String(), "\n") != 1 || out.Len() != 0 ||
		strings.Contains(errb.String(), "Ourpassw0rd") || strings.Contains(errb.String(), "iness") {
		t.Errorf("warnings: %q", errb)
	}
	if _, _, err := p.ReadEnv(filepath.Join(dir, "missing")); ExitCode(err) != 2 {
		t.Errorf("missing file: %v", err)
	}
}

func TestLogger(t *testing.T) {
	defer slog.SetDefault(slog.Default())
	for _, c := range []struct {
		terminal, verbose, service bool
		want                       []string
	}{
		{false, false, false, []string{"WARN"}},
		{true, false, false, []string{"INFO", "WARN"}},
		{false, false, true, []string{"INFO", "WARN"}},
		{false, true, false, []string{"DEBUG", "INFO", "WARN", "go-redis"}},
	} {
		p, _, errb := newProgram()
		p.Terminal = c.terminal
		log := p.Logger(c.verbose)
		if c.service {
			log = p.ServiceLogger(c.verbose)
		}
		log.Debug("d")
		log.Info("i")
		slog.Warn("w") // the default logger is the program's
		redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1}).Ping(context.Background())
		var got []string
		for _, level := range []string{"DEBUG", "INFO", "WARN", "go-redis"} {
			if strings.Contains(errb.String(), level) {
				got = append(got, level)
			}
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("terminal %t verbose %t service %t: %q, want %q:\n%s", c.terminal, c.verbose, c.service, got, c.want, errb)
		}
	}
}
