// Package mastofake stands in for Mastodon's metric sources in fediops'
// tests and pictures: start an Exporter (the prometheus_exporter gem's
// collector, ported) behind an HTTP server, drive it with Web and Sidekiq
// (what Mastodon 4.4+'s instrumentation sends), serve a Streaming server's
// /metrics, or send a 4.2 node's StatsD with StatsD to a real
// statsd_exporter.
//
// The metric names, labels, types and help texts are the ones of the
// sources they stand for, each cited where it is made: the gem's
// lib/prometheus_exporter/server/*_collector.rb and instrumentation/*.rb
// (2.2-2.3), Mastodon's config/puma.rb, config/initializers/sidekiq.rb,
// config/initializers/prometheus_exporter.rb, streaming/metrics.js and
// (4.2) config/initializers/statsd.rb with the nsa and statsd-ruby gems.
// The load they carry is a model, not a measurement.
package mastofake
