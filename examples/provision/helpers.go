package main

// Small helpers of provision, each a candidate for a package (see the report).

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/digitalocean/godo"

	"github.com/fediops/fediops/internal/envfile"
	"github.com/fediops/fediops/pgpool"
)

// pooledSettings are the .env.production lines that point Mastodon at a DO
// pool (with the CA for the streaming server and fediops' verify-full) and
// tell migrate-env the database behind it. (A candidate for pgpool.)
func pooledSettings(host, pool, user, db, caFile, sslmode string) [][2]string {
	return [][2]string{{"DB_HOST", host}, {"DB_PORT", strconv.Itoa(pgpool.PoolPort)}, {"DB_NAME", pool},
		{"DB_USER", user}, {"PREPARED_STATEMENTS", "false"}, {"DB_SSLMODE", sslmode},
		{"NODE_EXTRA_CA_CERTS", caFile}, {pgpool.EnvCAFile, caFile}, {pgpool.EnvDirectName, db}}
}

// setAll sets each key that differs, prints it redacted and counts the changes.
func setAll(env *envfile.File, w io.Writer, kvs [][2]string) (int, error) {
	n := 0
	for _, kv := range kvs {
		if v, ok := env.Get(kv[0]); !ok || v != kv[1] {
			if err := env.Set(kv[0], kv[1]); err != nil {
				return n, err
			}
			was := "unset"
			if ok {
				was = strconv.Quote(envfile.Redact(kv[0], v))
			}
			fmt.Fprintf(w, "\n   set %s=%s (was %s)", kv[0], envfile.Redact(kv[0], kv[1]), was)
			n++
		}
	}
	if n == 0 {
		fmt.Fprint(w, " up to date")
	}
	return n, nil
}

// orEnv is flagVal, else the file's non-empty key, else def.
func orEnv(env *envfile.File, flagVal, key, def string) string {
	if v, _ := env.Get(key); flagVal == "" && v != "" {
		return v
	} else if flagVal == "" {
		return def
	}
	return flagVal
}

// budgetSize is the size pool may have: the cluster's limit minus the other
// pools and m.Reserve.
func budgetSize(ctx context.Context, m *pgpool.Manager, pool string) (int, error) {
	b, err := m.Budget(ctx)
	if err != nil {
		return 0, err
	}
	r := b.WithPool(pool, 0).Add(pgpool.Direct("reserve", m.Reserve)).Report()
	if r.Headroom < 1 {
		return 0, fmt.Errorf("no connections left for pool %s: limit %d - other pools %d - reserve %d; shrink a pool, lower -reserve or set -size",
			pool, r.Limit, r.PoolSum, r.Direct)
	}
	return r.Headroom, nil
}

// clusterHost is the cluster's public host, or its VPC host with private.
func clusterHost(ctx context.Context, gc *godo.Client, id string, private bool) (string, error) {
	cl, _, err := gc.Databases.Get(ctx, id)
	if err != nil {
		return "", fmt.Errorf("get cluster %s: %w", id, err)
	}
	conn := cl.Connection
	if private {
		conn = cl.PrivateConnection
	}
	if conn == nil || conn.Host == "" {
		return "", fmt.Errorf("cluster %s: the API gave no host (private=%t)", id, private)
	}
	return conn.Host, nil
}
