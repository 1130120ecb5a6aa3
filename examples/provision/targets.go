package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fediops/fediops/command"
	"github.com/fediops/fediops/doapi"
	"github.com/fediops/fediops/mastometrics"
	"github.com/fediops/fediops/tiers/droplets"
)

var targetsHelp = command.Help{
	Usage: "provision targets [-dir DIR] [-mastodon RELEASE] [-health DROPLET] [flags]",
	About: `Writes the scrape targets of deploy/prometheus/prometheus.yml from the droplet inventory:
the droplets of each tier, found by their DO tags (web, sidekiq, streaming, proxy,
search; -tag changes one), laid out in the file_sd files -dir/<job>.json that the
configuration reads, one group per droplet: its private IPv4:port and its tier,
droplet and region labels. Mastodon 4.4 and later are scraped at their collector
(mastodon-web.json; a droplet that runs web and Sidekiq is listed there only),
4.2 and earlier at statsd_exporter (mastodon-statsd.json). Each file is replaced
atomically (temp file and rename), so Prometheus, which re-reads the files when
they change, never reads half of one; an unchanged file is left alone. Run it
from cron or a timer on the Prometheus droplet to follow scale-outs.`,
	Env: []command.Var{
		{Name: "DIGITALOCEAN_TOKEN", About: "the API token (required; read access is enough; never printed)"},
		{Name: "DIGITALOCEAN_API_URL", About: "another API base URL, https unless loopback (-api-url wins)"},
	},
	Exit: [3]string{
		0: "the target files are written (or were up to date)",
		1: "a runtime failure (the API failed or did not answer, a file could not be written)",
		2: "a usage or configuration error: flags, -dir not a writable directory, -health naming a droplet no tier lists",
	},
}

// tagFlags collects -tag TIER=TAG over droplets.DefaultTags.
type tagFlags map[string]string

func (t tagFlags) String() string { return "" }
func (t tagFlags) Set(v string) error {
	tier, tag, ok := strings.Cut(v, "=")
	if !ok || tier == "" {
		return fmt.Errorf("want TIER=TAG, e.g. web=mastodon-web (TIER= drops the tier)")
	}
	if tag == "" {
		delete(t, tier)
	} else {
		t[tier] = tag
	}
	return nil
}

// runTargets is `provision targets`: mastometrics.FindTargets, written to -dir.
func runTargets(ctx context.Context, p *command.Program, args []string) error {
	fs := flag.NewFlagSet("provision targets", flag.ContinueOnError)
	dir := fs.String("dir", "/etc/prometheus/targets", "`directory` of the target files (prometheus.yml's targets/)")
	var cfg mastometrics.TargetsConfig
	fs.StringVar(&cfg.Mastodon, "mastodon", mastometrics.DefaultMastodon, "the Mastodon `release` the droplets run: 4.4+ exporter, 4.2 and earlier StatsD")
	tags := tagFlags(maps.Clone(droplets.DefaultTags))
	fs.Var(tags, "tag", "a tier's DO tag as `TIER=TAG` (repeat; by default each tier's tag is its name: web, sidekiq, streaming, proxy, search)")
	streaming := fs.String("streaming-ports", strconv.Itoa(mastometrics.StreamingPort), "comma-separated `ports` of mastodon-streaming@PORT on each streaming droplet")
	tunnel := fs.String("tunnel", "web,sidekiq,streaming", "comma-separated `roles` whose droplets run the fediops tunnel (\"\" for none)")
	fs.StringVar(&cfg.Health, "health", "", "the `droplet` that runs health -prometheus <private IP>:9101 (default none)")
	apiURL := fs.String("api-url", "", "DO API base `URL`, https unless loopback (default DIGITALOCEAN_API_URL, else DO's)")
	verbose := fs.Bool("v", false, "debug logging")
	if err := p.Parse(fs, args, targetsHelp); err != nil {
		return err
	}

	// Every local setting, before the first call to the API.
	api, err := doapi.OptionsFromEnv(os.LookupEnv)
	if err != nil {
		return command.Usage(err)
	}
	if *apiURL != "" {
		if err := command.CheckCredentialURL(*apiURL); err != nil {
			return fmt.Errorf("-api-url: %w", err)
		}
		api.BaseURL = *apiURL
	}
	for _, s := range splitList(*streaming) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return command.Usagef("-streaming-ports: %q is not a port", s)
		}
		cfg.StreamingPorts = append(cfg.StreamingPorts, n)
	}
	if cfg.StreamingPorts == nil {
		return command.Usagef("-streaming-ports: give at least one port")
	}
	cfg.TunnelRoles = []mastometrics.Tier{}
	for _, s := range splitList(*tunnel) {
		cfg.TunnelRoles = append(cfg.TunnelRoles, mastometrics.Tier(s))
	}
	if err := cfg.Validate(); err != nil {
		return command.Usage(err)
	}
	if err := checkWritableDir(*dir); err != nil {
		return err
	}
	log := p.Logger(*verbose)
	c, err := droplets.NewClient(droplets.Config{API: api, Tags: tags, Logger: log})
	if err != nil {
		return command.Usage(err)
	}

	t, err := mastometrics.FindTargets(ctx, c, cfg)
	if errors.Is(err, mastometrics.ErrUnknownDroplet) {
		return command.Usage(fmt.Errorf("-health: %w", err))
	} else if err != nil {
		return err
	}
	for _, n := range t.Notes {
		p.Warnf("%s", n)
	}
	changed, err := t.Write(*dir)
	if err != nil {
		return err
	}
	for _, job := range mastometrics.Jobs {
		path := filepath.Join(*dir, job+".json")
		var names []string
		for _, g := range t.Jobs[job] {
			names = append(names, g.Labels["droplet"])
		}
		state := "unchanged"
		for _, c := range changed {
			if c == path {
				state = "written"
			}
		}
		fmt.Fprintf(p.Stdout, "%s: %s, %d droplet(s)%s\n", path, state, len(names), map[bool]string{true: ": " + strings.Join(names, ", ")}[len(names) > 0])
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// checkWritableDir makes sure dir is a directory this process can create
// files in, before any API call.
func checkWritableDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return command.Usagef("-dir %s: not a directory (create it, or point -dir at prometheus.yml's targets/)", dir)
	}
	f, err := os.CreateTemp(dir, ".provision-check-*")
	if err != nil {
		return command.Usagef("-dir %s: cannot create files there: %v", dir, errors.Unwrap(err))
	}
	f.Close()
	return os.Remove(f.Name())
}
