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

var listHelp = command.Help{
	Usage: "backup list [-env FILE] [-prefix db/] [flags]",
	About: `Lists the complete backups in the bucket, one a line (source, ID, stored size,
object), then the incomplete uploads (a data object without its manifest).`,
	Env: envB2,
	Exit: [3]string{
		"listed",
		"B2 failed: unreachable (at once), its key refused, or no usable answer within B2_RETRY_FOR",
		"a usage or configuration error (a bad flag, -env, the B2 settings), found before any network call",
	},
}

func runList(ctx context.Context, p *command.Program, args []string) error {
	fs := flag.NewFlagSet("backup list", flag.ContinueOnError)
	var c common
	c.register(fs, true)
	prefix := fs.String("prefix", "db/", "object name `prefix` in the bucket")
	if err := p.Parse(fs, args, listHelp); err != nil {
		return err
	}
	s, err := c.open(p)
	if err != nil {
		return err
	}
	store, err := s.openBucket(ctx)
	if err != nil {
		return err
	}
	cat, err := backup.Scan(ctx, store, *prefix)
	if err != nil {
		return fmt.Errorf("list %s: %w", *prefix, err)
	}
	writeCatalog(p.Stdout, cat)
	return nil
}

// writeCatalog prints a catalog as a table, one backup per line, then the
// orphans.
func writeCatalog(w io.Writer, c backup.Catalog) {
	for _, e := range c.Backups {
		fmt.Fprintf(w, "%-10s %s  %10s  %s\n", e.Source, e.ID, backup.HumanBytes(e.Size), e.DataObject)
	}
	for _, o := range c.Orphans {
		fmt.Fprintf(w, "%-10s %s  %10s  %s (incomplete: no manifest or no data)\n", "-",
			o.Modified.UTC().Format(time.RFC3339), backup.HumanBytes(o.Size), o.Name)
	}
}
