package rdb_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/agezstd"
	"github.com/fediops/fediops/backup/internal/backuptest"
	"github.com/fediops/fediops/backup/rdb"
	"github.com/fediops/fediops/internal/testenv"
)

// The Redis restore drill against the real TLS Redis: the restored RDB
// passes redis-check-rdb and holds the source's key count; a source that
// lost keys fails with ErrVerify (and passes within Tolerance); a corrupt
// RDB fails redis-check-rdb; no scratch file is left in any case.
func TestRedisVerifyDrill(t *testing.T) {
	testenv.Binary(t, "redis-cli")
	if _, err := exec.LookPath("redis-check-rdb"); err != nil {
		t.Fatal("redis-check-rdb is needed: apt-get install -y redis-tools")
	}
	rd := testenv.RedisTLS(t)
	ctx := backuptest.Context(t)
	cl := rd.Client()
	defer cl.Close()
	for i := range 500 {
		if err := cl.Set(ctx, fmt.Sprintf("vr:%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for i := range 500 {
			cl.Del(ctx, fmt.Sprintf("vr:%d", i))
		}
	})
	_, store := backuptest.B2(t)
	_, sealer, unsealer := backuptest.Keys(t)
	src := &rdb.Source{Host: rd.Host, Port: rd.Port, User: rd.User, Password: rd.Password, TLS: true, CAFile: rd.CAFile}
	p := &backup.Pipeline{Store: store, Prefix: "db/", Sealer: sealer, Logger: backuptest.Quiet}
	m, err := p.Backup(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	assertEmpty := func(when string) {
		t.Helper()
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("%s: scratch file %s left", when, left[0].Name())
		}
	}
	v := &rdb.Drill{Source: *src, Dir: dir}
	rep, err := v.Run(ctx, store, m, unsealer)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if len(rep.Tables) != 1 || rep.Tables[0].Source < 500 || rep.Tables[0].Restored != rep.Tables[0].Source ||
		rep.Restore.DumpBytes != m.DumpBytes || !strings.HasPrefix(rep.Scratch, dir) {
		t.Errorf("verify report: %+v", rep)
	}
	assertEmpty("after the drill")

	for i := range 100 {
		cl.Del(ctx, fmt.Sprintf("vr:%d", i))
	}
	_, err = v.Run(ctx, store, m, unsealer)
	if !errors.Is(err, backup.ErrVerify) || !strings.Contains(err.Error(), "keys: source") {
		t.Fatalf("verify after deleting 100 keys: %v, want ErrVerify", err)
	}
	assertEmpty("after a failed drill")
	for i := range 95 {
		cl.Set(ctx, fmt.Sprintf("vr:%d", i), i, 0)
	}
	tol := &rdb.Drill{Source: *src, Dir: dir, Tolerance: 0.02}
	if _, err := tol.Run(ctx, store, m, unsealer); err != nil {
		t.Fatalf("verify within 2%%: %v", err)
	}

	// An RDB that redis-cli never wrote (right magic, broken body).
	bad, err := p.Backup(ctx, backuptest.Source{SourceName: "redis-broken", SourceKind: "redis", Data: []byte("REDIS0010\xfa\x09redis-ver\x06garbage-not-an-rdb")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Run(ctx, store, bad, unsealer)
	if err == nil || errors.Is(err, backup.ErrVerify) || !strings.Contains(err.Error(), "redis-check-rdb") {
		t.Fatalf("verify of a broken RDB: %v", err)
	}
	t.Logf("broken RDB: %v", err)
	assertEmpty("after a broken RDB")

	wrong := *src
	wrong.Password = "wrong-password-x"
	_, err = (&rdb.Drill{Source: wrong, Dir: dir}).Run(ctx, store, m, unsealer)
	if err == nil || strings.Contains(err.Error(), "wrong-password-x") {
		t.Fatalf("verify with a wrong Redis password: %v", err)
	}
	t.Logf("wrong password: %v", err)
	if _, err := v.Run(ctx, store, bad, &agezstd.Unsealer{}); err == nil {
		t.Fatal("verify without identities succeeded")
	}
	mm := m
	mm.Kind = "mysql"
	if _, err := v.Run(ctx, store, mm, unsealer); err == nil || !strings.Contains(err.Error(), "not redis") {
		t.Fatalf("verify of a mysql backup: %v", err)
	}
	assertEmpty("at the end")
}
