package sidekiqq

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fediops/fediops/internal/testenv"
)

// fixedNow is the time the fixtures in testdata are read at.
var fixedNow = time.Unix(1795654800, 0).UTC()

// counter is a go-redis hook counting round trips: one per pipeline Exec
// and one per single command sent through ProcessHook. go-redis sends a new
// connection's set-up (HELLO/AUTH, SELECT, CLIENT SETINFO) through the hooks
// too; those are not Read's and are not counted.
type counter struct{ pipelines, singles atomic.Int64 }

func connSetup(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "auth", "select", "client":
		return true
	}
	return false
}

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !connSetup(cmd) {
			c.singles.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && !connSetup(cmds[0]) {
			c.pipelines.Add(1)
		}
		return next(ctx, cmds)
	}
}

var nextDB atomic.Int64

// testDB returns a writer and a counted reader on a fresh database of the
// shared TLS Redis (each test its own DB, so that tests may run in
// parallel: Sidekiq's keys have no namespace).
func testDB(t testing.TB) (w, r *redis.Client, cnt *counter) {
	t.Helper()
	// Databases 1-15 in turn: at most 15 tests of one run may use testDB
	// at the same time (-count=N runs them round after round).
	db := int((nextDB.Add(1)-1)%15) + 1
	srv := testenv.RedisTLS(t)
	opt := func(pool int) *redis.Options {
		return &redis.Options{Addr: srv.Addr(), Username: srv.User, Password: srv.Password, TLSConfig: srv.TLSConfig(), DB: db, PoolSize: pool}
	}
	w = redis.NewClient(opt(0))
	r = redis.NewClient(opt(1))
	t.Cleanup(func() { w.Close(); r.Close() })
	if err := w.FlushDB(ctx(t)).Err(); err != nil {
		t.Fatal(err)
	}
	cnt = &counter{}
	r.AddHook(cnt)
	return w, r, cnt
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// load writes a testdata scene with the commands Sidekiq uses.
func load(t testing.TB, c *redis.Client, dir string) {
	t.Helper()
	loadNS(t, c, "", dir)
}

// loadNS writes a testdata scene as Mastodon 4.3 does with REDIS_NAMESPACE
// set (redis-namespace): every key under namespace, members as they are.
func loadNS(t testing.TB, c *redis.Client, namespace, dir string) {
	t.Helper()
	ctx := ctx(t)
	ns := func(key string) string { return key }
	if namespace != "" {
		ns = func(key string) string { return namespace + ":" + key }
	}
	dir = filepath.Join("testdata", dir)
	lines := func(name string) []string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.TrimSpace(l) != "" {
				out = append(out, l)
			}
		}
		return out
	}
	for _, q := range lines("queues.txt") {
		must(t, c.SAdd(ctx, ns("queues"), q).Err())
		for _, job := range lines("queue-" + q + ".jsonl") {
			if !json.Valid([]byte(job)) {
				t.Fatalf("%s: queue-%s.jsonl has invalid JSON", dir, q)
			}
			// Sidekiq's client: SADD queues, LPUSH queue:NAME (newest at the head).
			must(t, c.LPush(ctx, ns("queue:"+q), job).Err())
		}
	}
	for _, set := range []string{"retry", "schedule", "dead"} {
		for _, l := range lines(set + ".zset") {
			score, member, _ := strings.Cut(l, " ")
			f, err := strconv.ParseFloat(score, 64)
			if err != nil || !json.Valid([]byte(member)) {
				t.Fatalf("%s/%s.zset: bad line %q", dir, set, l)
			}
			must(t, c.ZAdd(ctx, ns(set), redis.Z{Score: f, Member: member}).Err())
		}
	}
	day := fixedNow.Format("2006-01-02")
	for _, l := range lines("stat.txt") {
		name, n, _ := strings.Cut(l, " ")
		v, _ := strconv.ParseInt(n, 10, 64)
		must(t, c.IncrBy(ctx, ns("stat:"+name), v).Err())
		must(t, c.IncrBy(ctx, ns("stat:"+name+":"+day), v).Err())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "process-*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			Identity string            `json:"identity"`
			Hash     map[string]string `json:"hash"`
		}
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		// The heartbeat: SADD processes, HSET identity ..., EXPIRE 60.
		must(t, c.SAdd(ctx, ns("processes"), p.Identity).Err())
		must(t, c.HSet(ctx, ns(p.Identity), p.Hash).Err())
		must(t, c.Expire(ctx, ns(p.Identity), 60*time.Second).Err())
	}
	for _, id := range lines("gone.txt") {
		must(t, c.SAdd(ctx, ns("processes"), id).Err())
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func near(a, b time.Duration) bool { d := a - b; return d < time.Millisecond && d > -time.Millisecond }

func TestReadSidekiq73(t *testing.T) {
	t.Parallel()
	w, r, cnt := testDB(t)
	load(t, w, "sidekiq-7.3")
	s, err := Read(ctx(t), r, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if got := cnt.pipelines.Load(); got != 2 || s.RoundTrips != 2 {
		t.Errorf("round trips: %d pipelines (Stats says %d), want 2", got, s.RoundTrips)
	}
	if got := cnt.singles.Load(); got != 0 {
		t.Errorf("%d commands outside the pipelines", got)
	}
	if len(s.Problems) != 0 {
		t.Errorf("problems: %v", s.Problems)
	}
	if s.Processed != 1234567 || s.Failed != 890 || s.Retry != 2 || s.Scheduled != 1 || s.Dead != 1 || s.Enqueued != 4 {
		t.Errorf("totals: %+v", s)
	}
	want := map[string]struct {
		size    int64
		latency time.Duration
		unit    TimestampUnit
	}{
		"default": {1, 3750 * time.Millisecond, Seconds}, "push": {2, 90500 * time.Millisecond, Seconds},
		"mailers": {1, 120 * time.Second, Seconds}, "ingress": {}, "pull": {}, "scheduler": {},
	}
	if len(s.Queues) != len(want) {
		t.Fatalf("queues %+v", s.Queues)
	}
	for _, q := range s.Queues {
		w := want[q.Name]
		if q.Size != w.size || !near(q.Latency, w.latency) {
			t.Errorf("queue %s: size %d latency %v, want %d %v", q.Name, q.Size, q.Latency, w.size, w.latency)
		}
		if w.size > 0 && (q.Oldest == nil || q.Oldest.Unit != w.unit) {
			t.Errorf("queue %s: oldest %+v, want unit %s", q.Name, q.Oldest, w.unit)
		}
	}
	if q, _ := s.Queue("mailers"); q.Oldest.Class != "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper" {
		t.Errorf("mailers oldest %+v", q.Oldest)
	}
	if len(s.Processes) != 2 || len(s.Gone) != 0 {
		t.Fatalf("processes %+v gone %v", s.Processes, s.Gone)
	}
	d, sc := s.Processes[0], s.Processes[1]
	if d.Identity != "decker:2345:a1b2c3d4e5f6" || d.Hostname != "decker" || d.PID != 2345 || d.Concurrency != 25 ||
		d.ConcurrencyFrom != "info" || d.Busy != 0 || !near(d.HeartbeatAge, 8750*time.Millisecond) || d.Quiet ||
		!d.Serves(QueueScheduler) || d.Version != "7.3.9" || d.Weights["default"] != 8 || len(d.Labels) != 1 {
		t.Errorf("decker: %+v", d)
	}
	if sc.Identity != "scotty:1234:5f0e2a9c1b3d" || sc.Busy != 3 || sc.RSSKB != 734216 || sc.RTT != 1412*time.Microsecond ||
		!near(sc.HeartbeatAge, 4187700*time.Microsecond) || sc.Serves(QueueScheduler) || sc.StartedAt.Unix() != 1795600000 {
		t.Errorf("scotty: %+v", sc)
	}
	if th, busy := s.Concurrency(); th != 50 || busy != 3 {
		t.Errorf("concurrency %d busy %d", th, busy)
	}
	for _, c := range Check(s, CheckConfig{}) {
		if !c.OK {
			t.Errorf("check %s: %s", c.Name, c.Detail)
		}
	}

	// 40 s later both heartbeats are stale (clock skew, or a process stuck
	// since its last beat): 44 and 49 s old, over the 30 s threshold and
	// under the 60 s after which Sidekiq deletes the records (with the
	// threshold at 60 s, as it was, this could never fail).
	later, err := Read(ctx(t), r, fixedNow.Add(40*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	stale := 0
	for _, c := range Check(later, CheckConfig{Latency: map[string]time.Duration{}, DefaultLatency: time.Hour}) {
		if strings.HasPrefix(c.Name, "sidekiq heartbeat ") {
			if c.OK || !strings.Contains(c.Detail, "over 30s") {
				t.Errorf("%s: %v %s", c.Name, c.OK, c.Detail)
			}
			stale++
		} else if !c.OK {
			t.Errorf("check %s: %s", c.Name, c.Detail)
		}
	}
	if stale != 2 {
		t.Errorf("%d heartbeat checks", stale)
	}
}

func TestReadSidekiq81(t *testing.T) {
	t.Parallel()
	w, r, cnt := testDB(t)
	load(t, w, "sidekiq-8.1")
	s, err := Read(ctx(t), r, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if cnt.pipelines.Load() != 2 || cnt.singles.Load() != 0 {
		t.Errorf("round trips: %d pipelines, %d single commands", cnt.pipelines.Load(), cnt.singles.Load())
	}
	if len(s.Problems) != 0 {
		t.Errorf("problems: %v", s.Problems)
	}
	if s.Processed != 98765 || s.Failed != 43 || s.Retry != 1 || s.Scheduled != 2 || s.Dead != 2 || s.Enqueued != 5 {
		t.Errorf("totals: %+v", s)
	}
	push, _ := s.Queue("push")
	// Right after the upgrade: the oldest push job is 7.x float seconds, the
	// newer ones 8.x integer milliseconds.
	if push.Size != 3 || push.Oldest.Unit != Seconds || !near(push.Latency, 150*time.Second) {
		t.Errorf("push %+v %+v", push, push.Oldest)
	}
	ingress, _ := s.Queue("ingress")
	if ingress.Oldest.Unit != Milliseconds || !near(ingress.Latency, 44500*time.Millisecond) {
		t.Errorf("ingress %+v %+v", ingress, ingress.Oldest)
	}
	sched, _ := s.Queue("scheduler")
	if !near(sched.Latency, 998*time.Millisecond) || sched.Oldest.JID != "5e6f7a8b9c0d1e2f3a4b5c6d" {
		t.Errorf("scheduler %+v", sched)
	}
	if fasp, ok := s.Queue("fasp"); !ok || fasp.Size != 0 || fasp.Latency != 0 {
		t.Errorf("fasp %+v", fasp)
	}
	if len(s.Gone) != 1 || s.Gone[0] != "scotty:999:0123456789ab" {
		t.Errorf("gone %v", s.Gone)
	}
	if len(s.Processes) != 2 {
		t.Fatalf("processes %+v", s.Processes)
	}
	d, sc := s.Processes[0], s.Processes[1]
	if d.Concurrency != 12 || d.ConcurrencyFrom != "info" || !d.Quiet || d.Capsules["default"].Concurrency != 12 || d.Version != "8.0.9" {
		t.Errorf("decker (8.0.9): %+v", d)
	}
	if sc.Concurrency != 10 || sc.ConcurrencyFrom != "hash" || sc.Busy != 7 || sc.Capsules["default"].Mode != "weighted" ||
		sc.Weights["push"] != 6 || sc.Version != "8.1.7" || !near(sc.HeartbeatAge, 2937500*time.Microsecond) {
		t.Errorf("scotty (8.1.7): %+v", sc)
	}

	results := map[string]CheckResult{}
	for _, c := range Check(s, CheckConfig{}) {
		results[c.Name] = c
	}
	for name, ok := range map[string]bool{
		"sidekiq queue push latency":      false, // 150 s over push's 2 min
		"sidekiq queue ingress latency":   true,
		"sidekiq queue fasp latency":      true,
		"sidekiq queue push served":       true,
		"sidekiq queue scheduler served":  false, // only the quiet decker lists it
		"sidekiq scheduler":               false,
		"sidekiq heartbeat " + d.Identity: true,
	} {
		c, found := results[name]
		if !found || c.OK != ok {
			t.Errorf("%s: %+v, want ok=%v", name, c, ok)
		}
	}
	if c := results["sidekiq scheduler"]; !strings.Contains(c.Detail, "quiet") {
		t.Errorf("scheduler detail %q", c.Detail)
	}
}

func TestReadSidekiq65(t *testing.T) {
	t.Parallel()
	w, r, _ := testDB(t)
	load(t, w, "sidekiq-6.5")
	s, err := Read(ctx(t), r, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Problems) != 0 || len(s.Processes) != 1 {
		t.Fatalf("%+v", s)
	}
	p := s.Processes[0]
	if p.Concurrency != 5 || p.ConcurrencyFrom != "info" || p.Weights != nil || p.Version != "" || !p.Serves("scheduler") {
		t.Errorf("6.5 process %+v", p)
	}
	if q, _ := s.Queue("default"); !near(q.Latency, 299500*time.Millisecond) {
		t.Errorf("default %+v", q)
	}
}

func TestReadEmpty(t *testing.T) {
	t.Parallel()
	_, r, cnt := testDB(t)
	s, err := Read(ctx(t), r, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if cnt.pipelines.Load() != 1 || s.RoundTrips != 1 || len(s.Queues) != 0 || len(s.Processes) != 0 || s.Processed != 0 {
		t.Errorf("%+v after %d pipelines", s, cnt.pipelines.Load())
	}
	checks := Check(s, CheckConfig{})
	bad := 0
	for _, c := range checks {
		if !c.OK {
			bad++
		}
	}
	if bad != 7 { // six expected queues unserved, and no scheduler
		t.Errorf("%d failing checks: %+v", bad, checks)
	}
}

// TestReadManyInTwoRoundTrips: the round trips do not grow with the number
// of queues and processes.
func TestReadManyInTwoRoundTrips(t *testing.T) {
	t.Parallel()
	w, r, cnt := testDB(t)
	c := ctx(t)
	pipe := w.Pipeline()
	for i := range 200 {
		q := "q" + strconv.Itoa(i)
		pipe.SAdd(c, "queues", q)
		pipe.LPush(c, "queue:"+q, `{"class":"X","jid":"j","queue":"`+q+`","enqueued_at":`+strconv.FormatInt(fixedNow.UnixMilli()-int64(i)*1000, 10)+`}`)
	}
	for i := range 100 {
		id := "host" + strconv.Itoa(i) + ":1:abc"
		info := `{"hostname":"h","pid":1,"concurrency":3,"queues":["q1"],"identity":"` + id + `"}`
		pipe.SAdd(c, "processes", id)
		pipe.HSet(c, id, "info", info, "busy", "1", "beat", "1795654790.0", "quiet", "false", "rss", "1", "rtt_us", "1")
	}
	if _, err := pipe.Exec(c); err != nil {
		t.Fatal(err)
	}
	s, err := Read(c, r, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if cnt.pipelines.Load() != 2 || cnt.singles.Load() != 0 {
		t.Errorf("%d pipelines, %d single commands", cnt.pipelines.Load(), cnt.singles.Load())
	}
	if len(s.Queues) != 200 || len(s.Processes) != 100 || s.Enqueued != 200 || len(s.Problems) != 0 {
		t.Fatalf("%d queues %d processes %d enqueued problems %v", len(s.Queues), len(s.Processes), s.Enqueued, s.Problems)
	}
	if q, _ := s.Queue("q199"); !near(q.Latency, 199*time.Second) {
		t.Errorf("q199 latency %v", q.Latency)
	}
}

// TestReadThroughPlainTunnel reads through a plain TCP address that a
// tunnel (here a minimal TLS-wrapping proxy, as redistls or stunnel would
// be) forwards to the TLS-only Redis.
func TestReadThroughPlainTunnel(t *testing.T) {
	t.Parallel()
	w, _, _ := testDB(t)
	load(t, w, "sidekiq-7.3")
	srv := testenv.RedisTLS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				up, err := tls.Dial("tcp", srv.Addr(), srv.TLSConfig())
				if err != nil {
					return
				}
				defer up.Close()
				go func() { io.Copy(up, c); up.CloseWrite() }()
				io.Copy(c, up)
			}()
		}
	}()
	plain := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), Username: srv.User, Password: srv.Password, DB: w.Options().DB})
	defer plain.Close()
	s, err := Read(ctx(t), plain, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Processes) != 2 || s.Processed != 1234567 || len(s.Problems) != 0 {
		t.Errorf("through the tunnel: %+v", s)
	}
}

// TestReadUnreachable: a Redis that is not there is an error, not stats.
func TestReadUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	if s, err := Read(ctx(t), c, fixedNow); err == nil || s != nil || !strings.Contains(err.Error(), "read Sidekiq stats: ") {
		t.Errorf("Read = %v, %v", s, err)
	}
}
