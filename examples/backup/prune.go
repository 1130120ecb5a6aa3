package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/command"
)

var pruneHelp = command.Help{
	Usage: "backup prune [-env FILE] [-keep 336h] [-keep-last 6] [-dry-run] [flags]",
	About: `Applies the retention now: deletes the backups older than -keep, never the
newest -keep-last of each source, and the incomplete uploads; -dry-run only
reports what it would delete. (run prunes each source after its backup.)`,
	Env: envB2,
	Exit: [3]string{
		"pruned (or reported, with -dry-run)",
		"B2 failed: unreachable (at once), its key refused, or no usable answer within B2_RETRY_FOR",
		"a usage or configuration error (a bad flag, -env, the B2 settings), found before any network call",
	},
}

func runPrune(ctx context.Context, p *command.Program, args []string) error {
	fs := flag.NewFlagSet("backup prune", flag.ContinueOnError)
	var c common
	c.register(fs, true)
	prefix := fs.String("prefix", "db/", "object name `prefix` in the bucket")
	keepFor := fs.Duration("keep", backup.DefaultKeepFor, "keep backups this long")
	keepLast := fs.Int("keep-last", backup.DefaultKeepLast, "never keep fewer than this many newest backups per source")
	dryRun := fs.Bool("dry-run", false, "only report what would be deleted")
	if err := p.Parse(fs, args, pruneHelp); err != nil {
		return err
	}
	if *keepLast < 1 || *keepFor <= 0 {
		return command.Usagef("-keep %s -keep-last %d: want a positive duration and at least 1", *keepFor, *keepLast)
	}
	s, err := c.open(p)
	if err != nil {
		return err
	}
	store, err := s.openBucket(ctx)
	if err != nil {
		return err
	}
	res, err := backup.Prune(ctx, store, *prefix, "", backup.Retention{KeepFor: *keepFor, KeepLast: *keepLast}, time.Now(), *dryRun)
	writePrune(p.Stdout, res)
	return err
}

// writePrune prints what Prune did (or would do, in a dry run).
func writePrune(w io.Writer, res backup.PruneResult) {
	verb := map[bool]string{true: "would delete", false: "deleted"}[res.DryRun]
	for _, e := range res.Deleted {
		fmt.Fprintf(w, "%s %s %s\n", verb, e.Source, e.ID)
	}
	for _, o := range res.Orphans {
		fmt.Fprintf(w, "%s incomplete %s\n", verb, o.Name)
	}
	fmt.Fprintf(w, "kept %d, deleted %d, orphans %d (dry run: %v)\n", len(res.Kept), len(res.Deleted), len(res.Orphans), res.DryRun)
}
