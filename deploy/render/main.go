// Command render draws the dashboards in deploy/grafana as PNG pictures
// from a real run: it starts a local stack (PostgreSQL behind pgBouncer,
// two TLS Redis), runs the fediops parts against it for -duration (the
// redistls tunnel with client traffic, three failovers, the last one's name
// moving only after TIMEOUTconnect, and an outage of the name; a Sidekiq
// load generator read by sidekiqq's collector, backup and mirror runs with
// backup/metricsnotify, every health check of an instance with web
// answering 503 for a while, the connection budget) and Mastodon's own
// metric sources (internal/mastofake stand-ins scraped with the Mastodon
// jobs of deploy/prometheus/prometheus.yml), lets a real Prometheus
// (Debian package prometheus) scrape them as they are deployed (the
// tunnel's /metrics, the health program's, the textfile directory) with
// the alert rules loaded, then asks Prometheus for every panel's query
// over the run and draws each dashboard's panels where its grid puts them,
// as Grafana draws them: units on the axes, legends below the plot, steps
// for stepAfter, gaps where scrapes failed, stat tiles coloured by
// thresholds and value mappings, state timelines as bands. Before drawing
// it checks every count panel (a rounded increase()) against the
// collectors' own counters, and that the panel of connections held during
// a failover shows each outcome the tunnel counted, released and timeout
// among them; it fails if not.
//
//	make pictures   (go run ./deploy/render -duration 2m -out docs/img)
//
// Exit status: 0 pictures written, 1 a failure, 2 bad flags.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fediops/fediops/redistls"
)

func main() {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	out := fs.String("out", "docs/img", "`dir`ectory the PNG pictures go to")
	dur := fs.Duration("duration", 2*time.Minute, "how long the demo load runs")
	dash := fs.String("dashboards", "deploy/grafana", "`dir`ectory of the Grafana dashboards (*.json)")
	rules := fs.String("rules", "deploy/prometheus/fediops-rules.yml,deploy/prometheus/mastodon-rules.yml", "comma-separated Prometheus rules `files` loaded during the run")
	promYML := fs.String("prometheus-config", "deploy/prometheus/prometheus.yml", "Prometheus configuration `file` whose Mastodon jobs scrape the Mastodon stand-ins")
	width := fs.Int("width", 1200, "picture width in `pixels`")
	verbose := fs.Bool("v", false, "log progress")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: render [flags]\n\nRuns the demo stack under load, scrapes it with Prometheus and draws deploy/grafana's dashboards as PNG.\nNeeds the Debian packages of make demo plus prometheus (for the prometheus binary).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if fs.NArg() > 0 || *dur < 20*time.Second || *width < 400 {
		fmt.Fprintln(os.Stderr, "render: unexpected arguments, -duration under 20s or -width under 400")
		os.Exit(2)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, *out, *dash, *rules, *promYML, *dur, *width); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, out, dashDir, rules, promYML string, dur time.Duration, width int) error {
	dashes, err := filepath.Glob(filepath.Join(dashDir, "*.json"))
	if err != nil || len(dashes) == 0 {
		return fmt.Errorf("no dashboards in %s", dashDir)
	}
	var rulesAbs []string
	for _, r := range strings.Split(rules, ",") {
		abs, err := filepath.Abs(r)
		if err != nil {
			return err
		}
		rulesAbs = append(rulesAbs, abs)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	d, err := startDemo(ctx, log)
	if err != nil {
		return err
	}
	defer d.close()
	m, err := startMastodon()
	if err != nil {
		return err
	}
	defer m.close()
	extra, err := m.scrapeConfigs(promYML, filepath.Join(d.stack.Dir, "prometheus"))
	if err != nil {
		return err
	}
	prom, err := startPrometheus(ctx, d.stack.Dir, d.targets, rulesAbs, extra)
	if err != nil {
		return err
	}
	defer prom.stop()
	log.Info("prometheus up", "url", prom.url, "targets", d.targets)
	start := time.Now()
	mdone := make(chan struct{})
	go func() { m.load(ctx, dur); close(mdone) }()
	if err := d.load(ctx, dur); err != nil {
		return err
	}
	<-mdone
	time.Sleep(3 * time.Second) // the last scrapes and rule evaluations
	// The pictures end at the last scrape of the tunnel, whose counters the
	// count panels show: increase() then extrapolates nothing past it.
	end := time.Now()
	if ts, err := prom.instant(ctx, fmt.Sprintf(`timestamp(up{instance=%q})`, d.targets[0]), end); err != nil || len(ts) != 1 {
		return fmt.Errorf("last scrape: %v %v", ts, err)
	} else {
		end = time.UnixMilli(int64(ts[0] * 1000))
	}
	if res, err := prom.queryRange(ctx, `ALERTS{alertstate="firing"}`, end, end, time.Second); err == nil {
		for _, r := range res {
			fmt.Fprintf(os.Stderr, "render: alert firing at the end: %s %v\n", r.labels["alertname"], r.labels)
		}
	}
	if err := checkCounts(ctx, prom, d, dashes, end); err != nil {
		return err
	}
	if err := checkHeld(ctx, prom, d, dashes, start, end); err != nil {
		return err
	}
	for _, f := range dashes {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		png := filepath.Join(out, "dashboard-"+name+".png")
		if err := renderDashboard(ctx, prom, f, png, start, end, width); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		fi, _ := os.Stat(png)
		fmt.Fprintf(os.Stderr, "render: %s (%d KiB)\n", png, fi.Size()/1024)
	}
	return nil
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// countRE matches a count panel's query: increase() of one counter over a
// window, rounded.
var countRE = regexp.MustCompile(`^round\(sum\(increase\((\w+)\{[^}]*\}\[24h\]\)\)\)$`)

// checkCounts compares every count panel (a stat of rounded increase()
// over 24 h) of the dashboards, as Prometheus answers it at the end of the
// run, with the collectors' own counters: a count shown must be the count
// that happened (a whole number, not a rate or an extrapolation).
func checkCounts(ctx context.Context, prom *promServer, d *demo, dashes []string, end time.Time) error {
	truth := map[string]float64{}
	for _, g := range []prometheus.Gatherer{d.tunReg, d.reg} {
		mfs, err := g.Gather()
		if err != nil {
			return err
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				truth[mf.GetName()] += m.GetCounter().GetValue()
			}
		}
	}
	checked := 0
	for _, f := range dashes {
		panels, err := dashboardPanels(f)
		if err != nil {
			return err
		}
		for _, pn := range panels {
			if pn.Type != "stat" || len(pn.Targets) != 1 {
				continue
			}
			m := countRE.FindStringSubmatch(pn.Targets[0].Expr)
			if m == nil {
				continue
			}
			want, ok := truth[m[1]]
			if !ok {
				continue // not a counter of this process (a textfile's)
			}
			got, err := prom.instant(ctx, vars.Replace(pn.Targets[0].Expr), end)
			if err != nil {
				return err
			}
			if len(got) != 1 || got[0] != want {
				return fmt.Errorf("%s: panel %q shows %v, the collector counted %v", f, pn.Title, got, want)
			}
			fmt.Fprintf(os.Stderr, "render: %s: panel %q shows %v, the collector counted %v\n", filepath.Base(f), pn.Title, got[0], want)
			checked++
		}
	}
	if checked == 0 {
		return errors.New("no count panel checked")
	}
	return nil
}

// heldMetric is the tunnel's counter of connections held during a failover.
const heldMetric = "redistls_connections_held_total"

// checkHeld makes sure the run shows what the held-connections panel is
// for: the tunnel counted connections released when the name moved and
// connections dialed to the demoted node after TIMEOUTconnect (the last
// failover's name moves late), and the panel's own query, over the run,
// has a line above 0 for every outcome the tunnel counted.
func checkHeld(ctx context.Context, prom *promServer, d *demo, dashes []string, start, end time.Time) error {
	counted := map[string]float64{} // by outcome
	mfs, err := d.tunReg.Gather()
	if err != nil {
		return err
	}
	for _, mf := range mfs {
		if mf.GetName() != heldMetric {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" {
					counted[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	for _, o := range []string{redistls.HoldReleased, redistls.HoldTimeout} {
		if counted[o] == 0 {
			return fmt.Errorf("the run held no connection that ended %s (counted %v): the held-connections panel would not show it", o, counted)
		}
	}
	for _, f := range dashes {
		panels, err := dashboardPanels(f)
		if err != nil {
			return err
		}
		for _, pn := range panels {
			if pn.Type != "timeseries" || len(pn.Targets) != 1 || !strings.Contains(pn.Targets[0].Expr, heldMetric) {
				continue
			}
			res, err := prom.queryRange(ctx, vars.Replace(pn.Targets[0].Expr), start, end, time.Second)
			if err != nil {
				return err
			}
			peak := map[string]float64{}
			for _, s := range res {
				for _, v := range s.v {
					peak[s.labels["outcome"]] = max(peak[s.labels["outcome"]], v)
				}
			}
			for o, n := range counted {
				if n > 0 && peak[o] == 0 {
					return fmt.Errorf("%s: panel %q shows no %s connection, the tunnel counted %v", f, pn.Title, o, n)
				}
			}
			fmt.Fprintf(os.Stderr, "render: %s: panel %q peaks at %v per outcome, the tunnel counted %v\n", filepath.Base(f), pn.Title, peak, counted)
			return nil
		}
	}
	return fmt.Errorf("no dashboard has a time series panel of %s", heldMetric)
}

// dashboardPanels reads the panels of the dashboard in file.
func dashboardPanels(file string) ([]panel, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var dash struct{ Panels []panel }
	if err := json.Unmarshal(b, &dash); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return dash.Panels, nil
}
