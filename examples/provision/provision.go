package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/command"
	"github.com/fediops/fediops/doapi"
	"github.com/fediops/fediops/pgpool"
	"github.com/fediops/fediops/spaces"
)

var provisionHelp = command.Help{
	Usage: `provision -cluster ID [-env FILE] [-apply] [flags]
       provision migrate-env --to direct|pooled [flags]   (provision migrate-env -h)`,
	About: `Plans, and with -apply makes so: the cluster's CA in -ca-file, the transaction-mode
pool sized from the cluster's connection budget, the Spaces CDN endpoint (custom
domain S3_ALIAS_HOST, certificate -cdn-cert-id) and the DB_* lines of -env (an
atomic rewrite, printed with secrets redacted). Every local setting is checked
before the first API call, and the whole plan is read from the API before any of
it is printed: a pool over the budget or a CDN that needs a certificate stops it
with nothing half printed. A second -apply has nothing to do.`,
	Env: []command.Var{
		{Name: "DIGITALOCEAN_TOKEN", About: "the API token (required; never printed)"},
		{Name: "DIGITALOCEAN_API_URL", About: "another API base URL, https unless loopback (-api-url wins)"},
		{Name: "DB_*, DATABASE_URL", About: "the database settings of -env (DATABASE_URL must be unset: it would win over DB_*)"},
		{Name: "FEDIOPS_DB_DIRECT_NAME", About: "the database behind the pool (default -db, else mastodon_production)"},
		{Name: "FEDIOPS_DB_CA_FILE", About: "where the CA goes (default -ca-file, else do-ca.crt beside -env)"},
		{Name: "FEDIOPS_DB_CONN_LIMIT", About: "the cluster's connection limit instead of DO's (FEDIOPS_DB_MAX_POOLS: its pool count)"},
		{Name: "S3_*", About: "the Space whose CDN endpoint is planned, when S3_ENABLED=true"},
	},
	Exit: [3]string{
		0: "the plan was printed, or applied",
		1: "a runtime failure (the API failed or did not answer, a file could not be written)",
		2: "a usage or configuration error: flags, -env, -ca-file's directory, a pool over the cluster's connection budget, a CDN endpoint that needs -cdn-cert-id, a file in migration mode",
	},
}

func runProvision(ctx context.Context, p *command.Program, args []string) error {
	fs := flag.NewFlagSet("provision", flag.ContinueOnError)
	envPath := fs.String("env", ".env.production", "Mastodon's settings `file`")
	cluster := fs.String("cluster", "", "the database cluster's `id` (required)")
	pool := fs.String("pool", "", "connection pool `name` (default DB_NAME from -env)")
	db := fs.String("db", "", "`database` behind the pool (default FEDIOPS_DB_DIRECT_NAME, else mastodon_production)")
	user := fs.String("user", "", "pool `user` (default DB_USER, else mastodon)")
	size := fs.Int("size", 0, "pool size; 0 = the cluster's limit (FEDIOPS_DB_CONN_LIMIT, else DO's) minus other pools and -reserve")
	reserve := fs.Int("reserve", 5, "connections kept free of pools for migrations, backups and psql")
	private := fs.Bool("private", false, "write the cluster's private (VPC) host as DB_HOST")
	caFile := fs.String("ca-file", "", "`path` of the CA file, mode 0644 (default FEDIOPS_DB_CA_FILE, else do-ca.crt beside -env)")
	cert := fs.String("cdn-cert-id", "", "DO certificate `id` for the CDN's custom domain (S3_ALIAS_HOST); needed to create the endpoint or give it the domain, not once it serves it")
	ttl := fs.Uint("ttl", 0, "CDN cache `seconds`: 60, 600, 3600, 86400 or 604800 (0: 3600 when created, else kept)")
	apiURL := fs.String("api-url", "", "DO API base `URL`, https unless loopback (default DIGITALOCEAN_API_URL, else DO's)")
	apply := fs.Bool("apply", false, "carry out the plan (default: print it only)")
	quote := fs.Bool("quote", false, "also rewrite, single-quoted as written, each value that Rails and the streaming server read differently (the seed's unquoted DB_PASS with a '$')")
	verbose := fs.Bool("v", false, "debug logging")
	if err := p.Parse(fs, args, provisionHelp); err != nil {
		return err
	}

	// Every local setting, before the first call to the API.
	api, err := doapi.OptionsFromEnv(os.LookupEnv)
	switch {
	case *cluster == "":
		return command.Usagef("-cluster is required (provision -h)")
	case err != nil:
		return command.Usage(err)
	case *size < 0 || *reserve < 0:
		return command.Usagef("-size and -reserve are connection counts: 0 or more")
	}
	if *apiURL != "" {
		if err := command.CheckCredentialURL(*apiURL); err != nil {
			return fmt.Errorf("-api-url: %w", err)
		}
		api.BaseURL = *apiURL
	}
	log := p.Logger(*verbose)
	env, findings, err := p.ReadEnv(*envPath)
	if err != nil {
		return err
	}
	if u, _ := env.FileValue("DATABASE_URL"); u != "" {
		return command.Usagef("%s: DATABASE_URL is set and would win over the DB_* lines: remove it", *envPath)
	} else if pgpool.InDirectMode(*envPath) {
		return command.Usagef("%s is in migration mode: run migrate-env --to pooled first", *envPath)
	}
	val := func(key string) string { v, _ := env.FileValue(key); return v }
	*pool, *db, *user = cmp.Or(*pool, val("DB_NAME")), cmp.Or(*db, val(pgpool.EnvDirectName), pgpool.DefaultDatabase), cmp.Or(*user, val("DB_USER"), pgpool.DefaultUser)
	if *pool == "" {
		return command.Usagef("-pool: not given and no DB_NAME in %s", *envPath)
	}
	*caFile = cmp.Or(*caFile, val(pgpool.EnvCAFile), filepath.Join(filepath.Dir(*envPath), "do-ca.crt"))
	if *caFile, err = filepath.Abs(*caFile); err != nil { // the .env names it for other working directories
		return command.Usage(err)
	}
	if st, err := os.Stat(filepath.Dir(*caFile)); err != nil || !st.IsDir() {
		return command.Usagef("-ca-file %s: its directory does not exist", *caFile)
	}
	limits, err := pgpool.LimitsFromEnv(env.Lookup)
	if err != nil {
		return command.Usage(err)
	}
	gc, err := doapi.New(api)
	if err != nil {
		return command.Usage(err)
	}
	m := &pgpool.Manager{API: gc.Databases, Cluster: *cluster, Limits: limits, Reserve: *reserve, Logger: log}
	var cdn *spaces.CDN
	if s3, err := spaces.ConfigFromEnv(env.Lookup); err != nil && !errors.Is(err, spaces.ErrDisabled) {
		return command.Usage(fmt.Errorf("%s: %w", *envPath, err))
	} else if err == nil {
		if cdn, err = spaces.NewCDN(gc.CDNs, spaces.CDNConfig{Origin: s3.Origin(), CustomDomain: s3.AliasHost,
			CertificateID: *cert, TTL: uint32(*ttl), Logger: log}); err != nil {
			return command.Usage(fmt.Errorf("cdn for S3_ALIAS_HOST (-ttl): %w", err))
		}
	}

	// The whole plan is read from the API first; nothing is printed
	// before it is complete.
	var out bytes.Buffer
	changes, todo := 0, []func() error{}
	plan := func(n int, do func() error, format string, a ...any) {
		changes += n
		if fmt.Fprintf(&out, format, a...); n > 0 {
			todo = append(todo, do)
		}
	}
	caChanged, err := m.CAChanged(ctx, *caFile)
	if err != nil {
		return err
	}
	plan(map[bool]int{true: 1}[caChanged], func() error { _, err := m.FetchCA(ctx, *caFile); return err },
		"1. ca %s: %s\n", *caFile, map[bool]string{false: "up to date", true: "write (mode 0644)"}[caChanged])
	if *size == 0 {
		if *size, err = m.Room(ctx, *pool); err != nil {
			return budgetErr(err)
		}
	}
	pp, err := m.PlanPools(ctx, pgpool.PoolSpec{Name: *pool, Database: *db, User: *user, Size: *size, Mode: "transaction"})
	if err != nil {
		return budgetErr(err)
	}
	plan(pp.Changes(), func() error { return m.Apply(ctx, pp) }, "2. pool %s, %s", *pool, pp)
	if cdn == nil {
		plan(0, nil, "3. cdn: skipped, S3_ENABLED is not true\n")
	} else if cp, err := cdn.Plan(ctx); err != nil {
		var ce *spaces.ConfigError
		if errors.As(err, &ce) {
			return command.Usage(fmt.Errorf("cdn for S3_ALIAS_HOST: %w (-cdn-cert-id)", err))
		}
		return err
	} else {
		plan(len(cp.Steps), func() error { _, err := cp.Apply(ctx); return err }, "3. %s\n", cp)
	}
	host, err := m.Host(ctx, *private)
	if err != nil {
		return err
	}
	sets, err := env.Set(pgpool.PooledSettings(host, *pool, *user, *db, *caFile, val("DB_SSLMODE"))...)
	if err != nil {
		return err
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
			return err
		}
		sets = append(sets, quoted...)
	}
	plan(len(sets), env.Save, "4. env %s:%s\n", *envPath, map[bool]string{true: " up to date"}[len(sets) == 0])
	for _, c := range sets {
		fmt.Fprintf(&out, "   %s\n", c)
	}
	if !*quote {
		for _, s := range asWritten {
			fmt.Fprintf(&out, "   offer: %s reads differently in Rails and in the streaming server (see the warning); -quote rewrites it single-quoted as written, so that both read the text of the file\n", s.Key)
		}
	}
	if _, err := out.WriteTo(p.Stdout); err != nil {
		return err
	}
	if changes == 0 || !*apply {
		fmt.Fprintf(p.Stdout, "%d change(s)%s\n", changes, map[bool]string{true: "; run with -apply to make them"}[changes > 0 && !*apply])
		return nil
	}
	for _, do := range todo {
		if err := do(); err != nil {
			return err
		}
	}
	fmt.Fprintf(p.Stdout, "applied %d change(s)\n", changes)
	return nil
}

// budgetErr makes a pool that does not fit the cluster's connection budget
// a configuration error (exit 2): -size, -reserve or the other pools must
// change, not the API.
func budgetErr(err error) error {
	if errors.Is(err, pgpool.ErrOverBudget) || errors.Is(err, pgpool.ErrNoRoom) || errors.Is(err, pgpool.ErrInvalid) {
		return command.Usage(err)
	}
	return err
}
