package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/jackc/pgx/v5"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/agezstd"
	"github.com/fediops/fediops/backup/b2store"
	"github.com/fediops/fediops/internal/b2fake"
	"github.com/fediops/fediops/internal/testenv"
	"github.com/fediops/fediops/pgpool"
)

// bkLogFile is the path of a testenv server's log (postgres.log,
// pgbouncer.log); the test needs testenv's own servers to read them.
func bkLogFile(t *testing.T, name string) string {
	t.Helper()
	for _, l := range testenv.Shared(t).Logs() {
		if filepath.Base(l) == name {
			return l
		}
	}
	t.Fatalf("no %s among testenv's logs: this test reads the servers' logs and needs testenv's local servers "+
		"(unset FEDIOPS_TEST_POSTGRES_URL and FEDIOPS_TEST_PGBOUNCER_URL)", name)
	return ""
}

func bkReadLog(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// bkOwnedDatabase makes database name owned by the application user, with a
// table of rows it wrote, as Mastodon's database is on DO.
func bkOwnedDatabase(t *testing.T, pg *testenv.Postgres, name string, rows int) {
	t.Helper()
	if _, err := bkCreateDatabase(t, pg, name, pg.User).Exec(context.Background(), fmt.Sprintf(`CREATE TABLE statuses (id bigserial PRIMARY KEY, text text);
		INSERT INTO statuses (text) SELECT 'toot ' || g FROM generate_series(1, %d) g`, rows)); err != nil {
		t.Fatal(err)
	}
}

// bkPgDumpEnv finds the running pg_dump of database db (by its
// environment, which holds PGAPPNAME=fediops-backup and PGDATABASE) and
// returns its environment and command line, as the kernel shows them.
func bkPgDumpEnv(db string) (env map[string]string, cmdline string, ok bool) {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		comm, _ := os.ReadFile(d + "/comm")
		if strings.TrimSpace(string(comm)) != "pg_dump" {
			continue
		}
		raw, _ := os.ReadFile(d + "/environ")
		env = map[string]string{}
		for _, kv := range strings.Split(string(raw), "\x00") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
		if env["PGAPPNAME"] == "fediops-backup" && env["PGDATABASE"] == db {
			argv, _ := os.ReadFile(d + "/cmdline")
			return env, string(bytes.ReplaceAll(argv, []byte{0}, []byte{' '})), true
		}
	}
	return nil, "", false
}

// Mastodon's settings as provision writes them, the pool on pgBouncer's
// own (not DO's) port, feed `backup run` with no database flag: pg_dump
// reaches PostgreSQL directly, over TLS (pg_stat_ssl) that it verifies
// fully against the private CA (sslmode=verify-full in its environment,
// the password there and not in its arguments), and pgBouncer's log shows
// no login. A CA that did not sign the server's certificate fails the run
// naming the CA file; one that is not there fails it before anything runs.
func TestRunTakesTheDirectConnectionFromPgpool(t *testing.T) {
	testenv.Binary(t, "pg_dump")
	pg, bouncer := testenv.PG(t), testenv.Bouncer(t)
	if bouncer.Port == pgpool.PoolPort {
		t.Fatalf("pgBouncer on DO's pool port %d: this test wants the pool elsewhere", bouncer.Port)
	}
	bouncerLog := bkLogFile(t, "pgbouncer.log")
	bkOwnedDatabase(t, pg, "bk_pooled", 500)
	f := newBkFixture(t, "bk_pooled")
	settings := bkPooledEnv(pg, bouncer.Port, "bk_pooled", pg.User, pg.Password)
	bkDotEnv(t, f.envFile, settings...)
	loginsBefore := strings.Count(bkReadLog(t, bouncerLog), "login attempt")

	// Hold pg_dump at its table lock while it is looked at.
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, strings.Replace(pg.AdminURL(), "/"+pg.Database+"?", "/bk_pooled?", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	tx, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "LOCK TABLE statuses IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	watch, err := pgx.Connect(ctx, pg.AdminURL()) // outside the transaction, whose statistics would stand still
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(ctx)
	done := make(chan bkResult, 1)
	go func() { done <- bkRun(t, f.env, f.args("run")...) }()
	var ssl bool
	var tlsVersion, waiting string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := watch.QueryRow(ctx, `SELECT s.ssl, coalesce(s.version, ''), coalesce(a.wait_event_type, '')
			FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
			WHERE a.application_name = 'fediops-backup' AND a.datname = 'bk_pooled'`).Scan(&ssl, &tlsVersion, &waiting)
		if err == nil && waiting == "Lock" {
			break
		}
		select {
		case r := <-done:
			t.Fatalf("run ended (exit %d) before PostgreSQL saw pg_dump: %s", r.code, r.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("PostgreSQL saw no pg_dump connection within 60 s (last: %v)", err)
		}
	}
	if !ssl {
		t.Error("pg_stat_ssl: pg_dump's connection is not TLS")
	}
	env, cmdline, ok := bkPgDumpEnv("bk_pooled")
	if !ok {
		t.Fatal("no pg_dump process of bk_pooled found in /proc")
	}
	for k, want := range map[string]string{"PGHOST": pg.Host, "PGPORT": strconv.Itoa(pg.Port), "PGUSER": pg.User,
		"PGSSLMODE": "verify-full", "PGSSLROOTCERT": pg.CAFile, "PGPASSWORD": pg.Password} {
		if env[k] != want {
			t.Errorf("pg_dump's %s=%q, want %q", k, env[k], want)
		}
	}
	if strings.Contains(cmdline, pg.Password) {
		t.Errorf("password in pg_dump's command line %q", cmdline)
	}
	t.Logf("PostgreSQL: pg_dump's connection ssl=%v %s; pg_dump: %s with PGSSLMODE=%s PGSSLROOTCERT=%s",
		ssl, tlsVersion, cmdline, env["PGSSLMODE"], env["PGSSLROOTCERT"])
	tx.Rollback(ctx)
	if r := <-done; r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	if n := len(f.b2.Files("fediops-backups")); n != 2 {
		t.Fatalf("%d objects in B2, want the backup and its manifest", n)
	}
	if after := strings.Count(bkReadLog(t, bouncerLog), "login attempt"); after != loginsBefore {
		t.Fatalf("pgBouncer saw %d logins during the run", after-loginsBefore)
	}

	// A CA that did not sign the server's certificate.
	other := testenv.Shared(t).RedisCA.File
	wrong := append([]string(nil), settings...)
	for i := 0; i < len(wrong); i += 2 {
		if wrong[i] == pgpool.EnvCAFile || wrong[i] == "NODE_EXTRA_CA_CERTS" {
			wrong[i+1] = other
		}
	}
	bkDotEnv(t, f.envFile, wrong...)
	r := bkRun(t, f.env, f.args("run")...)
	if r.code != 1 || !strings.Contains(r.stderr, "certificate verify failed") || !strings.Contains(r.stderr, "CA file "+other+" named by "+pgpool.EnvCAFile) {
		t.Fatalf("run with another CA: exit %d\n%s", r.code, r.stderr)
	}
	t.Logf("another CA: %s", strings.TrimSpace(r.stderr))
	// A CA file that is not there: nothing runs.
	missing := filepath.Join(t.TempDir(), "do-ca.crt")
	bkDotEnv(t, f.envFile, append(settings, pgpool.EnvCAFile, missing)...)
	r = bkRun(t, f.env, f.args("run")...)
	if r.code != 2 || !strings.Contains(r.stderr, pgpool.EnvCAFile+"="+missing) {
		t.Fatalf("run with a missing CA file: exit %d\n%s", r.code, r.stderr)
	}
	t.Logf("missing CA: %s", strings.TrimSpace(r.stderr))
	if strings.Contains(r.stdout+r.stderr, pg.Password) {
		t.Fatal("password in the output")
	}
	if after := strings.Count(bkReadLog(t, bouncerLog), "login attempt"); after != loginsBefore {
		t.Fatalf("pgBouncer saw %d logins", after-loginsBefore)
	}
}

// The seed's .env.production, whose unquoted DB_PASS Rails and the
// streaming server read differently, gets a warning naming DB_PASS, and no
// secret of it reaches the output.
func TestSeedEnvWarnsWithoutItsSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".env.production")
	if err := os.WriteFile(path, []byte(testenv.SeedEnv()), 0o600); err != nil {
		t.Fatal(err)
	}
	id, _ := bkKeyFile(t)
	r := bkRun(t, nil, "run", "-env", path, "-sources", "postgres", "-recipient", id.Recipient().String(), "-lock", path+".lock")
	var warned bool
	for _, l := range strings.Split(r.stderr, "\n") {
		warned = warned || strings.HasPrefix(l, "backup: warning: ") && strings.Contains(l, "DB_PASS")
	}
	if !warned {
		t.Errorf("no warning naming DB_PASS:\n%s", r.stderr)
	}
	// The seed names a CA file that is not on this machine: a settings error.
	if r.code != 2 {
		t.Errorf("exit %d, want 2", r.code)
	}
	for _, secret := range []string{"Ourpassw0rd", "Noneofyourbu", "hahahahahahahahahahahahaha"} {
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("%q in the output:\n%s%s", secret, r.stdout, r.stderr)
		}
	}
	t.Logf("exit %d:\n%s", r.code, r.stderr)
}

// bkVanishing stands in front of srv: the first time a download of the
// object gone is asked for, it deletes gone from B2 for real, as a prune
// on another host between the listing and the download would, then passes
// the request on.
func bkVanishing(t *testing.T, srv *b2fake.Server, bucket, gone string) string {
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	client, err := b2store.Dial(context.Background(), b2store.Config{KeyID: srv.KeyID, Key: srv.Key, Bucket: bucket, APIBase: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	var self string
	var once sync.Once
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error { // API and download URLs: through the proxy
		if !strings.HasSuffix(resp.Request.URL.Path, "/b2_authorize_account") {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = bytes.ReplaceAll(body, []byte(srv.URL), []byte(self))
		resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return err
	}
	px := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name, ok := strings.CutPrefix(r.URL.Path, "/file/"+bucket+"/"); ok && name == gone {
			once.Do(func() {
				if err := client.Delete(r.Context(), gone); err != nil {
					t.Errorf("delete %s: %v", gone, err)
				}
			})
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(px.Close)
	self = px.URL
	return px.URL
}

// A backup whose data is deleted between the listing and the download (a
// prune elsewhere) fails the restore with one plain line, and leaves
// nothing at the target.
func TestRestoreOfAMissingObject(t *testing.T) {
	srv, env := bkBucket(t)
	id, idf := bkKeyFile(t)
	dir := t.TempDir()
	st, err := b2store.Open(context.Background(), b2store.Config{KeyID: srv.KeyID, Key: srv.Key, Bucket: "fediops-backups", APIBase: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	p := &backup.Pipeline{Store: st, Prefix: "db/", Sealer: &agezstd.Sealer{Recipients: []age.Recipient{id.Recipient()}}}
	m, err := p.Backup(context.Background(), bkRDBSource{})
	if err != nil {
		t.Fatal(err)
	}
	env = append(env, "B2_API_BASE="+bkVanishing(t, srv, "fediops-backups", m.Object)) // the later one wins
	out := filepath.Join(dir, "restored.rdb")
	r := bkRun(t, env, "restore", "-env", "", "-source", "redis", "-to-file", out, "-identity", idf)
	if want := "backup: restore " + m.Object + ": object does not exist\n"; r.code != 1 || r.stderr != want {
		t.Fatalf("restore of a vanished object: exit %d\nstderr %q\nwant   %q", r.code, r.stderr, want)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*restored*")); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	t.Logf("%s", strings.TrimSpace(r.stderr))
}

// `backup units` prints a service whose command line carries what the
// run needs: run from another directory, it backs up.
func TestUnitsCarryTheRun(t *testing.T) {
	testenv.Binary(t, "pg_dump")
	pg := testenv.PG(t)
	bkSeed(t, pg, "bk_units", "CANARY-units", 1)
	f := newBkFixture(t, "bk_units")
	dir := filepath.Dir(f.envFile)
	units := exec.Command(Build(t, "backup"), "units", "-env", ".env.production", "-sources", "postgres", "-prefix", "units/",
		"-lock", "run.lock", "-recipient", f.id.Recipient().String())
	units.Dir = dir
	var stderr bytes.Buffer
	units.Stderr = &stderr
	out, err := units.Output()
	if err != nil {
		t.Fatalf("units: %v\n%s", err, stderr.String())
	}
	var execStart string
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
			execStart = v
		}
	}
	want := fmt.Sprintf("ExecStart=%s run -env %s -lock %s -prefix units/ -recipient %s -sources postgres",
		Build(t, "backup"), f.envFile, filepath.Join(dir, "run.lock"), f.id.Recipient())
	if "ExecStart="+execStart != want || !strings.Contains(string(out), "WorkingDirectory="+dir+"\n") ||
		!strings.Contains(string(out), "OnCalendar=00/4:00") || !strings.Contains(string(out), "Persistent=true") {
		t.Fatalf("units printed\n%s\nwant %s", out, want)
	}
	argv := strings.Fields(execStart)
	timer := exec.Command(argv[0], argv[1:]...)
	timer.Dir = "/"
	timer.Env = append(os.Environ(), f.env...) // what EnvironmentFile= holds
	if out, err := timer.CombinedOutput(); err != nil {
		t.Fatalf("the unit's command from /: %v\n%s", err, out)
	}
	names := 0
	for _, file := range f.b2.Files("fediops-backups") {
		if strings.HasPrefix(file.Name, "units/postgres/") {
			names++
		}
	}
	if names != 2 {
		t.Fatalf("%d objects under units/postgres/ after the unit's command ran, want 2", names)
	}
	// Settings the run would fail on print no unit.
	bkDotEnv(t, f.envFile, "DB_PORT", "25061", "DB_NAME", "pool", "PREPARED_STATEMENTS", "false", "DB_SSLMODE", "require")
	units = exec.Command(Build(t, "backup"), "units", "-env", f.envFile, "-sources", "postgres", "-recipient", f.id.Recipient().String())
	out, err = units.CombinedOutput()
	if units.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), pgpool.EnvDirectName) || strings.Contains(string(out), "ExecStart") {
		t.Fatalf("units for a pool without its database: %v\n%s", err, out)
	}
}
