package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// prometheus is a Prometheus server scraping the demo every second.
type promServer struct {
	url string
	cmd *exec.Cmd
	log string
}

// startPrometheus scrapes targets as job fediops-demo, plus the jobs of
// extra (YAML list items of scrape_configs), with the rules files loaded.
func startPrometheus(ctx context.Context, dir string, targets, rules []string, extra string) (*promServer, error) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		return nil, fmt.Errorf("prometheus not found; install it with: apt-get install -y prometheus")
	}
	dir = filepath.Join(dir, "prometheus")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: %s
scrape_configs:
  - job_name: fediops-demo
    static_configs:
      - targets: %s
%s`, quoted(rules), quoted(targets), extra)
	cf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &promServer{url: "http://" + addr, log: filepath.Join(dir, "prometheus.log")}
	lf, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	p.cmd = exec.Command(bin, "--config.file="+cf, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	p.cmd.Stdout, p.cmd.Stderr = lf, lf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start prometheus: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			b, _ := os.ReadFile(p.log)
			return nil, fmt.Errorf("prometheus not ready: %v\n%s", err, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func quoted(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func (p *promServer) stop() {
	if p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-done
		}
	}
}

// series is one result series of a range query.
type series struct {
	labels map[string]string
	t, v   []float64
}

func (p *promServer) queryRange(ctx context.Context, q string, start, end time.Time, step time.Duration) ([]series, error) {
	v := url.Values{"query": {q}, "start": {unix(start)}, "end": {unix(end)}, "step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/api/v1/query_range?"+v.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status, Error string
		Data          struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("query %q: %w", q, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", q, body.Error)
	}
	var out []series
	for _, r := range body.Data.Result {
		s := series{labels: r.Metric}
		for _, pt := range r.Values {
			ts, _ := pt[0].(float64)
			vs, _ := pt[1].(string)
			f, err := strconv.ParseFloat(vs, 64)
			if err != nil {
				continue
			}
			s.t, s.v = append(s.t, ts), append(s.v, f)
		}
		out = append(out, s)
	}
	return out, nil
}

func unix(t time.Time) string { return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', 3, 64) }

// instant asks for q's value at t, one number per series.
func (p *promServer) instant(ctx context.Context, q string, t time.Time) ([]float64, error) {
	res, err := p.queryRange(ctx, q, t, t, time.Second)
	if err != nil {
		return nil, err
	}
	var out []float64
	for _, s := range res {
		if len(s.v) > 0 {
			out = append(out, s.v[len(s.v)-1])
		}
	}
	return out, nil
}
