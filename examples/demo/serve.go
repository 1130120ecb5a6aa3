package main

import (
	"context"
	"fmt"
	"io"

	"github.com/fediops/fediops/devstack"
)

// tryCommands are the commands -serve suggests, run from the stack's
// directory after `. stack.env` (which exports the STACK_* variables and
// the DigitalOcean token and URL; devstack.Stack.ShellEnv lists them).
var tryCommands = []struct{ what, cmd string }{
	{"every check, one table", "health -web $STACK_WEB -streaming $STACK_STREAMING -spaces-key $STACK_SPACES_KEY"},
	{"the Sidekiq layout for these settings", "plan sidekiq -env .env.production"},
	{"Puma against the cluster's 97 connections", "plan web -vcpu 2 -db-connections 97 -nodes 2"},
	{"the stunnel file the stack's tunnel runs from", "tunnel -check -config stunnel-redis.conf"},
	{"a second tunnel (Ctrl-C ends it), then redis-cli -p $STACK_TRY_TUNNEL_PORT", "tunnel -config stunnel-try.conf -env .env.production -http ''"},
	{"plan the DO side for the seed's settings (add -apply to make it)", "provision -env seed.env.production -cluster $STACK_DO_CLUSTER -cdn-cert-id $STACK_DO_CERT"},
	{"the backups in the B2 stand-in", "backup list"},
	{"one more backup (pg_dump over the direct port)", "backup run -sources postgres,redis,mysql -lock backup.lock"},
	{"restore the newest PostgreSQL backup", "backup restore -source postgres -to-database mastodon_restore -identity backup-identity.txt"},
	{"mirror the Space to B2 again", "backup mirror -lock mirror.lock"},
}

// serve prints where the stack is and what to try on it, then waits for
// ctx to end (Ctrl-C, SIGTERM).
func serve(ctx context.Context, st *devstack.Stack, w io.Writer) {
	fmt.Fprintf(w, "\nserving: every server stays up until Ctrl-C\n")
	fmt.Fprintf(w, "env file: %s\n", st.EnvFile)
	fmt.Fprintf(w, "\nTry the programs (go build -o bin/ ./examples/... && export PATH=$PWD/bin:$PATH) in another shell:\n\n")
	fmt.Fprintf(w, "  . %s && cd \"$STACK_DIR\"\n", st.ShellFile)
	for _, c := range tryCommands {
		fmt.Fprintf(w, "\n  # %s\n  %s\n", c.what, c.cmd)
	}
	fmt.Fprintln(w)
	<-ctx.Done()
}
