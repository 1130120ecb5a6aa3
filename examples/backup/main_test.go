package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/jackc/pgx/v5"

	"github.com/fediops/fediops/internal/b2fake"
	"github.com/fediops/fediops/internal/testenv"
	"github.com/fediops/fediops/pgpool"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds this example once per test binary.
func binary(t testing.TB) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fediops-backup-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "backup")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type result struct {
	code           int
	stdout, stderr string
	maxRSS         int64 // bytes, from wait4's rusage
	wall           time.Duration
}

// run executes the example binary and reads its peak RSS from rusage.
func run(t testing.TB, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd, rss := timed(t, ctx, binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	t0 := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), wall: time.Since(t0), maxRSS: rss()}
	if cmd.ProcessState == nil {
		t.Fatalf("backup %v: %v", args, err)
	}
	r.code = cmd.ProcessState.ExitCode()
	return r
}

// timed runs bin under GNU time, which reports the child's peak RSS
// (ru_maxrss from wait4). Reading rusage here directly would be wrong: Go
// starts children with vfork, and Linux records the parent's (this test's,
// with the B2 stand-in's stored objects) high-water RSS into the child's
// ru_maxrss at exec.
func timed(t testing.TB, ctx context.Context, bin string, args ...string) (*exec.Cmd, func() int64) {
	t.Helper()
	gnuTime, err := exec.LookPath("/usr/bin/time")
	if err != nil {
		t.Fatal("GNU time is needed to measure peak RSS: apt-get install time")
	}
	f, err := os.CreateTemp(t.TempDir(), "rss")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	cmd := exec.CommandContext(ctx, gnuTime, append([]string{"-f", "%M", "-o", f.Name(), bin}, args...)...)
	// time and the backup run share a new process group: a timeout or the
	// test's end kills both (killing only time orphaned runs that kept the
	// lock), and time dies with this test process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	t.Cleanup(func() {
		if cmd.Process != nil && cmd.ProcessState == nil { // started, not waited for
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	return cmd, func() int64 {
		data, _ := os.ReadFile(f.Name())
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		kb, _ := strconv.ParseInt(lines[len(lines)-1], 10, 64)
		return kb * 1024
	}
}

// seed makes database name with a canary and about mb MB of random text.
func seed(t testing.TB, pg *testenv.Postgres, name, canary string, mb int) {
	t.Helper()
	ctx := context.Background()
	d := createDatabase(t, pg, name, "")
	defer d.Close(ctx) // its temporary table goes with it
	for _, q := range []string{
		"CREATE TABLE settings (var text PRIMARY KEY, value text)",
		fmt.Sprintf("INSERT INTO settings VALUES ('secret', '%s')", canary),
		"CREATE TABLE statuses (id bigserial PRIMARY KEY, account_id bigint, text text NOT NULL)",
		// a pool of 2000 random-word paragraphs, then rows of 5 random paragraphs
		"CREATE TEMP TABLE para AS SELECT g AS i, string_agg(" + wordSQL + ", ' ') AS p FROM generate_series(0,1999) g, generate_series(1,40) h GROUP BY g",
		"ALTER TABLE para ADD PRIMARY KEY (i)",
	} {
		if _, err := d.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	rows := mb * 1000 * 1000 / 1200
	for done := 0; done < rows; done += 50000 {
		n := min(50000, rows-done)
		q := fmt.Sprintf(`INSERT INTO statuses (account_id, text)
			SELECT g %% 1000, (SELECT string_agg(p, ' ') FROM para WHERE i IN (
				(g*7919+1) %% 2000, (g*104729+2) %% 2000, (g*1299709+3) %% 2000, floor(random()*2000)::int, floor(random()*2000)::int))
			FROM generate_series(%d::bigint, %d::bigint) g`, done+1, done+n)
		if _, err := d.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		t.Fatal(err)
	}
}

var wordSQL = func() string {
	words := strings.Fields(`the a fediverse toot boost follow instance server admin moderation timeline federation post
	reply mention hashtag media image video link preview account profile block mute report queue sidekiq redis postgres
	backup restore encrypt compress stream upload bucket object storage retention policy notification slack webhook cron
	timer systemd droplet snapshot tier puma streaming node ruby rails database pool connection transaction replica
	primary failover tunnel certificate authority verify trust key secret password token session cookie cache cdn alias`)
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + w + "'"
	}
	return fmt.Sprintf("(ARRAY[%s])[1+floor(random()*%d)::int]", strings.Join(q, ","), len(words))
}()

type fixture struct {
	pg      *testenv.Postgres
	b2      *b2fake.Server
	env     []string // the process environment: B2 and Slack
	envFile string   // .env.production
	id      *age.X25519Identity
	idf     string
	hook    *httptest.Server
	msgs    []string
	mu      sync.Mutex
}

// b2Bucket starts a B2 stand-in with the bucket fediops-backups and
// returns the environment that points the program at it.
func b2Bucket(t testing.TB) (*b2fake.Server, []string) {
	srv := b2fake.New()
	t.Cleanup(srv.Close)
	srv.CreateBucket("fediops-backups")
	return srv, []string{"B2_APPLICATION_KEY_ID=" + srv.KeyID, "B2_APPLICATION_KEY=" + srv.Key,
		"B2_BUCKET=fediops-backups", "B2_API_BASE=" + srv.URL}
}

// keyFile makes an age identity and writes it to a file, as an admin keeps
// the private key.
func keyFile(t testing.TB) (*age.X25519Identity, string) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(path, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return id, path
}

// createDatabase makes an empty database name owned by owner ("" = the
// admin) and connects to it as its owner.
func createDatabase(t testing.TB, pg *testenv.Postgres, name, owner string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, pg.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	create, url := "CREATE DATABASE "+name, pg.AdminURL()
	if owner != "" {
		create, url = create+" OWNER "+owner, pg.URL()
	}
	for _, q := range []string{"DROP DATABASE IF EXISTS " + name + " WITH (FORCE)", create} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	d, err := pgx.Connect(ctx, strings.Replace(url, "/"+pg.Database+"?", "/"+name+"?", 1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	return d
}

// dotEnv writes a .env.production of the given lines (KEY=value, the
// values single-quoted as provision writes them).
func dotEnv(t testing.TB, path string, kv ...string) {
	t.Helper()
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, "%s='%s'\n", kv[i], kv[i+1])
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// pooledEnv are Mastodon's settings of a DO cluster as provision leaves
// them: DB_* point at the pool (host:poolPort, the pool's name), the
// direct database is named by FEDIOPS_DB_DIRECT_NAME and
// FEDIOPS_DB_DIRECT_PORT, the cluster's CA by FEDIOPS_DB_CA_FILE.
func pooledEnv(pg *testenv.Postgres, poolPort int, db, user, pass string) []string {
	return []string{"DB_HOST", pg.Host, "DB_PORT", strconv.Itoa(poolPort), "DB_NAME", testenv.PoolName,
		"DB_USER", user, "DB_PASS", pass, "DB_SSLMODE", "require", "PREPARED_STATEMENTS", "false",
		"NODE_EXTRA_CA_CERTS", pg.CAFile, pgpool.EnvCAFile, pg.CAFile, pgpool.EnvPooled, "true",
		pgpool.EnvDirectName, db, pgpool.EnvDirectPort, strconv.Itoa(pg.Port)}
}

// newFixture makes a B2 stand-in, an age key, a Slack webhook stand-in
// and a .env.production for database db as DO's admin (who may create the
// restore drill's scratch database), pooled on DO's port 25061 with the
// direct settings.
func newFixture(t testing.TB, db string) *fixture {
	f := &fixture{pg: testenv.PG(t)}
	f.b2, f.env = b2Bucket(t)
	f.id, f.idf = keyFile(t)
	f.hook = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		f.mu.Lock()
		f.msgs = append(f.msgs, fmt.Sprint(m))
		f.mu.Unlock()
	}))
	t.Cleanup(f.hook.Close)
	f.envFile = filepath.Join(t.TempDir(), ".env.production")
	dotEnv(t, f.envFile, pooledEnv(f.pg, pgpool.PoolPort, db, f.pg.AdminUser, f.pg.AdminPassword)...)
	f.env = append(f.env, "SLACK_WEBHOOK_URL="+f.hook.URL)
	return f
}

func (f *fixture) args(cmd string, more ...string) []string {
	return append([]string{cmd, "-env", f.envFile, "-sources", "postgres", "-lock", f.envFile + ".lock",
		"-recipient", f.id.Recipient().String(), "-identity", f.idf}, more...)
}

func TestCommandRunListRestoreVerifyPrune(t *testing.T) {
	testenv.Binary(t, "pg_dump")
	pg := testenv.PG(t)
	canary := "CANARY-cmd-5d1e"
	seed(t, pg, "bk_cmd", canary, 30)
	f := newFixture(t, "bk_cmd")
	// .env.production points at the pool, as DO's does, and does not say
	// which database is behind it.
	withDirect, err := os.ReadFile(f.envFile)
	if err != nil {
		t.Fatal(err)
	}
	var poolOnly []string
	for _, l := range strings.Split(string(withDirect), "\n") {
		if !strings.HasPrefix(l, "FEDIOPS_DB_DIRECT_") {
			poolOnly = append(poolOnly, l)
		}
	}
	os.WriteFile(f.envFile, []byte(strings.Join(poolOnly, "\n")), 0o600)
	r := run(t, f.env, f.args("run")...)
	if r.code != 2 || !strings.Contains(r.stderr, "direct connection") || !strings.Contains(r.stderr, pgpool.EnvDirectName) {
		t.Fatalf("run with the pool alone: exit %d, %s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, pg.AdminPassword) {
		t.Fatal("password in the error output")
	}
	os.WriteFile(f.envFile, withDirect, 0o600)
	f.b2.FailNext("b2_upload_part", 1, 503)
	r = run(t, f.env, f.args("run")...)
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("run: exit %d\nstdout %q\nstderr %s", r.code, r.stdout, r.stderr)
	}
	t.Logf("run: %s, peak RSS %.1f MiB", r.wall.Round(time.Millisecond), float64(r.maxRSS)/(1<<20))
	if r.maxRSS > 64<<20 {
		t.Errorf("peak RSS %d MiB > 64 MiB", r.maxRSS>>20)
	}
	if len(f.msgs) != 1 || !strings.Contains(f.msgs[0], "Backup OK") {
		t.Errorf("Slack messages: %q", f.msgs)
	}
	for _, file := range f.b2.Files("fediops-backups") {
		for _, s := range []string{canary, pg.AdminPassword} {
			if bytes.Contains(file.Data, []byte(s)) {
				t.Errorf("%q in plaintext in %s", s, file.Name)
			}
		}
	}
	r = run(t, f.env, f.args("list")...)
	if r.code != 0 || strings.Count(r.stdout, "postgres ") != 1 {
		t.Fatalf("list: %d %q %s", r.code, r.stdout, r.stderr)
	}
	// restore into a fresh database, verify drill
	c, _ := pgx.Connect(context.Background(), pg.AdminURL())
	c.Exec(context.Background(), "DROP DATABASE IF EXISTS bk_cmd_restored")
	c.Exec(context.Background(), "CREATE DATABASE bk_cmd_restored")
	c.Close(context.Background())
	r = run(t, f.env, f.args("restore", "-to-database", "bk_cmd_restored")...)
	if r.code != 0 || !strings.Contains(r.stdout, "sha256") {
		t.Fatalf("restore: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = run(t, f.env, f.args("verify", "-tolerance", "0")...)
	if r.code != 0 || !strings.Contains(r.stdout, "verify OK") || !strings.Contains(r.stdout, "public.statuses") {
		t.Fatalf("verify: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = run(t, f.env, f.args("prune", "-dry-run", "-keep", "1ns", "-keep-last", "1")...)
	if r.code != 0 || !strings.Contains(r.stdout, "deleted 0") {
		t.Fatalf("prune: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// failures: B2 refuses a part for good → exit 1, a loud Slack message, nothing new listed
	f.b2.FailNext("b2_upload_part", 1, 400)
	r = run(t, f.env, f.args("run")...)
	if r.code != 1 || len(f.msgs) != 2 || !strings.Contains(f.msgs[1], "<!channel>") {
		t.Fatalf("failing run: exit %d, messages %q, %s", r.code, f.msgs, r.stderr)
	}
	if r := run(t, f.env, f.args("list")...); strings.Count(r.stdout, "postgres ") != 1 || len(f.b2.Unfinished("fediops-backups")) != 0 {
		t.Fatalf("after a failed run: %q, %d unfinished", r.stdout, len(f.b2.Unfinished("fediops-backups")))
	}
	if r := run(t, f.env, "bogus"); r.code != 2 {
		t.Errorf("unknown command: exit %d", r.code)
	}

}
