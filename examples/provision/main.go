// Command provision fits a DigitalOcean account to a Mastodon .env.production: the cluster's CA in a file, a pool
// sized from the connection budget, the Spaces CDN endpoint and the DB_* lines. Without -apply it only plans; a
// second -apply has nothing to do. `migrate-env --to direct|pooled` switches the file for schema migrations and back.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/doapi"
	"github.com/fediops/fediops/pgpool"
	"github.com/fediops/fediops/spaces"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop) // the first signal cancels ctx; a second one ends the process
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

const help = `usage: provision -cluster ID [flags]   (plan; -apply makes it so)
       provision migrate-env --to direct|pooled [-env FILE] [-db NAME] [-force]
Plans and applies: the cluster's CA to -ca-file, the transaction pool, the Spaces CDN endpoint (custom domain
S3_ALIAS_HOST) and the DB_* lines of -env (atomic rewrite). The token comes from DIGITALOCEAN_TOKEN and is never
printed; printed secrets are redacted. Exit status 0 done, 1 failure, 2 usage or config error.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("provision", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, help+"\n"); fs.PrintDefaults() }
	sub := len(args) > 0 && args[0] == "migrate-env"
	if sub {
		args = args[1:]
	}
	envPath := fs.String("env", ".env.production", "Mastodon's settings `file`")
	cluster := fs.String("cluster", "", "the database cluster's `id` (required)")
	pool := fs.String("pool", "", "connection pool `name` (default DB_NAME from -env)")
	db := fs.String("db", "", "`database` behind the pool (default FEDIOPS_DB_DIRECT_NAME, else mastodon_production)")
	user := fs.String("user", "", "pool `user` (default DB_USER, else mastodon)")
	size := fs.Int("size", 0, "pool size; 0 = the cluster's limit (FEDIOPS_DB_CONN_LIMIT, else DO's) minus other pools and -reserve")
	reserve := fs.Int("reserve", 5, "connections kept free of pools for migrations, backups and psql")
	private := fs.Bool("private", false, "write the cluster's private (VPC) host as DB_HOST")
	caFile := fs.String("ca-file", "", "`path` of the CA file, mode 0644 (default FEDIOPS_DB_CA_FILE, else do-ca.crt beside -env)")
	cert := fs.String("cdn-cert-id", "", "DO certificate `id` for the CDN's custom domain (S3_ALIAS_HOST)")
	ttl := fs.Uint("ttl", 0, "CDN cache `seconds`: 60, 600, 3600, 86400 or 604800 (0: 3600 when created, else kept)")
	apiURL := fs.String("api-url", getenv("DIGITALOCEAN_API_URL"), "DO API base `URL`, https unless loopback (default DIGITALOCEAN_API_URL, else DO's)")
	apply := fs.Bool("apply", false, "carry out the plan (default: print it only)")
	to := fs.String("to", "", "migrate-env: `direct` (bypass the pool) or pooled (the original bytes back)")
	quote := fs.Bool("quote", false, "also rewrite, single-quoted as written, each value that Rails and the streaming server read differently (the seed's unquoted DB_PASS with a '$')")
	force := fs.Bool("force", false, "migrate-env --to pooled: restore although the file was edited meanwhile")
	if err := fs.Parse(args); err != nil {
		return map[bool]int{true: 0, false: 2}[errors.Is(err, flag.ErrHelp)]
	}
	say := func(code int, err error) int { fmt.Fprintln(stderr, "provision:", err); return code }
	if sub {
		return migrateEnv(*envPath, *to, *db, *force, fs.Args(), stdout, say)
	}
	token := getenv("DIGITALOCEAN_TOKEN")
	if fs.NArg() > 0 || *cluster == "" || token == "" || *to != "" || *force {
		return say(2, errors.New("-cluster and DIGITALOCEAN_TOKEN are required; no arguments, no -to/-force (-h for help)"))
	}
	environ := func(k string) (string, bool) { v := getenv(k); return v, v != "" }
	env, err := fediops.ReadEnv(*envPath, fediops.WithEnviron(environ))
	if err != nil {
		return say(2, err)
	}
	findings := env.Lint()
	for _, f := range findings {
		fmt.Fprintf(stderr, "provision: warning: %s\n", f)
	}
	if u, _ := env.FileValue("DATABASE_URL"); u != "" {
		return say(2, fmt.Errorf("%s: DATABASE_URL is set and would win over the DB_* lines: remove it", *envPath))
	} else if pgpool.InDirectMode(*envPath) {
		return say(1, fmt.Errorf("%s is in migration mode: run migrate-env --to pooled first", *envPath))
	}
	val := func(key string) string { v, _ := env.FileValue(key); return v }
	*pool, *db, *user = cmp.Or(*pool, val("DB_NAME")), cmp.Or(*db, val(pgpool.EnvDirectName), pgpool.DefaultDatabase), cmp.Or(*user, val("DB_USER"), pgpool.DefaultUser)
	if *caFile = cmp.Or(*caFile, val(pgpool.EnvCAFile), filepath.Join(filepath.Dir(*envPath), "do-ca.crt")); *pool == "" {
		return say(2, fmt.Errorf("-pool: not given and no DB_NAME in %s", *envPath))
	} else if *caFile, err = filepath.Abs(*caFile); err != nil { // the .env names it for other working directories
		return say(2, err)
	}
	limits, err := pgpool.LimitsFromEnv(env.Lookup)
	gc, gerr := doapi.New(doapi.Options{Token: token, BaseURL: *apiURL})
	if err := errors.Join(err, gerr); err != nil {
		return say(2, err)
	}
	m := &pgpool.Manager{API: gc.Databases, Cluster: *cluster, Limits: limits, Reserve: *reserve, Logger: slog.New(slog.NewTextHandler(stderr, nil))}
	// Every local setting is checked before the first call to the API.
	var cdn *spaces.CDN
	if s3, err := spaces.ConfigFromEnv(env.Lookup); err != nil && !errors.Is(err, spaces.ErrDisabled) {
		return say(2, fmt.Errorf("%s: %w", *envPath, err))
	} else if err == nil {
		if cdn, err = spaces.NewCDN(gc.CDNs, spaces.CDNConfig{Origin: s3.Origin(), CustomDomain: s3.AliasHost,
			CertificateID: *cert, TTL: uint32(*ttl), Logger: m.Logger}); err != nil {
			return say(2, fmt.Errorf("cdn for S3_ALIAS_HOST (-cdn-cert-id, -ttl): %w", err))
		}
	}
	changes, todo := 0, []func() error{}
	plan := func(n int, do func() error, format string, a ...any) {
		changes += n
		if fmt.Fprintf(stdout, format, a...); n > 0 {
			todo = append(todo, do)
		}
	}
	caChanged, err := m.CAChanged(ctx, *caFile)
	if err != nil {
		return say(1, err)
	}
	plan(map[bool]int{true: 1}[caChanged], func() error { _, err := m.FetchCA(ctx, *caFile); return err },
		"1. ca %s: %s\n", *caFile, map[bool]string{false: "up to date", true: "write (mode 0644)"}[caChanged])
	if *size == 0 {
		if *size, err = m.Room(ctx, *pool); err != nil {
			return say(1, err)
		}
	}
	pp, err := m.PlanPools(ctx, pgpool.PoolSpec{Name: *pool, Database: *db, User: *user, Size: *size, Mode: "transaction"})
	if err != nil {
		return say(1, err)
	}
	plan(pp.Changes(), func() error { return m.Apply(ctx, pp) }, "2. pool %s, %s", *pool, pp)
	if cdn == nil {
		plan(0, nil, "3. cdn: skipped, S3_ENABLED is not true\n")
	} else if cp, err := cdn.Plan(ctx); err != nil {
		return say(1, err)
	} else {
		plan(len(cp.Steps), func() error { _, err := cp.Apply(ctx); return err }, "3. %s\n", cp)
	}
	host, err := m.Host(ctx, *private)
	if err != nil {
		return say(1, err)
	}
	sets, err := env.Set(pgpool.PooledSettings(host, *pool, *user, *db, *caFile, val("DB_SSLMODE"))...)
	if err != nil {
		return say(1, err)
	}
	// Values Rails and the streaming server read differently: offered,
	// never done unasked, since the rewrite changes what Rails reads.
	var asWritten []fediops.Setting
	for _, f := range findings {
		if s, ok := env.AsWritten(f.Key); ok && !slices.ContainsFunc(asWritten, func(o fediops.Setting) bool { return o.Key == f.Key }) {
			asWritten = append(asWritten, s)
		}
	}
	if *quote && len(asWritten) > 0 {
		quoted, err := env.Set(asWritten...)
		if err != nil {
			return say(1, err)
		}
		sets = append(sets, quoted...)
	}
	plan(len(sets), env.Save, "4. env %s:%s\n", *envPath, map[bool]string{true: " up to date"}[len(sets) == 0])
	for _, c := range sets {
		fmt.Fprintf(stdout, "   %s\n", c)
	}
	if !*quote {
		for _, s := range asWritten {
			fmt.Fprintf(stdout, "   offer: %s reads differently in Rails and in the streaming server (see the warning); -quote rewrites it single-quoted as written, so that both read the text of the file\n", s.Key)
		}
	}
	if changes == 0 || !*apply {
		fmt.Fprintf(stdout, "%d change(s)%s\n", changes, map[bool]string{true: "; run with -apply to make them"}[changes > 0 && !*apply])
		return 0
	}
	for _, do := range todo {
		if err := do(); err != nil {
			return say(1, err)
		}
	}
	fmt.Fprintf(stdout, "applied %d change(s)\n", changes)
	return 0
}
