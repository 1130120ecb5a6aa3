package health

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/internal/testenv"
)

// BenchmarkHealthVsShell runs the same four checks (web /health,
// streaming health, a ping through pgBouncer with verified TLS, Redis PING
// over TLS) three ways per iteration:
//
//   - shell: the usual cron script, one after another: curl, curl,
//     redis-cli --tls PING, psql -c ” (fresh processes and TLS handshakes);
//   - cold: ChecksFromEnv + Run + close, as the health program does when
//     cron starts it (fresh pools and TLS handshakes, checks concurrent);
//   - warm: Run on checks built once, as with -prometheus.
//
// It reports ms per run of each and the ratios shell/cold and shell/warm.
func BenchmarkHealthVsShell(b *testing.B) {
	curl, rcli, psql := testenv.Binary(b, "curl"), testenv.Binary(b, "redis-cli"), testenv.Binary(b, "psql")
	bo := testenv.Bouncer(b)
	r := testenv.RedisTLS(b)
	web := webStandIn(b)

	env := pooledEnv(bo, "FEDIOPS_DB_CA_FILE")
	env["REDIS_URL"], env["FEDIOPS_REDIS_CA_FILE"] = r.URL(), r.CAFile
	opts := Options{Web: []string{web}, Streaming: []string{web}}
	ctx := context.Background()
	build := func() ([]Check, func()) {
		all, closeAll := ChecksFromEnv(ctx, fediops.MapLookup(env), opts)
		var keep []Check
		for _, c := range all {
			if c.Name() != "sidekiq" {
				keep = append(keep, c)
			}
		}
		return keep, closeAll
	}
	// redis-cli needs the server name: testenv's certificate holds 127.0.0.1.
	script := strings.Join([]string{
		curl + " -fsS " + web + "/health",
		curl + " -fsS " + web + "/api/v1/streaming/health",
		rcli + " -h " + r.Host + " -p " + strconv.Itoa(r.Port) + " --tls --cacert " + r.CAFile + " PING",
		psql + " 'host=" + bo.Host + " port=" + strconv.Itoa(bo.Port) + " dbname=" + bo.Database + " user=" + bo.User +
			" sslmode=verify-full sslrootcert=" + bo.CAFile + "' -qAt -c ''",
	}, " && ")
	shell := func() {
		cmd := exec.Command("sh", "-ec", script)
		cmd.Env = append(os.Environ(), "REDISCLI_AUTH="+r.Password, "PGPASSWORD="+bo.Password)
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "PONG") {
			b.Fatalf("shell: %v\n%s", err, out)
		}
	}
	run := func(checks []Check) {
		if rep := Run(ctx, 10*time.Second, checks...); !rep.OK() || len(rep.Results) != 4 {
			b.Fatalf("report %+v", rep.Results)
		}
	}
	warmChecks, closeWarm := build()
	defer closeWarm()
	run(warmChecks) // connect once
	shell()

	var tShell, tCold, tWarm time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		shell()
		t1 := time.Now()
		checks, closeAll := build()
		run(checks)
		closeAll()
		t2 := time.Now()
		run(warmChecks)
		t3 := time.Now()
		tShell, tCold, tWarm = tShell+t1.Sub(t0), tCold+t2.Sub(t1), tWarm+t3.Sub(t2)
	}
	n := float64(b.N)
	b.ReportMetric(float64(tShell.Microseconds())/1e3/n, "shell-ms/run")
	b.ReportMetric(float64(tCold.Microseconds())/1e3/n, "cold-ms/run")
	b.ReportMetric(float64(tWarm.Microseconds())/1e3/n, "warm-ms/run")
	b.ReportMetric(float64(tShell)/float64(tCold), "shell/cold")
	b.ReportMetric(float64(tShell)/float64(tWarm), "shell/warm")
}
