package sidekiqq

import "github.com/fediops/fediops/pgpool"

// Demands are the layout's database connections as pgpool demands, one per
// node and thread count (pgpool.Sidekiq(node, processes, DB_POOL)), in
// layout order, so that a layout can be checked against the cluster's
// connection limit:
//
//	r := pgpool.NewBudget(4).Add(web...).Add(layout.Demands()...).Report()
//
// Add .Via(pool) to each when Sidekiq connects through a DO pool.
func (l Layout) Demands() []pgpool.Demand {
	type key struct {
		node    string
		threads int
	}
	var order []key
	count := map[key]int{}
	for _, p := range l.Processes {
		k := key{p.Node, p.DBPool()}
		if count[k] == 0 {
			order = append(order, k)
		}
		count[k]++
	}
	out := make([]pgpool.Demand, len(order))
	for i, k := range order {
		out[i] = pgpool.Sidekiq(k.node, count[k], k.threads)
	}
	return out
}
