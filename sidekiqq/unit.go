package sidekiqq

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/fediops/fediops/systemd"
)

// UnitOptions are the host-specific parts of a unit and a command line.
// Zero values mean the defaults of Mastodon's dist/mastodon-sidekiq.service.
type UnitOptions struct {
	User             string // default "mastodon"
	WorkingDirectory string // default "/home/mastodon/live"
	Bundle           string // default "/home/mastodon/.rbenv/shims/bundle"
	RailsEnv         string // default "production"
	MallocArenaMax   int    // default 2
	// LDPreload is the allocator to preload; default "libjemalloc.so".
	// "-" leaves LD_PRELOAD out (Ruby built with jemalloc needs none).
	LDPreload  string
	TimeoutSec int // default 15
}

func (o UnitOptions) withDefaults() UnitOptions {
	str := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	str(&o.User, "mastodon")
	str(&o.WorkingDirectory, "/home/mastodon/live")
	str(&o.Bundle, "/home/mastodon/.rbenv/shims/bundle")
	str(&o.RailsEnv, "production")
	str(&o.LDPreload, "libjemalloc.so")
	if o.MallocArenaMax == 0 {
		o.MallocArenaMax = 2
	}
	if o.TimeoutSec == 0 {
		o.TimeoutSec = 15
	}
	return o
}

// Command is how a process is started: in Dir, with Env added, running Args.
type Command struct {
	Dir  string   `json:"dir"`
	Env  []string `json:"env"`
	Args []string `json:"args"`
}

// String is the command as one shell line:
// cd DIR && ENV=... bundle exec sidekiq -c N -q queue,weight ...
func (c Command) String() string {
	var b strings.Builder
	b.WriteString("cd " + shellQuote(c.Dir) + " &&")
	for _, e := range c.Env {
		b.WriteString(" " + shellQuote(e))
	}
	for _, a := range c.Args {
		b.WriteString(" " + shellQuote(a))
	}
	return b.String()
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=,:@%+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Command is the process's command: Mastodon's environment (RAILS_ENV,
// DB_POOL = threads, MALLOC_ARENA_MAX, LD_PRELOAD) and
// `bundle exec sidekiq -c N -q name,weight ...`. Sidekiq reads the rest of
// its settings from .env.production in the working directory.
func (p Process) Command(opts UnitOptions) Command {
	o := opts.withDefaults()
	env := []string{
		"RAILS_ENV=" + o.RailsEnv,
		"DB_POOL=" + strconv.Itoa(p.DBPool()),
		"MALLOC_ARENA_MAX=" + strconv.Itoa(o.MallocArenaMax),
	}
	if o.LDPreload != "-" {
		env = append(env, "LD_PRELOAD="+o.LDPreload)
	}
	args := []string{o.Bundle, "exec", "sidekiq", "-c", strconv.Itoa(p.Threads)}
	for _, q := range p.Queues {
		args = append(args, "-q", q.Arg())
	}
	return Command{Dir: o.WorkingDirectory, Env: env, Args: args}
}

// Unit is a systemd unit file for one process on one node.
type Unit struct {
	Node    string `json:"node"`
	Name    string `json:"name"` // file name, e.g. mastodon-sidekiq-2.service
	Content string `json:"content"`
}

// SystemdUnit renders the process's systemd unit in the shape of Mastodon's
// dist/mastodon-sidekiq.service: User, WorkingDirectory, one Environment
// line per variable, ExecStart with -c and -q, TimeoutSec, Restart=always.
// There is no EnvironmentFile: the app reads .env.production itself.
func (p Process) SystemdUnit(opts UnitOptions) Unit {
	o := opts.withDefaults()
	cmd := p.Command(o)
	names := make([]string, len(p.Queues))
	for i, q := range p.Queues {
		names[i] = q.Name
	}
	content := systemd.Service{
		Description:      fmt.Sprintf("mastodon-sidekiq on %s: %s", p.Node, strings.Join(names, ", ")),
		User:             o.User,
		WorkingDirectory: o.WorkingDirectory,
		Environment:      cmd.Env,
		ExecStart:        cmd.Args,
		TimeoutSec:       o.TimeoutSec,
		Restart:          "always",
	}.Render()
	return Unit{Node: p.Node, Name: p.Unit, Content: content}
}

// Units renders every process's unit, in layout order.
func (l Layout) Units(opts UnitOptions) []Unit {
	out := make([]Unit, len(l.Processes))
	for i, p := range l.Processes {
		out[i] = p.SystemdUnit(opts)
	}
	return out
}

// Commands returns every process's command, in layout order.
func (l Layout) Commands(opts UnitOptions) []Command {
	out := make([]Command, len(l.Processes))
	for i, p := range l.Processes {
		out[i] = p.Command(opts)
	}
	return out
}

// WriteText writes the layout for a person: its Notes as "# note:" lines,
// then per process a header naming the node, unit and connections, the
// command line, then the unit file.
func (l Layout) WriteText(w io.Writer, opts UnitOptions) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "# Mastodon %s: %d Sidekiq processes on %d nodes, %d database connections (DB_POOL total)\n",
		l.Mastodon, len(l.Processes), len(l.Nodes), l.Connections())
	for _, n := range l.Notes() {
		fmt.Fprintf(ew, "# note: %s\n", n)
	}
	for _, p := range l.Processes {
		u := p.SystemdUnit(opts)
		fmt.Fprintf(ew, "\n## %s: /etc/systemd/system/%s (threads %d, DB_POOL %d)\n# command line:\n# %s\n%s",
			p.Node, u.Name, p.Threads, p.DBPool(), p.Command(opts), u.Content)
	}
	return ew.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
