package fediops

import (
	"fmt"
	"os"

	"github.com/fediops/fediops/internal/envfile"
)

// Lookup returns the value of one of Mastodon's settings and whether it is
// set, with the signature of os.LookupEnv. (*Env).Lookup is the one every
// program passes to the packages' ...FromEnv functions; os.LookupEnv and
// MapLookup(m) are others.
type Lookup func(key string) (string, bool)

// MapLookup returns a Lookup over m, for tests and for settings that are
// already in hand.
func MapLookup(m map[string]string) Lookup {
	return func(key string) (string, bool) { v, ok := m[key]; return v, ok }
}

// Env is Mastodon's settings as Rails and Sidekiq see them: the process
// environment first (a systemd Environment= line wins, as Ruby dotenv keeps
// what ENV already holds), then .env.production read with Ruby dotenv's
// rules. Read it once with ReadEnv, report Lint's findings, and hand Lookup
// to the packages.
type Env struct {
	file    *envfile.File // nil: the environment only
	environ Lookup        // nil: none
}

// EnvOption changes how ReadEnv and ParseEnv read.
type EnvOption func(*envOptions)

type envOptions struct {
	environ Lookup
	dotenv  string
}

// WithEnviron sets the process environment that wins over the file and
// that $NAME expansion consults, as Ruby dotenv consults ENV. The default
// is os.LookupEnv; nil means an empty environment (the file alone), which
// tests and tools reading another host's file want.
func WithEnviron(environ Lookup) EnvOption {
	return func(o *envOptions) { o.environ = environ }
}

// WithDotenv names the Ruby dotenv release whose reading rules to follow,
// such as "3.2" (the default; Mastodon 4.3 and later) or "2.8" (Mastodon 4.2
// and earlier), for a file with no Gemfile.lock beside it: a Mastodon
// checkout's Gemfile.lock names the release Rails runs, and it wins.
func WithDotenv(release string) EnvOption {
	return func(o *envOptions) { o.dotenv = release }
}

func newEnvOptions(opts []EnvOption) envOptions {
	o := envOptions{environ: os.LookupEnv}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

func (o envOptions) envfile() ([]envfile.Option, error) {
	opts := []envfile.Option{envfile.WithLookup(o.environ)}
	if o.dotenv != "" {
		d, err := envfile.DotenvVersion(o.dotenv)
		if err != nil {
			return nil, err
		}
		opts = append(opts, envfile.WithDotenv(d))
	}
	return opts, nil
}

// ReadEnv reads the .env.production file at path the way Rails reads it,
// following the Ruby dotenv release that the Gemfile.lock beside it names
// (see WithDotenv). An empty path reads no file: the environment alone. A
// line Ruby dotenv refuses is an error of the form "path:line: reason",
// which never holds a value; lines it skips or that the streaming server
// reads differently are Lint's findings. No $(command) in the file is run:
// Lint names each one.
func ReadEnv(path string, opts ...EnvOption) (*Env, error) {
	o := newEnvOptions(opts)
	if path == "" {
		return &Env{environ: o.environ}, nil
	}
	eo, err := o.envfile()
	if err != nil {
		return nil, err
	}
	f, err := envfile.Read(path, eo...)
	if err != nil {
		return nil, err
	}
	return &Env{file: f, environ: o.environ}, nil
}

// ParseEnv is ReadEnv for content already in memory; name is used in
// errors and findings.
func ParseEnv(name string, data []byte, opts ...EnvOption) (*Env, error) {
	o := newEnvOptions(opts)
	eo, err := o.envfile()
	if err != nil {
		return nil, err
	}
	f, err := envfile.Parse(name, data, eo...)
	if err != nil {
		return nil, err
	}
	return &Env{file: f, environ: o.environ}, nil
}

// Lookup returns what Rails reads for key: the process environment's value
// when it has one, else the file's.
func (e *Env) Lookup(key string) (string, bool) {
	if e.environ != nil {
		if v, ok := e.environ(key); ok {
			return v, true
		}
	}
	if e.file != nil {
		return e.file.Get(key)
	}
	return "", false
}

// Get is Lookup without the second result.
func (e *Env) Get(key string) string {
	v, _ := e.Lookup(key)
	return v
}

// FileValue returns the value the file itself gives key, ignoring the
// environment: what a rewrite of the file starts from.
func (e *Env) FileValue(key string) (string, bool) {
	if e.file == nil {
		return "", false
	}
	return e.file.Get(key)
}

// Path is the file's path, "" when only the environment is read.
func (e *Env) Path() string {
	if e.file == nil {
		return ""
	}
	return e.file.Name()
}

// Dotenv is the Ruby dotenv release whose rules the file was read with,
// such as "3.2"; "" when only the environment is read.
func (e *Env) Dotenv() string {
	if e.file == nil {
		return ""
	}
	return e.file.Dotenv().String()
}

// String names the file without printing any value.
func (e *Env) String() string {
	if e.file == nil {
		return "the process environment"
	}
	return e.file.Name()
}

// Finding is a value that Rails and Sidekiq (Ruby dotenv) and the
// streaming server (node dotenv) read differently, or that Ruby dotenv
// changes by expansion or a shell command: File, Line, Key, Problem and
// Fix. Neither Problem nor Fix holds a secret's value.
type Finding = envfile.Finding

// Setting is a key and the value Set gives it.
type Setting = envfile.Setting

// Change is one key that Set changed: Key, Value, and Was when Had. Its
// String method redacts secrets.
type Change = envfile.Change

// Lint returns, in line order, every value of the file that Rails and the
// streaming server read differently, each with its fix (nil when only the
// environment is read). The seed's DB_PASS=Ourpassw0rd!sNoneofyourbu$iness
// is one: Rails reads it cut at the '$', the streaming server as written;
// only single quotes read the same in both.
func (e *Env) Lint() []Finding {
	if e.file == nil {
		return nil
	}
	return envfile.Lint(e.file)
}

// Set gives each key its value in the file, written so that Rails, Sidekiq
// and the streaming server all read exactly that value, keeping every other
// byte; keys that already read so are skipped. It is all or nothing and
// changes only memory: Save writes the file. An Env without a file cannot
// be set.
func (e *Env) Set(settings ...Setting) ([]Change, error) {
	if e.file == nil {
		return nil, fmt.Errorf("set %d setting(s): no file was read, only the environment", len(settings))
	}
	return e.file.SetAll(settings...)
}

// AsWritten returns the setting that rewrites key so that Rails reads the
// text the streaming server reads today (for the seed's DB_PASS, the whole
// password instead of the part before '$'), single-quoted where that is
// what both read alike. ok is false when key is not in the file or both
// already read it alike.
func (e *Env) AsWritten(key string) (s Setting, ok bool) {
	if e.file == nil {
		return Setting{}, false
	}
	ent, found := e.file.Lookup(key)
	if !found || ent.Value == ent.NodeValue {
		return Setting{}, false
	}
	return Setting{Key: key, Value: ent.NodeValue}, true
}

// Save writes the file back atomically (a temporary file renamed over it,
// keeping its mode and owner), so that no reader ever sees half of it.
func (e *Env) Save() error {
	if e.file == nil {
		return fmt.Errorf("save: no file was read, only the environment")
	}
	return e.file.Save()
}

// Redacted returns the file's content for printing, every secret value
// replaced by "[redacted]".
func (e *Env) Redacted() []byte {
	if e.file == nil {
		return nil
	}
	return e.file.Redacted()
}

// IsSecret reports whether the value of key must never be printed (keys
// holding PASS, SECRET, KEY, TOKEN, PRIVATE, CREDENTIAL, SALT or WEBHOOK:
// SLACK_WEBHOOK_URL is its own credential).
func IsSecret(key string) bool { return envfile.IsSecret(key) }

// Redact returns value ready to print: "[redacted]" for a secret key, else
// value with any URL password replaced.
func Redact(key, value string) string { return envfile.Redact(key, value) }

// ParseError is a line of the file that Ruby dotenv refuses: File, Line
// and Reason, never a value. ReadEnv returns it.
type ParseError = envfile.ParseError
