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
	c, err := pgx.Connect(ctx, pg.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, q := range []string{"DROP DATABASE IF EXISTS " + name + " WITH (FORCE)", "CREATE DATABASE " + name} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	d, err := pgx.Connect(ctx, strings.Replace(pg.AdminURL(), "/"+pg.Database+"?", "/"+name+"?", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(ctx)
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
	pg   *testenv.Postgres
	b2   *b2fake.Server
	env  []string
	id   *age.X25519Identity
	idf  string
	hook *httptest.Server
	msgs []string
	mu   sync.Mutex
}

func newFixture(t testing.TB, db string, envPort int) *fixture {
	f := &fixture{pg: testenv.PG(t), b2: b2fake.New()}
	t.Cleanup(f.b2.Close)
	f.b2.CreateBucket("fediops-backups")
	var err error
	if f.id, err = age.GenerateX25519Identity(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f.idf = filepath.Join(dir, "key.txt")
	os.WriteFile(f.idf, []byte(f.id.String()+"\n"), 0o600)
	f.hook = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		f.mu.Lock()
		f.msgs = append(f.msgs, fmt.Sprint(m))
		f.mu.Unlock()
	}))
	t.Cleanup(f.hook.Close)
	envFile := filepath.Join(dir, ".env.production")
	os.WriteFile(envFile, []byte(fmt.Sprintf("DB_HOST=%s\nDB_PORT=%d\nDB_NAME=%s\nDB_USER=%s\nDB_PASS='%s'\nDB_SSLMODE=require\n",
		f.pg.Host, envPort, db, f.pg.AdminUser, f.pg.AdminPassword)), 0o600)
	f.env = []string{"B2_APPLICATION_KEY_ID=" + f.b2.KeyID, "B2_APPLICATION_KEY=" + f.b2.Key, "B2_BUCKET=fediops-backups",
		"B2_API_BASE=" + f.b2.URL, "SLACK_WEBHOOK_URL=" + f.hook.URL, "BACKUP_TEST_ENV=" + envFile}
	return f
}

func (f *fixture) args(cmd string, more ...string) []string {
	envFile := strings.TrimPrefix(f.env[len(f.env)-1], "BACKUP_TEST_ENV=")
	return append([]string{cmd, "-env", envFile, "-pg-sslrootcert", f.pg.CAFile, "-sources", "postgres",
		"-lock", envFile + ".lock", "-recipient", f.id.Recipient().String(), "-identity", f.idf}, more...)
}

func TestCommandRunListRestoreVerifyPrune(t *testing.T) {
	testenv.Binary(t, "pg_dump")
	pg := testenv.PG(t)
	canary := "CANARY-cmd-5d1e"
	seed(t, pg, "bk_cmd", canary, 30)
	f := newFixture(t, "bk_cmd", 25061) // .env.production points at the pool, as DO's does

	r := run(t, f.env, f.args("run")...)
	if r.code != 2 || !strings.Contains(r.stderr, "direct connection") || !strings.Contains(r.stderr, "-pg-port 25060") {
		t.Fatalf("run against the pool port: exit %d, %s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, pg.AdminPassword) {
		t.Fatal("password in the error output")
	}
	port := fmt.Sprint(pg.Port)
	f.b2.FailNext("b2_upload_part", 1, 503)
	r = run(t, f.env, f.args("run", "-pg-port", port)...)
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
	r = run(t, f.env, f.args("restore", "-pg-port", port, "-to-database", "bk_cmd_restored")...)
	if r.code != 0 || !strings.Contains(r.stdout, "sha256") {
		t.Fatalf("restore: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = run(t, f.env, f.args("verify", "-pg-port", port, "-tolerance", "0")...)
	if r.code != 0 || !strings.Contains(r.stdout, "verify OK") || !strings.Contains(r.stdout, "public.statuses") {
		t.Fatalf("verify: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = run(t, f.env, f.args("prune", "-dry-run", "-keep", "1ns", "-keep-last", "1")...)
	if r.code != 0 || !strings.Contains(r.stdout, "deleted 0") {
		t.Fatalf("prune: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// failures: B2 refuses a part for good → exit 1, a loud Slack message, nothing new listed
	f.b2.FailNext("b2_upload_part", 1, 400)
	r = run(t, f.env, f.args("run", "-pg-port", port)...)
	if r.code != 1 || len(f.msgs) != 2 || !strings.Contains(f.msgs[1], "<!channel>") {
		t.Fatalf("failing run: exit %d, messages %q, %s", r.code, f.msgs, r.stderr)
	}
	if r := run(t, f.env, f.args("list")...); strings.Count(r.stdout, "postgres ") != 1 || len(f.b2.Unfinished("fediops-backups")) != 0 {
		t.Fatalf("after a failed run: %q, %d unfinished", r.stdout, len(f.b2.Unfinished("fediops-backups")))
	}
	if r := run(t, f.env, "bogus"); r.code != 2 {
		t.Errorf("unknown command: exit %d", r.code)
	}
	if r := run(t, nil, "units"); r.code != 0 || !strings.Contains(r.stdout, "OnCalendar=00/4:00") || !strings.Contains(r.stdout, "Persistent=true") {
		t.Errorf("units: %d %s", r.code, r.stdout)
	}
}
