package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/b2store"
	"github.com/fediops/fediops/backup/metricsnotify"
	"github.com/fediops/fediops/backup/slacknotify"
	"github.com/fediops/fediops/command"
)

// The settings the commands' help names, grouped as the commands read them.
var (
	envB2 = []command.Var{
		{Name: "B2_APPLICATION_KEY_ID, B2_APPLICATION_KEY", About: "the B2 application key (required; the key is never printed)"},
		{Name: "B2_BUCKET", About: "the bucket (required)"},
		{Name: "B2_API_BASE", About: "another B2 API, e.g. a stand-in; https unless loopback (-b2-api wins)"},
		{Name: "B2_RETRY_FOR", About: "how long one B2 call may take while B2 gives no usable answer, retries included (default 2m); a refused connection or a host name that does not resolve ends it at once"},
		{Name: "B2_CHUNK_SIZE, B2_CONCURRENT_UPLOADS", About: "part size in bytes (default and minimum 5000000) and parts in flight (default 1): memory is about their product"},
	}
	envPostgres = command.Var{Name: "DB_*, DATABASE_URL, FEDIOPS_DB_*",
		About: "PostgreSQL's direct connection (DO's port 25060), read through pgpool: DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASS, DB_SSLMODE; when they name the pool, FEDIOPS_DB_DIRECT_NAME (and FEDIOPS_DB_DIRECT_PORT, FEDIOPS_DB_DIRECT_HOST); FEDIOPS_DB_CA_FILE or NODE_EXTRA_CA_CERTS: the CA, verified with verify-full"}
	envRedis = command.Var{Name: "REDIS_URL, REDIS_HOST, REDIS_PORT, REDIS_USER, REDIS_PASSWORD", About: "Redis (TLS: rediss:// or REDIS_DRIVER)"}
	envMySQL = command.Var{Name: "MYSQL_HOST, MYSQL_PORT, MYSQL_USER, MYSQL_PASSWORD, MYSQL_DATABASE", About: "MySQL or MariaDB (the -mysql-* flags win)"}
	envAge   = command.Var{Name: "BACKUP_AGE_RECIPIENTS", About: "age public keys (age1...) to encrypt to, comma- or space-separated, besides -recipient; a private key is refused and never printed"}
	envNote  = []command.Var{
		{Name: "SLACK_WEBHOOK_URL", About: "Slack incoming webhook for one message per run, failures included (a secret: never printed; https unless loopback)"},
		{Name: "FEDIOPS_METRICS_DIR", About: "node_exporter textfile directory for the run's metrics"},
		{Name: "FEDIOPS_PUSHGATEWAY_URL", About: "Pushgateway for the run's metrics"},
	}
)

func vars(groups ...any) []command.Var {
	var out []command.Var
	for _, g := range groups {
		switch v := g.(type) {
		case command.Var:
			out = append(out, v)
		case []command.Var:
			out = append(out, v...)
		}
	}
	return out
}

// common are the flags of every command that reads Mastodon's settings.
type common struct {
	envFile string
	b2API   string
	verbose bool
}

func (c *common) register(fs *flag.FlagSet, b2 bool) {
	fs.StringVar(&c.envFile, "env", ".env.production", "Mastodon's settings `file`, read as Rails reads it, the process environment winning (\"\": the environment alone)")
	if b2 {
		fs.StringVar(&c.b2API, "b2-api", "", "B2 API base `URL`, https unless loopback (default B2_API_BASE, else Backblaze's)")
	}
	fs.BoolVar(&c.verbose, "v", false, "debug logging")
}

// session is one command's settings and output.
type session struct {
	p      *command.Program
	log    *slog.Logger
	con    *console // nil without a terminal: no progress
	lookup fediops.Lookup
}

// open reads -env (its lint findings printed as warnings) and sets up the
// log. A file that cannot be read is a usage error; the session then
// reads the process environment alone, so that run and mirror can still
// report the failure (SLACK_WEBHOOK_URL in the unit's EnvironmentFile).
func (c *common) open(p *command.Program) (*session, error) {
	s := &session{p: p}
	if p.Terminal {
		s.con = &console{w: p.Stderr}
		p.Stderr = s.con // log lines and errors go above a progress bar
	}
	s.log = p.Logger(c.verbose)
	env, _, err := p.ReadEnv(c.envFile)
	if err != nil {
		procEnv, _ := fediops.ReadEnv("")
		s.lookup = c.override(procEnv)
		return s, err
	}
	s.lookup = c.override(env)
	return s, nil
}

// override is env's Lookup with -b2-api in place of B2_API_BASE.
func (c *common) override(env *fediops.Env) fediops.Lookup {
	return func(k string) (string, bool) {
		if k == "B2_API_BASE" && c.b2API != "" {
			return c.b2API, true
		}
		if env == nil {
			return os.LookupEnv(k)
		}
		return env.Lookup(k)
	}
}

func (s *session) get(k string) string { v, _ := s.lookup(k); return v }

// b2Config is the B2 settings, checked: a usage error names the setting.
func (s *session) b2Config(lookup fediops.Lookup) (b2store.Config, error) {
	if lookup == nil {
		lookup = s.lookup
	}
	cfg, err := b2store.ConfigFromEnv(lookup)
	if err != nil {
		return cfg, command.Usage(err)
	}
	cfg.Logger = s.log
	return cfg, nil
}

// openBucket opens the bucket of the B2 settings (list, prune: nothing
// else to check before the network).
func (s *session) openBucket(ctx context.Context) (*b2store.Store, error) {
	cfg, err := s.b2Config(nil)
	if err != nil {
		return nil, err
	}
	return openStore(ctx, cfg)
}

// openStore opens the bucket; the error names it.
func openStore(ctx context.Context, cfg b2store.Config) (*b2store.Store, error) {
	st, err := b2store.Open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open B2 bucket %s: %w", cfg.Bucket, err)
	}
	return st, nil
}

// notifiers are Slack's (SLACK_WEBHOOK_URL; nil without it) and the
// metrics' (FEDIOPS_METRICS_DIR, FEDIOPS_PUSHGATEWAY_URL). A webhook that
// would travel in clear is a usage error, and then only the metrics
// notify.
func (s *session) notifiers() (*slacknotify.Notifier, metricsnotify.Notifier, error) {
	metrics := metricsnotify.NotifierFromEnv(s.lookup)
	hook := s.get("SLACK_WEBHOOK_URL")
	if hook == "" {
		return nil, metrics, nil
	}
	if err := command.CheckCredentialURL(hook); err != nil {
		return nil, metrics, fmt.Errorf("SLACK_WEBHOOK_URL: %w", err)
	}
	return &slacknotify.Notifier{WebhookURL: hook}, metrics, nil
}

// outcome is the error of a run that went as rep says: a failed run's
// err; a run that stored everything but could not tell everyone, exit
// status 3.
func outcome(failed bool, err error) error {
	var ne *backup.NotifyError
	if err != nil && !failed && errors.As(err, &ne) {
		return &command.StatusError{Status: exitNotified, Err: fmt.Errorf("stored, but %w", err)}
	}
	return err
}

// abortErr joins the cause of a run that could not start with its
// notifiers' failure; the cause decides the exit status.
func abortErr(cause, notifyErr error) error {
	if notifyErr == nil {
		return cause
	}
	return fmt.Errorf("%w (and %v)", cause, notifyErr)
}

// stopGrace flag's default: how long a command may clean up after SIGINT
// or SIGTERM (cancel its unfinished upload, drop a scratch database,
// notify); systemd's default TimeoutStopSec is 90 s.
const defaultStopGrace = 30 * time.Second

// exit ends the process when the stop grace is over (a test replaces it).
var exit = osExit

var osExit = os.Exit

// withStopGrace bounds what follows the first SIGINT or SIGTERM (ctx
// cancelled): cleanup within half of grace, notifications until a tenth
// of it is left, and at grace the process ends with status 1 whatever
// still runs (so that a run stuck on a dead connection never holds its
// lock for long). disarm releases it when the command is done.
func withStopGrace(ctx context.Context, grace time.Duration, log *slog.Logger) (context.Context, func()) {
	if grace <= 0 {
		grace = defaultStopGrace
	}
	cleanup, cutCleanup := context.WithCancelCause(context.Background())
	notify, cutNotify := context.WithCancelCause(context.Background())
	var timers []*time.Timer
	done := make(chan struct{})
	armed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(armed)
		select {
		case <-done:
			return
		default:
		}
		cause := context.Cause(ctx)
		timers = append(timers,
			time.AfterFunc(grace/2, func() { cutCleanup(fmt.Errorf("cleanup cut short: half of the stop grace %s passed", grace)) }),
			time.AfterFunc(grace*9/10, func() { cutNotify(fmt.Errorf("notification cut short: the stop grace %s is nearly over", grace)) }),
			time.AfterFunc(grace, func() {
				log.Error("still running at the end of the stop grace, exiting", "cause", cause, "grace", grace)
				exit(1)
			}))
	})
	ctx = backup.WithStopBounds(ctx, backup.StopBounds{Cleanup: cleanup, Notify: notify})
	return ctx, func() {
		close(done)
		if !stop() { // the signal came: wait for the timers to be set, then stop them
			<-armed
		}
		for _, t := range timers {
			t.Stop()
		}
		cutCleanup(nil)
		cutNotify(nil)
	}
}

// checkStopGrace refuses a stop grace that is not positive.
func checkStopGrace(d time.Duration) error {
	if d <= 0 {
		return command.Usagef("-stop-grace %s: want a positive duration", d)
	}
	return nil
}

// splitList splits a comma- or space-separated list.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}
