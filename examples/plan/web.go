package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/fediops/fediops/tiers"
)

func init() {
	register("web", "Puma WEB_CONCURRENCY, MAX_THREADS and DB_POOL per web node, checked against the DB budget", webMain)
}

// webMain: plan web -vcpu 2 -db-connections 97 -nodes 2 [-memory 4G] [-json]
func webMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plan web", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var p tiers.PumaSizing
	fs.IntVar(&p.VCPU, "vcpu", 2, "vCPUs per web node")
	fs.IntVar(&p.Nodes, "nodes", 1, "web nodes in the tier")
	fs.IntVar(&p.DBLimit, "db-connections", 0, "the database's connection `limit` (DO: 25 x GiB - 3; 0 = no check)")
	dbGiB := fs.Int("db-size", 0, "the database's memory in `GiB`; sets -db-connections from DO's limits")
	fs.IntVar(&p.OtherConnections, "other", 0, "`connections` other clients (Sidekiq, streaming, direct) take from the limit")
	memory := fs.String("memory", "", "memory per web node, e.g. 4096, 4096M or 4G (empty = no memory check)")
	fs.IntVar(&p.WorkerRSSMiB, "worker-rss", tiers.DefaultWorkerRSSMiB, "estimated `MiB` per Puma worker with its threads")
	fs.IntVar(&p.ReservedMiB, "reserved", tiers.DefaultReservedMiB, "`MiB` per node for everything but the workers")
	fs.Float64Var(&p.WorkersPerVCPU, "workers-per-vcpu", tiers.DefaultWorkersPerVCPU, "WEB_CONCURRENCY per vCPU (rounded down, at least 1)")
	fs.IntVar(&p.ThreadsPerWorker, "threads-per-worker", tiers.DefaultThreadsPerWorker, "MAX_THREADS = WEB_CONCURRENCY x this")
	fs.IntVar(&p.WebConcurrency, "web-concurrency", 0, "WEB_CONCURRENCY instead of the rule")
	fs.IntVar(&p.MaxThreads, "max-threads", 0, "MAX_THREADS instead of the rule")
	fs.IntVar(&p.DBPool, "db-pool", 0, "DB_POOL (default MAX_THREADS, as config/database.yml)")
	asJSON := fs.Bool("json", false, "print JSON")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: plan web [flags]\n\nSizes Puma by the seed's rule (WEB_CONCURRENCY = vCPU x 1.5, MAX_THREADS = x 3),\n"+
			"prints the .env.production fragment and the connection budget, and exits 1 with\nthe overflow and computed alternatives when the tier does not fit.\n\n")
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args, stderr); done {
		return code
	}
	if *dbGiB > 0 {
		p.DBLimit = tiers.DBLimit(*dbGiB)
	}
	if *memory != "" {
		mib, err := parseMiB(*memory)
		if err != nil {
			fmt.Fprintf(stderr, "plan web: -memory: %v\n", err)
			return 2
		}
		p.MemoryMiB = mib
	}
	s, err := p.Plan()
	if err != nil {
		fmt.Fprintf(stderr, "plan web: %v\n", err)
		return 2
	}
	if *asJSON {
		err = s.WriteJSON(stdout)
	} else {
		err = s.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "plan web: %v\n", err)
		return 1
	}
	if err := s.Err(); err != nil {
		fmt.Fprintf(stderr, "plan web: %v\n", err)
		return 1
	}
	return 0
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
