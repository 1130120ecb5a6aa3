// Command backup takes encrypted database backups to Backblaze B2 and
// restores, verifies, lists and prunes them (package backup and its
// subpackages do the work), and mirrors Mastodon's media from Spaces to B2.
//
//	backup run      dump every source → zstd → age → B2, prune, notify Slack and metrics
//	backup list     complete backups (and orphans) in the bucket
//	backup restore  -source postgres -to-database scratch -identity key.txt
//	backup verify   restore drill (scratch database or RDB file), row or key counts compared
//	backup prune    apply retention now (-dry-run to only report)
//	backup units    print the systemd service and timer (every 4 hours) for `run` with the flags given
//	backup mirror   Spaces media → B2, only the latest copy kept
//
// `backup COMMAND -h` lists a command's flags, the settings it reads and
// its exit statuses: 0 done, 1 a runtime failure (B2, a database, the
// lock), 2 a usage or configuration error (found before any network
// call), and for run and mirror 3: the backups were stored (the mirror
// done) but a notification (Slack, the metrics) failed, so that alerting
// can tell "no backup" from "no notification". Every failure of run and
// mirror once their settings are read, those before the first dump
// included (B2 unreachable, a key refused, a recipient refused, the lock
// held), sends the Slack message and writes the metrics. B2 calls end at
// once when B2 cannot be reached (a refused connection, a name that does
// not resolve) and after B2_RETRY_FOR when it gives no usable answer.
package main

import (
	"context"

	"github.com/fediops/fediops/command"
)

const about = `usage: backup COMMAND [flags]

Encrypted database backups to Backblaze B2 (PostgreSQL over its direct
connection, Redis, MySQL; zstd, then age to public keys only), their
restore and restore drill, retention, and the Spaces media mirror.`

// exitNotified is the exit status of a run whose backups were stored (or
// whose mirror was done) but whose notification failed.
const exitNotified = 3

func main() {
	command.Main("backup", func(ctx context.Context, p *command.Program, args []string) error {
		return p.Dispatch(ctx, about, []command.Command{
			{Name: "run", Summary: "back up every source to B2, prune, notify Slack and the metrics", Run: runRun},
			{Name: "list", Summary: "list the complete backups (and incomplete uploads) in the bucket", Run: runList},
			{Name: "restore", Summary: "restore one backup into a database or an RDB file", Run: runRestore},
			{Name: "verify", Summary: "restore drill: restore into a scratch copy and compare it with the source", Run: runVerify},
			{Name: "prune", Summary: "apply the retention now (-dry-run: only report)", Run: runPrune},
			{Name: "units", Summary: "print the systemd service and timer that run `backup run` every 4 hours", Run: runUnits},
			{Name: "mirror", Summary: "mirror Mastodon's media from Spaces to B2 (only the latest copy)", Run: runMirror},
		}, args)
	})
}
