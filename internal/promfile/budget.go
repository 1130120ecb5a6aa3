package promfile

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Budget exports a database cluster's connection budget (what
// pgpool.Budget.Report adds up) so that an alert can watch the headroom:
//
//	fediops_db_connections_limit{cluster}      server connections the cluster allows
//	fediops_db_connections_budgeted{cluster}   pool sizes + direct connections
//
// Headroom ratio in PromQL: 1 - budgeted / limit.
type Budget struct {
	limit, used *prometheus.GaugeVec
}

// NewBudget registers the gauges with reg.
func NewBudget(reg prometheus.Registerer) (*Budget, error) {
	b := &Budget{
		limit: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fediops_db_connections_limit",
			Help: "Server connections the database cluster allows (pgpool.Budget Limit)."}, []string{"cluster"}),
		used: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fediops_db_connections_budgeted",
			Help: "Server connections the plan takes: pool sizes plus direct connections (pgpool.Report Used)."}, []string{"cluster"}),
	}
	for _, c := range []prometheus.Collector{b.limit, b.used} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register budget metrics: %w", err)
		}
	}
	return b, nil
}

// Set records a cluster's limit and the connections budgeted against it,
// e.g. b.Set("majel", r.Limit, r.Used) with r a pgpool.Report.
func (b *Budget) Set(cluster string, limit, used int) {
	b.limit.WithLabelValues(cluster).Set(float64(limit))
	b.used.WithLabelValues(cluster).Set(float64(used))
}
