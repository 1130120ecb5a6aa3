package backup_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/agezstd"
	"github.com/fediops/fediops/backup/filestore"
)

// textSource stands in for pg_dump in this example.
type textSource struct{ text string }

func (s textSource) Name() string                            { return "postgres" }
func (s textSource) Kind() string                            { return "postgres" }
func (s textSource) Version(context.Context) (string, error) { return "example 1.0", nil }
func (s textSource) Dump(_ context.Context, w io.Writer) error {
	_, err := io.WriteString(w, s.text)
	return err
}

// Back up a source to a directory encrypted to one age key, list it, and
// restore it with the private key.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "backup-example")
	defer os.RemoveAll(dir)
	store, _ := filestore.New(dir)
	identity, _ := age.GenerateX25519Identity() // keep this one off the server

	r := &backup.Runner{
		Pipeline: backup.Pipeline{Store: store, Prefix: "db/", Sealer: &agezstd.Sealer{Recipients: []age.Recipient{identity.Recipient()}},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		Sources: []backup.Source{textSource{strings.Repeat("INSERT INTO statuses VALUES ('hello');\n", 1000)}},
	}
	rep, err := r.Run(ctx)
	fmt.Println("run failed:", rep.Failed(), err)

	cat, _ := backup.Scan(ctx, store, "db/")
	latest, _ := cat.Latest("postgres")
	m, _ := backup.ReadManifest(ctx, store, latest)
	fmt.Println("backups:", len(cat.Backups), "dump bytes:", m.DumpBytes, "smaller stored:", m.StoredBytes < m.DumpBytes/10)

	out, _ := os.CreateTemp(dir, "restored")
	_, err = backup.Restore(ctx, store, m, &agezstd.Unsealer{Identities: []age.Identity{identity}}, writerTarget{out})
	fmt.Println("restored:", err == nil)
	// Output:
	// run failed: false <nil>
	// backups: 1 dump bytes: 39000 smaller stored: true
	// restored: true
}

type writerTarget struct{ w io.Writer }

func (t writerTarget) Restore(_ context.Context, r io.Reader) error {
	_, err := io.Copy(t.w, r)
	return err
}

// Which backups a 14-day policy keeps: everything from the last 14 days,
// and never fewer than the newest 6.
func ExampleRetention_Plan() {
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	var backups []backup.Entry
	for d := 0; d < 20; d++ {
		t := now.AddDate(0, 0, -d)
		backups = append(backups, backup.Entry{Source: "postgres", ID: t.Format(backup.StampLayout), Time: t})
	}
	keep, drop, _ := backup.Retention{}.Plan(now, backups)
	fmt.Println("keep", len(keep), "drop", len(drop), "oldest kept", keep[len(keep)-1].ID)
	// Output: keep 15 drop 5 oldest kept 20261112T000000Z
}

// The systemd units that run the backup every 4 hours.
func ExampleUnits_Systemd() {
	_, timer := backup.Units{}.Systemd()
	for _, l := range strings.Split(timer, "\n") {
		if strings.HasPrefix(l, "OnCalendar") || strings.HasPrefix(l, "Persistent") || strings.HasPrefix(l, "Randomized") {
			fmt.Println(l)
		}
	}
	// Output:
	// OnCalendar=00/4:00
	// Persistent=true
	// RandomizedDelaySec=600
}
