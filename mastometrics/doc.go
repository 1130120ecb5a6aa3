// Package mastometrics turns on Mastodon's own metrics: pass Settings(tier)
// to (*fediops.Env).Set on each droplet's .env.production and restart
// Mastodon's processes, and Prometheus can scrape what Mastodon measures
// itself (requests by controller and action, Puma threads, Sidekiq jobs and
// queues, ActiveRecord connection pools).
//
// Mastodon 4.4 and later carry a Prometheus exporter (the prometheus_exporter
// gem), switched on by MASTODON_PROMETHEUS_EXPORTER_ENABLED=true in the web
// and Sidekiq processes (config/puma.rb, config/initializers/sidekiq.rb and
// config/initializers/prometheus_exporter.rb in Mastodon's source). The
// processes send what they measure to a collector process, which serves it
// at :9394/metrics with every name prefixed ruby_ (ruby_http_requests_total,
// ruby_puma_max_threads ...). Run one collector per web and Sidekiq droplet:
//
//	cd /home/mastodon/live && bundle exec prometheus_exporter -b 0.0.0.0 -p 9394
//
// (deploy/systemd/mastodon-prometheus-exporter.service in the fediops
// repository is that command as a unit; a firewall lets only the Prometheus
// host reach port 9394). Settings keeps MASTODON_PROMETHEUS_EXPORTER_LOCAL
// off: the in-process server it starts cannot work under Puma's forked
// workers, and on a Sidekiq droplet that runs several processes they would
// all bind the same port. Per-request and per-job metrics are opt-in in
// Mastodon (the *_DETAILED_METRICS settings); Settings turns them on, since
// the dashboards need the controller, action and queue labels they carry.
//
// The streaming server needs no setting: it always serves /metrics on its
// own port (streaming/metrics.js). Mastodon 4.2 and earlier have no
// exporter; they send StatsD (STATSD_ADDR, removed in 4.3) and
// StatsDSettings points them at a local statsd_exporter, whose mapping
// (deploy/statsd/mastodon-mapping.yml) gives the same metric names.
//
// Prometheus finds the droplets in file_sd files, one per job of
// deploy/prometheus/prometheus.yml (mastodon-web, mastodon-sidekiq,
// mastodon-statsd, mastodon-streaming, node, fediops-tunnel,
// fediops-health). FindTargets lists the tiers' droplets by their DO tags
// with a tiers/droplets client and lays them out in those jobs
// (ScrapeTargets does the same for a list you already hold); Targets.Write
// replaces the files atomically. `provision targets -dir
// /etc/prometheus/targets` is that, run from cron.
package mastometrics
