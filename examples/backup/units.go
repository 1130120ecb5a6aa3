package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/command"
	"github.com/fediops/fediops/systemd"
)

var unitsHelp = command.Help{
	Usage: "backup units [-exe /usr/local/bin/backup] [run's flags]",
	About: `Prints the systemd service and timer (every 4 hours, Persistent) that run
` + "`backup run`" + ` with the run flags given here, after checking them as run would
(the sources' settings, the recipients): the installed binary's absolute path
(-exe; a binary that go run built in a temporary directory is refused: install
it first, e.g. in /usr/local/bin), the file names made absolute (systemd runs
it in its own working directory), -env always. The service runs as
mastodon in the sandbox of Mastodon's own units, with write access only to
the lock file's directory and FEDIOPS_METRICS_DIR; the B2 key and the Slack
webhook go in /etc/fediops/backup.env (mode 0600), its EnvironmentFile.`,
	Env: vars(envPostgres, envRedis, envMySQL, envAge, command.Var{Name: "FEDIOPS_METRICS_DIR", About: "made writable in the unit"}),
	Exit: [3]string{
		"the units were printed",
		"a runtime failure",
		"a usage or configuration error: a bad flag, settings run would refuse, a temporary (go run) binary",
	},
}

func runUnits(_ context.Context, p *command.Program, args []string) error {
	fs := flag.NewFlagSet("backup units", flag.ContinueOnError)
	var f runFlags
	f.register(fs)
	exe := fs.String("exe", "", "the program's absolute `path` in ExecStart (default: this binary's, resolved)")
	if err := p.Parse(fs, args, unitsHelp); err != nil {
		return err
	}
	s, err := f.open(p)
	if err != nil {
		return err
	}
	names, err := sourceNames(f.sources)
	if err != nil {
		return command.Usage(err)
	}
	if _, err := f.db.buildSources(names, s.lookup, s.log); err != nil {
		return command.Usage(err)
	}
	if _, err := sealer(f.recipients, f.recipientFiles, f.zstdLevel, f.zstdWorkers, s.lookup); err != nil {
		return command.Usage(err)
	}
	if err := checkStopGrace(f.stopGrace); err != nil {
		return err
	}
	path, err := executable(*exe)
	if err != nil {
		return err
	}
	cmd, err := unitCommand([]string{path, "run"}, fs, map[string]bool{"exe": true})
	if err != nil {
		return command.Usage(err)
	}
	u := backup.Units{Command: cmd, EnvironmentFile: "-/etc/fediops/backup.env", ReadWritePaths: writable(f.lock, s.get("FEDIOPS_METRICS_DIR"))}
	if f.envFile != "" {
		env, _ := filepath.Abs(f.envFile)
		u.WorkingDir = filepath.Dir(env) // the -env file's directory, as Mastodon's units have it
	}
	svc, timer := u.Systemd()
	fmt.Fprintf(p.Stdout, "# /etc/systemd/system/fediops-backup.service\n%s\n# /etc/systemd/system/fediops-backup.timer\n%s", svc, timer)
	return nil
}

// executable is -exe, else this binary's absolute path; either must not
// be a go run build.
func executable(exe string) (string, error) {
	if exe == "" {
		path, err := systemd.Executable("backup", "./examples/backup")
		return path, command.Usage(err)
	}
	return exe, command.Usage(systemd.CheckExecutable(exe, "backup", "./examples/backup"))
}

// unitCommand is base and every flag given (but skip), in flag order,
// file names made absolute, -env always (the unit runs in its own working
// directory).
func unitCommand(base []string, fs *flag.FlagSet, skip map[string]bool) ([]string, error) {
	cmd := append([]string(nil), base...)
	abs := func(name, v string) (string, error) {
		if !pathFlags[name] || v == "" {
			return v, nil
		}
		return filepath.Abs(v)
	}
	if fs.Lookup("env") != nil {
		env, err := abs("env", fs.Lookup("env").Value.String())
		if err != nil {
			return nil, err
		}
		cmd = append(cmd, "-env", env)
	}
	var err error
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "env" || skip[f.Name] || err != nil {
			return
		}
		vals := []string{f.Value.String()}
		if l, ok := f.Value.(listFlag); ok {
			vals = *l.p
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			cmd = append(cmd, "-"+f.Name+"="+f.Value.String())
			return
		}
		for _, v := range vals {
			var a string
			if a, err = abs(f.Name, v); err == nil {
				cmd = append(cmd, "-"+f.Name, a)
			}
		}
	})
	return cmd, err
}

// writable are the directories a run writes: its lock's and the metrics'.
func writable(lock, metrics string) []string {
	var out []string
	for _, p := range []string{filepath.Dir(lock), metrics} {
		if p == "" {
			continue
		}
		if a, err := filepath.Abs(p); err == nil {
			out = append(out, a)
		}
	}
	return out
}
