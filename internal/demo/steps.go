package demo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/agezstd"
	"github.com/fediops/fediops/backup/b2store"
	"github.com/fediops/fediops/backup/mirror"
	"github.com/fediops/fediops/backup/mysqldump"
	"github.com/fediops/fediops/backup/pgdump"
	"github.com/fediops/fediops/backup/rdb"
	"github.com/fediops/fediops/pgpool"
	"github.com/fediops/fediops/sidekiqq"
	"github.com/fediops/fediops/tiers"
)

// ClusterGiB is the memory of the database cluster the plan assumes: the
// seed's Majel, 2 vCPU and 4 GB (DO's limit 97 connections).
const ClusterGiB = 4

// plan sizes Puma for two 2 vCPU / 4 GB web nodes against the cluster's
// connection budget (FEDIOPS_DB_CONN_LIMIT overrides DO's figure) and
// summarises the seed's Sidekiq layout.
func (r *run) plan(ctx context.Context) (string, error) {
	budget, err := pgpool.BudgetFromEnv(r.env.Get, ClusterGiB)
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
	r.printf("web: %s", strings.ReplaceAll(strings.TrimSpace(sizing.Env()), "\n", " "))
	r.printf("budget (%d GiB cluster): %d of %d server connections used, headroom %d", ClusterGiB, rep.Used, rep.Limit, rep.Headroom)
	via := "fits the headroom"
	if layout.Connections() > rep.Headroom {
		via = fmt.Sprintf("more than the headroom of %d: Sidekiq must share the transaction pool", rep.Headroom)
	}
	r.printf("sidekiq seed layout: %s; %d DB connections, %s", strings.Join(procs, ", "), layout.Connections(), via)
	return fmt.Sprintf("web 2x2vCPU: WEB_CONCURRENCY=%d MAX_THREADS=%d, %d conns of %d (headroom %d); sidekiq %d procs, %d conns, scheduler on 1",
		sizing.WebConcurrency, sizing.MaxThreads, sizing.ConnectionsPerTier, rep.Limit, rep.Headroom,
		len(layout.Processes), layout.Connections()), nil
}

// health runs the tiers checks built from the .env, with the httptest
// stand-ins for web and streaming.
func (r *run) health(ctx context.Context) (string, error) {
	r.printf("web and streaming are httptest stand-ins answering \"OK\" at %s/health and %s/api/v1/streaming/health", r.web.URL, r.stream.URL)
	checks, closeAll := tiers.ChecksFromEnv(ctx, r.env.Get, tiers.HealthOptions{
		Web: []string{r.web.URL}, Streaming: []string{r.stream.URL}, SpacesKey: r.keys[0]})
	defer closeAll()
	rep := tiers.Run(ctx, 10*time.Second, checks...)
	var names, bad []string
	for _, res := range rep.Results {
		r.printf("%-4s %-28s %9s  %s%s", res.Status, res.Name, res.Latency.Round(time.Microsecond), res.Detail, prefixed(" ", res.Error))
		names = append(names, strings.Fields(res.Name)[0])
		if res.Status != tiers.StatusOK {
			bad = append(bad, res.Name)
		}
	}
	if len(bad) > 0 {
		return "", fmt.Errorf("not green: %s", strings.Join(bad, ", "))
	}
	return fmt.Sprintf("%d checks green: %s", len(rep.Results), strings.Join(names, ", ")), nil
}

// backup runs backup.Runner: PostgreSQL over the direct connection, Redis
// through the tunnel, MySQL when it is up; to B2, encrypted to the run's
// age key.
func (r *run) backup(ctx context.Context) (string, error) {
	keys, _ := r.env.Get("BACKUP_AGE_RECIPIENTS")
	recipients, err := agezstd.ParseRecipients(strings.Fields(keys), nil)
	if err != nil {
		return "", err
	}
	rds, err := rdb.SourceFromEnv(r.env.Get)
	if err != nil {
		return "", err
	}
	sources := []backup.Source{r.pgSrc, rds}
	if _, ok := r.env.Get("MYSQL_HOST"); ok {
		my, err := mysqldump.SourceFromEnv(r.env.Get)
		if err != nil {
			return "", err
		}
		sources = append(sources, my)
	}
	runner := backup.Runner{
		Pipeline:  backup.Pipeline{Store: r.store, Prefix: backupPrefix, Sealer: &agezstd.Sealer{Recipients: recipients}, Logger: r.log},
		Sources:   sources,
		Notifiers: []backup.Notifier{backup.LogNotifier{Logger: r.log}},
	}
	rep, err := runner.Run(ctx)
	var nums []string
	for _, res := range rep.Results {
		nums = append(nums, fmt.Sprintf("%s %s -> %s", res.Source, backup.HumanBytes(res.DumpBytes), backup.HumanBytes(res.StoredBytes)))
		if res.Err == nil {
			r.printf("%-8s %s (%s dump, %s stored, zstd+age) in %s", res.Source, res.Object,
				backup.HumanBytes(res.DumpBytes), backup.HumanBytes(res.StoredBytes), round(res.Duration))
		}
	}
	if err != nil {
		return strings.Join(nums, ", "), err
	}
	cat, err := backup.Scan(ctx, r.store, backupPrefix)
	if err != nil {
		return "", err
	}
	e, ok := cat.Latest(r.pgSrc.Name())
	if !ok {
		return "", errors.New("no complete postgres backup listed after the run")
	}
	m, err := backup.ReadManifest(ctx, r.store, e)
	if err != nil {
		return "", err
	}
	r.pgDump = &m
	return fmt.Sprintf("%s; %d backups listed in B2", strings.Join(nums, ", "), len(cat.Backups)), nil
}

// restoreDrill restores the PostgreSQL backup into a scratch database with
// the private key and compares row counts. Creating a database needs an
// admin (doadmin on DO): that login is not in Mastodon's .env, so the demo
// takes it from the stack.
func (r *run) restoreDrill(ctx context.Context) (string, error) {
	ids, err := agezstd.ParseIdentities(r.identity)
	if err != nil {
		return "", err
	}
	pg := r.bouncer.Backend
	admin := r.pgSrc.Conn
	admin.User, admin.Password = pg.AdminUser, pg.AdminPassword
	v := &pgdump.Drill{Source: r.pgSrc.Conn, Admin: &admin, Scratch: "demo_restore_drill"}
	vr, err := v.Run(ctx, r.store, *r.pgDump, &agezstd.Unsealer{Identities: ids})
	var nums []string
	for _, tc := range vr.Tables {
		nums = append(nums, fmt.Sprintf("%s %d=%d", strings.TrimPrefix(tc.Table, "public."), tc.Source, tc.Restored))
	}
	if err != nil {
		return strings.Join(nums, ", "), err
	}
	return fmt.Sprintf("backup %s restored into %s (%s): %s", r.pgDump.ID, vr.Scratch,
		backup.HumanBytes(vr.Restore.DumpBytes), strings.Join(nums, ", ")), nil
}

// mirror copies the Space to the B2 mirror bucket; the second pass
// (incremental) must copy nothing.
func (r *run) mirror(again bool) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		get := func(k string) string { v, _ := r.env.Get(k); return v }
		cfg := mirror.Config{Source: r.media, SourceName: "spaces:" + get("S3_BUCKET"),
			B2: b2store.Config{KeyID: get("B2_APPLICATION_KEY_ID"), Key: get("B2_APPLICATION_KEY"), Bucket: get("MIRROR_B2_BUCKET"),
				APIBase: get("B2_API_BASE")}, TargetPrefix: "media/", Workers: 8, Logger: r.log,
			Notifiers: []mirror.Notifier{mirror.LogNotifier{Logger: r.log}}}
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
		want := len(r.keys)
		switch {
		case !again && (rep.Copied != want || rep.Listed != want):
			return nums, fmt.Errorf("first pass copied %d of %d objects", rep.Copied, want)
		case again && (rep.Copied != 0 || rep.Unchanged != want):
			return nums, fmt.Errorf("incremental pass copied %d, found %d unchanged of %d", rep.Copied, rep.Unchanged, want)
		}
		if n := len(r.b2.Files(MirrorBucket)); !again {
			nums += fmt.Sprintf("; %d files in B2 (state included)", n)
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
