package pgdump_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/internal/backuptest"
	"github.com/fediops/fediops/backup/pgdump"
	"github.com/fediops/fediops/internal/testenv"
	"github.com/fediops/fediops/pgpool"
)

// The whole path against real PostgreSQL and the B2 stand-in answering
// 500, 503 and expired tokens: backup, list, check, restore drill, and
// no plaintext secret in any stored byte.
func TestPostgresBackupRestoreVerifyWithFaults(t *testing.T) {
	testenv.Binary(t, "pg_dump")
	testenv.Binary(t, "pg_restore")
	pg := testenv.PG(t)
	canary := "CANARY-otp-7f3a9c1e5b"
	db := seedPG(t, pg, "bk_main", canary, 4, 12)
	srv, store := backuptest.B2(t)
	id, sealer, unsealer := backuptest.Keys(t)

	srv.FailNext("b2_upload_part", 1, 500)
	srv.FailNext("b2_upload_part", 1, 503)
	srv.FailNext("b2_upload_file", 1, 503)
	srv.ExpireTokens()
	r := &backup.Runner{
		Pipeline: backup.Pipeline{Store: store, Prefix: "db/", Sealer: sealer, Logger: quiet},
		Sources:  []backup.Source{pgSource(t, pg, db)},
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
	if u := srv.Unfinished(backuptest.Bucket); len(u) != 0 {
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
	backuptest.AssertNoPlaintext(t, srv, canary, pg.AdminPassword, srv.Key)

	// Restore drill into a scratch database, with the live source compared,
	// while another session holds a temporary table there (which the dump
	// does not hold and no other session may read).
	session, err := pgx.Connect(ctxT(t), strings.Replace(pg.AdminURL(), "/"+pg.Database+"?", "/"+db+"?", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close(context.Background())
	if _, err := session.Exec(ctxT(t), "CREATE TEMP TABLE scratchpad AS SELECT g FROM generate_series(1, 100000) g"); err != nil {
		t.Fatal(err)
	}
	v := &pgdump.Drill{Source: pgSource(t, pg, db).Conn}
	vr, err := v.Run(ctxT(t), store, m, unsealer)
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
	if _, err := v.Run(ctxT(t), store, m, unsealer); !errors.Is(err, backup.ErrVerify) {
		t.Fatalf("verify after deleting half the rows: %v, want ErrVerify", err)
	}
	// A wrong key cannot restore.
	_, _, other := backuptest.Keys(t)
	scratch := v.Source
	scratch.Database = db + "_wrong_key"
	if _, err := backup.Restore(ctxT(t), store, m, other, &pgdump.Target{Conn: scratch}); err == nil {
		t.Fatal("restore with the wrong identity succeeded")
	}
}

// A dump process killed mid-stream leaves no listed backup and no
// unfinished large file; neither does a store that refuses a part.
func TestKilledDumpAndRefusedPartLeaveNothing(t *testing.T) {
	pg := testenv.PG(t)
	db := seedPG(t, pg, "bk_kill", "CANARY-kill", 1, 14)
	srv, store := backuptest.B2(t)
	_, sealer, _ := backuptest.Keys(t)
	p := &backup.Pipeline{Store: slowStore{store, 2 * time.Millisecond}, Prefix: "db/", Sealer: sealer, Logger: quiet}
	src := pgSource(t, pg, db)

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
	if f := srv.Files(backuptest.Bucket); len(f) != 0 {
		t.Errorf("a killed dump left objects: %d", len(f))
	}
	if srv.Calls("b2_upload_part") == 0 {
		t.Error("the kill came before any part was uploaded: the large-file cancel path was not tested")
	}
	if u := srv.Unfinished(backuptest.Bucket); len(u) != 0 {
		t.Errorf("unfinished large file left behind: %+v", u)
	}

	// B2 refuses a part for good (400): the upload fails and is cancelled.
	srv.FailNext("b2_upload_part", 1, 400)
	p.Store = store
	if _, err := p.Backup(ctxT(t), src); err == nil {
		t.Fatal("backup succeeded although B2 refused a part")
	}
	if f, u := srv.Files(backuptest.Bucket), srv.Unfinished(backuptest.Bucket); len(f) != 0 || len(u) != 0 {
		t.Errorf("after a refused part: %d files, %d unfinished", len(f), len(u))
	}
	cat, _ := backup.Scan(ctxT(t), store, "db/")
	if len(cat.Backups) != 0 {
		t.Errorf("failed runs listed: %+v", cat.Backups)
	}
}

// Settings that name only the pool (as DO's and the seed's do for
// Mastodon) are refused with the setting to add; with
// FEDIOPS_DB_DIRECT_NAME the source is the direct connection, verify-full
// against the CA; a Source built by hand on DO's pool port is refused
// before pg_dump runs.
func TestPoolConnectionRefused(t *testing.T) {
	seed := map[string]string{"DB_HOST": "db-postgresql-tor1-1234-do-user-1.b.db.ondigitalocean.com", "DB_PORT": "25061",
		"DB_NAME": "the_mastodon_connection_pool", "DB_USER": "the_mastodon_user", "DB_PASS": "Ourpassw0rd", "DB_SSLMODE": "require",
		"PREPARED_STATEMENTS": "false", "NODE_EXTRA_CA_CERTS": testenv.PG(t).CAFile}
	_, err := pgdump.SourceFromEnv(fediops.MapLookup(seed), pgpool.Options{Logger: quiet})
	if !errors.Is(err, pgdump.ErrPoolConnection) || !errors.Is(err, pgpool.ErrNoDirect) || !strings.Contains(err.Error(), pgpool.EnvDirectName) {
		t.Fatalf("pool only: %v", err)
	}
	seed["DB_PORT"] = "6432" // a pool on another port: its direct port is unknown too
	seed[pgpool.EnvPooled] = "true"
	seed[pgpool.EnvDirectName] = "mastodon_production"
	_, err = pgdump.SourceFromEnv(fediops.MapLookup(seed), pgpool.Options{Logger: quiet})
	if !errors.Is(err, pgdump.ErrPoolConnection) || !strings.Contains(err.Error(), pgpool.EnvDirectPort) {
		t.Fatalf("pool on 6432 without %s: %v", pgpool.EnvDirectPort, err)
	}
	seed[pgpool.EnvDirectPort] = "25060"
	s, err := pgdump.SourceFromEnv(fediops.MapLookup(seed), pgpool.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Conn; c.Port != 25060 || c.Database != "mastodon_production" || c.SSLMode != pgpool.TLSVerifyFull || c.SSLRootCert != seed["NODE_EXTRA_CA_CERTS"] {
		t.Fatalf("direct connection %s, CA %q", c, c.SSLRootCert)
	}
	if !slices.Contains(s.Conn.Env(), "PGPASSWORD=Ourpassw0rd") || strings.Contains(s.Conn.String(), "Ourpassw0rd") {
		t.Errorf("password: in the environment %v, in the description %q", slices.Contains(s.Conn.Env(), "PGPASSWORD=Ourpassw0rd"), s.Conn)
	}
	// Dump refuses DO's pool port before running anything.
	b := testenv.Bouncer(t)
	conn := s.Conn
	conn.Host, conn.Port, conn.Database, conn.User, conn.Password = b.Host, pgpool.PoolPort, b.Database, b.User, b.Password
	_, store := backuptest.B2(t)
	_, sealer, _ := backuptest.Keys(t)
	p := &backup.Pipeline{Store: store, Sealer: sealer, Logger: quiet}
	if _, err := p.Backup(ctxT(t), &pgdump.Source{Conn: conn}); !errors.Is(err, pgdump.ErrPoolConnection) {
		t.Fatalf("backup on the pool port: %v", err)
	}
}
