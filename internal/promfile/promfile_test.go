package promfile_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fediops/fediops/internal/promfile"
)

var t0 = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

// value returns the gauge of name{source=src} from a textfile, failing when absent.
func value(t *testing.T, file, name, src string) float64 {
	t.Helper()
	v, ok := lookup(t, file, name, src)
	if !ok {
		t.Fatalf("%s{source=%q} missing from %s", name, src, file)
	}
	return v
}

func lookup(t *testing.T, file, name, src string) (float64, bool) {
	t.Helper()
	mfs, err := promfile.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return promfile.Gauge(mfs, name, src)
}

func TestRunsTextfileKeepsSuccessTimesAndUnseenSources(t *testing.T) {
	dir := t.TempDir()
	cfg := promfile.Config{Dir: dir}
	file := cfg.File("backup")
	ls := "fediops_backup_last_success_timestamp_seconds"

	// Run 1: both sources succeed.
	r1, err := promfile.NewRuns("backup")
	if err != nil {
		t.Fatal(err)
	}
	r1.Observe(promfile.Result{Source: "postgres", Start: t0, Duration: time.Minute, Bytes: 1000, Objects: 1})
	r1.Observe(promfile.Result{Source: "mysql", Start: t0, Duration: time.Second, Bytes: 10, Objects: 1})
	if err := r1.Write(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if got := value(t, file, ls, "postgres"); got != float64(t0.Unix()) {
		t.Fatalf("run 1 last success = %v", got)
	}

	// Run 2, 4 h later, as a new process: postgres fails; mysql is not run.
	t1 := t0.Add(4 * time.Hour)
	r2, _ := promfile.NewRuns("backup")
	r2.Observe(promfile.Result{Source: "postgres", Start: t1, Duration: 2 * time.Second, Err: errors.New("pg_dump: exit 1")})
	if err := r2.Write(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if got := value(t, file, ls, "postgres"); got != float64(t0.Unix()) {
		t.Errorf("a failed run lost the last success time: %v, want %v", got, t0.Unix())
	}
	if got := value(t, file, "fediops_backup_last_run_timestamp_seconds", "postgres"); got != float64(t1.Unix()) {
		t.Errorf("last run = %v, want %v", got, t1.Unix())
	}
	if got := value(t, file, "fediops_backup_success", "postgres"); got != 0 {
		t.Errorf("success = %v after a failure", got)
	}
	if got := value(t, file, "fediops_backup_failures", "postgres"); got != 1 {
		t.Errorf("failures = %v, want 1 for a failed dump", got)
	}
	if got := value(t, file, "fediops_backup_bytes", "mysql"); got != 10 {
		t.Errorf("unseen source mysql lost its samples: bytes = %v", got)
	}
	if got := value(t, file, ls, "mysql"); got != float64(t0.Unix()) {
		t.Errorf("unseen source mysql: last success %v", got)
	}

	// Run 3: postgres succeeds again: its time moves on.
	t2 := t1.Add(4 * time.Hour)
	r3, _ := promfile.NewRuns("backup")
	r3.Observe(promfile.Result{Source: "postgres", Start: t2, Duration: time.Minute, Bytes: 2000, Objects: 1})
	if err := r3.Write(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if got := value(t, file, ls, "postgres"); got != float64(t2.Unix()) {
		t.Errorf("last success = %v, want %v", got, t2.Unix())
	}

	// Nothing but the .prom file is left in the directory (no temp files).
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "fediops_backup.prom" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v", names)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644 for node_exporter to read", fi.Mode().Perm())
	}
}

func TestMirrorFailuresCountObjects(t *testing.T) {
	cfg := promfile.Config{Dir: t.TempDir()}
	r, _ := promfile.NewRuns("mirror")
	r.Observe(promfile.Result{Source: "media", Start: t0, Duration: time.Minute, Bytes: 5 << 20, Objects: 120, Failures: 3})
	if err := r.Write(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	f := cfg.File("mirror")
	if v := value(t, f, "fediops_mirror_failures", "media"); v != 3 {
		t.Errorf("failures %v", v)
	}
	if v := value(t, f, "fediops_mirror_success", "media"); v != 0 {
		t.Errorf("a run with failed objects counts as success: %v", v)
	}
	if _, ok := lookup(t, f, "fediops_mirror_last_success_timestamp_seconds", "media"); ok {
		t.Error("a failed first run wrote a last success time")
	}
}

// A damaged previous file (a hand edit, a full disk) is replaced, not fatal.
func TestDamagedPreviousFileIsReplaced(t *testing.T) {
	cfg := promfile.Config{Dir: t.TempDir()}
	if err := os.WriteFile(cfg.File("backup"), []byte("this is { not the text format\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, _ := promfile.NewRuns("backup")
	r.Observe(promfile.Result{Source: "redis", Start: t0, Objects: 1})
	if err := r.Write(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if v := value(t, cfg.File("backup"), "fediops_backup_success", "redis"); v != 1 {
		t.Errorf("success %v", v)
	}
}

// A directory that cannot be written fails with the file named.
func TestWriteToMissingDirNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	cfg := promfile.Config{Dir: filepath.Join(dir, "missing", "dir")}
	r, _ := promfile.NewRuns("backup")
	r.Observe(promfile.Result{Source: "redis", Start: t0})
	err := r.Write(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "fediops_backup.prom") {
		t.Fatalf("error %v does not name the file", err)
	}
}

func TestJobNames(t *testing.T) {
	for _, bad := range []string{"", "back-up", "../etc/passwd", "a b", "9lives"} {
		if _, err := promfile.NewRuns(bad); !errors.Is(err, promfile.ErrJobName) {
			t.Errorf("NewRuns(%q) = %v", bad, err)
		}
		if err := (promfile.Config{Dir: t.TempDir()}).Write(context.Background(), bad, prometheus.NewRegistry()); !errors.Is(err, promfile.ErrJobName) {
			t.Errorf("Write(%q) = %v", bad, err)
		}
	}
}

// gateway is an httptest stand-in for the Pushgateway's push API: it keeps
// each group's families as the real one does (PUT replaces the group, POST
// replaces the families sent, DELETE drops the group).
type gateway struct {
	mu     sync.Mutex
	groups map[string]map[string]*dto.MetricFamily // path after /metrics/ -> family name -> family
	auth   []string
	status int
}

func newGateway(t *testing.T) (*gateway, *httptest.Server) {
	g := &gateway{groups: map[string]map[string]*dto.MetricFamily{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.status != 0 {
			http.Error(w, "pushgateway is sad", g.status)
			return
		}
		if !strings.HasPrefix(r.URL.Path, "/metrics/job/") {
			http.NotFound(w, r)
			return
		}
		if u, p, ok := r.BasicAuth(); ok {
			g.auth = append(g.auth, u+":"+p)
		}
		key := groupKey(strings.TrimPrefix(r.URL.Path, "/metrics/"))
		var mfs map[string]*dto.MetricFamily
		if r.Method == http.MethodPut || r.Method == http.MethodPost {
			dec := expfmt.NewDecoder(r.Body, expfmt.ResponseFormat(r.Header))
			mfs = map[string]*dto.MetricFamily{}
			for {
				mf := &dto.MetricFamily{}
				if err := dec.Decode(mf); err == io.EOF {
					break
				} else if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				mfs[mf.GetName()] = mf
			}
		}
		switch r.Method {
		case http.MethodPut:
			g.groups[key] = mfs
		case http.MethodPost:
			if g.groups[key] == nil {
				g.groups[key] = map[string]*dto.MetricFamily{}
			}
			for k, v := range mfs {
				g.groups[key][k] = v
			}
		case http.MethodDelete:
			delete(g.groups, key)
		default:
			http.Error(w, "method", http.StatusMethodNotAllowed)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return g, srv
}

func (g *gateway) gauge(group, name string) (float64, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	mf := g.groups[group][name]
	if mf == nil || len(mf.GetMetric()) != 1 {
		return 0, false
	}
	return mf.GetMetric()[0].GetGauge().GetValue(), true
}

func TestRunsPushOneGroupPerSourceKeepsSuccessTime(t *testing.T) {
	g, srv := newGateway(t)
	cfg := promfile.Config{PushURL: srv.URL, Grouping: map[string]string{"instance": "scotty"}}
	group := "job/fediops_backup/instance/scotty/source/postgres"
	ls := "fediops_backup_last_success_timestamp_seconds"

	r1, _ := promfile.NewRuns("backup")
	r1.Observe(promfile.Result{Source: "postgres", Start: t0, Duration: time.Minute, Bytes: 1000, Objects: 1})
	r1.Observe(promfile.Result{Source: "redis", Start: t0, Bytes: 5, Objects: 1})
	if err := r1.Write(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if v, ok := g.gauge(group, ls); !ok || v != float64(t0.Unix()) {
		t.Fatalf("pushed last success = %v, %v; groups %v", v, ok, keys(g))
	}
	if _, ok := g.gauge("job/fediops_backup/instance/scotty/source/redis", "fediops_backup_bytes"); !ok {
		t.Errorf("redis group missing: %v", keys(g))
	}

	t1 := t0.Add(4 * time.Hour)
	r2, _ := promfile.NewRuns("backup")
	r2.Observe(promfile.Result{Source: "postgres", Start: t1, Err: errors.New("pg_dump failed")})
	if err := r2.Write(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if v, _ := g.gauge(group, ls); v != float64(t0.Unix()) {
		t.Errorf("the failed run's push lost the last success time: %v", v)
	}
	if v, _ := g.gauge(group, "fediops_backup_success"); v != 0 {
		t.Errorf("success %v after the failed run", v)
	}
	if v, _ := g.gauge(group, "fediops_backup_last_run_timestamp_seconds"); v != float64(t1.Unix()) {
		t.Errorf("last run %v", v)
	}
}

func TestConfigWritePushesAndWritesAGatherer(t *testing.T) {
	g, srv := newGateway(t)
	reg := prometheus.NewRegistry()
	up := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fediops_check_up", Help: "h"}, []string{"check"})
	reg.MustRegister(up)
	up.WithLabelValues("database").Set(1)
	dir := t.TempDir()
	cfg := promfile.Config{Dir: dir, PushURL: srv.URL}
	if err := cfg.Write(context.Background(), "health", reg); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	mf := g.groups["job/health"]["fediops_check_up"]
	g.mu.Unlock()
	if mf == nil || mf.GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Errorf("push: %v", keys(g))
	}
	b, err := os.ReadFile(filepath.Join(dir, "fediops_health.prom"))
	if err != nil {
		t.Fatal(err)
	}
	want := "# HELP fediops_check_up h\n# TYPE fediops_check_up gauge\nfediops_check_up{check=\"database\"} 1\n"
	if string(b) != want {
		t.Errorf("textfile:\n%s\nwant:\n%s", b, want)
	}
	// The file is what node_exporter's parser accepts.
	p := expfmt.NewTextParser(model.LegacyValidation)
	if _, err := p.TextToMetricFamilies(strings.NewReader(string(b))); err != nil {
		t.Error(err)
	}
}

func TestPushCredentialsGoAsBasicAuthAndStayOutOfErrors(t *testing.T) {
	g, srv := newGateway(t)
	u := strings.Replace(srv.URL, "http://", "http://ops:s3cretPushPass@", 1)
	cfg := promfile.Config{PushURL: u}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "x_up", Help: "h"}))
	if err := cfg.Write(context.Background(), "health", reg); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	auth := g.auth
	g.status = http.StatusInternalServerError
	g.mu.Unlock()
	if len(auth) != 1 || auth[0] != "ops:s3cretPushPass" {
		t.Errorf("basic auth %v", auth)
	}
	err := cfg.Write(context.Background(), "health", reg)
	if err == nil {
		t.Fatal("a 500 from the gateway is no error")
	}
	if strings.Contains(err.Error(), "s3cretPushPass") {
		t.Errorf("error leaks the password: %v", err)
	}
	// Without "://" url.Parse takes "ops" for the scheme and keeps the
	// password in the opaque part or the path, where Redacted does not look.
	for _, u := range []string{"ftp://ops:s3cretPushPass@host", "ops:s3cretPushPass@127.0.0.1:9091", "http//ops:s3cretPushPass@host"} {
		bad := promfile.Config{PushURL: u}
		if err := bad.Validate(); err == nil || strings.Contains(err.Error(), "s3cretPushPass") || !strings.Contains(err.Error(), promfile.EnvPushURL) {
			t.Errorf("Validate(%s): %v", strings.ReplaceAll(u, "s3cretPushPass", "PASS"), err)
		}
	}
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{promfile.EnvDir: "/var/lib/node_exporter", promfile.EnvPushURL: "http://127.0.0.1:9091"}
	c, err := promfile.ConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil || c.Dir != "/var/lib/node_exporter" || c.PushURL != "http://127.0.0.1:9091" || !c.Enabled() {
		t.Errorf("%+v %v", c, err)
	}
	env[promfile.EnvPushURL] = "127.0.0.1:9091"
	if _, err := promfile.ConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err == nil {
		t.Error("a push URL without scheme is accepted")
	}
}

func TestBudget(t *testing.T) {
	reg := prometheus.NewRegistry()
	b, err := promfile.NewBudget(reg)
	if err != nil {
		t.Fatal(err)
	}
	b.Set("majel", 97, 90)
	dir := t.TempDir()
	if err := (promfile.Config{Dir: dir}).Write(context.Background(), "budget", reg); err != nil {
		t.Fatal(err)
	}
	mfs, _ := promfile.ReadFile(filepath.Join(dir, "fediops_budget.prom"))
	if v := mfs["fediops_db_connections_limit"].GetMetric()[0].GetGauge().GetValue(); v != 97 {
		t.Errorf("limit %v", v)
	}
	if v := mfs["fediops_db_connections_budgeted"].GetMetric()[0].GetGauge().GetValue(); v != 90 {
		t.Errorf("budgeted %v", v)
	}
}

func keys(g *gateway) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for k := range g.groups {
		out = append(out, k)
	}
	return out
}

// groupKey orders the label pairs after job, as the Pushgateway does not
// care about their order in the URL.
func groupKey(path string) string {
	parts := strings.Split(path, "/")
	if len(parts) < 2 {
		return path
	}
	var pairs []string
	for i := 2; i+1 < len(parts); i += 2 {
		pairs = append(pairs, parts[i]+"/"+parts[i+1])
	}
	sort.Strings(pairs)
	return strings.Join(append(parts[:2:2], pairs...), "/")
}
