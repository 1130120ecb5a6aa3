package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fediops/fediops/chart"
	"github.com/fediops/fediops/command"
	"github.com/fediops/fediops/tiers"
)

var budgetHelp = command.Help{
	Usage: "plan budget [-vcpu N,N...] [-db-size GiB,GiB...] [-out FILE.png] [flags]",
	About: `Draws the database connection budget as a PNG picture: for each web droplet size
(-vcpu, one column each; Puma sized by the seed's rule as plan web does) a stack of
the connections web (droplets x WEB_CONCURRENCY x DB_POOL), Sidekiq (processes x
DB_POOL), the streaming server (processes x DB_POOL) and direct use (migrations,
pg_dump, psql) may open, against the connection limit of each database size
(-db-size, DigitalOcean's 25 per GiB - 3), one line each. Each column says which
size holds it; stdout repeats the sums. Connections through a transaction-mode
pool beyond the pool's size wait in pgBouncer instead of failing: the picture
counts every one, as plan web does.`,
	Exit: [3]string{0: "the picture was written (whether or not every column fits: it shows which do)", 1: "the picture could not be written"},
}

// intList reads "2,4,8" as positive numbers.
func intList(name, v string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, command.Usagef("%s: %q is not a positive number (want a list such as 1,2,4)", name, strings.TrimSpace(f))
		}
		out = append(out, n)
	}
	return out, nil
}

func runBudget(_ context.Context, p *command.Program, args []string) error {
	fs := flag.NewFlagSet("plan budget", flag.ContinueOnError)
	vcpus := fs.String("vcpu", "2", "`list` of vCPUs per web droplet, comma-separated, one column each (the seed: 2)")
	nodes := fs.Int("nodes", 2, "web droplets")
	var puma tiers.PumaSizing
	fs.IntVar(&puma.WebConcurrency, "web-concurrency", 0, "WEB_CONCURRENCY instead of the rule (vCPU x 1.5)")
	fs.IntVar(&puma.MaxThreads, "max-threads", 0, "MAX_THREADS instead of the rule (WEB_CONCURRENCY x 3)")
	fs.IntVar(&puma.DBPool, "db-pool", 0, "web DB_POOL (default MAX_THREADS)")
	skNodes := fs.Int("sidekiq-nodes", 2, "Sidekiq droplets (the seed: Scotty and Decker)")
	skProcs := fs.Int("sidekiq-processes", 1, "Sidekiq processes per droplet")
	skPool := fs.Int("sidekiq-db-pool", 25, "DB_POOL (= -c threads) of each Sidekiq process, as mastodon-sidekiq.service sets it")
	stProcs := fs.Int("streaming", 2, "streaming server processes in all (the seed: one on each web droplet)")
	stPool := fs.Int("streaming-db-pool", 10, "DB_POOL of each streaming process")
	direct := fs.Int("direct", 5, "direct connections kept for migrations, pg_dump and psql (provision's -reserve)")
	sizes := fs.String("db-size", "4", "`list` of database sizes in GiB, comma-separated, one limit line each (the seed: 4, limit 97)")
	out := fs.String("out", "budget.png", "the PNG `file` to write")
	width := fs.Int("width", 0, "picture width in `pixels` (0: 270 per column and 200 more, at least 640)")
	height := fs.Int("height", 600, "picture height in `pixels`")
	if err := p.Parse(fs, args, budgetHelp); err != nil {
		return err
	}
	cpus, err := intList("-vcpu", *vcpus)
	if err != nil {
		return err
	}
	gibs, err := intList("-db-size", *sizes)
	if err != nil {
		return err
	}
	for _, c := range []struct {
		name string
		v    int
	}{{"-nodes", *nodes}, {"-sidekiq-nodes", *skNodes}, {"-sidekiq-processes", *skProcs}, {"-sidekiq-db-pool", *skPool},
		{"-streaming", *stProcs}, {"-streaming-db-pool", *stPool}, {"-direct", *direct}} {
		if c.v < 0 {
			return command.Usagef("%s: %d is negative", c.name, c.v)
		}
	}
	if st, err := os.Stat(filepath.Dir(*out)); err != nil || !st.IsDir() {
		return command.Usagef("-out %s: its directory does not exist", *out)
	}

	b := chart.Budget{
		Title: fmt.Sprintf("Database connections: %s, %s, %s and %d direct",
			count(*nodes, "web droplet"), count(*skNodes, "Sidekiq droplet"), count(*stProcs, "streaming process"), *direct),
		Kinds: []chart.BudgetKind{
			{Name: "web", About: "droplets × WEB_CONCURRENCY × DB_POOL (Puma workers × their pool)"},
			{Name: "Sidekiq", About: "processes × DB_POOL (= sidekiq -c)"},
			{Name: "streaming", About: "processes × DB_POOL"},
			{Name: "direct", About: "migrations, pg_dump, psql (no pool)"},
		},
		LimitAbout: "cluster limit: 25 per GiB − 3 (DigitalOcean)",
		Width:      *width, Height: *height,
	}
	for _, g := range gibs {
		b.Limits = append(b.Limits, chart.BudgetLimit{Name: fmt.Sprintf("%d GiB", g), Conns: tiers.DBLimit(g)})
	}
	for _, c := range cpus {
		s := puma
		s.VCPU, s.Nodes = c, max(*nodes, 1)
		sz, err := s.Plan()
		if err != nil {
			return command.Usage(err)
		}
		webConns := sz.ConnectionsPerNode * *nodes
		b.Columns = append(b.Columns, chart.BudgetColumn{
			Label: fmt.Sprintf("web droplets of %d vCPU\nWEB_CONCURRENCY %d, MAX_THREADS %d", c, sz.WebConcurrency, sz.MaxThreads),
			Segments: []chart.Segment{
				{Kind: "web", Conns: webConns, Label: fmt.Sprintf("WEB_CONCURRENCY×DB_POOL\n%d×%d on each of %s", sz.WebConcurrency, sz.DBPool, count(*nodes, "droplet"))},
				{Kind: "Sidekiq", Conns: *skNodes * *skProcs * *skPool, Label: fmt.Sprintf("DB_POOL (= sidekiq -c)\n%d in each of %s", *skPool, count(*skNodes**skProcs, "process"))},
				{Kind: "streaming", Conns: *stProcs * *stPool, Label: fmt.Sprintf("DB_POOL\n%d in each of %s", *stPool, count(*stProcs, "process"))},
				{Kind: "direct", Conns: *direct, Label: "kept free of pools"},
			},
		})
	}
	var png bytes.Buffer
	if err := b.WritePNG(&png); err != nil {
		return command.Usage(err)
	}
	if err := os.WriteFile(*out, png.Bytes(), 0o644); err != nil {
		return err
	}
	for i, c := range b.Columns {
		var parts []string
		for _, s := range c.Segments {
			parts = append(parts, fmt.Sprintf("%s %d", s.Kind, s.Conns))
		}
		verdict, _ := b.Verdict(i)
		fmt.Fprintf(p.Stdout, "%d vCPU: %s = %d: %s\n", cpus[i], strings.Join(parts, " + "), b.Total(i), verdict)
	}
	var limits []string
	for _, l := range b.Limits {
		limits = append(limits, fmt.Sprintf("%s %d", l.Name, l.Conns))
	}
	fmt.Fprintf(p.Stdout, "limits: %s\nwrote %s\n", strings.Join(limits, ", "), *out)
	return nil
}

// count is "1 web droplet", "2 web droplets", "2 streaming processes".
func count(n int, one string) string {
	switch {
	case n == 1:
		return "1 " + one
	case strings.HasSuffix(one, "s"):
		return fmt.Sprintf("%d %ses", n, one)
	}
	return fmt.Sprintf("%d %ss", n, one)
}
