// Command tunnel replaces stunnel in front of a TLS-only Redis: it reads
// the stunnel configuration file as it is and serves each [service] with
// redistls (fresh name resolution per connection, verified TLS, failover).
//
//	tunnel -config /etc/stunnel/redis.conf -env /home/mastodon/live/.env.production
//	tunnel -check -config FILE     validate; exit 0, or 2 listing every problem
//	tunnel -print-unit             print a systemd unit
//
// SIGHUP re-reads the file without dropping connections; SIGTERM drains.
// `tunnel -h` lists the flags, the settings it reads and its exit
// statuses: 0 stopped by a signal, 1 a runtime failure, 2 a usage or
// configuration error.
package main

import "github.com/fediops/fediops/command"

func main() { command.Main("tunnel", runTunnel) }
