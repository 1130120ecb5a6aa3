package sidekiqq

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// beat writes a Sidekiq 7 process record as Sidekiq's heartbeat does
// (HSET and EXPIRE 60 s), started and beating at the given times.
func beat(t *testing.T, c *redis.Client, ns, id string, queues []string, started, at time.Time) {
	t.Helper()
	key := func(k string) string {
		if ns == "" {
			return k
		}
		return ns + ":" + k
	}
	host, _, _ := strings.Cut(id, ":")
	info, _ := json.Marshal(map[string]any{"hostname": host, "started_at": float64(started.UnixMicro()) / 1e6, "pid": 1,
		"tag": "mastodon", "concurrency": 10, "queues": queues, "labels": []string{}, "identity": id, "version": "7.3.9"})
	must(t, c.SAdd(ctx(t), key("processes"), id).Err())
	must(t, c.HSet(ctx(t), key(id), "info", string(info), "busy", 0, "beat", fmt.Sprintf("%.6f", float64(at.UnixMicro())/1e6), "quiet", "false").Err())
	must(t, c.Expire(ctx(t), key(id), ProcessExpiry).Err())
}

// die removes a process record as its expiry does: the member of the
// processes set lingers, the hash is gone.
func die(t *testing.T, c *redis.Client, ns, id string) {
	t.Helper()
	if ns != "" {
		id = ns + ":" + id
	}
	must(t, c.Del(ctx(t), id).Err())
}

// checkAt reads the cluster at now, remembers and checks it, and returns
// the identities reported vanished and every failed check's name.
func checkAt(t *testing.T, c *redis.Client, cfg CheckConfig, now time.Time) (vanished []string, failed map[string]string) {
	t.Helper()
	s, err := ReadNamespace(ctx(t), c, cfg.Namespace, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := Remember(ctx(t), c, s, cfg); err != nil {
		t.Fatal(err)
	}
	failed = map[string]string{}
	for _, r := range Check(s, cfg) {
		if !r.OK {
			failed[r.Name] = r.Detail
		}
		if id, ok := strings.CutPrefix(r.Name, "sidekiq vanished "); ok {
			vanished = append(vanished, id)
		}
	}
	return vanished, failed
}

var allQueues = []string{"default", "push", "ingress", "mailers", "pull"}

// TestRememberVanished: between cron runs, a process whose record expired
// (it froze or was killed) is reported until a process on its host starts
// again; a restart, a clean stop with a successor and a process on
// another host are not reported; the state lives in one Redis hash with
// an expiry.
func TestRememberVanished(t *testing.T) {
	w, _, _ := testDB(t)
	cfg := CheckConfig{Latency: map[string]time.Duration{}, DefaultLatency: time.Hour, Expect: []string{}}
	t0 := fixedNow
	// Scotty runs two processes, Decker one with the scheduler.
	beat(t, w, "", "scotty:11:aaa", allQueues, t0.Add(-time.Hour), t0)
	beat(t, w, "", "scotty:12:bbb", allQueues, t0.Add(-time.Hour), t0)
	beat(t, w, "", "decker:21:ccc", append(allQueues, "scheduler"), t0.Add(-time.Hour), t0)
	if v, f := checkAt(t, w, cfg, t0); len(v) > 0 || len(f) > 0 {
		t.Fatalf("first run: vanished %v, failed %v", v, f)
	}
	if n := w.HLen(ctx(t), DefaultSeenKey).Val(); n != 3 {
		t.Errorf("%d processes remembered, want 3", n)
	}
	if ttl := w.TTL(ctx(t), DefaultSeenKey).Val(); ttl < DefaultForget || ttl > 2*DefaultForget {
		t.Errorf("state TTL %s", ttl)
	}

	// scotty:12 freezes: 45 s later the heartbeat check fails (the 30 s
	// threshold), then its record expires; 5 minutes later (the next cron
	// run) it is reported vanished, though scotty:11 still runs on its host.
	t1 := t0.Add(45 * time.Second)
	beat(t, w, "", "scotty:11:aaa", allQueues, t0.Add(-time.Hour), t1)
	beat(t, w, "", "decker:21:ccc", append(allQueues, "scheduler"), t0.Add(-time.Hour), t1)
	if v, f := checkAt(t, w, cfg, t1); len(v) > 0 || !strings.Contains(f["sidekiq heartbeat scotty:12:bbb"], "over 30s") || len(f) != 1 {
		t.Errorf("frozen 45 s: vanished %v, failed %v", v, f)
	}
	die(t, w, "", "scotty:12:bbb")
	t2 := t0.Add(5 * time.Minute)
	beat(t, w, "", "scotty:11:aaa", allQueues, t0.Add(-time.Hour), t2)
	beat(t, w, "", "decker:21:ccc", append(allQueues, "scheduler"), t0.Add(-time.Hour), t2)
	v, f := checkAt(t, w, cfg, t2)
	if len(v) != 1 || v[0] != "scotty:12:bbb" {
		t.Fatalf("after expiry: vanished %v, failed %v", v, f)
	}
	if d := f["sidekiq vanished scotty:12:bbb"]; !strings.Contains(d, "no process on scotty started since") || !strings.Contains(d, "default, push") || !strings.Contains(d, "5m0s ago") {
		t.Errorf("detail: %s", d)
	}
	// ... and still at the next run: the state keeps it.
	t3 := t2.Add(5 * time.Minute)
	beat(t, w, "", "scotty:11:aaa", allQueues, t0.Add(-time.Hour), t3)
	beat(t, w, "", "decker:21:ccc", append(allQueues, "scheduler"), t0.Add(-time.Hour), t3)
	if v, _ := checkAt(t, w, cfg, t3); len(v) != 1 {
		t.Errorf("next run: vanished %v", v)
	}

	// Decker crashes and systemd starts it again: for one run the old
	// record lingers beside the new process, then expires. Not reported.
	t4 := t3.Add(20 * time.Second)
	beat(t, w, "", "decker:22:ddd", append(allQueues, "scheduler"), t4.Add(-5*time.Second), t4)
	beat(t, w, "", "scotty:11:aaa", allQueues, t0.Add(-time.Hour), t4)
	checkAt(t, w, cfg, t4)
	die(t, w, "", "decker:21:ccc")
	t5 := t4.Add(5 * time.Minute)
	beat(t, w, "", "scotty:11:aaa", allQueues, t0.Add(-time.Hour), t5)
	beat(t, w, "", "decker:22:ddd", append(allQueues, "scheduler"), t4.Add(-5*time.Second), t5)
	if v, _ := checkAt(t, w, cfg, t5); len(v) != 1 || v[0] != "scotty:12:bbb" {
		t.Errorf("after decker's restart: vanished %v, want only scotty:12:bbb", v)
	}

	// scotty:12's unit is started again: a process on scotty that started
	// after its last beat takes its place, and it is forgotten.
	t6 := t5.Add(5 * time.Minute)
	beat(t, w, "", "scotty:13:eee", allQueues, t6.Add(-time.Minute), t6)
	beat(t, w, "", "scotty:11:aaa", allQueues, t0.Add(-time.Hour), t6)
	beat(t, w, "", "decker:22:ddd", append(allQueues, "scheduler"), t4.Add(-5*time.Second), t6)
	if v, f := checkAt(t, w, cfg, t6); len(v) > 0 {
		t.Errorf("after scotty's restart: vanished %v, failed %v", v, f)
	}
	raw := w.HGetAll(ctx(t), DefaultSeenKey).Val()
	if _, kept := raw["scotty:12:bbb"]; kept || len(raw) != 3 {
		t.Errorf("state after the replacement: %v", raw)
	}
}

// TestRememberForget: a vanished process nothing replaces is reported for
// Forget, then dropped; "-" keeps no state and reports nothing; under a
// namespace the state is under it too.
func TestRememberForget(t *testing.T) {
	w, _, _ := testDB(t)
	cfg := CheckConfig{Latency: map[string]time.Duration{}, DefaultLatency: time.Hour, Expect: []string{}, Forget: time.Hour, Namespace: "mastodon_production"}
	t0 := fixedNow
	beat(t, w, cfg.Namespace, "kirk:1:aaa", allQueues, t0.Add(-time.Hour), t0)
	beat(t, w, cfg.Namespace, "spock:1:bbb", append(allQueues, "scheduler"), t0.Add(-time.Hour), t0)
	checkAt(t, w, cfg, t0)
	if n := w.HLen(ctx(t), "mastodon_production:"+DefaultSeenKey).Val(); n != 2 {
		t.Fatalf("state under the namespace holds %d", n)
	}
	die(t, w, cfg.Namespace, "kirk:1:aaa")
	for _, step := range []struct {
		after time.Duration
		want  int
	}{{2 * time.Minute, 1}, {59 * time.Minute, 1}, {63 * time.Minute, 0}} {
		now := t0.Add(step.after)
		beat(t, w, cfg.Namespace, "spock:1:bbb", append(allQueues, "scheduler"), t0.Add(-time.Hour), now)
		if v, _ := checkAt(t, w, cfg, now); len(v) != step.want {
			t.Errorf("%s after: vanished %v, want %d", step.after, v, step.want)
		}
	}

	off := cfg
	off.SeenKey, off.Namespace = "-", ""
	beat(t, w, "", "uhura:1:aaa", allQueues, t0.Add(-time.Hour), t0)
	checkAt(t, w, off, t0)
	die(t, w, "", "uhura:1:aaa")
	if v, _ := checkAt(t, w, off, t0.Add(5*time.Minute)); len(v) > 0 {
		t.Errorf("SeenKey \"-\": vanished %v", v)
	}
	if n := w.Exists(ctx(t), DefaultSeenKey, "-").Val(); n != 0 {
		t.Errorf("SeenKey \"-\" wrote state")
	}
}

// TestCheckThresholdAndFASP: a StaleAfter that can never fail is a failed
// check itself; with EXPERIMENTAL_FEATURES=fasp an unserved fasp queue
// fails, naming the admin dashboard's warning.
func TestCheckThresholdAndFASP(t *testing.T) {
	s := &Stats{At: fixedNow, Processes: []ProcessStats{{Identity: "decker:1:a", Hostname: "decker", Concurrency: 10,
		Queues: append(allQueues, "scheduler"), Beat: fixedNow.Add(-5 * time.Second), HeartbeatAge: 5 * time.Second}}}
	failed := func(cfg CheckConfig) map[string]string {
		out := map[string]string{}
		for _, r := range Check(s, cfg) {
			if !r.OK {
				out[r.Name] = r.Detail
			}
		}
		return out
	}
	if f := failed(CheckConfig{}); len(f) > 0 {
		t.Errorf("defaults: %v", f)
	}
	if f := failed(CheckConfig{StaleAfter: 59 * time.Second}); len(f) > 0 {
		t.Errorf("59 s: %v", f)
	}
	if f := failed(CheckConfig{StaleAfter: time.Minute}); !strings.Contains(f["sidekiq heartbeat threshold"], "can never fail") || len(f) != 1 {
		t.Errorf("60 s: %v", f)
	}
	f := failed(CheckConfig{ExperimentalFeatures: "search, fasp"})
	if d := f["sidekiq queue fasp served"]; !strings.Contains(d, "admin dashboard") || len(f) != 1 {
		t.Errorf("fasp: %v", f)
	}
	s.Processes[0].Queues = append(s.Processes[0].Queues, "fasp")
	if f := failed(CheckConfig{ExperimentalFeatures: "fasp"}); len(f) > 0 {
		t.Errorf("fasp served: %v", f)
	}
}

// TestLayoutNotes: a layout without fasp gets a note when
// EXPERIMENTAL_FEATURES names fasp, in WriteText too; a plan made with the
// feature serves fasp and has none; 4.3 has no fasp queue.
func TestLayoutNotes(t *testing.T) {
	seed := SeedLayout()
	if n := seed.Notes(); n != nil {
		t.Errorf("seed without features: %v", n)
	}
	seed.ExperimentalFeatures = "fasp"
	if n := seed.Notes(); len(n) != 1 || !strings.Contains(n[0], "no process lists the fasp queue") || !strings.Contains(n[0], "admin dashboard") {
		t.Errorf("seed with fasp: %v", n)
	}
	var b strings.Builder
	if err := seed.WriteText(&b, UnitOptions{}); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(b.String(), "\n"); !strings.HasPrefix(lines[1], "# note: EXPERIMENTAL_FEATURES names fasp") {
		t.Errorf("WriteText:\n%s", b.String())
	}
	planned, err := Plan(PlanConfig{Mastodon: "4.5", ExperimentalFeatures: "fasp", Nodes: SeedNodes(), Budget: 40})
	if err != nil {
		t.Fatal(err)
	}
	if n := planned.Notes(); n != nil {
		t.Errorf("planned with fasp: %v", n)
	}
	old, err := Plan(PlanConfig{Mastodon: "4.3", ExperimentalFeatures: "fasp", Nodes: SeedNodes(), Budget: 40})
	if err != nil {
		t.Fatal(err)
	}
	if n := old.Notes(); len(n) != 1 || !strings.Contains(n[0], "Mastodon 4.3 does not have") {
		t.Errorf("4.3 with fasp: %v", n)
	}
}
