// Package deploy_test checks the Grafana dashboards (grafana/*.json), the
// Prometheus configuration and rules (prometheus/) and the statsd_exporter
// mapping (statsd/) against the code: every metric they name must be one a
// fediops collector or registry exports, gathered from the real collectors,
// or one Mastodon's exporters serve (the mastofake stand-ins, names taken
// from Mastodon's and the gems' source), and promtool must accept the
// configuration, the rules, their unit tests and every dashboard
// expression. mastodon_test.go runs the configuration end to end.
package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/metricsnotify"
	"github.com/fediops/fediops/backup/mirror"
	"github.com/fediops/fediops/internal/promfile"
	"github.com/fediops/fediops/pgpool"
	"github.com/fediops/fediops/redistls"
	"github.com/fediops/fediops/sidekiqq"
	"github.com/fediops/fediops/tiers/health"
)

// recorder is a Registerer that keeps the names its collectors describe.
type recorder map[string]string // metric name -> package

type pkgRecorder struct {
	r   recorder
	pkg string
}

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

func (p pkgRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqNameRE.FindStringSubmatch(d.String()); m != nil {
			p.r[m[1]] = p.pkg
		}
	}
	return nil
}
func (p pkgRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = p.Register(c)
	}
}
func (p pkgRecorder) Unregister(prometheus.Collector) bool { return true }

// exported gathers the metric names of every fediops collector, from the
// collectors themselves.
func exported(t *testing.T) recorder {
	t.Helper()
	rec := recorder{}
	if _, err := health.NewMetrics(pkgRecorder{rec, "tiers/health"}); err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // Describe never dials
	defer rc.Close()
	pkgRecorder{rec, "sidekiqq"}.MustRegister(sidekiqq.NewCollector(rc, sidekiqq.CollectorOptions{}))
	pkgRecorder{rec, "pgpool"}.MustRegister(pgpool.NewCollector(nil, "pool"))
	if _, err := promfile.NewBudget(pkgRecorder{rec, "promfile"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := redistls.ParseConfig("deploy_test.conf", strings.NewReader("[redis]\nclient = yes\naccept = 127.0.0.1:6379\nconnect = fediops.test:25061\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Registerer = pkgRecorder{rec, "redistls"}
	if _, err := redistls.New(cfg); err != nil {
		t.Fatal(err)
	}
	// Backup and mirror metrics as the notifier writes them.
	dir := t.TempDir()
	n := metricsnotify.Notifier{Dir: dir}
	now := time.Now()
	if err := n.Notify(context.Background(), backup.Report{Started: now, Finished: now,
		Results: []backup.Result{{Source: "postgres", StoredBytes: 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := n.NotifyMirror(context.Background(), mirror.Report{Source: "media", Started: now, Finished: now}); err != nil {
		t.Fatal(err)
	}
	for _, job := range []string{"backup", "mirror"} {
		mfs, err := promfile.ReadFile(filepath.Join(dir, "fediops_"+job+".prom"))
		if err != nil || len(mfs) == 0 {
			t.Fatalf("%s textfile: %v (%d families)", job, err, len(mfs))
		}
		for name := range mfs {
			rec[name] = "backup/metricsnotify"
		}
	}
	for name, src := range mastodonNames(t) {
		rec[name] = src
	}
	return rec
}

// Names Prometheus makes itself, not any exporter.
var builtin = map[string]bool{"up": true, "scrape_duration_seconds": true, "ALERTS": true, "ALERTS_FOR_STATE": true}

// expr is one PromQL expression and where it is.
type expr struct{ where, q string }

func dashboards(t *testing.T) (files []string, exprs []expr) {
	t.Helper()
	files, err := filepath.Glob("grafana/*.json")
	if err != nil || len(files) < 4 {
		t.Fatalf("dashboards: %v %v", files, err)
	}
	labelValues := regexp.MustCompile(`^label_values\(\s*([^,]+),\s*\w+\s*\)$`)
	uids := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			UID        string `json:"uid"`
			Title      string `json:"title"`
			Templating struct {
				List []struct {
					Name, Type string
					Query      any `json:"query"`
				} `json:"list"`
			} `json:"templating"`
			Panels []json.RawMessage `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: uid and title are needed to import it", f)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share uid %q", f, other, d.UID)
		}
		uids[d.UID] = f
		hasDS := false
		for _, v := range d.Templating.List {
			switch v.Type {
			case "datasource":
				hasDS = hasDS || v.Name == "datasource"
			case "query":
				q, _ := v.Query.(map[string]any)
				s, _ := q["query"].(string)
				m := labelValues.FindStringSubmatch(s)
				if m == nil {
					t.Errorf("%s: variable %s: query %q is not label_values(metric, label)", f, v.Name, s)
					continue
				}
				exprs = append(exprs, expr{fmt.Sprintf("%s variable %s", f, v.Name), m[1]})
			}
		}
		if !hasDS {
			t.Errorf("%s: no datasource template variable named datasource", f)
		}
		var walk func(raw []json.RawMessage)
		walk = func(raw []json.RawMessage) {
			for _, r := range raw {
				var p struct {
					Title      string            `json:"title"`
					Type       string            `json:"type"`
					Datasource map[string]string `json:"datasource"`
					Targets    []struct {
						Expr string `json:"expr"`
					} `json:"targets"`
					Panels []json.RawMessage `json:"panels"`
				}
				if err := json.Unmarshal(r, &p); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				walk(p.Panels)
				if p.Type == "row" {
					continue
				}
				if p.Datasource["uid"] != "${datasource}" {
					t.Errorf("%s: panel %q does not use the datasource variable", f, p.Title)
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: panel %q has no query", f, p.Title)
				}
				for _, tg := range p.Targets {
					exprs = append(exprs, expr{fmt.Sprintf("%s panel %q", f, p.Title), tg.Expr})
				}
			}
		}
		walk(d.Panels)
	}
	return files, exprs
}

// rules reads the exprs and recorded names of the rules file. The file is
// plain YAML of one shape (groups → rules → record/alert, expr as a plain
// scalar, possibly folded over more-indented lines, or a | block), which is
// all this needs to read.
func rules(t *testing.T, file string) (exprs []expr, records map[string]bool) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	records = map[string]bool{}
	lines := strings.Split(string(b), "\n")
	indent := func(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }
	name := ""
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		s := strings.TrimSpace(l)
		s = strings.TrimPrefix(s, "- ")
		switch {
		case strings.HasPrefix(s, "record:"):
			name = strings.TrimSpace(strings.TrimPrefix(s, "record:"))
			records[name] = true
		case strings.HasPrefix(s, "alert:"):
			name = strings.TrimSpace(strings.TrimPrefix(s, "alert:"))
		case strings.HasPrefix(s, "expr:"):
			q := strings.TrimSpace(strings.TrimPrefix(s, "expr:"))
			base := indent(l)
			if q == "|" || q == ">" {
				q = ""
			}
			for i+1 < len(lines) && strings.TrimSpace(lines[i+1]) != "" && indent(lines[i+1]) > base {
				i++
				q += " " + strings.TrimSpace(lines[i])
			}
			exprs = append(exprs, expr{fmt.Sprintf("%s rule %s", file, name), strings.TrimSpace(q)})
		}
	}
	if len(exprs) == 0 {
		t.Fatalf("%s: no rules read", file)
	}
	return exprs, records
}

// PromQL words that are not metric names.
var promqlWords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true,
	"on": true, "ignoring": true, "group_left": true, "group_right": true, "atan2": true, "inf": true, "nan": true,
	// aggregations, which may be followed by by (...) before their parentheses
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true, "count": true,
	"count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true,
}

// metricNames returns the metric names a PromQL expression selects: the
// identifiers outside strings, label matchers, ranges and label lists that
// are not functions, aggregations or keywords. Grafana's $variables are
// skipped.
func metricNames(q string) ([]string, error) {
	var names []string
	isIdent := func(c byte, first bool) bool {
		return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9')
	}
	skipTo := func(i int, open, close byte) (int, error) {
		depth := 0
		for j := i; j < len(q); j++ {
			switch q[j] {
			case '"', '\'', '`':
				k := strings.IndexByte(q[j+1:], q[j])
				if k < 0 {
					return 0, fmt.Errorf("unterminated string at %d", j)
				}
				j += k + 1
			case open:
				depth++
			case close:
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("unbalanced %c at %d", open, i)
	}
	afterLabelList := false
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			k := strings.IndexByte(q[i+1:], c)
			if k < 0 {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			i += k + 2
		case c == '{':
			j, err := skipTo(i, '{', '}')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '[':
			j, err := skipTo(i, '[', ']')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '(' && afterLabelList:
			j, err := skipTo(i, '(', ')')
			if err != nil {
				return nil, err
			}
			i, afterLabelList = j, false
		case c == '$':
			i++
			for i < len(q) && (isIdent(q[i], false) || q[i] == '{' || q[i] == '}') {
				i++
			}
		case c >= '0' && c <= '9' || c == '.':
			for i < len(q) && (isIdent(q[i], false) || q[i] == '.') { // numbers, 1e9, 5m
				i++
			}
		case isIdent(c, true):
			j := i
			for j < len(q) && isIdent(q[j], false) {
				j++
			}
			word := q[i:j]
			k := j
			for k < len(q) && q[k] == ' ' {
				k++
			}
			switch {
			case word == "by" || word == "without" || word == "on" || word == "ignoring" || word == "group_left" || word == "group_right":
				afterLabelList = true
			case promqlWords[word]:
			case k < len(q) && q[k] == '(':
				// a function or an aggregation
			default:
				names = append(names, word)
			}
			i = j
		default:
			if c != ' ' && c != '\n' && c != '\t' {
				afterLabelList = false
			}
			i++
		}
	}
	return names, nil
}

func TestMetricNamesParser(t *testing.T) {
	for q, want := range map[string]string{
		`sum by (service, reason) (rate(redistls_dial_errors_total{service=~"$service"}[$__rate_interval]))`: "redistls_dial_errors_total",
		`time() - max by (source) (fediops_backup_last_success_timestamp_seconds) > 8 * 3600`:                "fediops_backup_last_success_timestamp_seconds",
		`a > on (name) b or on (name) (0 * max by (name) (c) + 600)`:                                         "a b c",
		`1 - x{a="by (q)"} / clamp_min(y offset 5m, 1e3) and bool z`:                                         "x y z",
		`label_replace(vector(60), "name", "default", "", "")`:                                               "",
		`sum by (source) (x) > sum without (a, b) (rate(y[5m]))`:                                             "x y",
	} {
		got, err := metricNames(q)
		if err != nil {
			t.Errorf("%s: %v", q, err)
		}
		if strings.Join(got, " ") != want {
			t.Errorf("metricNames(%s) = %v, want %s", q, got, want)
		}
	}
	if _, err := metricNames(`x{a="b"`); err == nil {
		t.Error("an unbalanced brace is accepted")
	}
}

func TestDashboardsAndRulesUseExportedMetrics(t *testing.T) {
	have := exported(t)
	_, dexprs := dashboards(t)
	rexprs, records := rules(t, "prometheus/fediops-rules.yml")
	mexprs, mrecords := rules(t, "prometheus/mastodon-rules.yml")
	rexprs = append(rexprs, mexprs...)
	for r := range mrecords {
		records[r] = true
	}
	used := map[string]bool{}
	for _, e := range append(dexprs, rexprs...) {
		names, err := metricNames(e.q)
		if err != nil {
			t.Errorf("%s: %s: %v", e.where, e.q, err)
			continue
		}
		if len(names) == 0 && !strings.HasPrefix(e.q, "label_replace(vector(") {
			t.Errorf("%s: %q selects no metric", e.where, e.q)
		}
		for _, n := range names {
			used[n] = true
			if have[n] == "" && !records[n] && !builtin[n] {
				t.Errorf("%s uses %s, which no fediops collector or Mastodon stand-in exports", e.where, n)
			}
		}
	}
	// Every fediops family a dashboard should show is shown (collectors'
	// extras such as sidekiq_queue_size may be left out).
	for _, n := range []string{"fediops_backup_last_success_timestamp_seconds", "fediops_mirror_last_success_timestamp_seconds",
		"sidekiq_queue_latency_seconds", "redistls_failovers_total", "redistls_connections_held_total", "fediops_check_status", "fediops_db_connections_limit",
		"ruby_http_requests_total", "ruby_puma_max_threads", "ruby_active_record_connection_pool_busy", "ruby_sidekiq_queue_latency_seconds",
		"ruby_sidekiq_jobs_total", "connected_clients", "nodejs_eventloop_lag_p99_seconds"} {
		if !used[n] {
			t.Errorf("no dashboard or rule uses %s", n)
		}
	}
	var names []string
	for n := range used {
		names = append(names, n+" ("+have[n]+")")
	}
	sort.Strings(names)
	t.Logf("%d metric names used, all exported: %s", len(names), strings.Join(names, ", "))
}

// promtool checks the rules, runs their unit tests, and parses every
// dashboard expression as a recording rule (Grafana's variables replaced).
func TestPromtool(t *testing.T) {
	bin, err := exec.LookPath("promtool")
	if err != nil {
		// A missing binary fails (team rule; scripts/deps.sh installs it).
		t.Fatal("promtool not found; install it with: apt-get install -y prometheus (Debian), or scripts/deps.sh")
	}
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("check", "config", "prometheus/prometheus.yml") // which checks the rules files it loads and the target files
	run("check", "rules", "prometheus/fediops-rules.yml", "prometheus/mastodon-rules.yml")
	run("test", "rules", "prometheus/fediops-rules.test.yml", "prometheus/mastodon-rules.test.yml")

	_, dexprs := dashboards(t)
	vars := strings.NewReplacer("$__rate_interval", "5m", "$service", ".*", "$queue", ".*", "$source", ".*", "$check", ".*")
	var sb strings.Builder
	sb.WriteString("groups:\n  - name: dashboards\n    rules:\n")
	for i, e := range dexprs {
		q, _ := json.Marshal(vars.Replace(e.q)) // a JSON string is a YAML double-quoted scalar
		fmt.Fprintf(&sb, "      - record: dashboard_expr_%d\n        expr: %s\n", i, q)
	}
	f := filepath.Join(t.TempDir(), "dashboards.yml")
	if err := os.WriteFile(f, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run("check", "rules", f)
}

// TestDashboardGrids checks each dashboard's layout as Grafana would place
// it: panel ids unique, every panel within the 24 columns, no two panels
// on the same cell, and no empty cell above the last panel.
func TestDashboardGrids(t *testing.T) {
	files, _ := dashboards(t)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Panels []struct {
				ID      int                      `json:"id"`
				Title   string                   `json:"title"`
				GridPos struct{ H, W, X, Y int } `json:"gridPos"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ids := map[int]string{}
		cells := map[[2]int]string{} // {x, y} -> panel title
		rows := 0
		for _, p := range d.Panels {
			if other, dup := ids[p.ID]; dup {
				t.Errorf("%s: panels %q and %q share id %d", f, other, p.Title, p.ID)
			}
			ids[p.ID] = p.Title
			g := p.GridPos
			if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
				t.Errorf("%s: panel %q has gridPos %+v, outside the 24 columns", f, p.Title, g)
				continue
			}
			for x := g.X; x < g.X+g.W; x++ {
				for y := g.Y; y < g.Y+g.H; y++ {
					if other, ok := cells[[2]int{x, y}]; ok {
						t.Errorf("%s: panels %q and %q overlap at x=%d y=%d", f, other, p.Title, x, y)
					}
					cells[[2]int{x, y}] = p.Title
				}
			}
			rows = max(rows, g.Y+g.H)
		}
		for y := range rows {
			for x := range 24 {
				if _, ok := cells[[2]int{x, y}]; !ok {
					t.Errorf("%s: the grid has a hole at x=%d y=%d", f, x, y)
					break
				}
			}
		}
	}
}
