package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops/internal/dofake"
	"github.com/fediops/fediops/internal/mastofake"
	"github.com/fediops/fediops/internal/testenv"
)

// group is one group of a file_sd file as prometheus.yml's header
// documents it.
type group struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// targetsFake is the DO stand-in holding the seed's droplets, tagged per
// tier, on private addresses in a loopback /24 of their own
// (127.X.Y.0/24), so that the Prometheus of the test scrapes no other
// machine and a stand-in can listen on a droplet's address.
type targetsFake struct {
	*dofake.Server
	url string
	net string // "127.X.Y."
}

func newTargetsFake(t *testing.T) *targetsFake {
	f := &targetsFake{Server: dofake.New(dofake.Options{Token: doToken}), net: fmt.Sprintf("127.%d.%d.", 1+rand.IntN(250), 1+rand.IntN(250))}
	f.url = f.Start(t)
	f.RefuseNothing(t)
	add := func(name, ip string, tags ...string) {
		if ip != "" {
			ip = f.net + ip
		}
		f.AddDroplet(dofake.Droplet{Name: name, Size: "s-2vcpu-4gb", Region: "tor1", PrivateIP: ip, PublicIP: "203.0.113.7",
			VCPUs: 2, MemoryMiB: 4096, Tags: tags})
	}
	add("kirk", "2", "web", "streaming", "mastodon")
	add("spock", "3", "web", "streaming", "mastodon")
	add("sulu", "4", "proxy")
	add("chekov", "5", "proxy")
	add("scotty", "6", "sidekiq")
	add("decker", "7", "sidekiq")
	add("khan", "8", "search")
	add("uhura", "9", "web", "sidekiq") // web and Sidekiq on one droplet
	add("data", "", "sidekiq")          // no private network
	add("picard", "11", "bridge")       // no tier's tag
	return f
}

func (f *targetsFake) run(t *testing.T, args ...string) Result {
	t.Helper()
	r := Run(t, "provision", Env("DIGITALOCEAN_TOKEN="+doToken, "DIGITALOCEAN_API_URL="+f.url), append([]string{"targets"}, args...)...)
	NoSecret(t, r.Output(), doToken)
	return r
}

// readTargets reads every file_sd file in dir as "job droplet tier
// region targets" lines.
func readTargets(t *testing.T, dir string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var gs []group
		if err := json.Unmarshal(b, &gs); err != nil {
			t.Fatalf("%s: %v\n%s", f, err, b)
		}
		job := strings.TrimSuffix(filepath.Base(f), ".json")
		out[job] = []string{}
		for _, g := range gs {
			out[job] = append(out[job], strings.Join([]string{g.Labels["droplet"], g.Labels["tier"], g.Labels["region"], strings.Join(g.Targets, ",")}, " "))
		}
	}
	return out
}

// TestProvisionTargets runs `provision targets` against the DO stand-in:
// the files hold the tagged droplets, each in the jobs its tiers run, at
// its private address; a second run changes nothing; Mastodon 4.2 moves
// web and Sidekiq to statsd_exporter.
func TestProvisionTargets(t *testing.T) {
	f := newTargetsFake(t)
	dir := t.TempDir()
	r := f.run(t, "-dir", dir, "-health", "sulu", "-streaming-ports", "4000,4001")
	if r.Code != 0 {
		t.Fatal(r)
	}
	ip := func(host string) string { return f.net + host }
	want := map[string][]string{
		"mastodon-web":       {"kirk web tor1 " + ip("2:9394"), "spock web tor1 " + ip("3:9394"), "uhura web tor1 " + ip("9:9394")},
		"mastodon-sidekiq":   {"decker sidekiq tor1 " + ip("7:9394"), "scotty sidekiq tor1 " + ip("6:9394")},
		"mastodon-statsd":    {},
		"mastodon-streaming": {"kirk streaming tor1 " + ip("2:4000") + "," + ip("2:4001"), "spock streaming tor1 " + ip("3:4000") + "," + ip("3:4001")},
		"node": {"chekov proxy tor1 " + ip("5:9100"), "decker sidekiq tor1 " + ip("7:9100"), "khan search tor1 " + ip("8:9100"),
			"kirk web tor1 " + ip("2:9100"), "scotty sidekiq tor1 " + ip("6:9100"), "spock web tor1 " + ip("3:9100"),
			"sulu proxy tor1 " + ip("4:9100"), "uhura web tor1 " + ip("9:9100")},
		"fediops-tunnel": {"decker sidekiq tor1 " + ip("7:9121"), "kirk web tor1 " + ip("2:9121"), "scotty sidekiq tor1 " + ip("6:9121"),
			"spock web tor1 " + ip("3:9121"), "uhura web tor1 " + ip("9:9121")},
		"fediops-health": {"sulu proxy tor1 " + ip("4:9101")},
	}
	got := readTargets(t, dir)
	for job, w := range want {
		if !slices.Equal(got[job], w) {
			t.Errorf("%s.json:\n got %q\nwant %q", job, got[job], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("files: %v", got)
	}
	Contains(t, r.Stdout, filepath.Join(dir, "mastodon-web.json")+": written, 3 droplet(s): kirk, spock, uhura\n",
		filepath.Join(dir, "mastodon-statsd.json")+": written, 0 droplet(s)\n")
	if r.Stderr != "provision: warning: droplet data (tier sidekiq) has no private IPv4 address: left out (Prometheus scrapes over the VPC)\n" {
		t.Errorf("stderr: %q", r.Stderr)
	}
	// One listing per tier's tag, and nothing asked of the untagged droplet.
	for _, tag := range []string{"web", "streaming", "sidekiq", "proxy", "search"} {
		if n := f.Count("GET /v2/droplets?page=1&per_page=200&tag_name=" + tag); n != 1 {
			t.Errorf("droplets tagged %s listed %d times", tag, n)
		}
	}

	// The same inventory again: every file left as it is.
	before, _ := os.Stat(filepath.Join(dir, "node.json"))
	r = f.run(t, "-dir", dir, "-health", "sulu", "-streaming-ports", "4000,4001")
	if r.Code != 0 || strings.Count(r.Stdout, ": unchanged, ") != 7 {
		t.Fatal(r)
	}
	if after, _ := os.Stat(filepath.Join(dir, "node.json")); !os.SameFile(before, after) {
		t.Error("an unchanged file was replaced")
	}
	// A scale-out shows in the next run, written through a new file.
	f.AddDroplet(dofake.Droplet{Name: "web-03", Size: "s-2vcpu-4gb", Region: "tor1", PrivateIP: ip("12"), Tags: []string{"web"}})
	r = f.run(t, "-dir", dir)
	if r.Code != 0 || !strings.Contains(r.Stdout, "mastodon-web.json: written, 4 droplet(s): kirk, spock, uhura, web-03\n") ||
		!strings.Contains(r.Stdout, "fediops-health.json: written, 0 droplet(s)") {
		t.Fatal(r)
	}
	if after, _ := os.Stat(filepath.Join(dir, "node.json")); os.SameFile(before, after) {
		t.Error("node.json was written in place, not replaced")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 7 {
		t.Errorf("left in %s: %v", dir, ents)
	}

	// Mastodon 4.2: statsd_exporter on web and Sidekiq droplets, once each.
	dir42 := t.TempDir()
	if r := f.run(t, "-dir", dir42, "-mastodon", "4.2", "-tunnel", ""); r.Code != 0 {
		t.Fatal(r)
	}
	got = readTargets(t, dir42)
	if w := []string{"decker sidekiq tor1 " + ip("7:9102"), "kirk web tor1 " + ip("2:9102"), "scotty sidekiq tor1 " + ip("6:9102"),
		"spock web tor1 " + ip("3:9102"), "uhura web tor1 " + ip("9:9102"), "web-03 web tor1 " + ip("12:9102")}; !slices.Equal(got["mastodon-statsd"], w) {
		t.Errorf("4.2 mastodon-statsd.json:\n got %q\nwant %q", got["mastodon-statsd"], w)
	}
	if len(got["mastodon-web"])+len(got["mastodon-sidekiq"])+len(got["fediops-tunnel"]) != 0 {
		t.Errorf("4.2 with -tunnel \"\": %v", got)
	}
}

// TestProvisionTargetsExitCodes is the subcommand's exit-code matrix: every
// local setting is refused (2) before the first API call.
func TestProvisionTargetsExitCodes(t *testing.T) {
	f := newTargetsFake(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		env  []string // nil: the token and the stand-in's URL
		args []string
		code int
		msg  string
	}{
		{"help", nil, []string{"-h"}, 0, ""},
		{"no token", Env("DIGITALOCEAN_API_URL=" + f.url), []string{"-dir", dir}, 2, "DIGITALOCEAN_TOKEN"},
		{"no dir", nil, []string{"-dir", filepath.Join(dir, "missing")}, 2, "missing: not a directory"},
		{"dir is a file", nil, []string{"-dir", file}, 2, "file: not a directory"},
		{"bad release", nil, []string{"-dir", dir, "-mastodon", "four"}, 2, `release "four"`},
		{"bad streaming port", nil, []string{"-dir", dir, "-streaming-ports", "4000,x"}, 2, `-streaming-ports: "x" is not a port`},
		{"streaming port out of range", nil, []string{"-dir", dir, "-streaming-ports", "70000"}, 2, "70000 is not a port"},
		{"no streaming port", nil, []string{"-dir", dir, "-streaming-ports", ""}, 2, "give at least one port"},
		{"bad tunnel role", nil, []string{"-dir", dir, "-tunnel", "web,redis"}, 2, `TunnelRoles: "redis"`},
		{"bad tag", nil, []string{"-dir", dir, "-tag", "web"}, 2, "want TIER=TAG"},
		{"api in clear", nil, []string{"-dir", dir, "-api-url", "http://api.example/"}, 2, "must be https"},
		{"stray argument", nil, []string{"-dir", dir, "extra"}, 2, `unexpected argument "extra"`},
		{"unknown health droplet", nil, []string{"-dir", dir, "-health", "picard"}, 2, `-health: health droplet "picard": no such droplet in the tiers`},
		{"token refused", Env("DIGITALOCEAN_TOKEN=dop_v1_revoked", "DIGITALOCEAN_API_URL="+f.url), []string{"-dir", dir}, 1, "list droplets tagged"},
	} {
		calls := len(f.Calls())
		env := c.env
		if env == nil {
			env = Env("DIGITALOCEAN_TOKEN="+doToken, "DIGITALOCEAN_API_URL="+f.url)
		}
		r := Run(t, "provision", env, append([]string{"targets"}, c.args...)...)
		if r.Code != c.code || !strings.Contains(r.Stderr, c.msg) || c.code != 0 && !strings.HasPrefix(r.Stderr, "provision: ") {
			t.Errorf("%s: want exit %d with %q; %s", c.name, c.code, c.msg, r)
		}
		if c.code == 2 && !strings.Contains(c.name, "health") && len(f.Calls()) != calls {
			t.Errorf("%s: %d API calls before the usage error", c.name, len(f.Calls())-calls)
		}
		if c.code != 0 && r.Stdout != "" {
			t.Errorf("%s: output before the error:\n%s", c.name, r.Stdout)
		}
		NoSecret(t, r.Output(), doToken, "dop_v1_revoked")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files written by failed runs: %v", ents)
	}
}

// prometheusDir lays out what the Prometheus host gets: the repository's
// prometheus.yml and the rules files it loads, and dir/targets as
// `provision targets` wrote it. scrape shortens the scrape interval to 1 s.
func prometheusDir(t *testing.T, dir string, scrape bool) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(root, "deploy", "prometheus")
	files, _ := filepath.Glob(filepath.Join(src, "*.yml"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(f) == "prometheus.yml" && scrape {
			b = []byte(strings.Replace(string(b), "scrape_interval: 15s", "scrape_interval: 1s", 1))
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "prometheus.yml")
}

// TestProvisionTargetsPrometheus puts the generated files where
// prometheus.yml reads them: promtool accepts the configuration (and
// refuses it with a broken target file, so the check can fail), and
// Debian's Prometheus, started with it, lists exactly the generated
// targets in /api/v1/targets with their labels and scrapes the one that
// listens (a streaming server on Kirk's address).
func TestProvisionTargetsPrometheus(t *testing.T) {
	promtool, prometheus := testenv.Binary(t, "promtool"), testenv.Binary(t, "prometheus")
	f := newTargetsFake(t)
	// Kirk's streaming server, on Kirk's private address.
	ln, err := net.Listen("tcp", f.net+"2:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mastofake.NewStreaming(1)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	streamPort := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	dir := t.TempDir()
	tdir := filepath.Join(dir, "targets")
	if err := os.Mkdir(tdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := f.run(t, "-dir", tdir, "-health", "sulu", "-streaming-ports", streamPort); r.Code != 0 {
		t.Fatal(r)
	}
	conf := prometheusDir(t, dir, true)
	check := func() (string, error) {
		out, err := exec.Command(promtool, "check", "config", conf).CombinedOutput()
		return string(out), err
	}
	if out, err := check(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	} else if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool check config: %s", out)
	}
	good, _ := os.ReadFile(filepath.Join(tdir, "node.json"))
	os.WriteFile(filepath.Join(tdir, "node.json"), []byte(`[{"targets": ["10.0.0.1:9100"], "labels": {"bad label": "x"}}]`), 0o644)
	if out, err := check(); err == nil {
		t.Errorf("promtool accepts a target file with a bad label name:\n%s", out)
	}
	os.WriteFile(filepath.Join(tdir, "node.json"), good, 0o644)

	// The instance label each target gets (prometheus.yml relabels it to
	// droplet:port).
	want := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(tdir, "*.json"))
	for _, file := range files {
		b, _ := os.ReadFile(file)
		var gs []group
		if err := json.Unmarshal(b, &gs); err != nil {
			t.Fatal(err)
		}
		job := strings.TrimSuffix(filepath.Base(file), ".json")
		for _, g := range gs {
			for _, addr := range g.Targets {
				_, port, _ := net.SplitHostPort(addr)
				want[fmt.Sprintf("%s %s:%s %s %s %s %s", job, g.Labels["droplet"], port, g.Labels["tier"], g.Labels["droplet"], g.Labels["region"], addr)] = true
			}
		}
	}
	if len(want) != 8+3+2+2+5+1 { // web, sidekiq, streaming, node, tunnel, health
		t.Fatalf("%d targets generated: %v", len(want), want)
	}

	addr := freeAddr(t)
	testenv.Start(t, filepath.Join(dir, "prometheus.log"), prometheus, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")

	var got map[string]bool
	streamingUp := false
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, streamingUp = activeTargets(t, "http://"+addr)
		if len(got) == len(want) && streamingUp || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for k := range want {
		if !got[k] {
			t.Errorf("Prometheus does not list %s", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("Prometheus lists %s, which provision did not write", k)
		}
	}
	if !streamingUp {
		log, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
		t.Errorf("Kirk's streaming server is not scraped (up)\n%s", log)
	}
}

// activeTargets asks Prometheus for its targets as "job instance tier
// droplet region address" and whether Kirk's streaming server is up.
func activeTargets(t *testing.T, url string) (map[string]bool, bool) {
	t.Helper()
	resp, err := http.Get(url + "/api/v1/targets?state=active")
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Data   struct {
			ActiveTargets []struct {
				Labels           map[string]string `json:"labels"`
				DiscoveredLabels map[string]string `json:"discoveredLabels"`
				Health           string            `json:"health"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Status != "success" {
		return nil, false
	}
	out, up := map[string]bool{}, false
	for _, tg := range body.Data.ActiveTargets {
		l := tg.Labels
		out[strings.Join([]string{l["job"], l["instance"], l["tier"], l["droplet"], l["region"], tg.DiscoveredLabels["__address__"]}, " ")] = true
		if l["job"] == "mastodon-streaming" && l["droplet"] == "kirk" && tg.Health == "up" {
			up = true
		}
	}
	return out, up
}
