package sidekiqq

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseJob(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		unit     TimestampUnit
		at       time.Time
		err      string
	}{
		{"7.x float seconds", `{"class":"A","jid":"j","enqueued_at":1795654709.5}`, Seconds, time.Unix(1795654709, 5e8), ""},
		{"8.x integer ms", `{"class":"A","jid":"j","enqueued_at":1795654709500}`, Milliseconds, time.Unix(1795654709, 5e8), ""},
		{"float with no fraction", `{"class":"A","enqueued_at":1795654709.0}`, Seconds, time.Unix(1795654709, 0), ""},
		{"exponent float", `{"class":"A","enqueued_at":1.7956547095e9}`, Seconds, time.Unix(1795654709, 5e8), ""},
		{"created_at fallback", `{"class":"A","created_at":1795654709500}`, Milliseconds, time.Unix(1795654709, 5e8), ""},
		{"null enqueued_at falls back", `{"class":"A","enqueued_at":null,"created_at":1795654709.5}`, Seconds, time.Unix(1795654709, 5e8), ""},
		{"nested ActiveJob string enqueued_at ignored", `{"class":"W","args":[{"enqueued_at":"2026-11-26T00:00:00Z"}],"enqueued_at":1795654709.5}`, Seconds, time.Unix(1795654709, 5e8), ""},
		{"unknown keys are fine", `{"class":"A","enqueued_at":1795654709.5,"bid":"batch","tags":["x"]}`, Seconds, time.Unix(1795654709, 5e8), ""},

		{"empty", ``, "", time.Time{}, "unexpected end"},
		{"not JSON", `hello`, "", time.Time{}, "invalid character"},
		{"truncated", `{"class":"A","enqueued_at":17956`, "", time.Time{}, "unexpected end"},
		{"array", `[1,2]`, "", time.Time{}, "cannot unmarshal array"},
		{"null", `null`, "", time.Time{}, "null"},
		{"string", `"job"`, "", time.Time{}, "cannot unmarshal string"},
		{"no class", `{"enqueued_at":1795654709.5}`, "", time.Time{}, "no class"},
		{"class not string", `{"class":7,"enqueued_at":1795654709.5}`, "", time.Time{}, "class is"},
		{"jid object", `{"class":"A","jid":{},"enqueued_at":1795654709.5}`, "", time.Time{}, "jid is"},
		{"no timestamps", `{"class":"A","jid":"j1"}`, "", time.Time{}, "neither enqueued_at nor created_at"},
		{"string timestamp", `{"class":"A","enqueued_at":"1795654709.5"}`, "", time.Time{}, "not a number"},
		{"bool timestamp", `{"class":"A","enqueued_at":true}`, "", time.Time{}, "not a number"},
		{"integer seconds", `{"class":"A","enqueued_at":1795654709}`, "", time.Time{}, "looks like epoch seconds"},
		{"float ms", `{"class":"A","enqueued_at":1795654709500.0}`, "", time.Time{}, "not epoch seconds"},
		{"negative", `{"class":"A","enqueued_at":-1}`, "", time.Time{}, "not epoch milliseconds"},
		{"huge integer", `{"class":"A","enqueued_at":99999999999999999999999}`, "", time.Time{}, "out of range"},
		{"huge float", `{"class":"A","enqueued_at":1e400}`, "", time.Time{}, "not epoch seconds"},
		{"zero", `{"class":"A","enqueued_at":0}`, "", time.Time{}, "not epoch milliseconds"},
		{"NaN-ish", `{"class":"A","enqueued_at":NaN}`, "", time.Time{}, "invalid character"},
		{"duplicate key last wins", `{"class":"A","enqueued_at":"x","enqueued_at":1795654709.5}`, Seconds, time.Unix(1795654709, 5e8), ""},
		{"trailing garbage", `{"class":"A","enqueued_at":1795654709.5}}`, "", time.Time{}, "invalid character"},
		{"binary", "\x00\xff\xfe{", "", time.Time{}, "invalid character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := ParseJob([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want ErrMalformed with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if j.Unit != tc.unit || !j.EnqueuedAt.Equal(tc.at) {
				t.Errorf("got %s %v, want %s %v", j.Unit, j.EnqueuedAt, tc.unit, tc.at)
			}
		})
	}
}

// TestParseJobNeverPanics mutates valid payloads byte by byte (a bounded,
// deterministic stand-in for fuzzing; FuzzParseJob runs the real fuzzer).
func TestParseJobNeverPanics(t *testing.T) {
	seeds := []string{
		`{"retry":16,"queue":"push","class":"ActivityPub::DeliveryWorker","args":["{}",1,"https://x/inbox"],"jid":"3f1d","created_at":1795654709.4987,"enqueued_at":1795654709.5}`,
		`{"retry":8,"queue":"ingress","class":"ActivityPub::ProcessingWorker","args":[12,"{}",null],"jid":"4d5e","created_at":1795654755000,"enqueued_at":1795654755500}`,
	}
	junk := []byte{'"', '{', '}', '[', ']', ',', ':', '.', 'e', '-', '0', '9', 0, 0xff, '\\', ' '}
	n := 0
	for _, s := range seeds {
		for i := 0; i < len(s); i++ {
			for _, b := range junk {
				m := []byte(s)
				m[i] = b
				_, _ = ParseJob(m)
				_, _ = ParseJob(m[:i])
				n += 2
			}
		}
	}
	t.Logf("%d mutated payloads, no panic", n)
}

func FuzzParseJob(f *testing.F) {
	f.Add([]byte(`{"class":"A","enqueued_at":1795654709.5}`))
	f.Add([]byte(`{"class":"A","created_at":1795654709500}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := ParseJob(b)
		if err == nil && (j.Class == "" || j.EnqueuedAt.IsZero() || (j.Unit != Seconds && j.Unit != Milliseconds)) {
			t.Fatalf("accepted %q as %+v", b, j)
		}
	})
}

func TestParseProcessBadInput(t *testing.T) {
	now := fixedNow
	info := `{"hostname":"h","pid":1,"concurrency":5,"queues":["default"],"identity":"h:1:n"}`
	for _, tc := range []struct {
		name   string
		hash   map[string]string
		ok     bool
		conc   int
		from   string
		detail string // a problem containing it, "" for none
	}{
		{"7.x", map[string]string{"info": info, "busy": "1", "beat": "1795654790.5", "quiet": "false"}, true, 5, "info", ""},
		{"capsules only", map[string]string{"info": `{"hostname":"h","queues":["a"],"capsules":{"default":{"concurrency":3,"mode":"strict","weights":{"a":0}},"single":{"concurrency":1}}}`, "beat": "1795654790"}, true, 4, "capsules", ""},
		{"hash field wins", map[string]string{"info": info, "concurrency": "9", "beat": "1795654790"}, true, 9, "hash", ""},
		{"no info", map[string]string{"busy": "1", "beat": "1795654790"}, false, 0, "", "no info field"},
		{"info not JSON", map[string]string{"info": "{oops", "beat": "1795654790"}, false, 0, "", "info is not a JSON object"},
		{"info null", map[string]string{"info": "null"}, false, 0, "", "info is not a JSON object"},
		{"info array", map[string]string{"info": "[]"}, false, 0, "", "info is not a JSON object"},
		{"unexpected field", map[string]string{"info": info, "beat": "1795654790", "leader": "1"}, true, 5, "info", `unexpected field "leader"`},
		{"unexpected info key", map[string]string{"info": `{"concurrency":1,"queues":[],"shard":3}`, "beat": "1795654790"}, true, 1, "info", `unexpected key "shard" in info`},
		{"queues not a list", map[string]string{"info": `{"concurrency":1,"queues":"default"}`, "beat": "1795654790"}, true, 1, "info", "info.queues"},
		{"pid a string", map[string]string{"info": `{"concurrency":1,"pid":"12"}`, "beat": "1795654790"}, true, 1, "info", "info.pid"},
		{"concurrency field junk", map[string]string{"info": info, "concurrency": "ten", "beat": "1795654790"}, true, 5, "info", "concurrency field"},
		{"no concurrency anywhere", map[string]string{"info": `{"queues":["a"]}`, "beat": "1795654790"}, true, 0, "", "no concurrency"},
		{"bad busy", map[string]string{"info": info, "busy": "-1", "beat": "1795654790"}, true, 5, "info", "busy"},
		{"bad beat", map[string]string{"info": info, "beat": "yesterday"}, true, 5, "info", "beat"},
		{"ms beat", map[string]string{"info": info, "beat": "1795654790000"}, true, 5, "info", "beat"},
		{"no beat", map[string]string{"info": info}, true, 5, "info", "no beat"},
		{"bad quiet", map[string]string{"info": info, "beat": "1795654790", "quiet": "yes"}, true, 5, "info", "quiet"},
		{"bad rss", map[string]string{"info": info, "beat": "1795654790", "rss": "1.5"}, true, 5, "info", "rss"},
		{"bad rtt", map[string]string{"info": info, "beat": "1795654790", "rtt_us": "x"}, true, 5, "info", "rtt_us"},
		{"identity mismatch", map[string]string{"info": `{"concurrency":1,"identity":"other:1:x"}`, "beat": "1795654790"}, true, 1, "info", "differs"},
		{"weights as one hash", map[string]string{"info": `{"concurrency":1,"weights":{"a":2}}`, "beat": "1795654790"}, true, 1, "info", ""},
		{"weights junk", map[string]string{"info": `{"concurrency":1,"weights":"a"}`, "beat": "1795654790"}, true, 1, "info", "info.weights"},
		{"capsules junk", map[string]string{"info": `{"capsules":[1,2]}`, "beat": "1795654790"}, true, 0, "", "info.capsules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok, probs := parseProcess("h:1:n", tc.hash, now)
			if ok != tc.ok || p.Concurrency != tc.conc || p.ConcurrencyFrom != tc.from {
				t.Errorf("ok %v concurrency %d from %q, want %v %d %q", ok, p.Concurrency, p.ConcurrencyFrom, tc.ok, tc.conc, tc.from)
			}
			found := tc.detail == "" && len(probs) == 0
			for _, pr := range probs {
				if tc.detail != "" && strings.Contains(pr.Detail, tc.detail) && pr.Key == "h:1:n" {
					found = true
				}
			}
			if !found {
				t.Errorf("problems %v, want one with %q", probs, tc.detail)
			}
		})
	}
}
