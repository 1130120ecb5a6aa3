package mastometrics_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fediops/fediops/mastometrics"
	"github.com/fediops/fediops/tiers/droplets"
)

// seedDroplets is the seed's inventory as droplets.Client lists it: one
// entry per tier a droplet is tagged for (Kirk and Spock run web and
// streaming), plus a droplet that runs web and Sidekiq, one without a
// private address and one switched off.
func seedDroplets() []droplets.Droplet {
	d := func(id int, name, tier, ip string) droplets.Droplet {
		return droplets.Droplet{ID: id, Name: name, Tier: tier, Region: "tor1", Status: "active", PrivateIP: ip}
	}
	off := d(10, "riker", "sidekiq", "10.118.0.10")
	off.Status = "off"
	return []droplets.Droplet{
		d(1, "kirk", "web", "10.118.0.2"), d(2, "spock", "web", "10.118.0.3"), d(9, "uhura", "web", "10.118.0.9"),
		d(3, "sulu", "proxy", "10.118.0.4"), d(4, "chekov", "proxy", ""),
		d(5, "scotty", "sidekiq", "10.118.0.6"), d(6, "decker", "sidekiq", "10.118.0.7"), d(9, "uhura", "sidekiq", "10.118.0.9"), off,
		d(1, "kirk", "streaming", "10.118.0.2"), d(2, "spock", "streaming", "10.118.0.3"),
		d(7, "khan", "search", "10.118.0.8"),
	}
}

// flat renders a job's groups as "droplet tier targets" lines.
func flat(groups []mastometrics.TargetGroup) string {
	var lines []string
	for _, g := range groups {
		lines = append(lines, g.Labels["droplet"]+" "+g.Labels["tier"]+" "+strings.Join(g.Targets, ","))
		if g.Labels["region"] != "tor1" {
			lines = append(lines, "(no region)")
		}
	}
	return strings.Join(lines, "; ")
}

func TestScrapeTargets(t *testing.T) {
	got, err := mastometrics.ScrapeTargets(seedDroplets(), mastometrics.TargetsConfig{Mastodon: "4.4.3", Health: "sulu",
		StreamingPorts: []int{4000, 4001}})
	if err != nil {
		t.Fatal(err)
	}
	for job, want := range map[string]string{
		mastometrics.JobWeb:       "kirk web 10.118.0.2:9394; spock web 10.118.0.3:9394; uhura web 10.118.0.9:9394",
		mastometrics.JobSidekiq:   "decker sidekiq 10.118.0.7:9394; scotty sidekiq 10.118.0.6:9394",
		mastometrics.JobStatsD:    "",
		mastometrics.JobStreaming: "kirk streaming 10.118.0.2:4000,10.118.0.2:4001; spock streaming 10.118.0.3:4000,10.118.0.3:4001",
		mastometrics.JobNode: "decker sidekiq 10.118.0.7:9100; khan search 10.118.0.8:9100; kirk web 10.118.0.2:9100; scotty sidekiq 10.118.0.6:9100; " +
			"spock web 10.118.0.3:9100; sulu proxy 10.118.0.4:9100; uhura web 10.118.0.9:9100",
		mastometrics.JobTunnel: "decker sidekiq 10.118.0.7:9121; kirk web 10.118.0.2:9121; scotty sidekiq 10.118.0.6:9121; spock web 10.118.0.3:9121; uhura web 10.118.0.9:9121",
		mastometrics.JobHealth: "sulu proxy 10.118.0.4:9101",
	} {
		if g := flat(got.Jobs[job]); g != want {
			t.Errorf("%s:\n got %s\nwant %s", job, g, want)
		}
	}
	if len(got.Jobs) != len(mastometrics.Jobs) {
		t.Errorf("%d jobs, want every one of %v", len(got.Jobs), mastometrics.Jobs)
	}
	notes := strings.Join(got.Notes, "\n")
	if len(got.Notes) != 2 || !strings.Contains(notes, "droplet chekov (tier proxy) has no private IPv4 address: left out") ||
		!strings.Contains(notes, "droplet riker (tier sidekiq) is off: left out") {
		t.Errorf("notes: %q", got.Notes)
	}

	// 4.2: statsd_exporter on web and Sidekiq droplets, once per droplet.
	got, err = mastometrics.ScrapeTargets(seedDroplets(), mastometrics.TargetsConfig{Mastodon: "v4.2.10", TunnelRoles: []mastometrics.Tier{}})
	if err != nil {
		t.Fatal(err)
	}
	if g, want := flat(got.Jobs[mastometrics.JobStatsD]), "decker sidekiq 10.118.0.7:9102; kirk web 10.118.0.2:9102; scotty sidekiq 10.118.0.6:9102; spock web 10.118.0.3:9102; uhura web 10.118.0.9:9102"; g != want {
		t.Errorf("statsd:\n got %s\nwant %s", g, want)
	}
	for _, job := range []string{mastometrics.JobWeb, mastometrics.JobSidekiq, mastometrics.JobTunnel, mastometrics.JobHealth} {
		if len(got.Jobs[job]) != 0 {
			t.Errorf("4.2 without tunnels: %s lists %s", job, flat(got.Jobs[job]))
		}
	}

	// 4.3 sends neither: the Mastodon files stay empty, and a note says why.
	got, err = mastometrics.ScrapeTargets(seedDroplets(), mastometrics.TargetsConfig{Mastodon: "4.3"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.Jobs[mastometrics.JobWeb]) + len(got.Jobs[mastometrics.JobSidekiq]) + len(got.Jobs[mastometrics.JobStatsD]); n != 0 ||
		!strings.Contains(strings.Join(got.Notes, "\n"), "Mastodon 4.3 sends neither") || len(got.Jobs[mastometrics.JobNode]) != 7 {
		t.Errorf("4.3: %d Mastodon groups, notes %q", n, got.Notes)
	}
}

func TestTargetsConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  mastometrics.TargetsConfig
		want string
	}{
		{mastometrics.TargetsConfig{Mastodon: "four"}, `Mastodon: release "four"`},
		{mastometrics.TargetsConfig{StreamingPorts: []int{70000}}, "StreamingPorts: 70000 is not a port"},
		{mastometrics.TargetsConfig{StreamingPorts: []int{}}, "StreamingPorts: empty"},
		{mastometrics.TargetsConfig{TunnelRoles: []mastometrics.Tier{"redis"}}, `TunnelRoles: "redis"`},
		{mastometrics.TargetsConfig{Roles: map[string]mastometrics.Tier{"web": "puma"}}, `Roles["web"] = "puma"`},
		{mastometrics.TargetsConfig{Ports: map[string]int{mastometrics.JobStreaming: 4000}}, `Ports["mastodon-streaming"]: not a job with one port`},
		{mastometrics.TargetsConfig{Ports: map[string]int{mastometrics.JobNode: 0}}, `Ports["node"]: 0 is not a port`},
	} {
		_, err := mastometrics.ScrapeTargets(nil, c.cfg)
		if !errors.Is(err, mastometrics.ErrBadTargetsConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
	_, err := mastometrics.ScrapeTargets(seedDroplets(), mastometrics.TargetsConfig{Health: "picard"})
	if !errors.Is(err, mastometrics.ErrUnknownDroplet) || !strings.Contains(err.Error(), `"picard"`) {
		t.Errorf("unknown health droplet: %v", err)
	}
}

// Write replaces each file through a rename (a reader holding the old
// file keeps reading it whole), mode 0644, leaves an unchanged file and
// no temporary file behind.
func TestTargetsWrite(t *testing.T) {
	dir := t.TempDir()
	got, err := mastometrics.ScrapeTargets(seedDroplets(), mastometrics.TargetsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, mastometrics.JobWeb+".json")
	if err := os.WriteFile(stale, []byte("[]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old, err := os.Open(stale)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	changed, err := got.Write(dir)
	if err != nil || len(changed) != len(mastometrics.Jobs) {
		t.Fatalf("first write: %v %v", changed, err)
	}
	b := make([]byte, 10)
	if n, _ := old.Read(b); string(b[:n]) != "[]\n" {
		t.Errorf("the old file changed under its reader: %q", b[:n])
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != len(mastometrics.Jobs) {
		t.Errorf("files in dir: %v", ents)
	}
	for _, job := range mastometrics.Jobs {
		path := filepath.Join(dir, job+".json")
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != 0o644 {
			t.Fatalf("%s: %v %v", path, err, st)
		}
		b, _ := os.ReadFile(path)
		var groups []mastometrics.TargetGroup
		if err := json.Unmarshal(b, &groups); err != nil || len(groups) != len(got.Jobs[job]) {
			t.Errorf("%s: %v, %d groups, want %d:\n%s", path, err, len(groups), len(got.Jobs[job]), b)
		}
	}
	before, _ := os.Stat(stale)
	if changed, err := got.Write(dir); err != nil || len(changed) != 0 {
		t.Errorf("second write: %v %v", changed, err)
	}
	if after, _ := os.Stat(stale); !os.SameFile(before, after) {
		t.Error("an unchanged file was replaced")
	}
	if _, err := got.Write(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "write targets "+filepath.Join(dir, "missing", "mastodon-web.json")) {
		t.Errorf("missing dir: %v", err)
	}
}
