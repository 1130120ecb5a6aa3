package pgpool

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// AdminConfig returns a connection configuration for pgBouncer's admin
// console (database "pgbouncer") on the pool's host and port, with the
// same TLS, as user (one of pgBouncer's admin_users or stats_users). The
// console speaks only the simple protocol, so that is what it uses. DO
// does not open the console to customers; self-run pgBouncers do.
func (c *Config) AdminConfig(user, password string) (*pgx.ConnConfig, error) {
	if c.Pooled == nil {
		return nil, errors.New("admin console: the settings do not point at a pool")
	}
	cc := c.Pooled.ConnConfig.Copy()
	cc.Database = "pgbouncer"
	cc.User = user
	cc.Password = password
	cc.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	return cc, nil
}

// BouncerPool is one row of pgBouncer's SHOW POOLS.
type BouncerPool struct {
	Database, User, Mode string
	ClientsActive        int           // cl_active
	ClientsWaiting       int           // cl_waiting
	ServersActive        int           // sv_active
	ServersIdle          int           // sv_idle
	ServersUsed          int           // sv_used
	MaxWait              time.Duration // maxwait + maxwait_us: the oldest waiting client's wait
	Raw                  map[string]string
}

// BouncerStats is one row of pgBouncer's SHOW STATS.
type BouncerStats struct {
	Database     string
	Transactions int64         // total_xact_count
	Queries      int64         // total_query_count
	AvgXactTime  time.Duration // avg_xact_time
	AvgQueryTime time.Duration // avg_query_time
	AvgWaitTime  time.Duration // avg_wait_time
	Raw          map[string]string
}

// showRows runs an admin console SHOW command and returns its rows by
// column name, as text.
func showRows(ctx context.Context, conn *pgx.Conn, what string) ([]map[string]string, error) {
	rows, err := conn.Query(ctx, "SHOW "+what, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, fmt.Errorf("SHOW %s: %w", what, err)
	}
	defer rows.Close()
	fds := rows.FieldDescriptions()
	var out []map[string]string
	for rows.Next() {
		m := make(map[string]string, len(fds))
		for i, v := range rows.RawValues() {
			m[fds[i].Name] = string(v)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("SHOW %s: %w", what, err)
	}
	return out, nil
}

func atoi(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }

// ShowPools reads SHOW POOLS from an admin console connection.
func ShowPools(ctx context.Context, conn *pgx.Conn) ([]BouncerPool, error) {
	rows, err := showRows(ctx, conn, "POOLS")
	if err != nil {
		return nil, err
	}
	out := make([]BouncerPool, 0, len(rows))
	for _, r := range rows {
		out = append(out, BouncerPool{Database: r["database"], User: r["user"], Mode: r["pool_mode"],
			ClientsActive: int(atoi(r["cl_active"])), ClientsWaiting: int(atoi(r["cl_waiting"])),
			ServersActive: int(atoi(r["sv_active"])), ServersIdle: int(atoi(r["sv_idle"])), ServersUsed: int(atoi(r["sv_used"])),
			MaxWait: time.Duration(atoi(r["maxwait"]))*time.Second + time.Duration(atoi(r["maxwait_us"]))*time.Microsecond,
			Raw:     r})
	}
	return out, nil
}

// ShowStats reads SHOW STATS from an admin console connection.
func ShowStats(ctx context.Context, conn *pgx.Conn) ([]BouncerStats, error) {
	rows, err := showRows(ctx, conn, "STATS")
	if err != nil {
		return nil, err
	}
	out := make([]BouncerStats, 0, len(rows))
	for _, r := range rows {
		out = append(out, BouncerStats{Database: r["database"],
			Transactions: atoi(r["total_xact_count"]), Queries: atoi(r["total_query_count"]),
			AvgXactTime:  time.Duration(atoi(r["avg_xact_time"])) * time.Microsecond,
			AvgQueryTime: time.Duration(atoi(r["avg_query_time"])) * time.Microsecond,
			AvgWaitTime:  time.Duration(atoi(r["avg_wait_time"])) * time.Microsecond,
			Raw:          r})
	}
	return out, nil
}

// Health is the result of Check.
type Health struct {
	Ping     time.Duration  // a round trip through the pool
	Pools    []BouncerPool  // nil when the console was not asked or not reachable
	Stats    []BouncerStats // likewise
	AdminErr error          // why Pools and Stats are missing, when they were asked for
}

// Check pings through pool (an empty statement, safe in transaction mode)
// and, when admin is not nil, reads SHOW POOLS and SHOW STATS from
// pgBouncer's console. Only a failed ping is an error: an unreachable
// console (DO's) is reported in AdminErr.
func Check(ctx context.Context, pool *pgxpool.Pool, admin *pgx.ConnConfig) (*Health, error) {
	h := &Health{}
	start := time.Now()
	if err := pool.Ping(ctx); err != nil {
		cc := pool.Config().ConnConfig
		return nil, fmt.Errorf("ping %s:%d/%s: %w", cc.Host, cc.Port, cc.Database, err)
	}
	h.Ping = time.Since(start)
	if admin == nil {
		return h, nil
	}
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		h.AdminErr = fmt.Errorf("admin console %s:%d: %w", admin.Host, admin.Port, err)
		return h, nil
	}
	defer conn.Close(ctx)
	if h.Pools, err = ShowPools(ctx, conn); err != nil {
		h.AdminErr = err
		return h, nil
	}
	if h.Stats, err = ShowStats(ctx, conn); err != nil {
		h.AdminErr = err
	}
	return h, nil
}

// Collector exports a pgxpool's statistics as Prometheus metrics
// (pgpool_conns{state}, pgpool_max_conns, pgpool_acquires_total,
// pgpool_acquire_seconds_total, pgpool_empty_acquires_total,
// pgpool_canceled_acquires_total), labelled pool=name.
type Collector struct {
	pool                                                    *pgxpool.Pool
	name                                                    string
	conns, maxConns, acquires, acquireSecs, empty, canceled *prometheus.Desc
}

// NewCollector returns a Collector for pool; register it with a registry.
func NewCollector(pool *pgxpool.Pool, name string) *Collector {
	l := prometheus.Labels{"pool": name}
	d := func(n, help string, vars ...string) *prometheus.Desc {
		return prometheus.NewDesc("pgpool_"+n, help, vars, l)
	}
	return &Collector{pool: pool, name: name,
		conns:       d("conns", "Connections of the client-side pool by state.", "state"),
		maxConns:    d("max_conns", "MaxConns of the client-side pool."),
		acquires:    d("acquires_total", "Successful acquires."),
		acquireSecs: d("acquire_seconds_total", "Time spent acquiring connections."),
		empty:       d("empty_acquires_total", "Acquires that had to wait for a connection."),
		canceled:    d("canceled_acquires_total", "Acquires canceled by their context."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.conns, c.maxConns, c.acquires, c.acquireSecs, c.empty, c.canceled} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	g := prometheus.GaugeValue
	ch <- prometheus.MustNewConstMetric(c.conns, g, float64(s.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(c.conns, g, float64(s.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(c.conns, g, float64(s.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(c.maxConns, g, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(c.acquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.acquireSecs, prometheus.CounterValue, s.AcquireDuration().Seconds())
	ch <- prometheus.MustNewConstMetric(c.empty, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.canceled, prometheus.CounterValue, float64(s.CanceledAcquireCount()))
}
