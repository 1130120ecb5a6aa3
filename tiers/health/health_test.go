package health

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/internal/s3fake"
	"github.com/fediops/fediops/internal/testenv"
	"github.com/fediops/fediops/redistls"
	"github.com/fediops/fediops/spaces"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestChecksFromEnv runs every check of a whole instance made of real
// parts: pgBouncer in front of PostgreSQL (TLS, SCRAM), a TLS-only Redis
// behind the redistls tunnel, an S3 server, an OpenSearch stand-in and
// web/streaming HTTP servers.
func TestChecksFromEnv(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	b := testenv.Bouncer(t)
	r := testenv.NewRedis(t) // its own: this test stops it

	conf := fmt.Sprintf("[redis-client]\nclient = yes\naccept = 127.0.0.1:0\nconnect = %s\nCAfile = %s\nverifyChain = yes\n", r.Addr(), r.CAFile)
	tcfg, err := redistls.ParseConfig("redis.conf", strings.NewReader(conf))
	if err != nil {
		t.Fatal(err)
	}
	tcfg.Password = r.Password
	tun, err := redistls.New(tcfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := tun.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tun.Shutdown(context.Background()) })
	tunHost, tunPort, _ := strings.Cut(tun.Addr("redis-client").String(), ":")

	s3 := s3fake.New(t)
	if err := s3.CreateBucket("media"); err != nil {
		t.Fatal(err)
	}
	_, s3port, _ := strings.Cut(s3.Addr, ":")

	web := webStandIn(t)
	search := newFakeSearch(t, &fakeSearch{health: health("green", 0), status: 200, indices: allIndices("")})
	searchHost, searchPort, _ := strings.Cut(strings.TrimPrefix(search.URL, "http://"), ":")

	env := pooledEnv(b, "NODE_EXTRA_CA_CERTS")
	maps.Copy(env, map[string]string{
		"REDIS_HOST": tunHost, "REDIS_PORT": tunPort, "REDIS_PASSWORD": r.Password,
		"S3_ENABLED": "true", "S3_BUCKET": "media", "S3_REGION": "nyc3", "S3_PROTOCOL": "http",
		"S3_ENDPOINT": s3.URL, "S3_HOSTNAME": "127.0.0.1:" + s3port,
		"AWS_ACCESS_KEY_ID": "NOTINAMILLI0NYEARS", "AWS_SECRET_ACCESS_KEY": "hahahahahahahahahahahahaha",
		"ES_ENABLED": "true", "ES_HOST": searchHost, "ES_PORT": searchPort,
	})
	scfg, err := spaces.ConfigFromEnv(fediops.MapLookup(env))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := spaces.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Put(ctx, "site_uploads/files/thumbnail.png", strings.NewReader("png"), nil); err != nil {
		t.Fatal(err)
	}

	checks, closeAll := ChecksFromEnv(ctx, fediops.MapLookup(env), Options{
		Web: []string{web}, Streaming: []string{web}, SpacesKey: "site_uploads/files/thumbnail.png"})
	defer closeAll()
	rep := Run(ctx, 10*time.Second, checks...)
	byName := map[string]Result{}
	for _, res := range rep.Results {
		byName[strings.Fields(res.Name)[0]] = res
		t.Logf("%-20s %-4s %8v %s %s", res.Name, res.Status, res.Latency.Round(time.Microsecond), res.Detail, res.Error)
	}
	for _, name := range []string{"web", "streaming", "database", "redis", "spaces", "search"} {
		if res, ok := byName[name]; !ok || res.Status != StatusOK {
			t.Errorf("%s: %+v", name, res)
		}
	}
	// No Sidekiq is running: the scheduler check says so.
	if res := byName["sidekiq"]; res.Status != StatusFail || !strings.Contains(res.Error, "scheduler") {
		t.Errorf("sidekiq: %+v", res)
	}
	if rep.OK() {
		t.Error("report OK without sidekiq")
	}

	// Stop Redis: redis and sidekiq fail through the tunnel, the rest holds;
	// no password in any error.
	r.Stop()
	rep = Run(ctx, 5*time.Second, checks...)
	for _, res := range rep.Results {
		name := strings.Fields(res.Name)[0]
		want := StatusOK
		if name == "redis" || name == "sidekiq" {
			want = StatusFail
		}
		if res.Status != want {
			t.Errorf("after Redis stopped: %s %s %s", res.Name, res.Status, res.Error)
		}
		for _, secret := range []string{r.Password, b.Password, "hahahahahahahahahahahahaha"} {
			if strings.Contains(res.Error+res.Detail, secret) {
				t.Errorf("%s leaks a secret: %s", res.Name, res.Error)
			}
		}
	}

	// Bad settings become failing checks that name the variable.
	env["DB_PORT"] = "25o61"
	checks, closeBad := ChecksFromEnv(ctx, fediops.MapLookup(env), Options{Web: []string{}, Streaming: []string{}})
	defer closeBad()
	rep = Run(ctx, 5*time.Second, checks...)
	if rep.Results[0].Name != "database" || rep.Results[0].Status != StatusFail || !strings.Contains(rep.Results[0].Error, "DB_PORT") {
		t.Errorf("bad DB_PORT: %+v", rep.Results[0])
	}
}

// TestSidekiqRedis: Sidekiq's data is read where SIDEKIQ_REDIS_* point
// (Mastodon inherits REDIS_* only when SIDEKIQ_REDIS_URL, _HOST and
// _SENTINELS are all unset), not from REDIS_*.
func TestSidekiqRedis(t *testing.T) {
	r := testenv.RedisTLS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Sidekiq's data in database 9 of the shared Redis, apart from the
	// other tests' (database 0).
	sq := redisDB(t, r, 9)
	if err := sq.SAdd(ctx, "queues", "default").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Del(context.Background(), "queues") })
	env := map[string]string{"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "1", // nothing listens there
		"SIDEKIQ_REDIS_URL": strings.TrimSuffix(r.URL(), "/0") + "/9", "FEDIOPS_REDIS_CA_FILE": r.CAFile}
	checks, closeAll := ChecksFromEnv(ctx, fediops.MapLookup(env), Options{Web: []string{}, Streaming: []string{}})
	defer closeAll()
	rep := Run(ctx, 5*time.Second, checks...)
	var sidekiq *Result
	for i, res := range rep.Results {
		if res.Name == "sidekiq" {
			if sidekiq != nil {
				t.Fatalf("two sidekiq checks: %+v", rep.Results)
			}
			sidekiq = &rep.Results[i]
		}
	}
	if sidekiq == nil {
		t.Fatalf("no sidekiq check: %+v", rep.Results)
	}
	// The queue is served by nobody, so the check fails, but on the data
	// it read from SIDEKIQ_REDIS_URL (the detail counts sub-checks).
	if !strings.Contains(sidekiq.Detail, "processes") || strings.Contains(sidekiq.Error, "127.0.0.1:1") {
		t.Fatalf("sidekiq did not read SIDEKIQ_REDIS_URL: %+v", *sidekiq)
	}

}

// TestSidekiqVanishedAndFASP: the Sidekiq check built from the settings
// expects the fasp queue when EXPERIMENTAL_FEATURES names it, and reports a
// process that vanished between two runs (the runs remember the processes
// in Redis, as two cron runs would).
func TestSidekiqVanishedAndFASP(t *testing.T) {
	r := testenv.RedisTLS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sq := redisDB(t, r, 11)
	t.Cleanup(func() { sq.FlushDB(context.Background()) })
	if err := sq.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	beat := func(id string, queues ...string) {
		info := fmt.Sprintf(`{"hostname":%q,"pid":1,"concurrency":5,"queues":[%s],"identity":%q,"started_at":%d}`,
			strings.Split(id, ":")[0], `"`+strings.Join(queues, `","`)+`"`, id, time.Now().Add(-time.Hour).Unix())
		p := sq.TxPipeline()
		p.SAdd(ctx, "processes", id)
		p.HSet(ctx, id, "info", info, "beat", fmt.Sprintf("%.3f", float64(time.Now().UnixMilli())/1000), "busy", 0, "quiet", "false")
		p.Expire(ctx, id, time.Minute)
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	all := []string{"default", "push", "ingress", "mailers", "pull"}
	beat("scotty:1:aaa", all...)
	beat("decker:1:bbb", append(all, "scheduler")...)
	env := map[string]string{"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "1", "EXPERIMENTAL_FEATURES": "fasp",
		"SIDEKIQ_REDIS_URL": strings.TrimSuffix(r.URL(), "/0") + "/11", "FEDIOPS_REDIS_CA_FILE": r.CAFile}
	sidekiq := func() Result {
		checks, closeAll := ChecksFromEnv(ctx, fediops.MapLookup(env), Options{Web: []string{}, Streaming: []string{}})
		defer closeAll()
		for _, res := range Run(ctx, 5*time.Second, checks...).Results {
			if res.Name == "sidekiq" {
				return res
			}
		}
		t.Fatal("no sidekiq check")
		return Result{}
	}
	res := sidekiq()
	if res.Status != StatusFail || !strings.Contains(res.Error, "sidekiq queue fasp served") || strings.Contains(res.Error, "vanished") {
		t.Fatalf("first run: %+v", res)
	}
	// scotty's process dies without a successor; decker now serves fasp.
	sq.Del(ctx, "scotty:1:aaa")
	beat("decker:1:bbb", append(all, "scheduler", "fasp")...)
	res = sidekiq()
	if res.Status != StatusFail || !strings.Contains(res.Error, "sidekiq vanished scotty:1:aaa") || strings.Contains(res.Error, "fasp served") {
		t.Fatalf("second run: %+v", res)
	}
}

// redisDB is a client of database db of r, closed when the test ends
// (after the test's own cleanups, which run last first).
func redisDB(t *testing.T, r *testenv.Redis, db int) *redis.Client {
	base := r.Client()
	opt := *base.Options()
	base.Close()
	opt.DB = db
	c := redis.NewClient(&opt)
	t.Cleanup(func() { c.Close() })
	return c
}
