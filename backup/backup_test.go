package backup_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/jackc/pgx/v5"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/filestore"
	"github.com/fediops/fediops/internal/testenv"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// The whole path against real PostgreSQL and the B2 stand-in answering
// 500, 503 and expired tokens: backup, list, check, restore drill, and
// no plaintext secret in any stored byte.
func TestPostgresBackupRestoreVerifyWithFaults(t *testing.T) {
	testenv.Binary(t, "pg_dump")
	testenv.Binary(t, "pg_restore")
	pg := testenv.PG(t)
	canary := "CANARY-otp-7f3a9c1e5b"
	db := seedPG(t, pg, "bk_main", canary, 4, 12)
	srv, store := newB2(t)
	id, recips := newKey(t)

	srv.FailNext("b2_upload_part", 1, 500)
	srv.FailNext("b2_upload_part", 1, 503)
	srv.FailNext("b2_upload_file", 1, 503)
	srv.ExpireTokens()
	r := &backup.Runner{
		Pipeline: backup.Pipeline{Store: store, Prefix: "db/", Recipients: recips, Logger: quiet},
		Sources:  []backup.Source{pgSource(pg, db)},
	}
	rep, err := r.Run(ctxT(t))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	res := rep.Results[0]
	if res.DumpBytes < 15<<20 || res.StoredBytes < 6_000_000 || res.StoredBytes > res.DumpBytes*6/10 {
		t.Fatalf("sizes: dump %d stored %d", res.DumpBytes, res.StoredBytes)
	}
	if srv.Calls("b2_upload_part") < 4 || srv.Calls("b2_authorize_account") < 2 {
		t.Errorf("faults not exercised: %d parts, %d authorizations", srv.Calls("b2_upload_part"), srv.Calls("b2_authorize_account"))
	}
	if u := srv.Unfinished(bucket); len(u) != 0 {
		t.Errorf("unfinished large files left: %v", u)
	}

	cat, err := backup.Scan(ctxT(t), store, "db/")
	if err != nil || len(cat.Backups) != 1 || len(cat.Orphans) != 0 {
		t.Fatalf("scan: %+v %v", cat, err)
	}
	m, err := backup.ReadManifest(ctxT(t), store, cat.Backups[0])
	if err != nil {
		t.Fatal(err)
	}
	if m.Source != "postgres" || m.StoredBytes != res.StoredBytes || len(m.SHA256) != 64 ||
		!strings.HasPrefix(m.Tools["postgres_dump_tool"], "pg_dump (PostgreSQL) 15") ||
		m.Recipients[0] != id.Recipient().String() || !m.Finished.After(m.Started) {
		t.Errorf("manifest: %+v", m)
	}
	if err := backup.Check(ctxT(t), store, m); err != nil {
		t.Fatal(err)
	}
	assertNoPlaintext(t, srv, canary, pg.AdminPassword, srv.Key)

	// Restore drill into a scratch database, with the live source compared.
	v := &backup.PostgresVerify{Source: *pgSource(pg, db)}
	vr, err := v.Run(ctxT(t), store, m, []age.Identity{id})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	found := false
	for _, tc := range vr.Tables {
		found = found || (tc.Table == "public.statuses" && tc.Restored == 4000 && tc.Source == 4000)
	}
	if len(vr.Tables) != 4 || !found {
		t.Errorf("verify report: %+v", vr.Tables)
	}
	// The drill must fail when the source no longer matches.
	c, err := pgx.Connect(ctxT(t), strings.Replace(pg.AdminURL(), "/"+pg.Database+"?", "/"+db+"?", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctxT(t), "DELETE FROM statuses WHERE id % 2 = 0"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Run(ctxT(t), store, m, []age.Identity{id}); !errors.Is(err, backup.ErrVerify) {
		t.Fatalf("verify after deleting half the rows: %v, want ErrVerify", err)
	}
	// A wrong key cannot restore.
	other, _ := newKey(t)
	if _, err := backup.Restore(ctxT(t), store, m, []age.Identity{other}, &backup.RedisFileTarget{Path: filepath.Join(t.TempDir(), "x")}); err == nil {
		t.Fatal("restore with the wrong identity succeeded")
	}
}

// A dump process killed mid-stream leaves no listed backup and no
// unfinished large file; neither does a store that refuses a part.
func TestKilledDumpAndRefusedPartLeaveNothing(t *testing.T) {
	pg := testenv.PG(t)
	db := seedPG(t, pg, "bk_kill", "CANARY-kill", 1, 14)
	srv, store := newB2(t)
	_, recips := newKey(t)
	p := &backup.Pipeline{Store: slowStore{store, 2 * time.Millisecond}, Prefix: "db/", Recipients: recips, Logger: quiet}
	src := pgSource(pg, db)

	var wg sync.WaitGroup
	var killErr error
	var cmdline string
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, cmdline, killErr = killChild("pg_dump", 30*time.Second, func() bool { return srv.Calls("b2_upload_part") > 0 })
	}()
	_, err := p.Backup(ctxT(t), src)
	wg.Wait()
	if killErr != nil {
		t.Fatal(killErr)
	}
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("backup with killed pg_dump: %v", err)
	}
	if strings.Contains(cmdline, pg.AdminPassword) || !strings.Contains(cmdline, "-Fc") {
		t.Errorf("pg_dump argv %q: must carry no password", cmdline)
	}
	if f := srv.Files(bucket); len(f) != 0 {
		t.Errorf("a killed dump left objects: %d", len(f))
	}
	if srv.Calls("b2_upload_part") == 0 {
		t.Error("the kill came before any part was uploaded: the large-file cancel path was not tested")
	}
	if u := srv.Unfinished(bucket); len(u) != 0 {
		t.Errorf("unfinished large file left behind: %+v", u)
	}

	// B2 refuses a part for good (400): the upload fails and is cancelled.
	srv.FailNext("b2_upload_part", 1, 400)
	p.Store = store
	if _, err := p.Backup(ctxT(t), src); err == nil {
		t.Fatal("backup succeeded although B2 refused a part")
	}
	if f, u := srv.Files(bucket), srv.Unfinished(bucket); len(f) != 0 || len(u) != 0 {
		t.Errorf("after a refused part: %d files, %d unfinished", len(f), len(u))
	}
	cat, _ := backup.Scan(ctxT(t), store, "db/")
	if len(cat.Backups) != 0 {
		t.Errorf("failed runs listed: %+v", cat.Backups)
	}
}

func TestRedisRDBOverTLS(t *testing.T) {
	testenv.Binary(t, "redis-cli")
	rd := testenv.RedisTLS(t)
	ctx := ctxT(t)
	cl := rd.Client()
	defer cl.Close()
	if err := cl.Set(ctx, "canary:key", "CANARY-redis-42", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000; i++ {
		cl.Set(ctx, "k"+string(rune('a'+i%26))+strings.Repeat("x", i%7), i, 0)
	}
	srv, store := newB2(t)
	id, recips := newKey(t)
	src := &backup.RedisSource{Host: rd.Host, Port: rd.Port, User: rd.User, Password: rd.Password, TLS: true, CAFile: rd.CAFile}
	p := &backup.Pipeline{Store: store, Prefix: "db/", Recipients: recips, Logger: quiet}
	m, err := p.Backup(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	assertNoPlaintext(t, srv, "CANARY-redis-42", rd.Password)
	out := filepath.Join(t.TempDir(), "dump.rdb")
	if _, err := backup.Restore(ctx, store, m, []age.Identity{id}, &backup.RedisFileTarget{Path: out}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(out)
	if !bytes.HasPrefix(data, []byte("REDIS")) || !bytes.Contains(data, []byte("CANARY-redis-42")) || int64(len(data)) != m.DumpBytes {
		t.Fatalf("restored RDB: %d bytes, manifest %d", len(data), m.DumpBytes)
	}
	// A wrong password fails the run (redis-cli exits non-zero or writes no RDB).
	bad := *src
	bad.Password = "wrong"
	if _, err := p.Backup(ctx, &bad); err == nil {
		t.Fatal("backup with a wrong Redis password succeeded")
	}
}

func TestMySQLDumpAndRestore(t *testing.T) {
	testenv.Binary(t, "mysqldump")
	mdb := testenv.Maria(t)
	ctx := ctxT(t)
	if err := mdb.Exec(ctx, "DROP TABLE IF EXISTS posts; CREATE TABLE posts (id INT PRIMARY KEY AUTO_INCREMENT, body TEXT) ENGINE=InnoDB; "+
		"INSERT INTO posts (body) VALUES ('CANARY-mysql-99'), ('hello'), ('world');"); err != nil {
		t.Fatal(err)
	}
	srv, store := newB2(t)
	id, recips := newKey(t)
	src := &backup.MySQLSource{Host: mdb.Host, Port: mdb.Port, User: mdb.User, Password: mdb.Password, Database: mdb.Database}
	p := &backup.Pipeline{Store: store, Prefix: "db/", Recipients: recips, Logger: quiet}
	m, err := p.Backup(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	assertNoPlaintext(t, srv, "CANARY-mysql-99", mdb.Password)
	if err := mdb.Exec(ctx, "DROP TABLE posts"); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Restore(ctx, store, m, []age.Identity{id}, &backup.MySQLTarget{Host: mdb.Host, Port: mdb.Port,
		User: mdb.User, Password: mdb.Password, Database: mdb.Database}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, testenv.Binary(t, "mariadb"), "--no-defaults", "-N", "-h", mdb.Host, "-P", itoa(mdb.Port),
		"-u", mdb.User, "-p"+mdb.Password, mdb.Database, "-e", "SELECT body FROM posts ORDER BY id LIMIT 1").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "CANARY-mysql-99" {
		t.Fatalf("restored table: %q %v", out, err)
	}
}

func itoa(n int) string { return fmt.Sprint(n) }

func TestPoolConnectionRefused(t *testing.T) {
	env := map[string]string{"DB_HOST": "db-postgresql-tor1-1234-do-user-1.b.db.ondigitalocean.com", "DB_PORT": "25061",
		"DB_NAME": "the_mastodon_connection_pool", "DB_USER": "the_mastodon_user", "DB_PASS": "x"}
	s, err := backup.PostgresSourceFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); !errors.Is(err, backup.ErrPoolConnection) {
		t.Fatalf("port 25061: %v", err)
	}
	s.Port = 25060
	s.PoolDatabases = []string{"the_mastodon_connection_pool"}
	if err := s.Validate(); !errors.Is(err, backup.ErrPoolConnection) {
		t.Fatalf("pool name as database: %v", err)
	}
	s.Database = "mastodon_production"
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	// Dump refuses too, before running anything, against the real pgBouncer.
	b := testenv.Bouncer(t)
	src := &backup.PostgresSource{Host: b.Host, Port: b.Port, Database: b.Database, User: b.User, Password: b.Password,
		PoolDatabases: []string{b.Database}}
	_, store := newB2(t)
	_, recips := newKey(t)
	p := &backup.Pipeline{Store: store, Recipients: recips, Logger: quiet}
	if _, err := p.Backup(ctxT(t), src); !errors.Is(err, backup.ErrPoolConnection) {
		t.Fatalf("backup through pgBouncer: %v", err)
	}
}

// memSource is an in-memory Source for retention and notifier tests.
type memSource struct {
	name string
	data string
	err  error
}

func (m memSource) Name() string                            { return m.name }
func (m memSource) Kind() string                            { return "postgres" }
func (m memSource) Version(context.Context) (string, error) { return "mem 1", nil }
func (m memSource) Dump(_ context.Context, w io.Writer) error {
	if _, err := io.WriteString(w, m.data); err != nil {
		return err
	}
	return m.err
}

func TestRetentionAtItsBoundary(t *testing.T) {
	st, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, recips := newKey(t)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var clock time.Time
	p := &backup.Pipeline{Store: st, Prefix: "db/", Recipients: recips, Logger: quiet, Now: func() time.Time { return clock }}
	// 4-hourly backups over 16 days, plus one exactly 14 days old and one a
	// second older.
	ages := []time.Duration{14*24*time.Hour + time.Second, 14 * 24 * time.Hour}
	for h := 0; h < 16*24; h += 4 {
		ages = append(ages, time.Duration(h)*time.Hour+time.Minute)
	}
	for _, a := range ages {
		clock = now.Add(-a)
		if _, err := p.Backup(ctxT(t), memSource{name: "postgres", data: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	dry, err := backup.Prune(ctxT(t), st, "db/", "postgres", backup.Retention{}, now, true)
	if err != nil {
		t.Fatal(err)
	}
	cat, _ := backup.Scan(ctxT(t), st, "db/")
	if len(cat.Backups) != len(ages) {
		t.Fatalf("dry run deleted something: %d of %d left", len(cat.Backups), len(ages))
	}
	for _, e := range dry.Deleted {
		if !e.Time.Before(now.Add(-14 * 24 * time.Hour)) {
			t.Errorf("would delete %s, not older than 14 days", e.ID)
		}
	}
	if want := 1 + 12; len(dry.Deleted) != want { // the 14d+1s one and 2 days of 4-hourly ones past 14d
		t.Errorf("dry run deletes %d, want %d", len(dry.Deleted), want)
	}
	keptExact := false
	for _, e := range dry.Kept {
		keptExact = keptExact || e.Time.Equal(now.Add(-14*24*time.Hour))
	}
	if !keptExact {
		t.Error("a backup exactly 14 days old must be kept")
	}
	res, err := backup.Prune(ctxT(t), st, "db/", "postgres", backup.Retention{}, now, false)
	if err != nil || len(res.Deleted) != len(dry.Deleted) {
		t.Fatalf("prune: %d deleted, %v", len(res.Deleted), err)
	}
	// Long after: everything is old, the newest KeepLast stay.
	res, err = backup.Prune(ctxT(t), st, "db/", "", backup.Retention{KeepLast: 3}, now.Add(60*24*time.Hour), false)
	if err != nil {
		t.Fatal(err)
	}
	cat, _ = backup.Scan(ctxT(t), st, "db/")
	if len(cat.Backups) != 3 || !cat.Backups[2].Time.Equal(now.Add(-time.Minute)) {
		t.Fatalf("after a long gap %d backups left, want the newest 3: %+v", len(cat.Backups), cat.Backups)
	}

	// A failed run prunes nothing, even with an aggressive policy, and
	// notifies loudly.
	var got []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		got = append(got, m)
	}))
	defer hook.Close()
	clock = now.Add(90 * 24 * time.Hour)
	r := &backup.Runner{Pipeline: *p, Retention: backup.Retention{KeepFor: time.Hour, KeepLast: 1},
		Sources:   []backup.Source{memSource{name: "postgres", data: "partial", err: errors.New("pg_dump: connection lost")}},
		Notifiers: []backup.Notifier{&backup.SlackNotifier{WebhookURL: hook.URL}, backup.LogNotifier{Logger: quiet}}}
	if _, err := r.Run(ctxT(t)); err == nil {
		t.Fatal("failed run returned nil")
	}
	cat, _ = backup.Scan(ctxT(t), st, "db/")
	if len(cat.Backups) != 3 || len(cat.Orphans) != 0 {
		t.Fatalf("a failed run changed the catalog: %d backups, %d orphans", len(cat.Backups), len(cat.Orphans))
	}
	if len(got) != 1 {
		t.Fatalf("%d Slack messages, want 1", len(got))
	}
	text := fmt.Sprint(got[0])
	for _, want := range []string{"<!channel>", "FAILED", "danger", "connection lost"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("Slack message lacks %q: %s", want, text)
		}
	}
	// A successful run does prune, and says so.
	got = nil
	r.Sources = []backup.Source{memSource{name: "postgres", data: "ok"}}
	rep, err := r.Run(ctxT(t))
	if err != nil || rep.Results[0].Pruned != 3 {
		t.Fatalf("successful run: pruned %d, %v", rep.Results[0].Pruned, err)
	}
	text = fmt.Sprint(got)
	if !strings.Contains(string(text), "good") || !strings.Contains(string(text), "pruned 3") || strings.Contains(string(text), "<!channel>") {
		t.Errorf("success message: %s", text)
	}
}

func TestLockExcludesSecondRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "backup.lock")
	release, err := backup.Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	// flock is per open file: a second process (here: a second open) fails.
	if _, err := backup.Lock(path); !errors.Is(err, backup.ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	r2, err := backup.Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	r2()
}
