package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/fediops/fediops/command"
	"github.com/fediops/fediops/sidekiqq"
)

var sidekiqHelp = command.Help{
	Usage: "plan sidekiq [-node NAME:VCPU:MEMORY ...] [-budget N] [flags]",
	About: `Lays Mastodon's Sidekiq queues over worker nodes within a database connection budget
(threads per process: up to -max-threads, capped by memory and an even share of the
budget; DB_POOL = threads; scheduler in exactly one process) and prints each process's
systemd unit and command line. Without -node and -budget it prints the seed's layout.`,
	Env: []command.Var{{Name: "EXPERIMENTAL_FEATURES", About: `with -env, from that file or the environment: "fasp" adds the fasp queue (-experimental wins)`}},
}

// nodeFlags collects -node NAME:VCPU:MEMORY (memory in MB, or with a G/GB
// or M/MB suffix).
type nodeFlags []sidekiqq.Node

func (n *nodeFlags) String() string { return fmt.Sprint(*n) }
func (n *nodeFlags) Set(v string) error {
	parts := strings.Split(v, ":")
	if len(parts) != 3 || parts[0] == "" {
		return fmt.Errorf("want NAME:VCPU:MEMORY, e.g. Scotty:2:4G")
	}
	vcpu, err := strconv.Atoi(parts[1])
	if err != nil || vcpu < 1 {
		return fmt.Errorf("vCPU %q is not a positive number", parts[1])
	}
	mb, err := parseMiB(parts[2])
	if err != nil {
		return fmt.Errorf("memory %v", err)
	}
	*n = append(*n, sidekiqq.Node{Name: parts[0], VCPU: vcpu, MemoryMB: mb})
	return nil
}

func runSidekiq(_ context.Context, p *command.Program, args []string) error {
	fs := flag.NewFlagSet("plan sidekiq", flag.ContinueOnError)
	var nodes nodeFlags
	fs.Var(&nodes, "node", "a worker node as `NAME:VCPU:MEMORY` (repeat; default the seed's Scotty:2:4G and Decker:2:4G)")
	budget := fs.Int("budget", 0, "database `connections` all Sidekiq processes may hold; 0 with no -node prints the seed's layout as is")
	version := fs.String("version", sidekiqq.DefaultMastodon, "Mastodon `release` (4.3 to 4.6)")
	features := fs.String("experimental", "", "EXPERIMENTAL_FEATURES (\"fasp\" adds the fasp queue); default read from -env")
	envPath := fs.String("env", "", "Mastodon's .env.production `file` to read EXPERIMENTAL_FEATURES from (its lint findings are printed)")
	sched := fs.String("scheduler", "", "`node` whose first process serves scheduler (default the last node)")
	cfg := sidekiqq.PlanConfig{}
	fs.IntVar(&cfg.ProcessesPerNode, "processes", 0, "Sidekiq processes per node (default one per vCPU)")
	fs.IntVar(&cfg.MaxThreads, "max-threads", 25, "most threads (-c) per process")
	fs.IntVar(&cfg.MinThreads, "min-threads", 5, "fewest threads worth a process")
	var unit sidekiqq.UnitOptions
	fs.StringVar(&unit.WorkingDirectory, "dir", "/home/mastodon/live", "Mastodon's working `directory`")
	fs.StringVar(&unit.LDPreload, "ld-preload", "libjemalloc.so", "LD_PRELOAD of the units (\"-\" for none)")
	asJSON := fs.Bool("json", false, "print the layout, units and commands as JSON")
	if err := p.Parse(fs, args, sidekiqHelp); err != nil {
		return err
	}
	if *envPath != "" {
		env, _, err := p.ReadEnv(*envPath)
		if err != nil {
			return err
		}
		*features = cmp.Or(*features, env.Get("EXPERIMENTAL_FEATURES"))
	}
	var layout sidekiqq.Layout
	if *budget == 0 && len(nodes) == 0 {
		planning := ""
		fs.Visit(func(f *flag.Flag) {
			if !strings.Contains(" dir ld-preload json env experimental ", " "+f.Name+" ") {
				planning = f.Name
			}
		})
		if planning != "" {
			return command.Usagef("-%s plans a layout: give -budget too", planning)
		}
		layout = sidekiqq.SeedLayout()
		layout.ExperimentalFeatures = *features // the seed's layout serves no fasp: Notes says so
	} else {
		if len(nodes) == 0 {
			nodes = sidekiqq.SeedNodes()
		}
		cfg.Mastodon, cfg.ExperimentalFeatures, cfg.Nodes, cfg.Budget, cfg.SchedulerNode = *version, *features, nodes, *budget, *sched
		var err error
		if layout, err = sidekiqq.Plan(cfg); err != nil {
			return command.Usage(err)
		}
	}
	if *asJSON {
		out := struct {
			sidekiqq.Layout
			Connections int                `json:"connections"`
			Units       []sidekiqq.Unit    `json:"units"`
			Commands    []sidekiqq.Command `json:"commands"`
		}{layout, layout.Connections(), layout.Units(unit), layout.Commands(unit)}
		enc := json.NewEncoder(p.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	return layout.WriteText(p.Stdout, unit)
}
