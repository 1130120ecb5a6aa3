package tiers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/fediops/fediops/pgpool"
)

// Defaults of PumaSizing. The rule constants come from the seed
// (WEB_CONCURRENCY = vCPU x 1.5, MAX_THREADS = WEB_CONCURRENCY x 3); the
// memory figures are estimates, not measurements (see WorkerRSSMiB).
const (
	DefaultWorkersPerVCPU   = 1.5
	DefaultThreadsPerWorker = 3
	DefaultWorkerRSSMiB     = 450
	DefaultReservedMiB      = 1024
)

// Sentinel errors of Sizing.Err; callers branch with errors.Is.
var (
	// ErrOverDBBudget means the tier's connections exceed the database's limit.
	ErrOverDBBudget = errors.New("over the database connection budget")
	// ErrOverMemory means a node's Puma workers do not fit in its memory.
	ErrOverMemory = errors.New("over the node's memory")
)

// PumaSizing sizes the Puma processes of a web tier.
//
// The seed's rule is WEB_CONCURRENCY = vCPU x 1.5 and MAX_THREADS =
// WEB_CONCURRENCY x 3 (2 vCPU: 3 workers, 9 threads). vCPU x 1.5 is rounded
// down, with a minimum of 1: 1 vCPU gives 1 worker, 3 vCPU give 4, 5 give 7.
// Rounding down is the conservative choice on both limits the rule runs
// into: every extra worker costs a full worker RSS and MAX_THREADS more
// database connections, and the 1.5 factor already oversubscribes the CPUs
// (Ruby threads wait on I/O). On a 1 vCPU / 1 GiB droplet two workers would
// not fit beside the OS. Set WebConcurrency to override.
//
// Connections follow Mastodon's config/database.yml: a Puma worker's pool is
// DB_POOL, else MAX_THREADS, so a node opens WEB_CONCURRENCY x DB_POOL
// connections and the tier Nodes times that. The check against DBLimit
// assumes every Rails connection may need a server connection at the same
// time (true for a direct connection, and for a pgBouncer pool sized to its
// clients); through a smaller transaction-mode pool the excess waits in
// pgBouncer instead of failing, and the table shows how long that queue may
// get.
type PumaSizing struct {
	// VCPU is the number of vCPUs of one web node. Required unless
	// WebConcurrency is set.
	VCPU int `json:"vcpu"`
	// MemoryMiB is the RAM of one web node; 0 skips the memory check.
	MemoryMiB int `json:"memory_mib,omitempty"`
	// Nodes is the number of web nodes in the tier; 0 means 1.
	Nodes int `json:"nodes"`

	// WorkersPerVCPU is the rule's factor; 0 means 1.5.
	WorkersPerVCPU float64 `json:"workers_per_vcpu,omitempty"`
	// ThreadsPerWorker is the rule's MAX_THREADS factor; 0 means 3.
	ThreadsPerWorker int `json:"threads_per_worker,omitempty"`
	// WebConcurrency, MaxThreads and DBPool override the rule when > 0.
	// DBPool defaults to MAX_THREADS, as in config/database.yml.
	WebConcurrency int `json:"web_concurrency,omitempty"`
	MaxThreads     int `json:"max_threads,omitempty"`
	DBPool         int `json:"db_pool,omitempty"`

	// WorkerRSSMiB is the resident memory of one Puma worker with its
	// threads; 0 means 450. [?] No source publishes it: Mastodon admins
	// report roughly 300-500 MiB per worker with jemalloc and
	// MALLOC_ARENA_MAX=2, growing with MAX_THREADS and uptime. Measure yours
	// (ps -o rss of the puma worker processes) and set it.
	WorkerRSSMiB int `json:"worker_rss_mib,omitempty"`
	// ReservedMiB is what a node needs besides the workers (OS, the Puma
	// master, the streaming server the seed runs on the same nodes, nginx);
	// 0 means 1024.
	ReservedMiB int `json:"reserved_mib,omitempty"`

	// DBLimit is the database's connection limit (pgpool's budget for the
	// cluster size: 1 GiB 22, 2 GiB 47, 4 GiB 97, 8 GiB 197); 0 skips the
	// check.
	DBLimit int `json:"db_limit,omitempty"`
	// OtherConnections are the connections other clients take from DBLimit
	// (Sidekiq, streaming, direct connections, other pools).
	OtherConnections int `json:"other_connections,omitempty"`
	// DBSizes are the database sizes offered as the "bigger database"
	// alternative, smallest first; nil means DefaultDBSizes.
	DBSizes []DBSize `json:"-"`
}

// DBSize is a managed database size and its connection limit.
type DBSize struct {
	MemoryGiB int `json:"memory_gib"`
	Limit     int `json:"limit"`
}

// DefaultDBSizes are DigitalOcean's PostgreSQL sizes up to 32 GiB with
// pgpool.DO's limits (25 x GiB - 3: 1 GiB 22, 2 GiB 47, 4 GiB 97, 8 GiB
// 197 ...). The cap from 64 GiB on is unconfirmed, so the list stops
// before it.
var DefaultDBSizes = DBSizes(pgpool.DO, 1, 2, 4, 8, 16, 32)

// DBSizes lists the given sizes (GiB) with their limits under l.
func DBSizes(l pgpool.Limits, gib ...int) []DBSize {
	out := make([]DBSize, 0, len(gib))
	for _, g := range gib {
		out = append(out, DBSize{MemoryGiB: g, Limit: l.Connections(g)})
	}
	return out
}

// DBLimit is the connection limit of a DigitalOcean PostgreSQL cluster
// with memGiB GiB (pgpool.DO).
func DBLimit(memGiB int) int { return pgpool.DO.Connections(memGiB) }

// Demands are the tier's connections as pgpool budget demand, one
// pgpool.Web per node named "<prefix>-1" ... "<prefix>-N", for
// pgpool.NewBudget(gib).Add(s.Demands("web")...).Report().
func (s Sizing) Demands(prefix string) []pgpool.Demand {
	out := make([]pgpool.Demand, 0, s.Nodes)
	for i := 1; i <= s.Nodes; i++ {
		out = append(out, pgpool.Web(fmt.Sprintf("%s-%d", prefix, i), s.WebConcurrency, s.DBPool))
	}
	return out
}

// Sizing is the result of PumaSizing.Plan.
type Sizing struct {
	Input PumaSizing `json:"input"`

	WebConcurrency int `json:"web_concurrency"`
	MaxThreads     int `json:"max_threads"`
	DBPool         int `json:"db_pool"`
	Nodes          int `json:"nodes"`

	ConnectionsPerNode int `json:"connections_per_node"`
	ConnectionsPerTier int `json:"connections_per_tier"`
	// TotalConnections is the tier plus OtherConnections.
	TotalConnections int `json:"total_connections"`
	// Headroom is DBLimit - TotalConnections (negative: the overflow); 0
	// when no limit was given.
	Headroom int `json:"headroom"`

	MemoryNeededMiB int `json:"memory_needed_mib"`
	MemoryMiB       int `json:"memory_mib,omitempty"`

	OverDB     bool `json:"over_db"`
	OverMemory bool `json:"over_memory"`

	// Alternatives are computed only when the rule does not fit.
	Alternatives []Alternative `json:"alternatives,omitempty"`
}

// Alternative is a sizing that fits where the rule does not.
type Alternative struct {
	// Kind is "fewer-threads", "fewer-workers", "bigger-database" or
	// "bigger-droplet".
	Kind           string `json:"kind"`
	WebConcurrency int    `json:"web_concurrency"`
	MaxThreads     int    `json:"max_threads"`
	DBPool         int    `json:"db_pool"`
	// ConnectionsPerTier is what the tier takes with this alternative.
	ConnectionsPerTier int `json:"connections_per_tier"`
	// DBLimit is the limit this alternative is checked against (the bigger
	// database's limit for "bigger-database").
	DBLimit   int `json:"db_limit,omitempty"`
	DBSizeGiB int `json:"db_size_gib,omitempty"`
	// MemoryMiB is the node memory it needs ("bigger-droplet": the smallest
	// power-of-two GiB that fits).
	MemoryMiB int    `json:"memory_mib,omitempty"`
	Note      string `json:"note"`
}

func (p PumaSizing) withDefaults() PumaSizing {
	if p.Nodes == 0 {
		p.Nodes = 1
	}
	if p.WorkersPerVCPU == 0 {
		p.WorkersPerVCPU = DefaultWorkersPerVCPU
	}
	if p.ThreadsPerWorker == 0 {
		p.ThreadsPerWorker = DefaultThreadsPerWorker
	}
	if p.WorkerRSSMiB == 0 {
		p.WorkerRSSMiB = DefaultWorkerRSSMiB
	}
	if p.ReservedMiB == 0 {
		p.ReservedMiB = DefaultReservedMiB
	}
	if p.DBSizes == nil {
		p.DBSizes = DefaultDBSizes
	}
	return p
}

// Validate reports the first invalid field.
func (p PumaSizing) Validate() error {
	switch {
	case p.VCPU < 0:
		return fmt.Errorf("PumaSizing.VCPU: %d is negative", p.VCPU)
	case p.VCPU == 0 && p.WebConcurrency == 0:
		return fmt.Errorf("PumaSizing.VCPU: required (or set WebConcurrency)")
	case p.Nodes < 0:
		return fmt.Errorf("PumaSizing.Nodes: %d is negative", p.Nodes)
	case p.WorkersPerVCPU < 0 || math.IsNaN(p.WorkersPerVCPU) || math.IsInf(p.WorkersPerVCPU, 0):
		return fmt.Errorf("PumaSizing.WorkersPerVCPU: %v is not a positive number", p.WorkersPerVCPU)
	case p.ThreadsPerWorker < 0, p.WebConcurrency < 0, p.MaxThreads < 0, p.DBPool < 0:
		return fmt.Errorf("PumaSizing: ThreadsPerWorker, WebConcurrency, MaxThreads and DBPool must not be negative")
	case p.MemoryMiB < 0, p.WorkerRSSMiB < 0, p.ReservedMiB < 0:
		return fmt.Errorf("PumaSizing: MemoryMiB, WorkerRSSMiB and ReservedMiB must not be negative")
	case p.DBLimit < 0, p.OtherConnections < 0:
		return fmt.Errorf("PumaSizing: DBLimit and OtherConnections must not be negative")
	}
	return nil
}

// Plan applies the rule, checks it against the connection limit and the
// node's memory, and computes alternatives where it does not fit. The error
// is only for invalid input; an overflow is reported in the Sizing (see
// Sizing.Err).
func (p PumaSizing) Plan() (Sizing, error) {
	if err := p.Validate(); err != nil {
		return Sizing{}, err
	}
	q := p.withDefaults()
	s := Sizing{Input: p, Nodes: q.Nodes, MemoryMiB: q.MemoryMiB}

	s.WebConcurrency = q.WebConcurrency
	if s.WebConcurrency == 0 {
		s.WebConcurrency = max(1, int(math.Floor(float64(q.VCPU)*q.WorkersPerVCPU)))
	}
	s.MaxThreads = q.MaxThreads
	if s.MaxThreads == 0 {
		s.MaxThreads = s.WebConcurrency * q.ThreadsPerWorker
	}
	s.DBPool = q.DBPool
	if s.DBPool == 0 {
		s.DBPool = s.MaxThreads
	}
	s.ConnectionsPerNode = s.WebConcurrency * s.DBPool
	s.ConnectionsPerTier = s.ConnectionsPerNode * s.Nodes
	s.TotalConnections = s.ConnectionsPerTier + q.OtherConnections
	if q.DBLimit > 0 {
		s.Headroom = q.DBLimit - s.TotalConnections
		s.OverDB = s.Headroom < 0
	}
	s.MemoryNeededMiB = q.ReservedMiB + s.WebConcurrency*q.WorkerRSSMiB
	s.OverMemory = q.MemoryMiB > 0 && s.MemoryNeededMiB > q.MemoryMiB
	if s.OverDB || s.OverMemory {
		s.Alternatives = alternatives(q, s)
	}
	return s, nil
}

func alternatives(q PumaSizing, s Sizing) []Alternative {
	const unlimited = math.MaxInt32
	maxWorkers := unlimited // by memory
	if q.MemoryMiB > 0 {
		maxWorkers = (q.MemoryMiB - q.ReservedMiB) / q.WorkerRSSMiB
	}
	perNode := unlimited // connections one node may open
	if q.DBLimit > 0 {
		perNode = (q.DBLimit - q.OtherConnections) / q.Nodes
	}
	var alts []Alternative
	add := func(a Alternative) {
		a.ConnectionsPerTier = a.WebConcurrency * a.DBPool * q.Nodes
		if a.DBLimit == 0 {
			a.DBLimit = q.DBLimit
		}
		if a.MemoryMiB == 0 {
			a.MemoryMiB = q.ReservedMiB + a.WebConcurrency*q.WorkerRSSMiB
		}
		alts = append(alts, a)
	}

	// Keep the workers that fit in memory, cut the threads to the budget.
	w := min(s.WebConcurrency, maxWorkers)
	if w >= 1 {
		t := min(s.MaxThreads, perNode/w)
		if t >= 1 && t < s.MaxThreads {
			add(Alternative{Kind: "fewer-threads", WebConcurrency: w, MaxThreads: t, DBPool: t,
				Note: fmt.Sprintf("%d workers x %d threads: less concurrency per worker, same CPU parallelism", w, t)})
		}
	}
	// Keep the threads, cut the workers.
	if w2 := min(s.WebConcurrency, maxWorkers, perNode/max(1, s.DBPool)); w2 >= 1 && w2 != s.WebConcurrency {
		add(Alternative{Kind: "fewer-workers", WebConcurrency: w2, MaxThreads: s.MaxThreads, DBPool: s.DBPool,
			Note: fmt.Sprintf("%d workers x %d threads: fewer processes, less CPU parallelism and memory", w2, s.MaxThreads)})
	}
	// Keep the rule, buy a database whose limit holds it.
	if s.OverDB {
		need := s.ConnectionsPerTier + q.OtherConnections
		if w >= 1 && w < s.WebConcurrency {
			need = w*s.DBPool*q.Nodes + q.OtherConnections
		}
		for _, size := range q.DBSizes {
			if size.Limit >= need && size.Limit > q.DBLimit {
				add(Alternative{Kind: "bigger-database", WebConcurrency: max(1, w), MaxThreads: s.MaxThreads, DBPool: s.DBPool,
					DBLimit: size.Limit, DBSizeGiB: size.MemoryGiB,
					Note: fmt.Sprintf("a database of %d GiB (limit %d) holds %d connections", size.MemoryGiB, size.Limit, need)})
				break
			}
		}
	}
	// Keep the rule, buy a node whose memory holds it.
	if s.OverMemory {
		gib := 1
		for gib*1024 < s.MemoryNeededMiB {
			gib *= 2
		}
		add(Alternative{Kind: "bigger-droplet", WebConcurrency: s.WebConcurrency, MaxThreads: s.MaxThreads, DBPool: s.DBPool,
			MemoryMiB: gib * 1024,
			Note:      fmt.Sprintf("%d workers need %d MiB: a droplet of %d GiB", s.WebConcurrency, s.MemoryNeededMiB, gib)})
	}
	return alts
}

// Err is nil when the sizing fits, else an error wrapping ErrOverDBBudget
// and/or ErrOverMemory that states the overflow.
func (s Sizing) Err() error {
	var errs []error
	if s.OverDB {
		errs = append(errs, fmt.Errorf("puma: %d connections (%d x %d workers x DB_POOL %d + %d other) exceed the limit %d by %d: %w",
			s.TotalConnections, s.Nodes, s.WebConcurrency, s.DBPool, s.Input.OtherConnections, s.Input.DBLimit, -s.Headroom, ErrOverDBBudget))
	}
	if s.OverMemory {
		errs = append(errs, fmt.Errorf("puma: %d workers need %d MiB per node, the node has %d MiB (%d over): %w",
			s.WebConcurrency, s.MemoryNeededMiB, s.MemoryMiB, s.MemoryNeededMiB-s.MemoryMiB, ErrOverMemory))
	}
	return errors.Join(errs...)
}

// Env is the .env.production fragment, one KEY=value per line.
func (s Sizing) Env() string {
	return fmt.Sprintf("WEB_CONCURRENCY=%d\nMAX_THREADS=%d\nDB_POOL=%d\n", s.WebConcurrency, s.MaxThreads, s.DBPool)
}

// WriteTable writes the env fragment, the budget table and any
// alternatives for people.
func (s Sizing) WriteTable(w io.Writer) error {
	var b strings.Builder
	b.WriteString(s.Env())
	b.WriteString("\n")
	rows := [][2]string{
		{fmt.Sprintf("per node (%d workers x DB_POOL %d)", s.WebConcurrency, s.DBPool), strconv.Itoa(s.ConnectionsPerNode)},
		{fmt.Sprintf("web tier (%d %s)", s.Nodes, plural(s.Nodes, "node", "nodes")), strconv.Itoa(s.ConnectionsPerTier)},
		{"other clients", strconv.Itoa(s.Input.OtherConnections)},
		{"total", strconv.Itoa(s.TotalConnections)},
	}
	if s.Input.DBLimit > 0 {
		rows = append(rows, [2]string{"database limit", strconv.Itoa(s.Input.DBLimit)}, [2]string{"headroom", strconv.Itoa(s.Headroom)})
	}
	rows = append(rows, [2]string{"memory per node (MiB)", strconv.Itoa(s.MemoryNeededMiB)})
	if s.MemoryMiB > 0 {
		rows = append(rows, [2]string{"node memory (MiB)", strconv.Itoa(s.MemoryMiB)})
	}
	width := len("connections budget")
	for _, r := range rows {
		width = max(width, len(r[0]))
	}
	fmt.Fprintf(&b, "%-*s  %6s\n", width, "connections budget", "")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-*s  %6s\n", width, r[0], r[1])
	}
	if err := s.Err(); err != nil {
		fmt.Fprintf(&b, "\n%v\n", err)
	}
	if len(s.Alternatives) > 0 {
		b.WriteString("\nalternatives:\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "kind\tWEB_CONCURRENCY\tMAX_THREADS\tDB_POOL\ttier connections\tlimit\tnode MiB\tnote\n")
		for _, a := range s.Alternatives {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", a.Kind, a.WebConcurrency, a.MaxThreads, a.DBPool,
				a.ConnectionsPerTier, a.DBLimit, a.MemoryMiB, a.Note)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the sizing as one JSON object (env, table and
// alternatives) for machines.
func (s Sizing) WriteJSON(w io.Writer) error {
	type out struct {
		Sizing
		Env   map[string]int `json:"env"`
		Error string         `json:"error,omitempty"`
	}
	o := out{Sizing: s, Env: map[string]int{"WEB_CONCURRENCY": s.WebConcurrency, "MAX_THREADS": s.MaxThreads, "DB_POOL": s.DBPool}}
	if err := s.Err(); err != nil {
		o.Error = err.Error()
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(o)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
