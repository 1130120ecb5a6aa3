// Command tunnel replaces stunnel in front of a TLS-only Redis: it reads
// the stunnel configuration file as it is and serves each [service] with
// redistls (fresh name resolution per connection, verified TLS, failover).
//
//	tunnel -config /etc/stunnel/redis.conf -env /home/mastodon/live/.env.production
//	tunnel -check -config FILE     validate; exit 0, or 2 listing every problem
//	tunnel -print-unit             print a systemd unit
//
// SIGHUP re-reads the file without dropping connections; SIGTERM drains.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/fediops/fediops"
	"github.com/fediops/fediops/redistls"
)

const unit = `[Unit]
Description=Redis TLS tunnel (fediops redistls, replaces stunnel)
Wants=network-online.target
After=network-online.target

[Service]
User=mastodon
ExecStart=%s
ExecReload=/bin/kill -HUP $MAINPID
TimeoutStopSec=%d
Restart=always

[Install]
WantedBy=multi-user.target
`

func main() {
	fs := flag.NewFlagSet("tunnel", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: tunnel [flags]\n\nA stunnel replacement for TLS-only Redis: reads stunnel's configuration file\n(pid, delay, client, accept, connect, CAfile, verifyChain, checkHost, sni,\nTIMEOUT*, include) and verifies certificates by default (CAfile or system roots).\n\n")
		fs.PrintDefaults()
	}
	confPath := fs.String("config", "/etc/stunnel/redis.conf", "stunnel configuration `file`")
	check := fs.Bool("check", false, "validate the configuration and exit: 0 if valid, 2 with the errors")
	printUnit := fs.Bool("print-unit", false, "print a systemd unit that runs this command and exit")
	httpAddr := fs.String("http", "127.0.0.1:9121", "loopback `address` for /healthz and /metrics (\"\" = off)")
	envPath := fs.String("env", "", "Mastodon .env.production `file` for REDIS_USER/REDIS_PASSWORD (default: the environment)")
	unsafeListen := fs.Bool("unsafe-listen", false, "allow accept addresses that are not loopback (stunnel's \"accept = PORT\" means all IPv4)")
	insecure := fs.Bool("insecure-skip-verify", false, "do not verify backend certificates (what stunnel does without verifyChain)")
	drain := fs.Duration("drain", redistls.DefaultDrainTimeout, "on SIGTERM, how long busy connections may finish")
	probe := fs.Duration("probe-interval", redistls.DefaultProbeInterval, "how often the nodes clients use are asked for their ROLE (a demoted node's idle connections close within it)")
	verbose := fs.Bool("v", false, "debug logging (also stunnel's debug = 7)")
	if err := fs.Parse(os.Args[1:]); err != nil || fs.NArg() > 0 {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		} else if err == nil {
			fmt.Fprintf(os.Stderr, "tunnel: unexpected argument %q\n", fs.Arg(0))
		}
		os.Exit(2)
	}
	if *printUnit {
		exe, err := os.Executable()
		if err != nil {
			exe = "/usr/local/bin/tunnel"
		}
		args := []string{exe, "-config=" + strconv.Quote(*confPath)}
		fs.Visit(func(f *flag.Flag) {
			if f.Name != "print-unit" && f.Name != "config" {
				args = append(args, "-"+f.Name+"="+strconv.Quote(f.Value.String()))
			}
		})
		fmt.Printf(unit, strings.Join(args, " "), int(drain.Seconds())+5)
		return
	}
	var level slog.LevelVar
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: &level}))
	load := func() (*redistls.Config, error) {
		cfg, err := redistls.ReadConfig(*confPath)
		if cfg == nil {
			return nil, err
		}
		cfg.HTTPAddr, cfg.AllowNonLoopback, cfg.InsecureSkipVerify = *httpAddr, *unsafeListen, *insecure
		cfg.DrainTimeout, cfg.ProbeInterval, cfg.Logger = *drain, *probe, log
		env, err := fediops.ReadEnv(*envPath) // "": the environment alone
		if err != nil {
			return cfg, errors.Join(cfg.Validate(), err)
		}
		for _, f := range env.Lint() {
			log.Warn("tunnel: " + f.String())
		}
		if *verbose || cfg.Debug {
			level.Set(slog.LevelDebug)
		}
		cfg.Username, cfg.Password = env.Get("REDIS_USER"), env.Get("REDIS_PASSWORD")
		return cfg, cfg.Validate() // every problem at once
	}
	cfg, err := load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tunnel:", err)
		os.Exit(2)
	}
	for _, n := range cfg.Notes() {
		fmt.Fprintln(os.Stderr, "tunnel: note:", n)
	}
	if *check {
		fmt.Printf("%s: %d service(s) OK\n", *confPath, len(cfg.Services))
		return
	}
	if cfg.Password == "" {
		log.Warn("tunnel: no REDIS_PASSWORD: /healthz cannot AUTH and the ROLE probe is off (use -env)")
	}
	t, err := redistls.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tunnel:", err)
		os.Exit(2)
	}
	if cfg.PIDFile != "" {
		if err := os.WriteFile(cfg.PIDFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			log.Warn("tunnel: pid file", "err", err)
		}
		defer os.Remove(cfg.PIDFile)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	context.AfterFunc(ctx, stop) // the first signal cancels ctx; a second one ends the process
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			next, err := load()
			if err == nil {
				err = t.Reload(next)
			}
			if err != nil {
				log.Error("tunnel: reload refused; the running configuration stays", "err", err)
			}
		}
	}()
	if err := t.Run(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintln(os.Stderr, "tunnel:", err)
		os.Exit(1)
	}
}
