package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fediops/fediops/internal/mastofake"
)

// mastodon is Mastodon as the Mastodon dashboard sees it during the demo:
// two web droplets' prometheus_exporter collectors, a Sidekiq droplet's
// in-process server (MASTODON_PROMETHEUS_EXPORTER_LOCAL, names without
// ruby_), a streaming server, all stand-ins (internal/mastofake) scraped
// with the jobs of deploy/prometheus/prometheus.yml.
type mastodon struct {
	web       []*mastofake.Web
	webURL    []string
	sidekiq   *mastofake.Sidekiq
	skURL     string
	streaming *mastofake.Streaming
	servers   []*http.Server
	targets   map[string][]fileTarget
}

// fileTarget is a file_sd group as prometheus.yml documents it.
type fileTarget struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

func startMastodon() (*mastodon, error) {
	m := &mastodon{targets: map[string][]fileTarget{}}
	listen := func(h http.Handler) (string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		m.servers = append(m.servers, srv)
		return ln.Addr().String(), nil
	}
	for i, pool := range []int{5, 3} { // web-2's DB_POOL is below its MAX_THREADS
		addr, err := listen(mastofake.NewExporter(mastofake.PrefixCollector))
		if err != nil {
			m.close()
			return nil, err
		}
		name := fmt.Sprintf("web-%d", i+1)
		m.web = append(m.web, &mastofake.Web{Hostname: name, PID: 1000 * (i + 1), Workers: 2, Threads: 5, Pool: pool,
			Database: "mastodon_production", DBHost: "demo-db", DBShare: 0.6})
		m.webURL = append(m.webURL, "http://"+addr)
		m.targets["mastodon-web"] = append(m.targets["mastodon-web"], fileTarget{[]string{addr}, map[string]string{"tier": "web", "droplet": name}})
	}
	addr, err := listen(mastofake.NewExporter(mastofake.PrefixLocal))
	if err != nil {
		m.close()
		return nil, err
	}
	m.sidekiq = &mastofake.Sidekiq{Hostname: "sidekiq-1", PID: 5000, Concurrency: 25, Database: "mastodon_production", DBHost: "demo-db",
		Throughput: 70, DBShare: 0.15}
	m.skURL = "http://" + addr
	m.targets["mastodon-sidekiq"] = []fileTarget{{[]string{addr}, map[string]string{"tier": "sidekiq", "droplet": "sidekiq-1"}}}
	m.streaming = mastofake.NewStreaming(5)
	if addr, err = listen(m.streaming); err != nil {
		m.close()
		return nil, err
	}
	m.targets["mastodon-streaming"] = []fileTarget{{[]string{addr}, map[string]string{"tier": "streaming", "droplet": "streaming-1"}}}
	return m, nil
}

func (m *mastodon) close() {
	for _, s := range m.servers {
		s.Close()
	}
}

// scrapeConfigs returns the jobs of the shipped prometheus.yml that scrape
// Mastodon, as YAML list items to go under scrape_configs, and writes their
// target files into dir/targets.
func (m *mastodon) scrapeConfigs(promYML, dir string) (string, error) {
	b, err := os.ReadFile(promYML)
	if err != nil {
		return "", err
	}
	var conf struct {
		ScrapeConfigs []map[string]any `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &conf); err != nil {
		return "", fmt.Errorf("%s: %w", promYML, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "targets"), 0o755); err != nil {
		return "", err
	}
	var jobs []map[string]any
	for _, j := range conf.ScrapeConfigs {
		name, _ := j["job_name"].(string)
		groups, ok := m.targets[name]
		if !ok {
			continue
		}
		tb, err := json.Marshal(groups)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, "targets", name+".json"), tb, 0o644); err != nil {
			return "", err
		}
		jobs = append(jobs, j)
	}
	if len(jobs) != len(m.targets) {
		return "", fmt.Errorf("%s: %d of the %d Mastodon jobs found", promYML, len(jobs), len(m.targets))
	}
	out, err := yaml.Marshal(jobs)
	if err != nil {
		return "", err
	}
	return "  " + strings.ReplaceAll(strings.TrimRight(string(out), "\n"), "\n", "\n  ") + "\n", nil
}

// load runs Mastodon's side of the demo over dur, in step with the demo's
// events: traffic rises to an evening peak; a popular post floods the push
// queue (0.2-0.4); the database slows down (0.45-0.6), so requests take
// four times as long, Puma runs out of threads, web-2 (DB_POOL 3 for 5
// threads) has threads waiting for a connection and busy connections pass
// the budget until the pool grows at 0.64; a few requests fail meanwhile.
func (m *mastodon) load(ctx context.Context, dur time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	start := time.Now()
	const dt = time.Second
	var wg sync.WaitGroup
	step := func(f func(at float64) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(dt)
			defer t.Stop()
			for {
				if err := f(float64(time.Since(start)) / float64(dur)); err != nil && ctx.Err() == nil {
					fmt.Fprintln(os.Stderr, "render: mastodon load:", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	for i, w := range m.web {
		c := &mastofake.Client{URL: m.webURL[i]}
		step(func(at float64) error {
			w.RequestsPerSecond = 30 + 25*bump(at, 0.25, 0.75)
			w.Slowdown, w.ErrorShare = 1, 0.004
			if at > 0.45 && at < 0.6 {
				w.Slowdown, w.ErrorShare = 4, 0.05
			}
			return w.Step(ctx, c, dt)
		})
	}
	sc := &mastofake.Client{URL: m.skURL}
	step(func(at float64) error {
		push := 20.0
		if at > 0.2 && at < 0.4 {
			push = 75
		}
		m.sidekiq.Arrivals = map[string]float64{"default": 25, "push": push, "ingress": 10, "pull": 3, "mailers": 1, "scheduler": 0.5}
		return m.sidekiq.Step(ctx, sc, dt)
	})
	step(func(at float64) error {
		m.streaming.Clients, m.streaming.MessagesPerSec = 500+400*bump(at, 0.25, 0.75), 0.3
		m.streaming.Step(dt)
		return nil
	})
	wg.Wait()
}

// bump rises from 0 at from to 1 at the middle and back to 0 at to.
func bump(at, from, to float64) float64 {
	if at <= from || at >= to {
		return 0
	}
	mid := (from + to) / 2
	if at < mid {
		return (at - from) / (mid - from)
	}
	return (to - at) / (to - mid)
}
