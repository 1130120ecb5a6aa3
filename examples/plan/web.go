package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/fediops/fediops/command"
	"github.com/fediops/fediops/tiers"
)

var webHelp = command.Help{
	Usage: "plan web [-vcpu N] [-nodes N] [-db-connections N | -db-size GiB] [-memory SIZE] [flags]",
	About: `Sizes Puma by the seed's rule (WEB_CONCURRENCY = vCPU x 1.5, MAX_THREADS = x 3),
prints the .env.production fragment and the connection budget, and exits 1 with
the overflow and computed alternatives when the tier does not fit.`,
	Exit: [3]string{1: "the tier does not fit the database's connection limit or the nodes' memory (the alternatives are printed)"},
}

func runWeb(_ context.Context, p *command.Program, args []string) error {
	fs := flag.NewFlagSet("plan web", flag.ContinueOnError)
	var s tiers.PumaSizing
	fs.IntVar(&s.VCPU, "vcpu", 2, "vCPUs per web node")
	fs.IntVar(&s.Nodes, "nodes", 1, "web nodes in the tier")
	fs.IntVar(&s.DBLimit, "db-connections", 0, "the database's connection `limit` (DO: 25 x GiB - 3; 0 = no check)")
	dbGiB := fs.Int("db-size", 0, "the database's memory in `GiB`; sets -db-connections from DO's limits")
	fs.IntVar(&s.OtherConnections, "other", 0, "`connections` other clients (Sidekiq, streaming, direct) take from the limit")
	memory := fs.String("memory", "", "memory per web node, e.g. 4096, 4096M or 4G (empty = no memory check)")
	fs.IntVar(&s.WorkerRSSMiB, "worker-rss", tiers.DefaultWorkerRSSMiB, "estimated `MiB` per Puma worker with its threads")
	fs.IntVar(&s.ReservedMiB, "reserved", tiers.DefaultReservedMiB, "`MiB` per node for everything but the workers")
	fs.Float64Var(&s.WorkersPerVCPU, "workers-per-vcpu", tiers.DefaultWorkersPerVCPU, "WEB_CONCURRENCY per vCPU (rounded down, at least 1)")
	fs.IntVar(&s.ThreadsPerWorker, "threads-per-worker", tiers.DefaultThreadsPerWorker, "MAX_THREADS = WEB_CONCURRENCY x this")
	fs.IntVar(&s.WebConcurrency, "web-concurrency", 0, "WEB_CONCURRENCY instead of the rule")
	fs.IntVar(&s.MaxThreads, "max-threads", 0, "MAX_THREADS instead of the rule")
	fs.IntVar(&s.DBPool, "db-pool", 0, "DB_POOL (default MAX_THREADS, as config/database.yml)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := p.Parse(fs, args, webHelp); err != nil {
		return err
	}
	if *dbGiB > 0 {
		s.DBLimit = tiers.DBLimit(*dbGiB)
	}
	if *memory != "" {
		mib, err := parseMiB(*memory)
		if err != nil {
			return command.Usagef("-memory: %v", err)
		}
		s.MemoryMiB = mib
	}
	plan, err := s.Plan()
	if err != nil {
		return command.Usage(err)
	}
	write := plan.WriteTable
	if *asJSON {
		write = plan.WriteJSON
	}
	if err := write(p.Stdout); err != nil {
		return err
	}
	return plan.Err() // the tier does not fit: exit 1, the alternatives are printed
}

// parseMiB reads 4096, 4096M, 4096MB, 4G or 4GB as MiB.
func parseMiB(v string) (int, error) {
	s, unit := strings.ToUpper(strings.TrimSpace(v)), 1
	for _, suf := range []string{"GB", "G", "MB", "M"} {
		if n, ok := strings.CutSuffix(s, suf); ok {
			s = n
			if suf[0] == 'G' {
				unit = 1024
			}
			break
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%q is not a size like 4096, 4096M or 4G", v)
	}
	return n * unit, nil
}
