package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fediops/fediops/command"
	"github.com/fediops/fediops/redistls"
	"github.com/fediops/fediops/systemd"
)

var tunnelHelp = command.Help{
	Usage: `tunnel [-config FILE] [-env FILE] [flags]
       tunnel -check -config FILE
       tunnel -print-unit [flags]`,
	About: `A stunnel replacement for TLS-only Redis: reads stunnel's configuration file
(pid, delay, client, accept, connect, CAfile, verifyChain, checkHost, sni,
TIMEOUT*, include, debug), resolves the backend's name for every connection,
verifies certificates by default (CAfile or the system roots), closes the
connections pinned to a node that stopped being the primary, and serves /healthz
and /metrics on -http. Every problem of the file is reported at once, before
anything listens. Accept addresses and -http must be loopback unless
-unsafe-listen. SIGHUP re-reads the file without dropping connections; SIGTERM
drains them (-drain), a second signal ends the process at once.
Logs: info lines (listening, reloads) and problems; -v or stunnel's debug = 7
add debug lines: the configuration in effect, closed backend connections,
go-redis's own messages.`,
	Env: []command.Var{
		{Name: "REDIS_USER, REDIS_PASSWORD", About: "for /healthz and the ROLE probe, read from -env with the process environment winning (never printed)"},
	},
	Exit: [3]string{
		"-check found no problem; -print-unit printed; stopped by SIGINT or SIGTERM after draining",
		"a runtime failure (a listener that cannot be opened)",
		"a usage or configuration error: a bad flag, a file that cannot be read, every problem of the stunnel file (a CA file without a certificate, a port out of range, an accept address that is not loopback)",
	},
}

func runTunnel(ctx context.Context, p *command.Program, args []string) error {
	fs := flag.NewFlagSet("tunnel", flag.ContinueOnError)
	confPath := fs.String("config", "/etc/stunnel/redis.conf", "stunnel configuration `file`")
	check := fs.Bool("check", false, "validate the configuration and exit: 0 if valid, 2 with every problem")
	printUnit := fs.Bool("print-unit", false, "print a systemd unit that runs this command with these flags, and exit")
	httpAddr := fs.String("http", "127.0.0.1:9121", "loopback `host:port` for /healthz and /metrics (\"\" = off)")
	envPath := fs.String("env", "", "Mastodon .env.production `file` for REDIS_USER/REDIS_PASSWORD (default: the environment)")
	unsafeListen := fs.Bool("unsafe-listen", false, "allow accept and -http addresses that are not loopback (stunnel's \"accept = PORT\" means all IPv4)")
	insecure := fs.Bool("insecure-skip-verify", false, "do not verify backend certificates (what stunnel does without verifyChain)")
	drain := fs.Duration("drain", redistls.DefaultDrainTimeout, "on SIGTERM, how long busy connections may finish")
	probe := fs.Duration("probe-interval", redistls.DefaultProbeInterval, "how often the nodes clients use are asked for their ROLE (a demoted node's idle connections close within it)")
	pidFile := fs.String("pid", "", "write the pid to this `file` instead of the configuration's pid = (the printed unit's RuntimeDirectory)")
	verbose := fs.Bool("v", false, "debug logging (also stunnel's debug = 7)")
	if err := p.Parse(fs, args, tunnelHelp); err != nil {
		return err
	}
	if *drain <= 0 {
		return command.Usagef("-drain %s: want a positive duration", *drain)
	}
	if *probe <= 0 {
		return command.Usagef("-probe-interval %s: want a positive duration", *probe)
	}
	if *httpAddr != "" {
		if err := command.CheckListen(*httpAddr, *unsafeListen); err != nil {
			return fmt.Errorf("-http: %w", err)
		}
	}
	if *printUnit {
		return printSystemdUnit(p, fs, *confPath, *drain)
	}

	// load reads the stunnel file and -env and checks everything at once;
	// SIGHUP calls it again.
	var log *slog.Logger
	load := func() (*redistls.Config, error) {
		cfg, err := redistls.ReadConfig(*confPath)
		if cfg == nil {
			return nil, command.Usage(err)
		}
		cfg.HTTPAddr, cfg.AllowNonLoopback, cfg.InsecureSkipVerify, cfg.DrainTimeout = *httpAddr, *unsafeListen, *insecure, *drain
		cfg.ProbeInterval = *probe
		if *pidFile != "" {
			cfg.PIDFile = *pidFile
		}
		if log == nil {
			log = p.ServiceLogger(*verbose || cfg.Debug)
		}
		cfg.Logger = log
		env, _, err := p.ReadEnv(*envPath) // "": the environment alone
		if err != nil {
			return nil, command.Usage(errors.Join(cfg.Validate(), err))
		}
		cfg.Username, cfg.Password = env.Get("REDIS_USER"), env.Get("REDIS_PASSWORD")
		return cfg, command.Usage(cfg.Validate()) // every problem at once
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	for _, n := range cfg.Notes() {
		fmt.Fprintln(p.Stderr, "tunnel: note:", n)
	}
	if *check {
		fmt.Fprintf(p.Stdout, "%s: %d service(s) OK\n", *confPath, len(cfg.Services))
		return nil
	}
	logConfig(log, *confPath, *envPath, cfg)
	if cfg.Password == "" {
		log.Warn("no REDIS_PASSWORD: /healthz cannot AUTH and the ROLE probe is off (use -env)")
	}
	t, err := redistls.New(cfg)
	if err != nil {
		return command.Usage(err)
	}
	if cfg.PIDFile != "" {
		if err := os.WriteFile(cfg.PIDFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			log.Warn("pid file", "err", err)
		}
		defer os.Remove(cfg.PIDFile)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			next, err := load()
			if err == nil {
				logConfig(log, *confPath, *envPath, next)
				err = t.Reload(next)
			}
			if err != nil {
				log.Error("reload refused; the running configuration stays", "err", err)
			}
		}
	}()
	if err := t.Run(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// logConfig says at debug what the tunnel runs with: -v shows it.
func logConfig(log *slog.Logger, confPath, envPath string, cfg *redistls.Config) {
	env := envPath
	if env == "" {
		env = "the process environment"
	}
	log.Debug("configuration", "file", confPath, "services", len(cfg.Services), "http", cfg.HTTPAddr, "credentials_from", env,
		"redis_user_set", cfg.Username != "", "redis_password_set", cfg.Password != "", "pid_file", cfg.PIDFile, "drain", cfg.DrainTimeout)
	for _, s := range cfg.Services {
		ca := s.CAFile
		if ca == "" {
			ca = "system roots"
		}
		if cfg.InsecureSkipVerify {
			ca = "none (-insecure-skip-verify)"
		}
		log.Debug("service", "name", s.Name, "at", s.Source, "accept", s.Accept, "connect", strings.Join(s.Connect, ","), "sni", s.SNI,
			"verify_against", ca, "connect_timeout", s.ConnectTimeout, "idle_timeout", s.IdleTimeout)
	}
}

// printSystemdUnit prints a unit whose ExecStart runs this binary (its
// installed absolute path, not a go run build) with the flags given, file
// paths made absolute (a unit's working directory is /), in the sandbox
// of Mastodon's units. The configuration's pid file goes into the unit's
// RuntimeDirectory, which User=mastodon may write (it may not write /run).
func printSystemdUnit(p *command.Program, fs *flag.FlagSet, confPath string, drain time.Duration) error {
	exe, err := systemd.Executable("tunnel", "./examples/tunnel")
	if err != nil {
		return command.Usage(err)
	}
	abs := func(path string) string {
		if a, err := filepath.Abs(path); err == nil && path != "" {
			return a
		}
		return path
	}
	args := []string{exe, "-config", abs(confPath)}
	pid := ""
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "print-unit", "config":
		case "env":
			args = append(args, "-env", abs(f.Value.String()))
		case "pid":
			pid = abs(f.Value.String())
		default:
			args = append(args, "-"+f.Name+"="+f.Value.String())
		}
	})
	if pid == "" {
		if cfg, _ := redistls.ReadConfig(confPath); cfg != nil {
			pid = cfg.PIDFile
		} else {
			fmt.Fprintf(p.Stderr, "tunnel: note: %s cannot be read here; the unit assumes it names no pid file\n", confPath)
		}
	}
	svc := systemd.Service{Description: "Redis TLS tunnel (fediops redistls, replaces stunnel)",
		Wants: []string{"network-online.target"}, After: []string{"network-online.target"}, User: "mastodon",
		ExecReload: "/bin/kill -HUP $MAINPID", TimeoutStopSec: int(drain.Seconds()) + 5, Restart: "always", Harden: true}
	if pid != "" { // /run/x.pid -> /run/x/x.pid; /run/x/y.pid as it is
		rel, err := filepath.Rel("/run", pid)
		if err != nil || strings.HasPrefix(rel, "..") {
			svc.ReadWritePaths = []string{filepath.Dir(pid)}
		} else {
			if !strings.Contains(rel, "/") {
				rel = strings.TrimSuffix(rel, ".pid") + "/" + rel
				pid = filepath.Join("/run", rel)
			}
			svc.RuntimeDirectory = filepath.Dir(rel)
		}
		args = append(args, "-pid", pid)
	}
	svc.ExecStart = args
	fmt.Fprint(p.Stdout, svc.Render())
	return nil
}
