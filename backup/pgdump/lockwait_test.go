package pgdump_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fediops/fediops/internal/testenv"
)

// A migration holding an exclusive lock makes pg_dump fail after LockWait
// instead of hanging the scheduled run.
func TestPostgresDumpGivesUpOnALockedTable(t *testing.T) {
	pg := testenv.PG(t)
	db := seedPG(t, pg, "lockwait", "canary-lockwait", 0, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.ParseConfig(pg.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	admin.Database = db
	c, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var table string
	if err := tx.QueryRow(ctx, `SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace LIMIT 1`).Scan(&table); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+pgx.Identifier{table}.Sanitize()+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}

	src := pgSource(t, pg, db)
	src.LockWait = 500 * time.Millisecond
	start := time.Now()
	err = src.Dump(ctx, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "LOCK TABLE") {
		t.Fatalf("dump with %s locked: %v, want a lock timeout", table, err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("gave up after %v", took)
	}

	// Once the lock is gone the same source dumps.
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := src.Dump(ctx, io.Discard); err != nil {
		t.Fatal(err)
	}
}
