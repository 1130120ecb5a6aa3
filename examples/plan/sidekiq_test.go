package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runPlan(t *testing.T, args ...string) (code int, out, errOut string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestSidekiqSeed(t *testing.T) {
	code, out, errOut := runPlan(t, "sidekiq")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Count(out, "[Service]") != 2 || strings.Count(out, "-q scheduler") != 2 || // unit + command line of Decker
		!strings.Contains(out, "## Decker: /etc/systemd/system/mastodon-sidekiq.service (threads 25, DB_POOL 25)") {
		t.Errorf("output:\n%s", out)
	}
}

func TestSidekiqPlanJSON(t *testing.T) {
	env := filepath.Join(t.TempDir(), ".env.production")
	if err := os.WriteFile(env, []byte("LOCAL_DOMAIN=vmst.io\nEXPERIMENTAL_FEATURES=fasp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runPlan(t, "sidekiq", "-node", "Scotty:2:4G", "-node", "Decker:2:4096", "-node", "Riker:4:8GB",
		"-budget", "62", "-version", "4.4", "-env", env, "-scheduler", "Scotty", "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
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
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
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

func TestSidekiqErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{}, 2, "usage: plan SUBCOMMAND"},
		{[]string{"nope"}, 2, `unknown subcommand "nope"`},
		{[]string{"sidekiq", "-budget", "3"}, 2, "connection budget too small"},
		{[]string{"sidekiq", "-node", "x:0:4G", "-budget", "20"}, 2, `vCPU "0"`},
		{[]string{"sidekiq", "-node", "x:2:lots", "-budget", "20"}, 2, `memory "lots"`},
		{[]string{"sidekiq", "-budget", "20", "-version", "3.5"}, 2, "unknown Mastodon release"},
		{[]string{"sidekiq", "-budget", "20", "-env", "/nonexistent/.env.production"}, 2, "nonexistent"},
		{[]string{"sidekiq", "-version", "4.6"}, 2, "-version plans a layout: give -budget too"},
		{[]string{"sidekiq", "stray"}, 2, `unexpected argument "stray"`},
		{[]string{"sidekiq", "-h"}, 0, "Without -node and -budget"},
	} {
		code, _, errOut := runPlan(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("plan %v: exit %d, stderr %q; want %d with %q", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
}
