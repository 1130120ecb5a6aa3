package health

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/internal/testenv"
)

// TestSidekiqNamespace: with Mastodon 4.3's REDIS_NAMESPACE in the
// settings, the Sidekiq check and collector read Sidekiq's keys under it.
func TestSidekiqNamespace(t *testing.T) {
	r := testenv.RedisTLS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Two jobs in mastodon_production:queue:default, in database 10 of the
	// shared Redis (apart from the other tests').
	rc := redisDB(t, r, 10)
	enq := float64(time.Now().Add(-time.Second).UnixNano()) / 1e9
	for i := range 2 {
		job := fmt.Sprintf(`{"class":"ActivityPub::DeliveryWorker","args":[],"queue":"default","jid":"j%d","created_at":%f,"enqueued_at":%f}`, i, enq, enq)
		if err := rc.LPush(ctx, "mastodon_production:queue:default", job).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rc.SAdd(ctx, "mastodon_production:queues", "default").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rc.Del(context.Background(), "mastodon_production:queues", "mastodon_production:queue:default")
	})

	env := fediops.MapLookup(map[string]string{"REDIS_URL": strings.TrimSuffix(r.URL(), "/0") + "/10", "FEDIOPS_REDIS_CA_FILE": r.CAFile,
		"REDIS_NAMESPACE": "mastodon_production"})
	ho := Options{Web: []string{}, Streaming: []string{}}
	checks, closeAll := ChecksFromEnv(ctx, env, ho)
	defer closeAll()
	rep := Run(ctx, 5*time.Second, checks...)
	found := false
	for _, res := range rep.Results {
		if res.Name == "sidekiq" {
			found = true
			if !strings.Contains(res.Detail, "2 enqueued") {
				t.Errorf("sidekiq check did not read under REDIS_NAMESPACE: %+v", res)
			}
		}
	}
	if !found {
		t.Fatalf("no sidekiq check: %+v", rep.Results)
	}

	e, err := NewExporter(ctx, env, ExportOptions{Options: ho, Serve: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := testutil.GatherAndCompare(e.Registry, strings.NewReader(`
# HELP sidekiq_enqueued_jobs Jobs waiting in all queues.
# TYPE sidekiq_enqueued_jobs gauge
sidekiq_enqueued_jobs 2
`), "sidekiq_enqueued_jobs"); err != nil {
		t.Errorf("collector did not read under REDIS_NAMESPACE: %v", err)
	}
}
