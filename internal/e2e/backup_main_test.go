package e2e

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

// The backup program's tests: its commands as built, against testenv's
// PostgreSQL, Redis and MariaDB and the B2 stand-in (internal/b2fake), with
// a Slack webhook stand-in (httptest) and real .env.production files.

type bkResult struct {
	code           int
	stdout, stderr string
	maxRSS         int64 // bytes, from wait4's rusage
	wall           time.Duration
}

// bkRun runs the backup program as built, with Env(env...), and reads its
// peak RSS from rusage.
func bkRun(t testing.TB, env []string, args ...string) bkResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd, rss := bkTimed(t, ctx, Build(t, "backup"), args...)
	cmd.Env = Env(env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	t0 := time.Now()
	err := cmd.Run()
	r := bkResult{stdout: out.String(), stderr: errb.String(), wall: time.Since(t0), maxRSS: rss()}
	if cmd.ProcessState == nil {
		t.Fatalf("backup %v: %v", args, err)
	}
	r.code = cmd.ProcessState.ExitCode()
	return r
}

// bkTimed runs bin under GNU time, which reports the child's peak RSS
// (ru_maxrss from wait4). Reading rusage here directly would be wrong: Go
// starts children with vfork, and Linux records the parent's (this test's,
// with the B2 stand-in's stored objects) high-water RSS into the child's
// ru_maxrss at exec.
func bkTimed(t testing.TB, ctx context.Context, bin string, args ...string) (*exec.Cmd, func() int64) {
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

// bkSeed makes database name with a canary and about mb MB of random text.
func bkSeed(t testing.TB, pg *testenv.Postgres, name, canary string, mb int) {
	t.Helper()
	ctx := context.Background()
	d := bkCreateDatabase(t, pg, name, "")
	defer d.Close(ctx) // its temporary table goes with it
	for _, q := range []string{
		"CREATE TABLE settings (var text PRIMARY KEY, value text)",
		fmt.Sprintf("INSERT INTO settings VALUES ('secret', '%s')", canary),
		"CREATE TABLE statuses (id bigserial PRIMARY KEY, account_id bigint, text text NOT NULL)",
		// a pool of 2000 random-word paragraphs, then rows of 5 random paragraphs
		"CREATE TEMP TABLE para AS SELECT g AS i, string_agg(" + bkWordSQL + ", ' ') AS p FROM generate_series(0,1999) g, generate_series(1,40) h GROUP BY g",
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

var bkWordSQL = func() string {
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

type bkFixture struct {
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

// bkBucket starts a B2 stand-in with the bucket fediops-backups and
// returns the environment that points the program at it.
func bkBucket(t testing.TB) (*b2fake.Server, []string) {
	srv := b2fake.New()
	t.Cleanup(srv.Close)
	srv.CreateBucket("fediops-backups")
	return srv, []string{"B2_APPLICATION_KEY_ID=" + srv.KeyID, "B2_APPLICATION_KEY=" + srv.Key,
		"B2_BUCKET=fediops-backups", "B2_API_BASE=" + srv.URL}
}

// bkKeyFile makes an age identity and writes it to a file, as an admin keeps
// the private key.
func bkKeyFile(t testing.TB) (*age.X25519Identity, string) {
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

// bkCreateDatabase makes an empty database name owned by owner ("" = the
// admin) and connects to it as its owner.
func bkCreateDatabase(t testing.TB, pg *testenv.Postgres, name, owner string) *pgx.Conn {
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

// bkDotEnv writes a .env.production of the given lines (KEY=value, the
// values single-quoted as provision writes them).
func bkDotEnv(t testing.TB, path string, kv ...string) {
	t.Helper()
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, "%s='%s'\n", kv[i], kv[i+1])
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// bkPooledEnv are Mastodon's settings of a DO cluster as provision leaves
// them: DB_* point at the pool (host:poolPort, the pool's name), the
// direct database is named by FEDIOPS_DB_DIRECT_NAME and
// FEDIOPS_DB_DIRECT_PORT, the cluster's CA by FEDIOPS_DB_CA_FILE.
func bkPooledEnv(pg *testenv.Postgres, poolPort int, db, user, pass string) []string {
	return []string{"DB_HOST", pg.Host, "DB_PORT", strconv.Itoa(poolPort), "DB_NAME", testenv.PoolName,
		"DB_USER", user, "DB_PASS", pass, "DB_SSLMODE", "require", "PREPARED_STATEMENTS", "false",
		"NODE_EXTRA_CA_CERTS", pg.CAFile, pgpool.EnvCAFile, pg.CAFile, pgpool.EnvPooled, "true",
		pgpool.EnvDirectName, db, pgpool.EnvDirectPort, strconv.Itoa(pg.Port)}
}

// newBkFixture makes a B2 stand-in, an age key, a Slack webhook stand-in
// and a .env.production for database db as DO's admin (who may create the
// restore drill's scratch database), pooled on DO's port 25061 with the
// direct settings.
func newBkFixture(t testing.TB, db string) *bkFixture {
	f := &bkFixture{pg: testenv.PG(t)}
	f.b2, f.env = bkBucket(t)
	f.id, f.idf = bkKeyFile(t)
	f.hook = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		f.mu.Lock()
		f.msgs = append(f.msgs, fmt.Sprint(m))
		f.mu.Unlock()
	}))
	t.Cleanup(f.hook.Close)
	f.envFile = filepath.Join(t.TempDir(), ".env.production")
	bkDotEnv(t, f.envFile, bkPooledEnv(f.pg, pgpool.PoolPort, db, f.pg.AdminUser, f.pg.AdminPassword)...)
	f.env = append(f.env, "SLACK_WEBHOOK_URL="+f.hook.URL)
	return f
}

// args are the command's flags for the fixture: -env, and run's sources,
// lock and recipient, restore's and verify's identity.
func (f *bkFixture) args(cmd string, more ...string) []string {
	args := []string{cmd, "-env", f.envFile}
	switch cmd {
	case "run", "units":
		args = append(args, "-sources", "postgres", "-lock", f.envFile+".lock", "-recipient", f.id.Recipient().String())
	case "restore", "verify":
		args = append(args, "-identity", f.idf)
	}
	return append(args, more...)
}

func TestCommandRunListRestoreVerifyPrune(t *testing.T) {
	testenv.Binary(t, "pg_dump")
	pg := testenv.PG(t)
	canary := "CANARY-cmd-5d1e"
	bkSeed(t, pg, "bk_cmd", canary, 30)
	f := newBkFixture(t, "bk_cmd")
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
	r := bkRun(t, f.env, f.args("run")...)
	if r.code != 2 || !strings.Contains(r.stderr, "direct connection") || !strings.Contains(r.stderr, pgpool.EnvDirectName) {
		t.Fatalf("run with the pool alone: exit %d, %s", r.code, r.stderr)
	}
	// The timer's run cannot start: Slack hears it, without the password.
	if len(f.msgs) != 1 || !strings.Contains(f.msgs[0], "BACKUP FAILED") || !strings.Contains(f.msgs[0], pgpool.EnvDirectName) {
		t.Fatalf("Slack messages after a run that could not start: %q", f.msgs)
	}
	if strings.Contains(r.stderr+f.msgs[0], pg.AdminPassword) {
		t.Fatal("password in the error output or the notification")
	}
	os.WriteFile(f.envFile, withDirect, 0o600)
	f.b2.FailNext("b2_upload_part", 1, 503)
	r = bkRun(t, f.env, f.args("run")...)
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("run: exit %d\nstdout %q\nstderr %s", r.code, r.stdout, r.stderr)
	}
	t.Logf("run: %s, peak RSS %.1f MiB", r.wall.Round(time.Millisecond), float64(r.maxRSS)/(1<<20))
	if r.maxRSS > 64<<20 {
		t.Errorf("peak RSS %d MiB > 64 MiB", r.maxRSS>>20)
	}
	if len(f.msgs) != 2 || !strings.Contains(f.msgs[1], "Backup OK") {
		t.Errorf("Slack messages: %q", f.msgs)
	}
	for _, file := range f.b2.Files("fediops-backups") {
		for _, s := range []string{canary, pg.AdminPassword} {
			if bytes.Contains(file.Data, []byte(s)) {
				t.Errorf("%q in plaintext in %s", s, file.Name)
			}
		}
	}
	r = bkRun(t, f.env, f.args("list")...)
	if r.code != 0 || strings.Count(r.stdout, "postgres ") != 1 {
		t.Fatalf("list: %d %q %s", r.code, r.stdout, r.stderr)
	}
	// restore into a fresh database, verify drill
	c, _ := pgx.Connect(context.Background(), pg.AdminURL())
	c.Exec(context.Background(), "DROP DATABASE IF EXISTS bk_cmd_restored")
	c.Exec(context.Background(), "CREATE DATABASE bk_cmd_restored")
	c.Close(context.Background())
	r = bkRun(t, f.env, f.args("restore", "-to-database", "bk_cmd_restored")...)
	if r.code != 0 || !strings.Contains(r.stdout, "sha256") {
		t.Fatalf("restore: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = bkRun(t, f.env, f.args("verify", "-tolerance", "0")...)
	if r.code != 0 || !strings.Contains(r.stdout, "verify OK") || !strings.Contains(r.stdout, "public.statuses") {
		t.Fatalf("verify: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = bkRun(t, f.env, f.args("prune", "-dry-run", "-keep", "1ns", "-keep-last", "1")...)
	if r.code != 0 || !strings.Contains(r.stdout, "deleted 0") {
		t.Fatalf("prune: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// failures: B2 refuses a part for good → exit 1, a loud Slack message, nothing new listed
	f.b2.FailNext("b2_upload_part", 1, 400)
	r = bkRun(t, f.env, f.args("run")...)
	if r.code != 1 || len(f.msgs) != 3 || !strings.Contains(f.msgs[2], "<!channel>") {
		t.Fatalf("failing run: exit %d, messages %q, %s", r.code, f.msgs, r.stderr)
	}
	if r := bkRun(t, f.env, f.args("list")...); strings.Count(r.stdout, "postgres ") != 1 || len(f.b2.Unfinished("fediops-backups")) != 0 {
		t.Fatalf("after a failed run: %q, %d unfinished", r.stdout, len(f.b2.Unfinished("fediops-backups")))
	}
	if r := bkRun(t, f.env, "bogus"); r.code != 2 {
		t.Errorf("unknown command: exit %d", r.code)
	}

}
