package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"filippo.io/age"
	"github.com/redis/go-redis/v9"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/pgdump"
	"github.com/fediops/fediops/internal/b2fake"
	"github.com/fediops/fediops/internal/envfile"
	"github.com/fediops/fediops/internal/s3fake"
	"github.com/fediops/fediops/internal/testenv"
	"github.com/fediops/fediops/pgpool"
	"github.com/fediops/fediops/redistls"
	"github.com/fediops/fediops/spaces"
)

// Names of the steps, in the order Run runs them.
const (
	StepStack   = "stack"
	StepEnv     = "env"
	StepSeed    = "seed"
	StepPlan    = "plan"
	StepHealth  = "health"
	StepBackup  = "backup"
	StepRestore = "restore drill"
	StepMirror  = "mirror"
	StepMirror2 = "mirror again"
)

// Steps lists the step names in run order.
var Steps = []string{StepStack, StepEnv, StepSeed, StepPlan, StepHealth, StepBackup, StepRestore, StepMirror, StepMirror2}

// Bucket names of the stand-ins.
const (
	MediaBucket  = "mastodon-media"  // the Space (s3fake)
	BackupBucket = "fediops-backups" // B2: database backups
	MirrorBucket = "fediops-media"   // B2: the media mirror
)

// Config says what Run starts and how much it seeds. Zero values mean the
// documented defaults.
type Config struct {
	// Stack runs the servers; required. The caller closes it.
	Stack *testenv.Stack
	// MySQL also starts MariaDB and backs up a WriteFreely-like database
	// with mysqldump. A MariaDB that does not come up within MySQLTimeout
	// is left out of the run (noted in the stack step), not a failure.
	MySQL        bool
	MySQLTimeout time.Duration // 0 = 25 s

	Accounts     int // 0 = 1000
	Statuses     int // 0 = 4000
	Attachments  int // media_attachments rows; 0 = 2000
	MediaObjects int // objects put into the Space; 0 = 300
	Jobs         int // Sidekiq jobs over the queues; 0 = 120

	// Out receives the progress: the redacted .env and one line per step.
	// nil = io.Discard.
	Out io.Writer
	// Logger receives the packages' own logs (warnings); nil discards them.
	Logger *slog.Logger
}

func (c *Config) defaults() {
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&c.Accounts, 1000)
	def(&c.Statuses, 4000)
	def(&c.Attachments, 2000)
	def(&c.MediaObjects, 300)
	def(&c.Jobs, 120)
	if c.MySQLTimeout <= 0 {
		c.MySQLTimeout = 25 * time.Second
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// run holds what the steps hand to each other.
type run struct {
	cfg  Config
	log  *slog.Logger
	rep  *Report
	stop []func() // LIFO, everything Run started besides the Stack

	// the stack
	bouncer  *testenv.PgBouncer
	redis    *testenv.Redis
	maria    *testenv.MariaDB
	mariaErr error
	tunnel   *redistls.Tunnel
	tunConf  string
	s3       *s3fake.Server
	b2       *b2fake.Server
	web      *httptest.Server
	stream   *httptest.Server
	identity string // age identity file (kept off the backup host in real life)
	ageID    *age.X25519Identity

	// from the .env, read back
	env    *envfile.File
	db     *pgpool.Config
	media  *spaces.Client
	keys   []string // media keys put into the Space
	sq     *redis.Client
	pgSrc  *pgdump.Source
	store  backup.Store
	pgDump *backup.Manifest
}

// Run brings up the stack, writes and reads back its .env.production, seeds
// it and runs the steps (see the package doc). Every step runs unless a step
// it needs failed (then it is Skipped) or ctx ended. The Report is always
// returned; the error is Report.Err(), joined with ctx's error when ctx
// ended. Run stops everything it started
// before it returns; cfg.Stack stays up for the caller to Close.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Stack == nil {
		return nil, errors.New("demo: Config.Stack is required")
	}
	cfg.defaults()
	r := &run{cfg: cfg, log: cfg.Logger, rep: &Report{}}
	defer func() {
		for i := len(r.stop) - 1; i >= 0; i-- {
			r.stop[i]()
		}
	}()
	start := time.Now()
	ok := r.step(ctx, StepStack, true, r.up)
	ok = r.step(ctx, StepEnv, ok, r.writeEnv) && ok
	ok = r.step(ctx, StepSeed, ok, r.seed) && ok
	r.step(ctx, StepPlan, ok, r.plan)
	r.step(ctx, StepHealth, ok, r.health)
	backedUp := r.step(ctx, StepBackup, ok, r.backup)
	r.step(ctx, StepRestore, ok && backedUp && r.pgDump != nil, r.restoreDrill)
	mirrored := r.step(ctx, StepMirror, ok, r.mirror(false))
	r.step(ctx, StepMirror2, ok && mirrored, r.mirror(true))
	r.rep.Took = time.Since(start)
	if err := ctx.Err(); err != nil {
		return r.rep, errors.Join(fmt.Errorf("demo: interrupted: %w", err), r.rep.Err())
	}
	return r.rep, r.rep.Err()
}

// step runs fn as the named step when its prerequisites passed, records
// and prints the outcome, and reports whether it passed.
func (r *run) step(ctx context.Context, name string, ready bool, fn func(context.Context) (string, error)) bool {
	s := Step{Name: name, Result: Skipped}
	switch {
	case ctx.Err() != nil:
		s.Numbers = "interrupted"
	case !ready:
		s.Numbers = "an earlier step failed"
	default:
		t0 := time.Now()
		nums, err := fn(ctx)
		s.Duration, s.Numbers, s.Err = time.Since(t0), nums, err
		s.Result = OK
		if err != nil {
			s.Result = Failed
		}
	}
	r.rep.Steps = append(r.rep.Steps, s)
	fmt.Fprintf(r.cfg.Out, "%-7s %-13s %8s  %s\n", s.Result, name, round(s.Duration), s.Numbers)
	if s.Err != nil {
		fmt.Fprintf(r.cfg.Out, "        error: %s\n", oneLine(s.Err.Error()))
	}
	return s.Result == OK
}

// printf writes an indented detail line under the current step.
func (r *run) printf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Out, "        "+format+"\n", args...)
}

// okHandler answers path with 200 "OK", as Mastodon's web and streaming
// health endpoints do.
func okHandler(path string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+path, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "OK") })
	return mux
}
