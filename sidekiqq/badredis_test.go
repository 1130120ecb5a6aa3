package sidekiqq

import (
	"strings"
	"testing"
	"time"
)

// TestReadBadData: keys of the wrong type and payloads Sidekiq would not
// write are reported as problems; the rest is still read.
func TestReadBadData(t *testing.T) {
	t.Parallel()
	w, r, cnt := testDB(t)
	c := ctx(t)
	for _, err := range []error{
		w.SAdd(c, "queues", "default", "broken", "wrongtype", "push").Err(),
		w.LPush(c, "queue:default", `{"class":"A","jid":"ok","enqueued_at":1795654790000}`).Err(),
		w.LPush(c, "queue:broken", `{"class":"A","jid":"tail","enqueued_at":17956`).Err(), // the oldest: truncated
		w.LPush(c, "queue:broken", `{"class":"A","jid":"head","enqueued_at":1795654799000}`).Err(),
		w.HSet(c, "queue:wrongtype", "a", "b").Err(),
		w.LPush(c, "queue:push", `{"class":"B","jid":"s","enqueued_at":1795654700}`).Err(), // integer seconds
		w.Set(c, "stat:processed", "lots", 0).Err(),
		w.Set(c, "stat:failed", "-3", 0).Err(),
		w.RPush(c, "retry", "x").Err(), // a list, not a zset
		w.SAdd(c, "processes", "p:1:a", "p:2:b", "p:3:c").Err(),
		w.HSet(c, "p:1:a", "info", `{"hostname":"p","concurrency":4,"queues":["default","broken","wrongtype","push","scheduler"],"identity":"p:1:a"}`,
			"busy", "2", "beat", "1795654795.5", "quiet", "false", "extra", "1").Err(),
		w.HSet(c, "p:2:b", "info", "not json", "beat", "1795654795.5").Err(),
		w.Set(c, "p:3:c", "a string, not a hash", 0).Err(),
	} {
		must(t, err)
	}
	s, err := Read(c, r, fixedNow)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if cnt.pipelines.Load() != 2 {
		t.Errorf("%d pipelines", cnt.pipelines.Load())
	}
	var got []string
	for _, p := range s.Problems {
		got = append(got, p.String())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		"retry: WRONGTYPE",
		"stat:processed: \"lots\" is not a count",
		"stat:failed: \"-3\" is not a count",
		"queue:broken: oldest job: malformed job JSON: unexpected end of JSON input",
		"queue:wrongtype: WRONGTYPE",
		"queue:push: oldest job: malformed job JSON: jid s: enqueued_at: integer 1795654700 looks like epoch seconds",
		`p:1:a: unexpected field "extra" in the process hash`,
		"p:2:b: info is not a JSON object",
		"p:3:c: WRONGTYPE",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no problem %q in:\n%s", want, all)
		}
	}
	if len(got) != 9 {
		t.Errorf("%d problems:\n%s", len(got), all)
	}
	if s.Processed != 0 || s.Failed != 0 || s.Retry != 0 || s.Dead != 0 || len(s.Processes) != 1 || s.Processes[0].Busy != 2 {
		t.Errorf("stats %+v", s)
	}
	if q, _ := s.Queue("default"); q.Size != 1 || q.Latency != 10*time.Second {
		t.Errorf("default %+v", q)
	}
	broken, _ := s.Queue("broken")
	if broken.Size != 2 || broken.Latency != 0 || broken.Unreadable == "" || broken.Oldest != nil {
		t.Errorf("broken %+v", broken)
	}
	res := map[string]CheckResult{}
	for _, c := range Check(s, CheckConfig{}) {
		res[c.Name] = c
	}
	if c := res["sidekiq queue broken latency"]; c.OK || !strings.Contains(c.Detail, "latency unknown") {
		t.Errorf("broken latency check %+v", c)
	}
	if c := res["sidekiq queue default latency"]; !c.OK {
		t.Errorf("default latency check %+v", c)
	}
	if c := res["sidekiq scheduler"]; !c.OK {
		t.Errorf("scheduler check %+v", c)
	}
	if c := res["sidekiq queue mailers served"]; c.OK {
		t.Errorf("mailers served check %+v", c)
	}
}
