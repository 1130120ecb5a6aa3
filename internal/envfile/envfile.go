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

	// Value is what Rails and Sidekiq (Ruby dotenv) read: quotes removed,
	// backslashes removed except in \$, $NAME and ${NAME} expanded, \n in
	// double quotes kept as the two characters \ and n. A $(command) is
	// left as written, where Ruby dotenv would put the command's output.
	Value string

	// NodeValue is what the streaming server (node dotenv 16.5) reads:
	// one pair of quotes removed, \n and \r in double quotes turned into
	// line breaks, nothing expanded, no backslash removed. It is "" when
	// node dotenv does not read this line as Key (see Lint).
	NodeValue string

	Raw      string   // the value as written, quotes included, without surrounding spaces or comment
	Quote    Quote    // how Raw is quoted, as Ruby dotenv decides it
	Line     int      // 1-based line of the key
	Export   bool     // written as "export KEY=..."
	Commands []string // the commands of $(command) substitutions, which Ruby dotenv runs and this package does not

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
	name    string
	data    []byte
	entries []Entry
	node    map[string]nodeMatchAt
	lookup  func(string) (string, bool)
	scan    *scanner
}

// Option changes how Parse and Read work.
type Option func(*config)

type config struct {
	lookup func(string) (string, bool)
}

// WithLookup sets the environment that $NAME expansion and "export KEY"
// checks consult, as Ruby dotenv consults ENV. The default is
// os.LookupEnv; nil means an empty environment. As in Ruby dotenv, a
// variable set in this environment wins over the file's own earlier line.
func WithLookup(lookup func(key string) (string, bool)) Option {
	return func(c *config) { c.lookup = lookup }
}

// Parse reads data, the content of the file called name, the way Ruby
// dotenv 3.1/3.2 reads .env.production for Rails and Sidekiq, and records
// how node dotenv reads each line for the streaming server.
//
// It returns a *ParseError for a line that Ruby dotenv would refuse or
// silently skip or misread: a line that is not KEY=value or a comment, an
// invalid key, an unterminated quote, text after a closing quote,
// "export KEY" of an unset KEY, or invalid UTF-8.
func Parse(name string, data []byte, opts ...Option) (*File, error) {
	c := config{lookup: os.LookupEnv}
	for _, o := range opts {
		o(&c)
	}
	return parse(name, bytes.Clone(data), c.lookup)
}

// Read reads and parses the file at path; see Parse.
func Read(path string, opts ...Option) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("envfile: %w", err)
	}
	return Parse(path, data, opts...)
}

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
