package e2e

import (
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func plan(t *testing.T, args ...string) Result {
	t.Helper()
	return Run(t, "plan", Env(), args...)
}

func TestPlanSidekiqSeed(t *testing.T) {
	r := plan(t, "sidekiq")
	if r.Code != 0 || r.Stderr != "" {
		t.Fatal(r)
	}
	if strings.Count(r.Stdout, "[Service]") != 2 || strings.Count(r.Stdout, "-q scheduler") != 2 || // unit + command line of Decker
		!strings.Contains(r.Stdout, "## Decker: /etc/systemd/system/mastodon-sidekiq.service (threads 25, DB_POOL 25)") {
		t.Errorf("output:\n%s", r.Stdout)
	}
}

// The seed's layout serves no fasp queue: with EXPERIMENTAL_FEATURES=fasp
// in -env (or -experimental) the plan says so, and without it says nothing.
func TestPlanSidekiqFaspNote(t *testing.T) {
	env := filepath.Join(t.TempDir(), ".env.production")
	if err := os.WriteFile(env, []byte("EXPERIMENTAL_FEATURES=fasp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"sidekiq", "-env", env}, {"sidekiq", "-experimental", "fasp"}} {
		r := plan(t, args...)
		if r.Code != 0 || !strings.Contains(r.Stdout, "fasp") || !strings.Contains(strings.ToLower(r.Stdout), "note") {
			t.Errorf("%v: no fasp note:\n%s", args, r)
		}
	}
	if r := plan(t, "sidekiq"); r.Code != 0 || strings.Contains(r.Stdout, "fasp") {
		t.Errorf("a note without fasp asked for:\n%s", r)
	}
}

func TestPlanSidekiqJSON(t *testing.T) {
	env := filepath.Join(t.TempDir(), ".env.production")
	if err := os.WriteFile(env, []byte("LOCAL_DOMAIN=vmst.io\nEXPERIMENTAL_FEATURES=fasp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := plan(t, "sidekiq", "-node", "Scotty:2:4G", "-node", "Decker:2:4096", "-node", "Riker:4:8GB",
		"-budget", "62", "-version", "4.4", "-env", env, "-scheduler", "Scotty", "-json")
	if r.Code != 0 {
		t.Fatal(r)
	}
	var got struct {
		Mastodon    string `json:"mastodon"`
		Connections int    `json:"connections"`
		Processes   []struct {
			Node    string `json:"node"`
			Threads int    `json:"threads"`
			Queues  []struct{ Name string }
		} `json:"processes"`
		Units    []struct{ Node, Name, Content string } `json:"units"`
		Commands []struct{ Args []string }              `json:"commands"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil {
		t.Fatalf("%v\n%s", err, r.Stdout)
	}
	if got.Mastodon != "4.4" || got.Connections > 62 || got.Connections < 55 || len(got.Processes) != 8 || len(got.Units) != 8 || len(got.Commands) != 8 {
		t.Fatalf("plan: %+v", got)
	}
	sched := 0
	for i, p := range got.Processes {
		names := []string{}
		for _, q := range p.Queues {
			names = append(names, q.Name)
		}
		if strings.Contains(strings.Join(names, ","), "scheduler") {
			sched++
			if p.Node != "Scotty" || i != 0 {
				t.Errorf("scheduler on process %d (%s)", i, p.Node)
			}
		}
		if !strings.Contains(strings.Join(names, ","), "fasp") {
			t.Errorf("process %d lacks fasp: %v", i, names)
		}
	}
	if sched != 1 {
		t.Errorf("scheduler in %d processes", sched)
	}
}

func TestPlanWeb(t *testing.T) {
	r := plan(t, "web", "-vcpu", "2", "-db-connections", "97", "-nodes", "2")
	if r.Code != 0 {
		t.Fatal(r)
	}
	Contains(t, r.Stdout, "WEB_CONCURRENCY=3\nMAX_THREADS=9\nDB_POOL=9\n", "web tier (2 nodes)", "54", "headroom", "43")

	r = plan(t, "web", "-vcpu", "4", "-db-size", "4", "-memory", "8G", "-json")
	if r.Code != 1 || !strings.Contains(r.Stderr, "exceed the limit 97 by 11") {
		t.Fatal(r)
	}
	var got struct {
		Env          map[string]int `json:"env"`
		Headroom     int            `json:"headroom"`
		Alternatives []struct {
			Kind string `json:"kind"`
		} `json:"alternatives"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil {
		t.Fatal(err, r.Stdout)
	}
	if got.Env["WEB_CONCURRENCY"] != 6 || got.Env["MAX_THREADS"] != 18 || got.Headroom != -11 || len(got.Alternatives) != 3 {
		t.Fatalf("%+v", got)
	}
}

// TestPlanMemorySizes: -node and -memory read sizes alike (one parser).
func TestPlanMemorySizes(t *testing.T) {
	for _, size := range []string{"4096", "4096M", "4096mb", "4G", "4gb", " 4G"} {
		r := plan(t, "sidekiq", "-node", "Scotty:2:"+size, "-budget", "50", "-json")
		if r.Code != 0 || !strings.Contains(r.Stdout, `"memory_mb": 4096`) {
			t.Errorf("-node Scotty:2:%s: %s", size, r)
		}
		r = plan(t, "web", "-memory", size, "-json")
		if r.Code != 0 || !strings.Contains(r.Stdout, `"memory_mib": 4096`) {
			t.Errorf("-memory %s: %s", size, r)
		}
	}
	for _, size := range []string{"", "0", "4T", "lots", "-4G"} {
		if r := plan(t, "sidekiq", "-node", "Scotty:2:"+size, "-budget", "50"); r.Code != 2 || !strings.Contains(r.Stderr, "memory") {
			t.Errorf("-node Scotty:2:%s: %s", size, r)
		}
		if r := plan(t, "web", "-memory", size); size != "" && (r.Code != 2 || !strings.Contains(r.Stderr, "-memory")) {
			t.Errorf("-memory %s: %s", size, r)
		}
	}
}

// TestPlanExitCodes is plan's exit-code matrix. plan reads no CA, opens no
// port and calls no server: those rows do not apply. A web tier over the
// connection budget is the plan's finding (1, with the alternatives); a
// Sidekiq budget too small to plan at all is a usage error (2).
func TestPlanExitCodes(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string // in stderr
	}{
		{"no command", []string{}, 2, "no command: want one of budget, sidekiq, web"},
		{"unknown command", []string{"nope"}, 2, `unknown command "nope"`},
		{"help", []string{"-h"}, 0, ""},
		{"sidekiq help", []string{"sidekiq", "-h"}, 0, ""},
		{"web help", []string{"web", "-h"}, 0, ""},
		{"bad flag", []string{"web", "-nope"}, 2, "flag provided but not defined: -nope"},
		{"bad flag value", []string{"web", "-vcpu", "0"}, 2, "PumaSizing.VCPU: required"},
		{"stray argument", []string{"sidekiq", "stray"}, 2, `unexpected argument "stray"`},
		{"stray argument web", []string{"web", "extra"}, 2, `unexpected argument "extra"`},
		{"bad memory", []string{"web", "-memory", "lots"}, 2, "-memory"},
		{"bad node vCPU", []string{"sidekiq", "-node", "x:0:4G", "-budget", "20"}, 2, `vCPU "0"`},
		{"bad node memory", []string{"sidekiq", "-node", "x:2:lots", "-budget", "20"}, 2, `memory "lots"`},
		{"unknown release", []string{"sidekiq", "-budget", "20", "-version", "3.5"}, 2, "unknown Mastodon release"},
		{"missing file", []string{"sidekiq", "-budget", "20", "-env", "/nonexistent/.env.production"}, 2, "nonexistent"},
		{"planning flag without budget", []string{"sidekiq", "-version", "4.6"}, 2, "-version plans a layout: give -budget too"},
		{"sidekiq budget too small", []string{"sidekiq", "-budget", "3"}, 2, "connection budget too small"},
		{"web over budget", []string{"web", "-vcpu", "4", "-db-connections", "97"}, 1, "over the database connection budget"},
		{"budget help", []string{"budget", "-h"}, 0, ""},
		{"budget bad vCPU list", []string{"budget", "-vcpu", "2,x"}, 2, `-vcpu: "x" is not a positive number`},
		{"budget database of 0 GiB", []string{"budget", "-db-size", "0"}, 2, `-db-size: "0" is not a positive number`},
		{"budget negative count", []string{"budget", "-direct", "-1"}, 2, "-direct: -1 is negative"},
		{"budget picture too small", []string{"budget", "-width", "100", "-out", filepath.Join(os.TempDir(), "fediops-e2e-budget.png")}, 2, "at least 400x300"},
		{"budget out in a missing directory", []string{"budget", "-out", "/nonexistent/budget.png"}, 2, "-out /nonexistent/budget.png: its directory does not exist"},
		{"budget stray argument", []string{"budget", "now"}, 2, `unexpected argument "now"`},
	} {
		r := plan(t, c.args...)
		if r.Code != c.code || !strings.Contains(r.Stderr, c.msg) || c.code != 0 && !strings.HasPrefix(r.Stderr, "plan: ") {
			t.Errorf("%s: want exit %d with %q on stderr; %s", c.name, c.code, c.msg, r)
		}
	}
	if r := plan(t, "sidekiq", "-h"); !strings.Contains(r.Stdout, "Without -node and -budget") {
		t.Errorf("sidekiq -h: %s", r)
	}
}

// TestPlanBudget draws the budget of the seed's tiers for web droplets of
// 1, 2 and 4 vCPU against 2, 4 and 8 GiB clusters: a PNG of the size
// asked, and sums on stdout whose web part is what plan web computes for
// the same droplets.
func TestPlanBudget(t *testing.T) {
	out := filepath.Join(t.TempDir(), "budget.png")
	r := plan(t, "budget", "-vcpu", "1,2,4", "-db-size", "2,4,8", "-out", out)
	if r.Code != 0 || r.Stderr != "" {
		t.Fatal(r)
	}
	for _, vcpu := range []string{"1", "2", "4"} {
		w := plan(t, "web", "-vcpu", vcpu, "-nodes", "2", "-json")
		var web struct {
			Tier int `json:"connections_per_tier"`
		}
		if err := json.Unmarshal([]byte(w.Stdout), &web); err != nil || web.Tier == 0 {
			t.Fatalf("plan web -vcpu %s: %v\n%s", vcpu, err, w)
		}
		total := web.Tier + 2*25 + 2*10 + 5
		Contains(t, r.Stdout, fmt.Sprintf("%s vCPU: web %d + Sidekiq 50 + streaming 20 + direct 5 = %d: ", vcpu, web.Tier, total))
	}
	Contains(t, r.Stdout, "1 vCPU: web 6 + Sidekiq 50 + streaming 20 + direct 5 = 81: fits 4 GiB, 16 spare\n",
		"2 vCPU: web 54 + Sidekiq 50 + streaming 20 + direct 5 = 129: fits 8 GiB, 68 spare\n",
		"4 vCPU: web 216 + Sidekiq 50 + streaming 20 + direct 5 = 291: over 8 GiB by 94\n",
		"limits: 2 GiB 47, 4 GiB 97, 8 GiB 197\nwrote "+out+"\n")
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil || cfg.Width != 200+3*270 || cfg.Height != 600 {
		t.Errorf("%s: %v, %dx%d, want 1010x600", out, err, cfg.Width, cfg.Height)
	}
}
