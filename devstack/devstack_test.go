package devstack

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/godo"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/doapi"
	"github.com/fediops/fediops/redistls"
	"github.com/fediops/fediops/sidekiqq"
	"github.com/fediops/fediops/spaces"
)

// TestStack starts a stack, seeds it and checks that every part answers
// through the files it wrote, as a program reading them would reach it;
// then Close leaves nothing listening and no directory.
func TestStack(t *testing.T) {
	beatEvery, jobsServedAfter = 300*time.Millisecond, time.Second // a faster Sidekiq stand-in
	defer func() { beatEvery, jobsServedAfter = 10*time.Second, 20*time.Second }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := Start(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(false)
	nums, err := st.Seed(ctx, SeedConfig{Accounts: 50, Statuses: 200, Attachments: 100, MediaObjects: 12, Jobs: 30})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"50 accounts, 200 statuses, 100 media_attachments", "12 media objects", "30 Sidekiq jobs, 2 processes"} {
		if !strings.Contains(nums, want) {
			t.Errorf("seed says %q, lacks %q", nums, want)
		}
	}
	if st.HasMySQL() || strings.Contains(nums, "WriteFreely") {
		t.Errorf("MariaDB without Config.MySQL")
	}

	// The .env reads back cleanly, as the programs read it.
	env, err := fediops.ReadEnv(st.EnvFile, fediops.WithEnviron(nil))
	if err != nil {
		t.Fatal(err)
	}
	if f := env.Lint(); len(f) > 0 {
		t.Errorf("lint findings: %v", f)
	}
	for _, f := range []string{st.EnvFile, st.SeedEnvFile, st.IdentityFile, st.ShellFile} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v (want mode 0600)", f, err)
		}
	}

	// stack.env exports what ShellEnv says, quoted for a shell.
	exports, err := os.ReadFile(st.ShellFile)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, kv := range st.ShellEnv() {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
		if !strings.Contains(string(exports), "export "+k+"="+shellQuote(v)+"\n") {
			t.Errorf("stack.env lacks %s:\n%s", k, exports)
		}
	}
	if vars["STACK_SPACES_KEY"] != st.MediaKeys[0] || vars["STACK_DIR"] != st.Dir || vars["STACK_PG_DIRECT_PORT"] != strconv.Itoa(st.DirectPort) {
		t.Errorf("stack.env: %v", vars)
	}
	if vars["STACK_TRY_TUNNEL_PORT"] == "" {
		t.Errorf("no STACK_TRY_TUNNEL_PORT")
	}

	// Web and streaming answer as Mastodon's health endpoints do.
	for _, u := range []string{st.Web + "/health", st.Streaming + "/api/v1/streaming/health"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "OK" {
			t.Errorf("GET %s: %s %q", u, resp.Status, body)
		}
	}

	// The DO stand-in serves the cluster with the database's CA, to the
	// token only.
	do, err := doapi.New(doapi.Options{Token: st.DO.Token, BaseURL: st.DO.URL})
	if err != nil {
		t.Fatal(err)
	}
	cl, _, err := do.Databases.Get(ctx, st.DO.ClusterID)
	if err != nil || cl.Name != ClusterName {
		t.Fatalf("cluster: %+v %v", cl, err)
	}
	ca, _, err := do.Databases.GetCA(ctx, st.DO.ClusterID)
	pem, _ := os.ReadFile(st.DBCAFile)
	if err != nil || !bytes.Equal(bytes.TrimSpace(ca.Certificate), bytes.TrimSpace(pem)) {
		t.Errorf("the cluster's CA is not the database's: %v", err)
	}
	wrong, err := doapi.New(doapi.Options{Token: "dop_v1_wrong", BaseURL: st.DO.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := wrong.Databases.Get(ctx, st.DO.ClusterID); doapi.Status(err) != http.StatusUnauthorized {
		t.Errorf("wrong token: %v", err)
	}
	var _ *godo.Client = do // doapi.New returns godo's client

	// The Space holds the media, through the settings of the .env.
	scfg, err := spaces.ConfigFromEnv(env.Lookup)
	if err != nil {
		t.Fatal(err)
	}
	media, err := spaces.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range media.Health(ctx, st.MediaKeys[len(st.MediaKeys)-1]) {
		if !r.OK {
			t.Errorf("spaces %s: %v", r.Name, r.Err)
		}
	}

	// The application user can restore into RestoreDatabase over the direct port.
	db, err := pgx.Connect(ctx, "postgres://"+env.Get("DB_USER")+":"+env.Get("DB_PASS")+"@127.0.0.1:"+strconv.Itoa(st.DirectPort)+
		"/"+RestoreDatabase+"?sslmode=verify-full&sslrootcert="+st.DBCAFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, "CREATE TABLE restore_probe (id int)"); err != nil {
		t.Errorf("create in %s: %v", RestoreDatabase, err)
	}
	db.Close(ctx)

	// The Sidekiq stand-in beats and serves its queues: through the
	// tunnel, the processes stay fresh and the oldest jobs young.
	ropt, err := redistls.ClientOptionsFromEnv(env.Lookup, "REDIS_")
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(ropt)
	defer rc.Close()
	time.Sleep(2500 * time.Millisecond)
	s, err := sidekiqq.Read(ctx, rc, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Processes) != 2 {
		t.Fatalf("%d processes", len(s.Processes))
	}
	for _, p := range s.Processes {
		if p.HeartbeatAge > time.Second {
			t.Errorf("%s: last beat %s ago", p.Identity, p.HeartbeatAge)
		}
		if ttl := rc.TTL(ctx, p.Identity).Val(); ttl <= 50*time.Second || ttl > processExpiry {
			t.Errorf("%s: TTL %s, want Sidekiq's 60 s", p.Identity, ttl)
		}
	}
	for _, q := range s.Queues {
		if q.Latency > 2*time.Second {
			t.Errorf("queue %s: latency %s, the stand-in's workers serve after %s", q.Name, q.Latency, jobsServedAfter)
		}
	}
	if s.Enqueued != 30 || s.Processed <= 1234567 {
		t.Errorf("enqueued %d (want 30, kept), processed %d (want more than seeded)", s.Enqueued, s.Processed)
	}

	// Everything named answers; after Close nothing does, and Dir is gone.
	addrs := st.Addrs()
	if len(addrs) != 9 { // postgres, pgbouncer, redis, tunnel, spaces, b2, do, web, streaming
		t.Errorf("Addrs: %v", addrs)
	}
	for _, a := range addrs {
		if !strings.Contains(st.Summary(), a) {
			t.Errorf("Summary lacks %s: %s", a, st.Summary())
		}
		c, err := net.DialTimeout("tcp", a, time.Second)
		if err != nil {
			t.Errorf("%s: %v", a, err)
			continue
		}
		c.Close()
	}
	if err := st.Close(false); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(false); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Close", a)
		}
	}
	if _, err := os.Stat(st.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left after Close: %v", st.Dir, err)
	}
}

// TestStartRefusesFullDir: Close removes Dir, so Start refuses one that
// holds something, and leaves it as it was.
func TestStartRefusesFullDir(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := Start(context.Background(), Config{Dir: dir}); err == nil || !strings.Contains(err.Error(), "is not empty") {
		if st != nil {
			st.Close(true)
		}
		t.Fatalf("Start in a directory with a file: %v", err)
	}
	if b, err := os.ReadFile(keep); err != nil || string(b) != "mine" {
		t.Errorf("the directory's file: %q %v", b, err)
	}
}

// TestStartCancelled: a Start that cannot finish stops what it started
// and leaves no directory.
func TestStartCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := filepath.Join(t.TempDir(), "stack")
	st, err := Start(ctx, Config{Dir: dir})
	if err == nil {
		st.Close(false)
		t.Fatal("Start with a cancelled context passed")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error does not say why: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left behind: %v", dir, err)
	}
}
