package envfile

import (
	"bytes"
	"fmt"
	"os"
)

// Quote is how a value is written in the file.
type Quote int

const (
	NoQuote     Quote = iota // KEY=value
	SingleQuote              // KEY='value': literal for both readers
	DoubleQuote              // KEY="value"
)

func (q Quote) String() string {
	switch q {
	case SingleQuote:
		return "single-quoted"
	case DoubleQuote:
		return "double-quoted"
	}
	return "unquoted"
}

// Entry is one assignment in the file, as Ruby dotenv sees it.
//
// Its String and GoString methods redact secrets, so an Entry can be
// logged; its Value and NodeValue fields are not redacted.
type Entry struct {
	Key string

	// Value is what Rails and Sidekiq (Ruby dotenv) read from this line:
	// quotes removed, backslashes removed except in \$, $NAME and ${NAME}
	// expanded, \n in double quotes kept as the two characters \ and n
	// (dotenv 3; dotenv 2 makes it a line break). The output of each
	// $(command) is in it only when WithCommands runs the commands;
	// otherwise the command stands in its place as $(command) (see
	// Commands).
	Value string

	// NodeValue is what the streaming server (node dotenv 16.5) reads:
	// one pair of quotes removed, \n and \r in double quotes turned into
	// line breaks, nothing expanded, no backslash removed. It is "" when
	// node dotenv does not read this line as Key (see Lint).
	NodeValue string

	Raw    string // the value as written, quotes included, without surrounding spaces or comment
	Quote  Quote  // how Raw is quoted, as Ruby dotenv decides it
	Line   int    // 1-based line of the key
	Export bool   // written as "export KEY=..."

	// Commands are the shell commands whose output makes up Value: the
	// $(command) that Ruby dotenv runs for this line, in the order it runs
	// them and with $NAME expanded in them, then those behind the
	// variables the value expands (X=$(echo hi) and Y=$X: Y lists echo hi
	// too, its value is their output). This package runs them only with
	// WithCommands.
	//
	// The order matters. Ruby dotenv 3.2 runs the commands first and then
	// expands $NAME in the result, so a name can run into a command's
	// output: B=b and CMD=$B$(echo a) read the variable Ba, "" when unset
	// (without WithCommands, Value keeps such a $B as written). Dotenv 3.1
	// and 2.x expand $NAME first (CMD reads ba), so they also run a $(
	// that reaches the value through a variable: X='$(id)' and Y=$X run id
	// for Y. Dotenv 3 reads no line of a key that the environment sets, so
	// it runs none of its commands: Commands is then empty.
	Commands []string

	span span
	why  *detail
}

// String returns "KEY=value" with the value redacted as Redact does.
func (e Entry) String() string {
	return e.Key + "=" + Redact(e.Key, e.Value)
}

// GoString is like String, so that %#v does not print a secret either.
func (e Entry) GoString() string {
	return fmt.Sprintf("envfile.Entry{%s, line %d}", e.String(), e.Line)
}

// File is a parsed .env file. It keeps the original bytes: Set and Delete
// change only the lines they must, and Bytes, WriteFile and Save write
// everything else back unchanged. A File is not safe for concurrent use.
type File struct {
	name      string
	data      []byte
	entries   []Entry
	skipped   []skippedLine
	node      map[string]nodeMatchAt
	nodeSpans map[int]nodeMatch
	cfg       config
	scan      *scanner
}

// Option changes how Parse and Read work.
type Option func(*config)

type config struct {
	lookup func(string) (string, bool)
	dotenv Dotenv
	run    *commandRunner
}

// WithLookup sets the environment that $NAME expansion and "export KEY"
// checks consult, as Ruby dotenv consults ENV. The default is
// os.LookupEnv; nil means an empty environment. As in Ruby dotenv, a
// variable set in this environment wins over the file's own earlier line.
func WithLookup(lookup func(key string) (string, bool)) Option {
	return func(c *config) { c.lookup = lookup }
}

// WithDotenv sets the Ruby dotenv release whose rules to follow (see the
// package doc for how they differ) when the file has no Gemfile.lock
// beside it naming the dotenv gem (Read), or is not read from disk
// (Parse). The default is Dotenv32. A Gemfile.lock beside the file wins
// over this option: it names the release Rails runs.
func WithDotenv(d Dotenv) Option {
	return func(c *config) { c.dotenv = d }
}

// WithCommands runs the $(command) substitutions that Ruby dotenv runs,
// with run: it gets the command's text (its $NAME already expanded, as
// Ruby does) and returns what the command printed; Ruby runs it through
// /bin/sh -c and drops one final line break, as this package does with the
// output. Each distinct command runs once per File: Set and Delete reuse
// the outputs. A run error fails Parse with a *ParseError that wraps it.
// Without this option no command runs: Entry.Value keeps each $(command)
// as written and Entry.Commands lists them.
func WithCommands(run func(command string) (output string, err error)) Option {
	return func(c *config) {
		if run == nil {
			c.run = nil
			return
		}
		c.run = &commandRunner{fn: run, outputs: map[string]string{}}
	}
}

// commandRunner runs each distinct command once.
type commandRunner struct {
	fn      func(string) (string, error)
	outputs map[string]string
}

func (r *commandRunner) run(cmd string) (string, error) {
	if out, ok := r.outputs[cmd]; ok {
		return out, nil
	}
	out, err := r.fn(cmd)
	if err != nil {
		return "", err
	}
	r.outputs[cmd] = out
	return out, nil
}

// Parse reads data, the content of the file called name, the way Ruby
// dotenv reads .env.production for Rails and Sidekiq (release 3.2 unless
// WithDotenv says otherwise), and records how node dotenv reads each line
// for the streaming server.
//
// It returns a *ParseError where Ruby dotenv refuses the file: invalid
// UTF-8, or "export KEY" of a KEY that is not set (where and how each
// release checks it: see WithDotenv). Every line that Ruby dotenv reads,
// Parse reads the same way; Lint reports the lines it skips and the
// values that node dotenv reads differently.
func Parse(name string, data []byte, opts ...Option) (*File, error) {
	c := newConfig(opts)
	if c.dotenv == DotenvAuto {
		c.dotenv = Dotenv32
	}
	return parse(name, bytes.Clone(data), c)
}

func newConfig(opts []Option) config {
	c := config{lookup: os.LookupEnv}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// Read reads and parses the file at path; see Parse. It follows the Ruby
// dotenv release that the Gemfile.lock beside path names, if there is one
// (see WithDotenv).
func Read(path string, opts ...Option) (*File, error) {
	c := newConfig(opts)
	d, err := lockBeside(path)
	if err != nil {
		return nil, err
	}
	if d != DotenvAuto {
		c.dotenv = d
	}
	if c.dotenv == DotenvAuto {
		c.dotenv = Dotenv32
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(path, data, c)
}

// Dotenv returns the Ruby dotenv release whose rules the file was read by.
func (f *File) Dotenv() Dotenv { return f.cfg.dotenv }

// Name returns the name given to Parse or the path given to Read.
func (f *File) Name() string { return f.name }

// String describes the file without printing any value.
func (f *File) String() string {
	return fmt.Sprintf("envfile.File(%s, %d entries)", f.name, len(f.entries))
}

// GoString is like String.
func (f *File) GoString() string { return f.String() }

// Bytes returns a copy of the file's content.
func (f *File) Bytes() []byte { return bytes.Clone(f.data) }

// Entries returns every assignment in file order, duplicates included.
func (f *File) Entries() []Entry {
	out := make([]Entry, len(f.entries))
	copy(out, f.entries)
	return out
}

// Lookup returns the entry that gives key its value: the last one, as in
// both readers.
func (f *File) Lookup(key string) (Entry, bool) {
	if i := f.last(key); i >= 0 {
		return f.entries[i], true
	}
	return Entry{}, false
}

// Get returns the value Rails and Sidekiq read for key from this file. It
// has the signature of os.LookupEnv. Note that Ruby dotenv keeps a variable
// that is already set in the process environment (for example by a
// systemd Environment= line) instead of the file's value.
func (f *File) Get(key string) (string, bool) {
	if i := f.last(key); i >= 0 {
		return f.entries[i].Value, true
	}
	return "", false
}

// Map returns every key with the value Rails and Sidekiq read; see Get.
func (f *File) Map() map[string]string {
	m := make(map[string]string, len(f.entries))
	for _, e := range f.entries {
		m[e.Key] = e.Value
	}
	return m
}

func (f *File) last(key string) int {
	for i := len(f.entries) - 1; i >= 0; i-- {
		if f.entries[i].Key == key {
			return i
		}
	}
	return -1
}
