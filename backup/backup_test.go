package backup_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/filestore"
	"github.com/fediops/fediops/backup/internal/backuptest"
	"github.com/fediops/fediops/backup/slacknotify"
)

var (
	quiet = backuptest.Quiet
	ctxT  = backuptest.Context
)

// memSource is an in-memory Source for retention and notifier tests.
type memSource struct {
	name string
	data string
	err  error
}

func (m memSource) Name() string                            { return m.name }
func (m memSource) Kind() string                            { return "postgres" }
func (m memSource) Version(context.Context) (string, error) { return "mem 1", nil }
func (m memSource) Dump(_ context.Context, w io.Writer) error {
	if _, err := io.WriteString(w, m.data); err != nil {
		return err
	}
	return m.err
}

func TestRetentionAtItsBoundary(t *testing.T) {
	st, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, sealer, _ := backuptest.Keys(t)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var clock time.Time
	p := &backup.Pipeline{Store: st, Prefix: "db/", Sealer: sealer, Logger: quiet, Now: func() time.Time { return clock }}
	// 4-hourly backups over 16 days, plus one exactly 14 days old and one a
	// second older.
	ages := []time.Duration{14*24*time.Hour + time.Second, 14 * 24 * time.Hour}
	for h := 0; h < 16*24; h += 4 {
		ages = append(ages, time.Duration(h)*time.Hour+time.Minute)
	}
	for _, a := range ages {
		clock = now.Add(-a)
		if _, err := p.Backup(ctxT(t), memSource{name: "postgres", data: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	dry, err := backup.Prune(ctxT(t), st, "db/", "postgres", backup.Retention{}, now, true)
	if err != nil {
		t.Fatal(err)
	}
	cat, _ := backup.Scan(ctxT(t), st, "db/")
	if len(cat.Backups) != len(ages) {
		t.Fatalf("dry run deleted something: %d of %d left", len(cat.Backups), len(ages))
	}
	for _, e := range dry.Deleted {
		if !e.Time.Before(now.Add(-14 * 24 * time.Hour)) {
			t.Errorf("would delete %s, not older than 14 days", e.ID)
		}
	}
	if want := 1 + 12; len(dry.Deleted) != want { // the 14d+1s one and 2 days of 4-hourly ones past 14d
		t.Errorf("dry run deletes %d, want %d", len(dry.Deleted), want)
	}
	keptExact := false
	for _, e := range dry.Kept {
		keptExact = keptExact || e.Time.Equal(now.Add(-14*24*time.Hour))
	}
	if !keptExact {
		t.Error("a backup exactly 14 days old must be kept")
	}
	res, err := backup.Prune(ctxT(t), st, "db/", "postgres", backup.Retention{}, now, false)
	if err != nil || len(res.Deleted) != len(dry.Deleted) {
		t.Fatalf("prune: %d deleted, %v", len(res.Deleted), err)
	}
	// Long after: everything is old, the newest KeepLast stay.
	res, err = backup.Prune(ctxT(t), st, "db/", "", backup.Retention{KeepLast: 3}, now.Add(60*24*time.Hour), false)
	if err != nil {
		t.Fatal(err)
	}
	cat, _ = backup.Scan(ctxT(t), st, "db/")
	if len(cat.Backups) != 3 || !cat.Backups[2].Time.Equal(now.Add(-time.Minute)) {
		t.Fatalf("after a long gap %d backups left, want the newest 3: %+v", len(cat.Backups), cat.Backups)
	}

	// A failed run prunes nothing, even with an aggressive policy, and
	// notifies loudly.
	var got []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		got = append(got, m)
	}))
	defer hook.Close()
	clock = now.Add(90 * 24 * time.Hour)
	r := &backup.Runner{Pipeline: *p, Retention: backup.Retention{KeepFor: time.Hour, KeepLast: 1},
		Sources:   []backup.Source{memSource{name: "postgres", data: "partial", err: errors.New("pg_dump: connection lost")}},
		Notifiers: []backup.Notifier{&slacknotify.Notifier{WebhookURL: hook.URL}, backup.LogNotifier{Logger: quiet}}}
	if _, err := r.Run(ctxT(t)); err == nil {
		t.Fatal("failed run returned nil")
	}
	cat, _ = backup.Scan(ctxT(t), st, "db/")
	if len(cat.Backups) != 3 || len(cat.Orphans) != 0 {
		t.Fatalf("a failed run changed the catalog: %d backups, %d orphans", len(cat.Backups), len(cat.Orphans))
	}
	if len(got) != 1 {
		t.Fatalf("%d Slack messages, want 1", len(got))
	}
	text := fmt.Sprint(got[0])
	for _, want := range []string{"<!channel>", "FAILED", "danger", "connection lost"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("Slack message lacks %q: %s", want, text)
		}
	}
	// A successful run does prune, and says so.
	got = nil
	r.Sources = []backup.Source{memSource{name: "postgres", data: "ok"}}
	rep, err := r.Run(ctxT(t))
	if err != nil || rep.Results[0].Pruned != 3 {
		t.Fatalf("successful run: pruned %d, %v", rep.Results[0].Pruned, err)
	}
	text = fmt.Sprint(got)
	if !strings.Contains(string(text), "good") || !strings.Contains(string(text), "pruned 3") || strings.Contains(string(text), "<!channel>") {
		t.Errorf("success message: %s", text)
	}
}

func TestLockExcludesSecondRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "backup.lock")
	release, err := backup.Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	// flock is per open file: a second process (here: a second open) fails.
	if _, err := backup.Lock(path); !errors.Is(err, backup.ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	r2, err := backup.Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	r2()
}

// recorder is a Notifier that keeps what it heard, and fails when err is
// set.
type recorder struct {
	got []backup.Report
	err error
}

func (r *recorder) Notify(_ context.Context, rep backup.Report) error {
	r.got = append(r.got, rep)
	return r.err
}

// A run that cannot start (Abort) alerts as a failed one: every source
// not backed up, the cause in the summary; a run stopped on the way names
// its stop; a notifier's failure after stored backups is a *NotifyError
// and the report is not failed; a failed source tells how far it got.
func TestAbortInterruptAndNotifyErrors(t *testing.T) {
	_, sealer, _ := backuptest.Keys(t)
	st, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	r := &backup.Runner{Pipeline: backup.Pipeline{Store: st, Sealer: sealer, Logger: quiet}, Notifiers: []backup.Notifier{rec},
		Sources: []backup.Source{memSource{name: "postgres", data: "x"}, memSource{name: "redis", data: "y"}}}
	cause := fmt.Errorf("lock /run/lock/x: %w", backup.ErrLocked)
	rep, err := r.Abort(ctxT(t), nil, cause)
	if err != nil || !rep.Failed() || len(rec.got) != 1 || len(rep.Results) != 2 || !errors.Is(rep.Err(), backup.ErrLocked) {
		t.Fatalf("Abort: %v, %+v", err, rep)
	}
	if s, d := backup.Summary(rep), backup.Details(rep); s != "*Backup FAILED* on "+rep.Host+": lock /run/lock/x: another run holds the lock" ||
		d != ":x: *postgres* not backed up\n:x: *redis* not backed up" {
		t.Errorf("Abort's message: %q\n%q", s, d)
	}
	ctx, cancel := context.WithCancelCause(ctxT(t))
	cancel(errors.New("terminated signal received"))
	rep, err = r.Run(ctx)
	if !rep.Failed() || !strings.Contains(backup.Summary(rep), "interrupted: terminated signal received") || err == nil {
		t.Errorf("interrupted run: %v; %s", err, backup.Summary(rep))
	}
	rec.err = errors.New("webhook answered 404")
	rep, err = r.Run(ctxT(t))
	var ne *backup.NotifyError
	if rep.Failed() || !errors.As(err, &ne) || ne.Notifier != "backup_test.recorder" || err.Error() != "webhook answered 404" {
		t.Errorf("notifier failure after stored backups: failed %t, %v", rep.Failed(), err)
	}
	rec.err = nil
	r.Sources = []backup.Source{memSource{name: "postgres", data: strings.Repeat("toot ", 200_000), err: errors.New("pg_dump: exit status 1")}}
	rep, _ = r.Run(ctxT(t))
	if d := backup.Details(rep); !strings.Contains(d, "(976.6 KiB dumped, ") || !strings.Contains(d, "sent): back up postgres: pg_dump: exit status 1") {
		t.Errorf("a failed source: %q", d)
	}
}
