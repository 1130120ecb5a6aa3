package rdb_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/internal/backuptest"
	"github.com/fediops/fediops/backup/rdb"
	"github.com/fediops/fediops/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestRedisRDBOverTLS(t *testing.T) {
	testenv.Binary(t, "redis-cli")
	rd := testenv.RedisTLS(t)
	ctx := backuptest.Context(t)
	cl := rd.Client()
	defer cl.Close()
	if err := cl.Set(ctx, "canary:key", "CANARY-redis-42", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000; i++ {
		cl.Set(ctx, "k"+string(rune('a'+i%26))+strings.Repeat("x", i%7), i, 0)
	}
	srv, store := backuptest.B2(t)
	_, sealer, unsealer := backuptest.Keys(t)
	src := &rdb.Source{Host: rd.Host, Port: rd.Port, User: rd.User, Password: rd.Password, TLS: true, CAFile: rd.CAFile}
	p := &backup.Pipeline{Store: store, Prefix: "db/", Sealer: sealer, Logger: backuptest.Quiet}
	m, err := p.Backup(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	backuptest.AssertNoPlaintext(t, srv, "CANARY-redis-42", rd.Password)
	out := filepath.Join(t.TempDir(), "dump.rdb")
	if _, err := backup.Restore(ctx, store, m, unsealer, &rdb.FileTarget{Path: out}); err != nil {
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
