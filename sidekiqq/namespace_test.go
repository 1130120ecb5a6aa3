package sidekiqq

import (
	"reflect"
	"strings"
	"testing"
)

// TestReadNamespace: with Mastodon 4.3's REDIS_NAMESPACE every key is read
// under it. Each scene is written once without a namespace and read with
// Read, then under a namespace next to another scene without one (another
// instance sharing the Redis database): ReadNamespace must read the same.
func TestReadNamespace(t *testing.T) {
	t.Parallel()
	w, r, _ := testDB(t)
	const ns = "mastodon_production"
	scenes := []string{"sidekiq-6.5", "sidekiq-7.3", "sidekiq-8.1"}
	for i, scene := range scenes {
		must(t, w.FlushDB(ctx(t)).Err())
		load(t, w, scene)
		want, err := Read(ctx(t), r, fixedNow)
		if err != nil {
			t.Fatal(err)
		}
		must(t, w.FlushDB(ctx(t)).Err())
		loadNS(t, w, ns, scene)
		other := scenes[(i+1)%len(scenes)]
		load(t, w, other)
		got, err := ReadNamespace(ctx(t), r, ns, fixedNow)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s under %s:\n%+v\nwant (read without a namespace)\n%+v", scene, ns, got, want)
		}
		if plain, err := Read(ctx(t), r, fixedNow); err != nil || reflect.DeepEqual(plain, want) {
			t.Errorf("%s: Read without a namespace read the namespaced scene, not %s (%v)", scene, other, err)
		}
	}

	// Problems name the key as it is in Redis, namespace included;
	// identities and queue names stay as Sidekiq knows them.
	must(t, w.FlushDB(ctx(t)).Err())
	c := ctx(t)
	must(t, w.SAdd(c, ns+":queues", "wrongtype").Err())
	must(t, w.HSet(c, ns+":queue:wrongtype", "a", "b").Err())
	must(t, w.SAdd(c, ns+":processes", "p:1:a", "p:2:b").Err())
	must(t, w.Set(c, ns+":p:1:a", "not a hash", 0).Err())
	must(t, w.HSet(c, ns+":p:2:b", "busy", "0").Err())
	for _, k := range []string{"retry", "schedule", "dead"} {
		must(t, w.Set(c, ns+":"+k, "not a zset", 0).Err())
	}
	must(t, w.Set(c, ns+":stat:processed", "lots", 0).Err())
	must(t, w.Set(c, ns+":stat:failed", "-3", 0).Err())
	// A second namespace whose sets are not sets.
	must(t, w.Set(c, "other:queues", "x", 0).Err())
	must(t, w.Set(c, "other:processes", "x", 0).Err())
	var got []string
	for _, namespace := range []string{ns, "other"} {
		s, err := ReadNamespace(c, r, namespace, fixedNow)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range s.Problems {
			got = append(got, p.String())
		}
		if namespace == ns && (len(s.Queues) != 1 || s.Queues[0].Name != "wrongtype") {
			t.Errorf("queues %+v", s.Queues)
		}
	}
	want := []string{
		"mastodon_production:retry: WRONGTYPE",
		"mastodon_production:schedule: WRONGTYPE",
		"mastodon_production:dead: WRONGTYPE",
		`mastodon_production:stat:processed: "lots" is not a count`,
		`mastodon_production:stat:failed: "-3" is not a count`,
		"mastodon_production:queue:wrongtype: WRONGTYPE",
		"mastodon_production:p:1:a: WRONGTYPE",
		"mastodon_production:p:2:b: process hash has no info field",
		"other:queues: WRONGTYPE",
		"other:processes: WRONGTYPE",
	}
	if len(got) != len(want) {
		t.Fatalf("problems %q\nwant %q", got, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d = %q, want %q...", i, got[i], want[i])
		}
	}
}

func TestNamespaceFromEnv(t *testing.T) {
	env := map[string]string{"REDIS_NAMESPACE": "mastodon_production"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if got := NamespaceFromEnv(lookup); got != "mastodon_production" {
		t.Errorf("NamespaceFromEnv = %q", got)
	}
	delete(env, "REDIS_NAMESPACE")
	if got := NamespaceFromEnv(lookup); got != "" {
		t.Errorf("unset: NamespaceFromEnv = %q", got)
	}
}
