package sidekiqq

import (
	"fmt"
	"sort"
)

// PlanConfig is the input of Plan. Zero values mean the documented defaults;
// only Nodes and Budget are required.
type PlanConfig struct {
	// Mastodon is the release ("4.4", "v4.5.1"); default DefaultMastodon.
	Mastodon string `json:"mastodon"`
	// ExperimentalFeatures is EXPERIMENTAL_FEATURES from .env.production;
	// "fasp" in it adds the fasp queue (4.4 and later).
	ExperimentalFeatures string `json:"experimental_features"`
	// Nodes are the worker droplets, in the order units are listed.
	Nodes []Node `json:"nodes"`
	// Budget is the number of database connections all Sidekiq processes
	// together may hold: what the cluster's limit (or the DO pool's size)
	// leaves after web and streaming, e.g. the Headroom of a
	// pgpool.Budget's Report with their demands added. Layout.Demands
	// turns the result back into pgpool demands to check.
	Budget int `json:"budget"`
	// SchedulerNode is the node whose first process also serves scheduler;
	// default the last node (the seed puts it on Decker, its second node).
	SchedulerNode string `json:"scheduler_node"`
	// ProcessesPerNode; default one per vCPU (a Ruby process runs Ruby code
	// on one core at a time), fewer when memory or budget demand it.
	ProcessesPerNode int `json:"processes_per_node"`
	// MaxThreads caps -c per process; default 25 (Mastodon's dist unit).
	MaxThreads int `json:"max_threads"`
	// MinThreads is the least -c worth running a process for; default 5.
	MinThreads int `json:"min_threads"`
	// ProcessMemoryMB is a process's resident memory before threads;
	// default 350. [?] measure your own: RSS is in the process hash.
	ProcessMemoryMB int `json:"process_memory_mb"`
	// ThreadMemoryMB is the memory each further thread adds; default 25. [?]
	ThreadMemoryMB int `json:"thread_memory_mb"`
	// ReservedMemoryMB is kept free per node for the OS and the Redis
	// tunnel; default 768. [?]
	ReservedMemoryMB int `json:"reserved_memory_mb"`
}

func (c PlanConfig) withDefaults() PlanConfig {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxThreads, 25)
	def(&c.MinThreads, 5)
	def(&c.ProcessMemoryMB, 350)
	def(&c.ThreadMemoryMB, 25)
	def(&c.ReservedMemoryMB, 768)
	if c.SchedulerNode == "" && len(c.Nodes) > 0 {
		c.SchedulerNode = c.Nodes[len(c.Nodes)-1].Name
	}
	return c
}

// Plan lays Mastodon's Sidekiq queues over nodes within a database
// connection budget. The heuristic:
//
//  1. Processes per node: ProcessesPerNode, or one per vCPU.
//  2. Memory caps threads: a process may use (MemoryMB − ReservedMemoryMB) /
//     processes on its node; its threads are what fits after
//     ProcessMemoryMB at ThreadMemoryMB each, at most MaxThreads. A node
//     that cannot give each process MinThreads runs fewer processes; one
//     that cannot hold even one fails with ErrMemory.
//  3. The budget caps threads: when Budget cannot give every process
//     MinThreads, the node with the most processes gives one up, until one
//     per node is left; then Plan fails with ErrBudget. Otherwise the
//     budget is shared max-min fairly: every process gets an equal share,
//     a process capped below it (by memory or MaxThreads) leaves the rest
//     to the others. Budget left over when every process is at its cap is
//     not used.
//  4. Queues: every process serves all of the release's queues with
//     config/sidekiq.yml's weights (default 8, push 6, ingress 4, mailers 2,
//     pull, fasp with EXPERIMENTAL_FEATURES=fasp), so that each queue
//     survives the loss of a node; scheduler is added to exactly one
//     process, the first on SchedulerNode.
//  5. DB_POOL of each process is its thread count.
//
// The result passes Validate.
func Plan(cfg PlanConfig) (Layout, error) {
	c := cfg.withDefaults()
	rel, err := LookupRelease(c.Mastodon)
	if err != nil {
		return Layout{}, err // it names the release
	}
	if len(c.Nodes) == 0 {
		return Layout{}, fmt.Errorf("%w: nodes is empty", ErrInvalid)
	}
	if c.Budget <= 0 {
		return Layout{}, fmt.Errorf("%w: budget is %d, want the number of DB connections Sidekiq may use", ErrBudget, c.Budget)
	}
	for name, v := range map[string]int{"max_threads": c.MaxThreads, "min_threads": c.MinThreads, "process_memory_mb": c.ProcessMemoryMB,
		"thread_memory_mb": c.ThreadMemoryMB, "reserved_memory_mb": c.ReservedMemoryMB, "processes_per_node": c.ProcessesPerNode} {
		if v < 0 {
			return Layout{}, fmt.Errorf("%w: %s is negative", ErrInvalid, name)
		}
	}
	if c.MinThreads > c.MaxThreads {
		return Layout{}, fmt.Errorf("%w: min_threads %d is above max_threads %d", ErrInvalid, c.MinThreads, c.MaxThreads)
	}
	schedIdx := -1
	seen := map[string]bool{}
	for i, n := range c.Nodes {
		switch {
		case n.Name == "":
			return Layout{}, fmt.Errorf("%w: nodes[%d].name is empty", ErrInvalid, i)
		case seen[n.Name]:
			return Layout{}, fmt.Errorf("%w: nodes[%d].name %q is a duplicate", ErrInvalid, i, n.Name)
		case n.VCPU < 1:
			return Layout{}, fmt.Errorf("%w: nodes[%d] (%s).vcpu is %d, want at least 1", ErrInvalid, i, n.Name, n.VCPU)
		case n.MemoryMB < 1:
			return Layout{}, fmt.Errorf("%w: nodes[%d] (%s).memory_mb is %d, want at least 1", ErrInvalid, i, n.Name, n.MemoryMB)
		}
		seen[n.Name] = true
		if n.Name == c.SchedulerNode {
			schedIdx = i
		}
	}
	if schedIdx < 0 {
		return Layout{}, fmt.Errorf("%w: scheduler_node %q is not one of the nodes", ErrInvalid, c.SchedulerNode)
	}

	// threadCap is the most threads a process may run on node n when the
	// node runs k processes (memory and MaxThreads).
	threadCap := func(n Node, k int) int {
		per := (n.MemoryMB - c.ReservedMemoryMB) / k
		t := (per - c.ProcessMemoryMB) / c.ThreadMemoryMB
		return min(t, c.MaxThreads)
	}
	procs := make([]int, len(c.Nodes))
	for i, n := range c.Nodes {
		k := c.ProcessesPerNode
		if k == 0 {
			k = n.VCPU
		}
		for k > 1 && threadCap(n, k) < c.MinThreads {
			k--
		}
		if threadCap(n, k) < c.MinThreads {
			return Layout{}, fmt.Errorf("%w: node %s: %d MB less %d MB reserved cannot hold one process of %d threads (%d MB + %d MB per thread)",
				ErrMemory, n.Name, n.MemoryMB, c.ReservedMemoryMB, c.MinThreads, c.ProcessMemoryMB, c.ThreadMemoryMB)
		}
		procs[i] = k
	}
	total := func() int {
		s := 0
		for _, k := range procs {
			s += k
		}
		return s
	}
	for total()*c.MinThreads > c.Budget {
		most := 0
		for i := range procs {
			if procs[i] > procs[most] {
				most = i
			}
		}
		if procs[most] == 1 {
			return Layout{}, fmt.Errorf("%w: %d connections cannot give %d nodes one process of min_threads %d each (needs %d): raise the budget, lower min_threads or use fewer nodes",
				ErrBudget, c.Budget, len(c.Nodes), c.MinThreads, len(c.Nodes)*c.MinThreads)
		}
		procs[most]--
	}

	type slot struct{ node, idx, cap, threads int }
	var slots []slot
	for i, n := range c.Nodes {
		for j := 0; j < procs[i]; j++ {
			slots = append(slots, slot{node: i, idx: j, cap: threadCap(n, procs[i])})
		}
	}
	order := make([]int, len(slots))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return slots[order[a]].cap < slots[order[b]].cap })
	left := c.Budget
	for k, i := range order {
		share := left / (len(order) - k)
		t := min(slots[i].cap, share)
		slots[i].threads = t
		left -= t
	}
	// Integer division leaves the remainder with the last (largest-cap)
	// processes already; nothing more to hand out without passing a cap.

	base := rel.Queues(c.ExperimentalFeatures)
	l := Layout{Mastodon: rel.Mastodon, Nodes: append([]Node(nil), c.Nodes...), ExperimentalFeatures: c.ExperimentalFeatures}
	for _, s := range slots {
		var qs []Queue
		for _, q := range base {
			if q.Name != QueueScheduler {
				qs = append(qs, q)
			}
		}
		if s.node == schedIdx && s.idx == 0 {
			qs = append(qs, Queue{Name: QueueScheduler})
		}
		unit := "mastodon-sidekiq.service"
		if procs[s.node] > 1 {
			unit = fmt.Sprintf("mastodon-sidekiq-%d.service", s.idx+1)
		}
		l.Processes = append(l.Processes, Process{Node: c.Nodes[s.node].Name, Unit: unit, Threads: s.threads, Queues: qs})
	}
	if err := l.Validate(); err != nil {
		return Layout{}, fmt.Errorf("planned layout: %w", err)
	}
	return l, nil
}
