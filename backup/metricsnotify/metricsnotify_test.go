package metricsnotify_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/metricsnotify"
	"github.com/fediops/fediops/backup/mirror"
	"github.com/fediops/fediops/internal/promfile"
)

func gauge(t *testing.T, file, name, src string) (float64, bool) {
	t.Helper()
	mfs, err := promfile.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return promfile.Gauge(mfs, name, src)
}

func TestMetricsNotifierBackupAndMirror(t *testing.T) {
	dir := t.TempDir()
	n := metricsnotify.Notifier{Dir: dir}
	var _ backup.Notifier = n
	var _ mirror.Notifier = n
	t0 := time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC)
	rep := backup.Report{Host: "scotty", Started: t0, Finished: t0.Add(2 * time.Minute), Results: []backup.Result{
		{Source: "postgres", StoredBytes: 80 << 20, Duration: 90 * time.Second},
		{Source: "redis", Duration: 5 * time.Second, Err: errors.New("redis-cli: NOAUTH")},
	}}
	if err := n.Notify(context.Background(), rep); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "fediops_backup.prom")
	if v, _ := gauge(t, f, "fediops_backup_bytes", "postgres"); v != 80<<20 {
		t.Errorf("bytes %v", v)
	}
	if v, _ := gauge(t, f, "fediops_backup_last_run_timestamp_seconds", "redis"); v != float64(t0.Add(90*time.Second).Unix()) {
		t.Errorf("redis started %v, want after postgres", v)
	}
	if v, _ := gauge(t, f, "fediops_backup_failures", "redis"); v != 1 {
		t.Errorf("redis failures %v", v)
	}
	if _, ok := gauge(t, f, "fediops_backup_last_success_timestamp_seconds", "redis"); ok {
		t.Error("failed source has a success time")
	}

	mr := mirror.Report{Source: "spaces:media", Target: "b2:mirror", Started: t0, Finished: t0.Add(time.Minute),
		Copied: 12, CopiedBytes: 3000, Errors: 2}
	if err := n.NotifyMirror(context.Background(), mr); err != nil {
		t.Fatal(err)
	}
	fm := filepath.Join(dir, "fediops_mirror.prom")
	if v, _ := gauge(t, fm, "fediops_mirror_failures", "spaces:media"); v != 2 {
		t.Errorf("mirror failures %v", v)
	}
	if v, _ := gauge(t, fm, "fediops_mirror_success", "spaces:media"); v != 0 {
		t.Errorf("mirror with failed objects counted as success: %v", v)
	}
	mr.DryRun, mr.Errors, mr.Copied = true, 0, 99
	if err := n.NotifyMirror(context.Background(), mr); err != nil {
		t.Fatal(err)
	}
	if v, _ := gauge(t, fm, "fediops_mirror_objects", "spaces:media"); v != 12 {
		t.Errorf("a dry run was recorded: objects %v", v)
	}
}

func TestMetricsFromEnv(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	rep := backup.Report{Started: time.Now(), Results: []backup.Result{{Source: "postgres"}}}
	if err := metricsnotify.NotifierFromEnv(lookup).Notify(context.Background(), rep); err != nil {
		t.Fatalf("unset: %v", err)
	}
	env["FEDIOPS_METRICS_DIR"] = dir
	if err := metricsnotify.NotifierFromEnv(lookup).Notify(context.Background(), rep); err != nil {
		t.Fatal(err)
	}
	if v, ok := gauge(t, filepath.Join(dir, "fediops_backup.prom"), "fediops_backup_success", "postgres"); !ok || v != 1 {
		t.Errorf("success %v %v", v, ok)
	}
	env["FEDIOPS_PUSHGATEWAY_URL"] = "not a url"
	if err := metricsnotify.NotifierFromEnv(lookup).Notify(context.Background(), rep); err == nil {
		t.Error("a bad push URL is no error")
	}
}
