package promfile_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os/exec"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fediops/fediops/internal/promfile"
	"github.com/fediops/fediops/internal/testenv"
)

// startPushgateway runs Debian's prometheus-pushgateway on a free loopback port.
func startPushgateway(t *testing.T) string {
	t.Helper()
	bin := testenv.Binary(t, "prometheus-pushgateway")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--web.listen-address="+addr, "--log.level=warn")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := "http://" + addr
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := http.Get(url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pushgateway not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scrape reads the gateway's /metrics and returns the value of name with
// the given labels.
func scrape(t *testing.T, url, name string, labels map[string]string) (float64, error) {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
next:
	for _, m := range mfs[name].GetMetric() {
		for k, v := range labels {
			if labelOf(m, k) != v {
				continue next
			}
		}
		return m.GetGauge().GetValue(), nil
	}
	return 0, errors.New("absent")
}

func labelOf(m *dto.Metric, k string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == k {
			return l.GetValue()
		}
	}
	return ""
}

// Against the real Pushgateway: a failed run keeps the previous success
// time of its source, and a run of one source leaves the others alone.
func TestRunsAgainstRealPushgateway(t *testing.T) {
	url := startPushgateway(t)
	cfg := promfile.Config{PushURL: url, Grouping: map[string]string{"instance": "scotty"}}
	ls := "fediops_backup_last_success_timestamp_seconds"
	pg := map[string]string{"job": "fediops_backup", "instance": "scotty", "source": "postgres"}
	rd := map[string]string{"job": "fediops_backup", "instance": "scotty", "source": "redis"}

	r1, _ := promfile.NewRuns("backup")
	r1.Observe(promfile.Result{Source: "postgres", Start: t0, Duration: time.Minute, Bytes: 1000, Objects: 1})
	r1.Observe(promfile.Result{Source: "redis", Start: t0, Bytes: 7, Objects: 1})
	if err := r1.Write(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if v, err := scrape(t, url, ls, pg); err != nil || v != float64(t0.Unix()) {
		t.Fatalf("after run 1: %v %v", v, err)
	}

	t1 := t0.Add(4 * time.Hour)
	r2, _ := promfile.NewRuns("backup")
	r2.Observe(promfile.Result{Source: "postgres", Start: t1, Err: errors.New("pg_dump failed")})
	if err := r2.Write(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{ls, pg, float64(t0.Unix())},
		{"fediops_backup_success", pg, 0},
		{"fediops_backup_last_run_timestamp_seconds", pg, float64(t1.Unix())},
		{"fediops_backup_bytes", rd, 7},
		{ls, rd, float64(t0.Unix())},
	} {
		v, err := scrape(t, url, c.name, c.labels)
		if err != nil || v != c.want {
			t.Errorf("%s%v = %v (%v), want %v", c.name, c.labels, v, err, c.want)
		}
	}
}
