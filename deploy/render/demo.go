package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/agezstd"
	"github.com/fediops/fediops/backup/b2store"
	"github.com/fediops/fediops/backup/filestore"
	"github.com/fediops/fediops/backup/metricsnotify"
	"github.com/fediops/fediops/backup/mirror"
	"github.com/fediops/fediops/backup/pgdump"
	"github.com/fediops/fediops/backup/rdb"
	"github.com/fediops/fediops/internal/b2fake"
	"github.com/fediops/fediops/internal/promfile"
	"github.com/fediops/fediops/internal/s3fake"
	"github.com/fediops/fediops/internal/testenv"
	"github.com/fediops/fediops/pgpool"
	"github.com/fediops/fediops/redistls"
	"github.com/fediops/fediops/sidekiqq"
	"github.com/fediops/fediops/spaces"
	"github.com/fediops/fediops/tiers/health"
)

// demo is the stack and the fediops parts running against it, exporting
// as they are deployed: the tunnel's own /metrics, the health program's
// (-prometheus: checks, Sidekiq, pool, budget), and the textfile directory
// the cron jobs' notifier writes, served the way node_exporter's textfile
// collector would. A target that fails a scrape (Sidekiq's collector while
// Redis is unreachable) leaves a gap in its own series only.
type demo struct {
	log     *slog.Logger
	stack   *testenv.Stack
	pg      *testenv.Postgres
	r1, r2  *testenv.Redis
	res     *resolver
	tun     *redistls.Tunnel
	rc      *redis.Client // through the tunnel, as Mastodon would
	pool    *pgxpool.Pool
	tunReg  *prometheus.Registry // the tunnel's /metrics
	reg     *prometheus.Registry // the health program's /metrics
	textDir string
	health  *health.Metrics
	checks  []health.Check
	budget  *promfile.Budget
	targets []string // what Prometheus scrapes
	s3      *s3fake.Server
	b2      *b2fake.Server
	media   *spaces.Client
	webDown atomic.Bool // the web stand-in answers 503 (a deploy gone wrong)
	closers []func()
}

// connectTimeout is the demo tunnel's TIMEOUTconnect (stunnel's default is
// 10 s): how long a new connection waits for the name to leave a demoted
// node before it is dialed there. It stays below go-redis' 3 s read
// timeout, so the demo's clients wait it out rather than leave.
const connectTimeout = 2 * time.Second

// resolver is the tunnel's name lookup, switched on failover as DO moves
// its DNS name.
type resolver struct {
	mu   sync.Mutex
	addr string
}

func (r *resolver) Resolve(context.Context, string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return []string{r.addr}, nil
}
func (r *resolver) set(a string) { r.mu.Lock(); r.addr = a; r.mu.Unlock() }

func startDemo(ctx context.Context, log *slog.Logger) (*demo, error) {
	s, err := testenv.NewStack("")
	if err != nil {
		return nil, err
	}
	d := &demo{log: log, stack: s, reg: prometheus.NewRegistry(), tunReg: prometheus.NewRegistry()}
	d.closers = append(d.closers, func() { s.Close(false) })
	fail := func(err error) (*demo, error) { d.close(); return nil, err }
	if d.pg, err = s.Postgres(ctx); err != nil {
		return fail(err)
	}
	b, err := s.PgBouncer(ctx)
	if err != nil {
		return fail(err)
	}
	if d.r1, err = s.Redis(ctx); err != nil {
		return fail(err)
	}
	if d.r2, err = s.StartRedis(ctx, ""); err != nil {
		return fail(err)
	}
	if err := d.r2.ReplicaOf(ctx, d.r1); err != nil {
		return fail(err)
	}

	// The tunnel, configured as the seed's stunnel file with verification,
	// TIMEOUTconnect shortened so that a failover whose name moves late
	// fits in the run.
	cfg, err := redistls.ParseConfig("redis.conf", strings.NewReader(fmt.Sprintf(
		"delay = yes\n[redis]\nclient = yes\naccept = 127.0.0.1:0\nconnect = redis.fediops.test:25061\nCAfile = %s\nverifyChain = yes\nTIMEOUTconnect = %d\n",
		d.r1.CAFile, int(connectTimeout/time.Second))))
	if err != nil {
		return fail(err)
	}
	d.res = &resolver{addr: d.r1.Addr()}
	cfg.Resolve, cfg.Password, cfg.ProbeInterval = d.res.Resolve, d.r1.Password, 250*time.Millisecond
	cfg.Registerer, cfg.Logger = d.tunReg, discard
	if d.tun, err = redistls.New(cfg); err != nil {
		return fail(err)
	}
	if err := d.tun.Start(); err != nil {
		return fail(err)
	}
	d.closers = append(d.closers, func() {
		c, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		d.tun.Shutdown(c)
	})
	d.rc = redis.NewClient(&redis.Options{Addr: d.tun.Addr("redis").String(), Password: d.r1.Password, MaxRetries: 3})
	d.closers = append(d.closers, func() { d.rc.Close() })
	d.reg.MustRegister(sidekiqq.NewCollector(d.rc, sidekiqq.CollectorOptions{}))

	// The application's pool through pgBouncer, with the simple protocol.
	pcfg, err := pgxpool.ParseConfig(b.URL())
	if err != nil {
		return fail(err)
	}
	pcfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	pcfg.MaxConns = 8
	if d.pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return fail(err)
	}
	d.closers = append(d.closers, d.pool.Close)
	d.reg.MustRegister(pgpool.NewCollector(d.pool, "the_mastodon_connection_pool"))

	if d.health, err = health.NewMetrics(d.reg); err != nil {
		return fail(err)
	}
	if d.budget, err = promfile.NewBudget(d.reg); err != nil {
		return fail(err)
	}

	// Media in a Spaces stand-in, mirrored to a B2 stand-in.
	d.s3 = s3fake.New(nil)
	d.closers = append(d.closers, d.s3.Close)
	if err := d.s3.CreateBucket("media"); err != nil {
		return fail(err)
	}
	if d.media, err = spaces.New(&spaces.Config{Bucket: "media", Region: "nyc3", Endpoint: d.s3.URL, PathStyle: true, Protocol: "http", Hostname: d.s3.Addr,
		AccessKeyID: "AKIDDEMO", SecretAccessKey: "demo-secret"}); err != nil {
		return fail(err)
	}
	d.b2 = b2fake.New()
	d.closers = append(d.closers, d.b2.Close)
	d.b2.CreateBucket("media-mirror")
	d.b2.CreateBucket("backups")
	const probe = "media_attachments/files/000/000/001/original/probe.png"
	if _, err := d.media.Put(ctx, probe, bytes.NewReader([]byte("\x89PNG\r\n\x1a\n")), nil); err != nil {
		return fail(err)
	}

	// Mastodon's web and streaming health endpoints.
	web, err := d.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" || d.webDown.Load() {
			http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "OK")
	}))
	if err != nil {
		return fail(err)
	}
	streaming, err := d.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "OK") }))
	if err != nil {
		return fail(err)
	}
	// Every check the health program runs on an instance without OpenSearch.
	d.checks = []health.Check{health.WebHealth("web", "http://"+web), health.StreamingHealth("streaming", "http://"+streaming),
		health.DBCheck("database", d.pool), health.RedisCheck("redis", d.rc),
		health.SidekiqCheck(d.rc, sidekiqq.CheckConfig{SeenKey: "-"}), health.SpacesCheck(d.media, probe)}

	// The scrape targets: the tunnel, the health program, node_exporter's
	// textfile collector.
	d.textDir = filepath.Join(s.Dir, "textfile")
	if err := os.MkdirAll(d.textDir, 0o755); err != nil {
		return fail(err)
	}
	for _, g := range []prometheus.Gatherer{d.tunReg, d.reg, textfiles(d.textDir)} {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
		addr, err := d.serve(mux)
		if err != nil {
			return fail(err)
		}
		d.targets = append(d.targets, addr)
	}
	return d, nil
}

// serve runs h on a loopback port until close and returns the address.
func (d *demo) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	d.closers = append(d.closers, func() { srv.Close() })
	return ln.Addr().String(), nil
}

func (d *demo) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
}

// textfiles gathers dir/*.prom as node_exporter's textfile collector does.
func textfiles(dir string) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		files, _ := filepath.Glob(filepath.Join(dir, "*.prom"))
		var out []*dto.MetricFamily
		for _, f := range files {
			mfs, err := promfile.ReadFile(f)
			if err != nil {
				return nil, err
			}
			for _, mf := range mfs {
				out = append(out, mf)
			}
		}
		return out, nil
	})
}

// load runs the demo's events over dur: steady Redis and database traffic,
// Sidekiq jobs (a push burst, a second scheduler process for a while),
// health checks every 5 s, backup runs (one with a failing source), mirror
// runs with new media, three tunnel failovers (the name moving first, 300 ms
// after the demotion, and only after TIMEOUTconnect) and an outage of the
// name, and
// the connection budget growing past 90%.
func (d *demo) load(ctx context.Context, dur time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	start := time.Now()
	at := func() float64 { return float64(time.Since(start)) / float64(dur) }
	var wg sync.WaitGroup
	goLoop := func(every time.Duration, f func(ctx context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				f(ctx)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	for i := range 8 { // Mastodon's Redis traffic through the tunnel
		c := redis.NewClient(&redis.Options{Addr: d.tun.Addr("redis").String(), Password: d.r1.Password, PoolSize: 1, MaxRetries: 2})
		defer c.Close()
		goLoop(time.Duration(20+10*i)*time.Millisecond, func(ctx context.Context) {
			c.Set(ctx, "demo:"+strconv.Itoa(i), strings.Repeat("x", 512*(1+i)), time.Minute)
			c.Get(ctx, "demo:"+strconv.Itoa(i))
		})
	}
	for range 4 { // web requests' queries through pgBouncer
		goLoop(30*time.Millisecond, func(ctx context.Context) {
			var n int
			d.pool.QueryRow(ctx, "SELECT count(*) FROM pg_class").Scan(&n)
		})
	}
	sk := &sidekiqSim{rc: d.rc}
	sk.setup(ctx)
	sk.tick(ctx, 0) // the workers beat before the first health run looks for them
	goLoop(250*time.Millisecond, func(ctx context.Context) { sk.tick(ctx, at()) })
	goLoop(5*time.Second, func(ctx context.Context) {
		rep := health.Run(ctx, 3*time.Second, d.checks...)
		if ctx.Err() == nil { // not the run cut short by the end
			d.health.Observe(rep)
		}
	})
	goLoop(time.Second, func(context.Context) { d.setBudget(at()) })

	// Events in order, by share of the run.
	events := []struct {
		at   float64
		name string
		f    func(ctx context.Context) error
	}{
		{0.05, "backup", func(ctx context.Context) error { return d.backup(ctx, false) }},
		{0.12, "mirror", func(ctx context.Context) error { return d.mirror(ctx, 40) }},
		{0.30, "backup", func(ctx context.Context) error { return d.backup(ctx, false) }},
		{0.38, "failover to redis2", func(ctx context.Context) error { return d.failover(ctx, d.r1, d.r2, 0) }},
		{0.45, "mirror", func(ctx context.Context) error { return d.mirror(ctx, 25) }},
		{0.52, "name points nowhere", func(ctx context.Context) error { return d.outage(ctx, 6*time.Second) }},
		{0.58, "backup with a failing redis source", func(ctx context.Context) error { return d.backup(ctx, true) }},
		{0.62, "web answers 503 for a tenth of the run", func(ctx context.Context) error { return d.webOutage(ctx, dur/10) }},
		{0.68, "failover back to redis1", func(ctx context.Context) error { return d.failover(ctx, d.r2, d.r1, 300*time.Millisecond) }},
		{0.78, "mirror", func(ctx context.Context) error { return d.mirror(ctx, 60) }},
		{0.86, "backup", func(ctx context.Context) error { return d.backup(ctx, false) }},
		{0.90, "failover to redis2, the name moving after TIMEOUTconnect", func(ctx context.Context) error {
			return d.failover(ctx, d.r1, d.r2, connectTimeout+time.Second)
		}},
	}
	for _, ev := range events {
		wait := time.Until(start.Add(time.Duration(ev.at * float64(dur))))
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		if ctx.Err() != nil {
			break
		}
		d.log.Info("event", "at", time.Since(start).Round(time.Second), "what", ev.name)
		if err := ev.f(ctx); err != nil && ctx.Err() == nil {
			level := slog.LevelWarn
			if strings.Contains(ev.name, "failing") {
				level = slog.LevelInfo // meant to fail
			}
			d.log.Log(ctx, level, "event failed", "what", ev.name, "err", err)
		}
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}

// setBudget feeds pgpool's budget arithmetic: a 1 GiB cluster whose pool
// grows from 12 to 19 connections two thirds into the run.
func (d *demo) setBudget(at float64) {
	size := 12
	if at > 0.64 {
		size = 19
	}
	r := pgpool.NewBudget(1).WithPool(testenv.PoolName, size).Add(pgpool.Direct("backup", 1), pgpool.Direct("sidekiq scheduler", 1)).Report()
	d.budget.Set("demo", r.Limit, r.Used)
}

func (d *demo) backup(ctx context.Context, breakRedis bool) error {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return err
	}
	store, err := filestore.New(filepath.Join(d.stack.Dir, "backups"))
	if err != nil {
		return err
	}
	pass := d.r1.Password
	if breakRedis {
		pass = "wrong-password"
	}
	primary := d.r1
	if primaryAddr(d) == d.r2.Addr() {
		primary = d.r2
	}
	r := &backup.Runner{
		Pipeline: backup.Pipeline{Store: store, Prefix: "db/", Sealer: &agezstd.Sealer{Recipients: []age.Recipient{id.Recipient()}}, Logger: discard},
		Sources: []backup.Source{
			&pgdump.Source{Conn: pgpool.Libpq{Host: d.pg.Host, Port: d.pg.Port, Database: d.pg.Database, User: d.pg.AdminUser,
				Password: d.pg.AdminPassword, SSLMode: pgpool.TLSVerifyFull, SSLRootCert: d.pg.CAFile}},
			&rdb.Source{Host: primary.Host, Port: primary.Port, User: "default", Password: pass, TLS: true,
				CAFile: primary.CAFile, SNI: "localhost"},
		},
		NoPrune:   true,
		Notifiers: []backup.Notifier{metricsnotify.Notifier{Dir: d.textDir}},
	}
	_, err = r.Run(ctx)
	return err
}

func primaryAddr(d *demo) string { d.res.mu.Lock(); defer d.res.mu.Unlock(); return d.res.addr }

func (d *demo) mirror(ctx context.Context, newObjects int) error {
	for i := range newObjects {
		body := bytes.Repeat([]byte{byte(i)}, 2000+rand.IntN(60000))
		key := fmt.Sprintf("media_attachments/files/%d/original.jpg", time.Now().UnixNano()+int64(i))
		if _, err := d.media.Put(ctx, key, bytes.NewReader(body), nil); err != nil {
			return err
		}
	}
	m, err := mirror.New(mirror.Config{Source: d.media, SourceName: "spaces:media",
		B2:      b2store.Config{KeyID: d.b2.KeyID, Key: d.b2.Key, Bucket: "media-mirror", APIBase: d.b2.URL},
		Workers: 4, Backoff: 10 * time.Millisecond, Logger: discard,
		Notifiers: []mirror.Notifier{metricsnotify.Notifier{Dir: d.textDir}}})
	if err != nil {
		return err
	}
	_, err = m.Run(ctx)
	return err
}

// failover moves the primary from old to new as a managed Redis does: the
// replica is promoted and the old primary follows it; the name moves first
// (nameLate 0: the tunnel sees it moved) or nameLate after the demotion
// began (the ROLE probe finds the demoted node first and new connections
// wait for the name; past TIMEOUTconnect they are dialed to the old node).
func (d *demo) failover(ctx context.Context, old, new *testenv.Redis, nameLate time.Duration) error {
	if err := new.Promote(ctx); err != nil {
		return err
	}
	if nameLate == 0 {
		d.res.set(new.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- old.ReplicaOf(ctx, new) }()
	if nameLate > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(nameLate):
		}
		d.res.set(new.Addr())
	}
	return <-errc
}

// webOutage makes the web stand-in answer 503 for a while, without
// blocking the events that follow.
func (d *demo) webOutage(ctx context.Context, for_ time.Duration) error {
	d.webDown.Store(true)
	context.AfterFunc(ctx, func() { d.webDown.Store(false) })
	time.AfterFunc(for_, func() { d.webDown.Store(false) })
	return nil
}

// outage points the name at a closed port for a while: every dial fails.
func (d *demo) outage(ctx context.Context, for_ time.Duration) error {
	prev := primaryAddr(d)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	dead := ln.Addr().String()
	ln.Close()
	d.res.set(dead)
	select {
	case <-ctx.Done():
	case <-time.After(for_):
	}
	d.res.set(prev)
	return nil
}

// sidekiqSim writes what Sidekiq 7.3 writes to Redis: queues, jobs with
// enqueued_at, process heartbeats, stats. Mastodon's two worker nodes
// (scotty, decker with the scheduler), a push burst, and for a while a
// third process that also lists scheduler.
type sidekiqSim struct {
	rc   *redis.Client
	next int
}

var demoQueues = []string{"default", "push", "ingress", "mailers", "pull", "scheduler"}

func (s *sidekiqSim) setup(ctx context.Context) {
	args := make([]any, len(demoQueues))
	for i, q := range demoQueues {
		args[i] = q
	}
	s.rc.SAdd(ctx, "queues", args...)
}

func (s *sidekiqSim) beat(ctx context.Context, host string, pid int, queues []string, busy int, now float64) {
	id := fmt.Sprintf("%s:%d:demo", host, pid)
	info, _ := json.Marshal(map[string]any{"hostname": host, "started_at": now - 3600, "pid": pid, "tag": "live",
		"concurrency": 25, "queues": queues, "labels": []string{}, "identity": id, "version": "7.3.9", "embedded": false})
	p := s.rc.Pipeline()
	p.SAdd(ctx, "processes", id)
	p.HSet(ctx, id, "info", string(info), "busy", busy, "beat", strconv.FormatFloat(now, 'f', 3, 64), "quiet", "false", "rss", 700000, "rtt_us", 900)
	p.Expire(ctx, id, 60*time.Second)
	p.Exec(ctx)
}

func (s *sidekiqSim) tick(ctx context.Context, at float64) {
	now := float64(time.Now().UnixNano()) / 1e9
	s.beat(ctx, "scotty", 1234, []string{"default", "push", "ingress", "mailers", "pull"}, 5+rand.IntN(15), now)
	s.beat(ctx, "decker", 2345, []string{"default", "push", "ingress", "mailers", "pull", "scheduler"}, 2+rand.IntN(8), now)
	if at > 0.72 && at < 0.9 { // someone starts a second scheduler
		s.beat(ctx, "kirk", 3456, []string{"default", "scheduler"}, rand.IntN(4), now)
	} else {
		s.rc.SRem(ctx, "processes", "kirk:3456:demo")
		s.rc.Del(ctx, "kirk:3456:demo")
	}
	// Arrivals per tick and what the workers take per tick, by queue.
	in := map[string]int{"default": 6, "push": 4, "ingress": 3, "mailers": 1, "pull": 1, "scheduler": 1}
	out := map[string]int{"default": 7, "push": 5, "ingress": 3, "mailers": 1, "pull": 1, "scheduler": 1}
	if at > 0.2 && at < 0.4 {
		in["push"] = 12 // a popular post: deliveries pile up
	}
	if at > 0.55 && at < 0.7 {
		out["ingress"] = 1 // slow remote servers
	}
	p := s.rc.Pipeline()
	processed := 0
	for _, q := range demoQueues {
		for range in[q] {
			s.next++
			job, _ := json.Marshal(map[string]any{"class": "DemoWorker", "args": []any{s.next}, "queue": q,
				"jid": fmt.Sprintf("%024x", s.next), "retry": true, "created_at": now, "enqueued_at": now})
			p.LPush(ctx, "queue:"+q, job)
		}
		take := out[q] + rand.IntN(2)
		for range take {
			p.RPop(ctx, "queue:"+q)
		}
		processed += take
	}
	p.IncrBy(ctx, "stat:processed", int64(processed))
	if rand.IntN(4) == 0 {
		p.Incr(ctx, "stat:failed")
		p.ZAdd(ctx, "retry", redis.Z{Score: now + 60, Member: fmt.Sprintf(`{"class":"DemoWorker","jid":"r%d","queue":"push","retry_count":1}`, s.next)})
	}
	p.Exec(ctx)
}
