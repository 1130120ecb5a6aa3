package pgpool

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/fediops/fediops"
)

// Limits are a provider's connection rules. DO is DigitalOcean's.
type Limits struct {
	PerGiB   int // connections per GiB of RAM
	Reserved int // connections the provider keeps for itself
	// Cap is the most any size gets; 0 means no cap. [?] DO's 997 for
	// 64 GiB and up is not confirmed (the formula gives 1597): override it.
	Cap int
	// MaxPools is the most connection pools a cluster may have. [?] 21 is
	// not confirmed by a DO source: override it.
	MaxPools int
	// Fixed, when > 0, is the connection limit of every size, replacing
	// the formula: the figure a provider states for a given cluster
	// (FEDIOPS_DB_CONN_LIMIT; see LimitsFromEnv).
	Fixed int
}

// DO holds DigitalOcean's limits for managed PostgreSQL: 25 per GiB minus
// 3 reserved (1 GiB 22, 2 GiB 47, 4 GiB 97, 8 GiB 197, 16 GiB 397, 32 GiB
// 797), 997 from 64 GiB on, at most 21 pools.
var DO = Limits{PerGiB: 25, Reserved: 3, Cap: 997, MaxPools: 21}

// Connections returns the connection limit of a cluster with memGiB GiB.
func (l Limits) Connections(memGiB int) int {
	if l.Fixed > 0 {
		return l.Fixed
	}
	n := l.PerGiB*memGiB - l.Reserved
	if n < 0 {
		n = 0
	}
	if l.Cap > 0 && n > l.Cap {
		n = l.Cap
	}
	return n
}

// slugMem finds the memory in a DO database size slug: "<n>vcpu-<m>gb",
// then an optional CPU family ("-intel").
var slugMem = regexp.MustCompile(`\d+vcpu-(\d+)gb(?:-[a-z]+)?$`)

// SizeGiB reads the memory from a DO database size slug: every size DO
// lists, such as "db-s-2vcpu-4gb", "gd-8vcpu-32gb", "gd-2vcpu-8gb-intel",
// "so1_5-4vcpu-32gb" or "m3-2vcpu-16gb".
func SizeGiB(slug string) (int, error) {
	m := slugMem.FindStringSubmatch(strings.ToLower(slug))
	if m == nil {
		return 0, fmt.Errorf("size slug %q: %w: want a DigitalOcean database size such as db-s-2vcpu-4gb (or set %s)", slug, ErrInvalid, EnvConnLimit)
	}
	return strconv.Atoi(m[1])
}

// Demand is one group of processes that hold database connections.
type Demand struct {
	Who      string // "web kirk", "sidekiq scotty", "streaming", "migration"
	Variable string // what sets the number: "WEB_CONCURRENCY×DB_POOL", "DB_POOL", ...
	Conns    int    // connections they may open together
	// Pool is the DO pool they connect through; "" means the database
	// directly (port 25060), where each one is a server connection.
	Pool string
}

func (d Demand) String() string {
	via := "direct"
	if d.Pool != "" {
		via = "pool " + d.Pool
	}
	return fmt.Sprintf("%s: %d (%s, %s)", d.Who, d.Conns, d.Variable, via)
}

// Via returns d going through pool.
func (d Demand) Via(pool string) Demand { d.Pool = pool; return d }

// Web is one web node: processes (WEB_CONCURRENCY, Mastodon's default 2)
// Puma workers, each with a pool of dbPool connections (DB_POOL, else
// MAX_THREADS, default 5).
func Web(node string, processes, dbPool int) Demand {
	return Demand{Who: "web " + node, Variable: "WEB_CONCURRENCY×DB_POOL", Conns: processes * dbPool}
}

// Sidekiq is one Sidekiq node: processes, each with DB_POOL connections
// (Mastodon's unit sets DB_POOL=25 and -c 25).
func Sidekiq(node string, processes, dbPool int) Demand {
	return Demand{Who: "sidekiq " + node, Variable: "DB_POOL", Conns: processes * dbPool}
}

// Streaming is the streaming server: processes, each with DB_POOL
// connections (its default is 10).
func Streaming(node string, processes, dbPool int) Demand {
	return Demand{Who: "streaming " + node, Variable: "DB_POOL", Conns: processes * dbPool}
}

// Direct is n connections straight to the database: migrations, pg_dump,
// an admin's psql.
func Direct(who string, n int) Demand {
	return Demand{Who: who, Variable: "direct connections", Conns: n}
}

// WebDemandFromEnv reads a web node's demand from Mastodon's settings:
// WEB_CONCURRENCY (default 2) processes × (DB_POOL, else MAX_THREADS,
// else 5).
func WebDemandFromEnv(env fediops.Lookup, node string) (Demand, error) {
	procs, err := intVar(env, "WEB_CONCURRENCY", 2)
	if err != nil {
		return Demand{}, err
	}
	threads, err := intVar(env, "MAX_THREADS", 5)
	if err != nil {
		return Demand{}, err
	}
	pool, err := intVar(env, "DB_POOL", threads)
	if err != nil {
		return Demand{}, err
	}
	return Web(node, procs, pool), nil
}

func intVar(env fediops.Lookup, key string, def int) (int, error) {
	v, ok := get(env, key)
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q: %w: want a whole number", key, v, ErrInvalid)
	}
	return n, nil
}

// PoolSize is a DO connection pool: its name and its size, the server
// connections it holds open to the database.
type PoolSize struct {
	Name string
	Size int
}

// Budget is the connection arithmetic of one cluster, a plain value:
// fill it (NewBudget, then Pools and Add), read Report. The cluster's
// Limit is shared by every pool's size and every direct connection.
// Clients through a pool do not count against Limit, but more clients than
// the pool's size wait for one another (transaction mode queues them).
type Budget struct {
	Limit    int // server connections the cluster allows
	MaxPools int // 0: no check
	Pools    []PoolSize
	Demand   []Demand
}

// NewBudget starts a budget for a cluster with memGiB GiB under DO's limits.
func NewBudget(memGiB int) Budget {
	return Budget{Limit: DO.Connections(memGiB), MaxPools: DO.MaxPools}
}

// Variables that override DO's unconfirmed limits for a budget.
const (
	EnvConnLimit = "FEDIOPS_DB_CONN_LIMIT" // the cluster's connection limit, e.g. for 64 GiB and up
	EnvMaxPools  = "FEDIOPS_DB_MAX_POOLS"  // the most pools per cluster
)

// LimitsFromEnv returns DO's limits with FEDIOPS_DB_CONN_LIMIT (as Fixed,
// a whole number >= 1) and FEDIOPS_DB_MAX_POOLS (0: no check), when set,
// replacing DO's figures. Give it to Manager.Limits so that its plans
// and Room use them.
func LimitsFromEnv(env fediops.Lookup) (Limits, error) {
	l := DO
	var err error
	if l.Fixed, err = intVar(env, EnvConnLimit, 0); err != nil {
		return Limits{}, err
	}
	if v, ok := get(env, EnvConnLimit); ok && l.Fixed < 1 {
		return Limits{}, fmt.Errorf("%s=%q: %w: want a whole number >= 1", EnvConnLimit, v, ErrInvalid)
	}
	if l.MaxPools, err = intVar(env, EnvMaxPools, l.MaxPools); err != nil {
		return Limits{}, err
	}
	return l, nil
}

// BudgetFromEnv is NewBudget under LimitsFromEnv(env).
func BudgetFromEnv(env fediops.Lookup, memGiB int) (Budget, error) {
	l, err := LimitsFromEnv(env)
	if err != nil {
		return Budget{}, err
	}
	return Budget{Limit: l.Connections(memGiB), MaxPools: l.MaxPools}, nil
}

// Add appends demand and returns the budget, for chaining on a value.
func (b Budget) Add(d ...Demand) Budget {
	b.Demand = append(append([]Demand(nil), b.Demand...), d...)
	return b
}

// WithPool sets (or adds) a pool's size and returns the budget.
func (b Budget) WithPool(name string, size int) Budget {
	ps := append([]PoolSize(nil), b.Pools...)
	for i := range ps {
		if ps[i].Name == name {
			ps[i].Size = size
			b.Pools = ps
			return b
		}
	}
	b.Pools = append(ps, PoolSize{name, size})
	return b
}

// PoolUse is the load on one pool.
type PoolUse struct {
	Name    string
	Size    int
	Clients int // client connections the demand may open through it
	Waiting int // clients beyond Size: they queue in transaction mode
}

// Report is what a Budget comes to.
type Report struct {
	Limit    int
	PoolSum  int // the sizes of all pools
	Direct   int // direct connections
	Used     int // PoolSum + Direct: what counts against Limit
	Headroom int // Limit - Used, when >= 0
	Overflow int // Used - Limit, when > 0
	Pools    []PoolUse
	Problems []string // each names what to change; errors first
	err      error
}

// Err returns nil when the budget fits: ErrOverBudget (joined with
// the details) when server connections pass the limit or there are too
// many pools, ErrUnknownPool for demand through a pool not in Pools.
// Clients waiting on a pool are warnings only (see Problems).
func (r Report) Err() error { return r.err }

// Budget errors.
var (
	ErrOverBudget  = errors.New("over the cluster's connection limit")
	ErrUnknownPool = errors.New("demand through an unknown pool")
)

// Report adds up the budget.
func (b Budget) Report() Report {
	r := Report{Limit: b.Limit}
	var errs []error
	idx := map[string]int{}
	for _, p := range b.Pools {
		r.PoolSum += p.Size
		idx[p.Name] = len(r.Pools)
		r.Pools = append(r.Pools, PoolUse{Name: p.Name, Size: p.Size})
	}
	var direct []string
	for _, d := range b.Demand {
		if d.Pool == "" {
			r.Direct += d.Conns
			direct = append(direct, fmt.Sprintf("%s %s=%d", d.Who, d.Variable, d.Conns))
			continue
		}
		i, ok := idx[d.Pool]
		if !ok {
			errs = append(errs, fmt.Errorf("%w: %s goes through pool %q, which the budget does not list", ErrUnknownPool, d.Who, d.Pool))
			continue
		}
		r.Pools[i].Clients += d.Conns
	}
	r.Used = r.PoolSum + r.Direct
	if r.Used > r.Limit {
		r.Overflow = r.Used - r.Limit
		var parts []string
		for _, p := range b.Pools {
			parts = append(parts, fmt.Sprintf("pool %s size=%d", p.Name, p.Size))
		}
		parts = append(parts, direct...)
		errs = append(errs, fmt.Errorf("%w: %d server connections (%s) are %d over the limit of %d; lower one of them by %d",
			ErrOverBudget, r.Used, strings.Join(parts, " + "), r.Overflow, r.Limit, r.Overflow))
	} else {
		r.Headroom = r.Limit - r.Used
	}
	if b.MaxPools > 0 && len(b.Pools) > b.MaxPools {
		errs = append(errs, fmt.Errorf("%w: %d pools, at most %d per cluster", ErrOverBudget, len(b.Pools), b.MaxPools))
	}
	for _, e := range errs {
		r.Problems = append(r.Problems, e.Error())
	}
	for i, p := range r.Pools {
		if p.Clients > p.Size {
			r.Pools[i].Waiting = p.Clients - p.Size
			var who []string
			for _, d := range b.Demand {
				if d.Pool == p.Name {
					who = append(who, fmt.Sprintf("%s %s=%d", d.Who, d.Variable, d.Conns))
				}
			}
			r.Problems = append(r.Problems, fmt.Sprintf("pool %s: %d clients (%s) share %d server connections: up to %d wait in transaction mode; the limit leaves room to grow the pool by %d, else lower those variables",
				p.Name, p.Clients, strings.Join(who, " + "), p.Size, r.Pools[i].Waiting, r.Headroom))
		}
	}
	r.err = errors.Join(errs...)
	return r
}

// String prints the report, one line per pool and problem.
func (r Report) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "limit %d: pools %d + direct %d = %d", r.Limit, r.PoolSum, r.Direct, r.Used)
	if r.Overflow > 0 {
		fmt.Fprintf(&sb, ", %d over\n", r.Overflow)
	} else {
		fmt.Fprintf(&sb, ", headroom %d\n", r.Headroom)
	}
	for _, p := range r.Pools {
		fmt.Fprintf(&sb, "pool %s: size %d, clients %d\n", p.Name, p.Size, p.Clients)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&sb, "problem: %s\n", p)
	}
	return sb.String()
}
