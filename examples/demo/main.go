// Command demo runs fediops's main job on a local stack of real servers:
// PostgreSQL behind pgBouncer (transaction mode, TLS with a private CA),
// TLS-only Redis, and prints the stack's settings as a .env.production
// fragment. It leaves nothing running when it ends, Ctrl-C included.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fediops/fediops/internal/testenv"
)

func main() {
	keep := flag.Bool("keep", false, "keep the stack's directory (data, certificates, logs) after the run")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: demo [-keep]\n\nStarts a local stand-in of a DigitalOcean-hosted Mastodon's services and runs fediops against it.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, keep bool) (err error) {
	start := time.Now()
	s, err := testenv.NewStack("")
	if err != nil {
		return err
	}
	defer func() {
		if cerr := s.Close(keep || err != nil); cerr != nil && err == nil {
			err = cerr
		}
		if keep || err != nil {
			fmt.Fprintln(os.Stderr, "demo: stack directory kept:", s.Dir)
		}
	}()
	b, err := s.PgBouncer(ctx)
	if err != nil {
		return err
	}
	r, err := s.Redis(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("# local stand-ins, up in %v\n", time.Since(start).Round(time.Millisecond))
	fmt.Printf("DB_HOST=%s\nDB_PORT=%d\nDB_NAME=%s\nDB_USER=%s\nDB_PASS=[redacted]\nPREPARED_STATEMENTS=false\nDB_SSLMODE=verify-full\nDB_SSLROOTCERT=%s\n",
		b.Host, b.Port, b.Database, b.User, s.DBCA.File)
	fmt.Printf("REDIS_URL=rediss://default:[redacted]@%s\nREDIS_CA_FILE=%s\n", r.Addr(), r.CAFile)

	cfg, err := pgx.ParseConfig(b.URL())
	if err != nil {
		return err
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	t0 := time.Now()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("pgBouncer: %w", err)
	}
	defer c.Close(ctx)
	var version string
	if err := c.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		return fmt.Errorf("pgBouncer round trip: %w", err)
	}
	fmt.Printf("\npgBouncer (transaction mode, verify-full TLS, SCRAM): ok in %v\n", time.Since(t0).Round(time.Microsecond))
	rc := r.Client()
	defer rc.Close()
	t0 = time.Now()
	if err := rc.Set(ctx, "fediops:demo", "ok", time.Minute).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	if v, err := rc.Get(ctx, "fediops:demo").Result(); err != nil || v != "ok" {
		return fmt.Errorf("redis round trip: %q %v", v, err)
	}
	fmt.Printf("Redis (TLS only, password): ok in %v\n", time.Since(t0).Round(time.Microsecond))
	return nil
}
