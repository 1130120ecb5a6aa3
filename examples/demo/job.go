package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/agezstd"
	"github.com/fediops/fediops/backup/b2store"
	"github.com/fediops/fediops/backup/mirror"
	"github.com/fediops/fediops/backup/mysqldump"
	"github.com/fediops/fediops/backup/pgdump"
	"github.com/fediops/fediops/backup/rdb"
	"github.com/fediops/fediops/devstack"
	"github.com/fediops/fediops/pgpool"
	"github.com/fediops/fediops/sidekiqq"
	"github.com/fediops/fediops/tiers"
	"github.com/fediops/fediops/tiers/health"
)

// Names of the steps, in the order the job runs them.
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

// ClusterGiB is the memory of the database cluster the plan assumes: the
// seed's Majel, 2 vCPU and 4 GB (DO's limit 97 connections).
const ClusterGiB = 4

// jobConfig says what the job starts and how much it seeds.
type jobConfig struct {
	Stack devstack.Config
	Seed  devstack.SeedConfig
	Out   io.Writer // progress: the redacted .env and one line per step
	Log   *slog.Logger
}

// job is what the steps hand to each other. Every step configures itself
// from the .env.production the stack wrote, read back as an admin's tools
// read it: the stack's own values are used only where Mastodon's settings
// do not hold them (the web and streaming addresses, the database admin).
type job struct {
	cfg   jobConfig
	log   *slog.Logger
	rep   *Report
	stack *devstack.Stack

	env    *fediops.Env
	store  backup.Store
	pgSrc  *pgdump.Source
	pgDump *backup.Manifest
}

// runJob starts the stack and runs the steps; every step runs unless a step
// it needs failed (then it is skipped) or ctx ended. The stack is returned,
// running, whenever it started: the caller closes it.
func runJob(ctx context.Context, cfg jobConfig) (*devstack.Stack, *Report) {
	j := &job{cfg: cfg, log: cfg.Log, rep: &Report{}}
	start := time.Now()
	ok := j.step(ctx, StepStack, true, j.up)
	ok = j.step(ctx, StepEnv, ok, j.readEnv) && ok
	ok = j.step(ctx, StepSeed, ok, j.seed) && ok
	j.step(ctx, StepPlan, ok, j.plan)
	j.step(ctx, StepHealth, ok, j.health)
	backedUp := j.step(ctx, StepBackup, ok, j.backup)
	j.step(ctx, StepRestore, ok && backedUp && j.pgDump != nil, j.restoreDrill)
	mirrored := j.step(ctx, StepMirror, ok, j.mirror(false))
	j.step(ctx, StepMirror2, ok && mirrored, j.mirror(true))
	j.rep.Took = time.Since(start)
	return j.stack, j.rep
}

// step runs fn as the named step when its prerequisites passed, records
// and prints the outcome, and reports whether it passed.
func (j *job) step(ctx context.Context, name string, ready bool, fn func(context.Context) (string, error)) bool {
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
	j.rep.Steps = append(j.rep.Steps, s)
	fmt.Fprintf(j.cfg.Out, "%-7s %-13s %8s  %s\n", s.Result, name, round(s.Duration), s.Numbers)
	if s.Err != nil {
		fmt.Fprintf(j.cfg.Out, "        error: %s\n", oneLine(s.Err.Error()))
	}
	return s.Result == OK
}

// printf writes an indented detail line under the current step.
func (j *job) printf(format string, args ...any) {
	fmt.Fprintf(j.cfg.Out, "        "+format+"\n", args...)
}

func (j *job) up(ctx context.Context) (string, error) {
	st, err := devstack.Start(ctx, j.cfg.Stack)
	if err != nil {
		return "", err
	}
	j.stack = st
	return st.Summary(), nil
}

// readEnv reads the stack's .env.production back, prints it redacted with
// its lint findings, and builds what the later steps share from it.
func (j *job) readEnv(ctx context.Context) (string, error) {
	path := j.stack.EnvFile
	env, err := fediops.ReadEnv(path, fediops.WithEnviron(nil))
	if err != nil {
		return "", err
	}
	j.env = env
	fmt.Fprintf(j.cfg.Out, "# %s (secrets redacted)\n%s\n", path, strings.TrimRight(string(env.Redacted()), "\n"))
	findings := env.Lint()
	for _, fd := range findings {
		j.printf("lint: %s", fd)
	}
	if len(findings) > 0 {
		return "", fmt.Errorf("%d lint findings in %s", len(findings), path)
	}
	db, err := pgpool.ConfigFromEnv(env.Lookup, pgpool.Options{Logger: j.log})
	if err != nil {
		return "", err
	}
	if db.Direct == nil {
		return "", fmt.Errorf("no direct connection: %w", db.DirectErr)
	}
	bcfg, err := b2store.ConfigFromEnv(env.Lookup)
	if err != nil {
		return "", err
	}
	bcfg.Logger = j.log
	if j.store, err = b2store.Open(ctx, bcfg); err != nil {
		return "", err
	}
	// pg_dump takes pgpool's direct connection (FEDIOPS_DB_DIRECT_*) and
	// its TLS decision (verify-full with the cluster's CA), as `backup run`.
	if j.pgSrc, err = pgdump.SourceFromEnv(env.Lookup, pgpool.Options{Logger: j.log}); err != nil {
		return "", err
	}
	n := 0
	for _, line := range strings.Split(string(env.Redacted()), "\n") {
		if k, _, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(strings.TrimSpace(k), "#") {
			n++
		}
	}
	return fmt.Sprintf("%d variables, 0 lint findings; pooled %s, direct %s, TLS %s (CA from %s)",
		n, db.Pool, db.DirectEndpoint, db.TLS, db.CASource), nil
}

func (j *job) seed(ctx context.Context) (string, error) {
	return j.stack.Seed(ctx, j.cfg.Seed)
}

// plan sizes Puma for two 2 vCPU / 4 GB web nodes against the cluster's
// connection budget (FEDIOPS_DB_CONN_LIMIT overrides DO's figure) and
// summarises the seed's Sidekiq layout.
func (j *job) plan(context.Context) (string, error) {
	budget, err := pgpool.BudgetFromEnv(j.env.Lookup, ClusterGiB)
	if err != nil {
		return "", err
	}
	direct := []pgpool.Demand{pgpool.Direct("backup (pg_dump)", 1), pgpool.Direct("restore drill", 1)}
	sizing, err := tiers.PumaSizing{VCPU: 2, MemoryMiB: 4096, Nodes: 2, DBLimit: budget.Limit, OtherConnections: len(direct)}.Plan()
	if err != nil {
		return "", err
	}
	if err := sizing.Err(); err != nil {
		return "", err
	}
	rep := budget.Add(sizing.Demands("web")...).Add(direct...).Report()
	if err := rep.Err(); err != nil {
		return "", err
	}
	layout := sidekiqq.SeedLayout()
	if err := layout.Validate(); err != nil {
		return "", err
	}
	var procs []string
	for _, p := range layout.Processes {
		s := fmt.Sprintf("%s -c %d", p.Node, p.Threads)
		if p.Serves(sidekiqq.QueueScheduler) {
			s += " +scheduler"
		}
		procs = append(procs, s)
	}
	j.printf("web: %s", strings.ReplaceAll(strings.TrimSpace(sizing.Env()), "\n", " "))
	j.printf("budget (%d GiB cluster): %d of %d server connections used, headroom %d", ClusterGiB, rep.Used, rep.Limit, rep.Headroom)
	via := "fits the headroom"
	if layout.Connections() > rep.Headroom {
		via = fmt.Sprintf("more than the headroom of %d: Sidekiq must share the transaction pool", rep.Headroom)
	}
	j.printf("sidekiq seed layout: %s; %d DB connections, %s", strings.Join(procs, ", "), layout.Connections(), via)
	return fmt.Sprintf("web 2x2vCPU: WEB_CONCURRENCY=%d MAX_THREADS=%d, %d conns of %d (headroom %d); sidekiq %d procs, %d conns, scheduler on 1",
		sizing.WebConcurrency, sizing.MaxThreads, sizing.ConnectionsPerTier, rep.Limit, rep.Headroom,
		len(layout.Processes), layout.Connections()), nil
}

// health runs every check built from the .env, with the stack's web and
// streaming stand-ins.
func (j *job) health(ctx context.Context) (string, error) {
	st := j.stack
	j.printf("web and streaming are stand-ins answering \"OK\" at %s/health and %s/api/v1/streaming/health", st.Web, st.Streaming)
	checks, closeAll := health.ChecksFromEnv(ctx, j.env.Lookup, health.Options{
		Web: []string{st.Web}, Streaming: []string{st.Streaming}, SpacesKey: st.MediaKeys[0]})
	defer closeAll()
	rep := health.Run(ctx, 10*time.Second, checks...)
	var names, bad []string
	for _, res := range rep.Results {
		j.printf("%-4s %-28s %9s  %s%s", res.Status, res.Name, res.Latency.Round(time.Microsecond), res.Detail, prefixed(" ", res.Error))
		names = append(names, strings.Fields(res.Name)[0])
		if res.Status != health.StatusOK {
			bad = append(bad, res.Name)
		}
	}
	if len(bad) > 0 {
		return "", fmt.Errorf("not green: %s", strings.Join(bad, ", "))
	}
	return fmt.Sprintf("%d checks green: %s", len(rep.Results), strings.Join(names, ", ")), nil
}

// backupPrefix is where the demo's backups go in the bucket, as `backup
// run`'s default.
const backupPrefix = "db/"

// backup runs backup.Runner: PostgreSQL over the direct connection, Redis
// through the tunnel, MySQL when it runs; to B2, encrypted to the stack's
// age key.
func (j *job) backup(ctx context.Context) (string, error) {
	recipients, err := agezstd.ParseRecipients(strings.Fields(j.env.Get("BACKUP_AGE_RECIPIENTS")), nil)
	if err != nil {
		return "", err
	}
	rds, err := rdb.SourceFromEnv(j.env.Lookup)
	if err != nil {
		return "", err
	}
	sources := []backup.Source{j.pgSrc, rds}
	if _, ok := j.env.Lookup("MYSQL_HOST"); ok {
		my, err := mysqldump.SourceFromEnv(j.env.Lookup)
		if err != nil {
			return "", err
		}
		sources = append(sources, my)
	}
	runner := backup.Runner{
		Pipeline:  backup.Pipeline{Store: j.store, Prefix: backupPrefix, Sealer: &agezstd.Sealer{Recipients: recipients}, Logger: j.log},
		Sources:   sources,
		Notifiers: []backup.Notifier{backup.LogNotifier{Logger: j.log}},
	}
	rep, err := runner.Run(ctx)
	var nums []string
	for _, res := range rep.Results {
		nums = append(nums, fmt.Sprintf("%s %s -> %s", res.Source, backup.HumanBytes(res.DumpBytes), backup.HumanBytes(res.StoredBytes)))
		if res.Err == nil {
			j.printf("%-8s %s (%s dump, %s stored, zstd+age) in %s", res.Source, res.Object,
				backup.HumanBytes(res.DumpBytes), backup.HumanBytes(res.StoredBytes), round(res.Duration))
		}
	}
	if err != nil {
		return strings.Join(nums, ", "), err
	}
	cat, err := backup.Scan(ctx, j.store, backupPrefix)
	if err != nil {
		return "", err
	}
	e, ok := cat.Latest(j.pgSrc.Name())
	if !ok {
		return "", errors.New("no complete postgres backup listed after the run")
	}
	m, err := backup.ReadManifest(ctx, j.store, e)
	if err != nil {
		return "", err
	}
	j.pgDump = &m
	return fmt.Sprintf("%s; %d backups listed in B2", strings.Join(nums, ", "), len(cat.Backups)), nil
}

// restoreDrill restores the PostgreSQL backup into a scratch database with
// the private key and compares row counts. Creating a database needs an
// admin (doadmin on DO): that login is not in Mastodon's .env, so the demo
// takes it from the stack.
func (j *job) restoreDrill(ctx context.Context) (string, error) {
	ids, err := agezstd.ParseIdentities(j.stack.IdentityFile)
	if err != nil {
		return "", err
	}
	admin := j.pgSrc.Conn
	admin.User, admin.Password = j.stack.DBAdmin.User, j.stack.DBAdmin.Password
	v := &pgdump.Drill{Source: j.pgSrc.Conn, Admin: &admin, Scratch: "demo_restore_drill"}
	vr, err := v.Run(ctx, j.store, *j.pgDump, &agezstd.Unsealer{Identities: ids})
	var nums []string
	for _, tc := range vr.Tables {
		nums = append(nums, fmt.Sprintf("%s %d=%d", strings.TrimPrefix(tc.Table, "public."), tc.Source, tc.Restored))
	}
	if err != nil {
		return strings.Join(nums, ", "), err
	}
	return fmt.Sprintf("backup %s restored into %s (%s): %s", j.pgDump.ID, vr.Scratch,
		backup.HumanBytes(vr.Restore.DumpBytes), strings.Join(nums, ", ")), nil
}

// mirror copies the Space to the B2 mirror bucket; the second pass
// (incremental) must copy nothing.
func (j *job) mirror(again bool) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		get := j.env.Get
		media, err := spacesClient(j.env)
		if err != nil {
			return "", err
		}
		cfg := mirror.Config{Source: media, SourceName: "spaces:" + get("S3_BUCKET"),
			B2: b2store.Config{KeyID: get("B2_APPLICATION_KEY_ID"), Key: get("B2_APPLICATION_KEY"), Bucket: get("MIRROR_B2_BUCKET"),
				APIBase: get("B2_API_BASE")}, TargetPrefix: "media/", Workers: 8, Logger: j.log,
			Notifiers: []mirror.Notifier{mirror.LogNotifier{Logger: j.log}}}
		m, err := mirror.New(cfg)
		if err != nil {
			return "", err
		}
		rep, err := m.Run(ctx)
		nums := fmt.Sprintf("%d listed, %d copied (%s), %d unchanged, %d deleted", rep.Listed, rep.Copied,
			backup.HumanBytes(rep.CopiedBytes), rep.Unchanged, rep.Deleted)
		if err != nil {
			return nums, err
		}
		want := len(j.stack.MediaKeys)
		switch {
		case !again && (rep.Copied != want || rep.Listed != want):
			return nums, fmt.Errorf("first pass copied %d of %d objects", rep.Copied, want)
		case again && (rep.Copied != 0 || rep.Unchanged != want):
			return nums, fmt.Errorf("incremental pass copied %d, found %d unchanged of %d", rep.Copied, rep.Unchanged, want)
		}
		if !again {
			nums += fmt.Sprintf("; %d files in B2 (state included)", j.stack.B2Files(devstack.MirrorBucket))
		}
		return nums, nil
	}
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}
