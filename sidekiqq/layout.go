package sidekiqq

import (
	"errors"
	"fmt"
	"strings"
)

// Node is a worker droplet that runs Sidekiq processes.
type Node struct {
	Name     string `json:"name"`
	VCPU     int    `json:"vcpu"`
	MemoryMB int    `json:"memory_mb"`
}

// Process is one Sidekiq process (one systemd unit) on a node.
type Process struct {
	Node string `json:"node"`
	// Unit is the systemd unit's file name, e.g. "mastodon-sidekiq.service"
	// or, with several processes on a node, "mastodon-sidekiq-2.service".
	Unit string `json:"unit"`
	// Threads is Sidekiq's -c; the unit sets DB_POOL to the same number.
	Threads int `json:"threads"`
	// Queues in -q order with their weights.
	Queues []Queue `json:"queues"`
}

// DBPool is the DB_POOL the process's unit sets: its thread count, so that
// every thread can hold a connection and no connection sits idle.
func (p Process) DBPool() int { return p.Threads }

// Serves reports whether the process lists the queue.
func (p Process) Serves(queue string) bool {
	for _, q := range p.Queues {
		if q.Name == queue {
			return true
		}
	}
	return false
}

// Layout is the Sidekiq processes of an instance across its worker nodes.
type Layout struct {
	Mastodon  string    `json:"mastodon"` // release line, e.g. "4.4"
	Nodes     []Node    `json:"nodes"`
	Processes []Process `json:"processes"`
	// ExperimentalFeatures is the EXPERIMENTAL_FEATURES the processes run
	// with (Plan sets it from PlanConfig); Notes reads it.
	ExperimentalFeatures string `json:"experimental_features,omitempty"`
}

// Notes says what the layout leaves undone for its ExperimentalFeatures:
// with fasp named, a layout in which no process lists the fasp queue (the
// seed's, one written by hand) leaves fasp's jobs waiting for ever, and
// Mastodon's admin dashboard warns that no Sidekiq process handles fasp;
// Mastodon 4.3 has no fasp queue at all. WriteText prints the notes.
func (l Layout) Notes() []string {
	if !HasFeature(l.ExperimentalFeatures, QueueFASP) {
		return nil
	}
	rel, err := LookupRelease(l.Mastodon)
	if err != nil {
		return nil // Validate reports it
	}
	if !rel.HasQueue(QueueFASP) {
		return []string{fmt.Sprintf("EXPERIMENTAL_FEATURES names fasp, which Mastodon %s does not have (its fasp queue comes with 4.4)", rel.Mastodon)}
	}
	for _, p := range l.Processes {
		if p.Serves(QueueFASP) {
			return nil
		}
	}
	return []string{"EXPERIMENTAL_FEATURES names fasp but no process lists the fasp queue: its jobs would wait for ever, " +
		"and Mastodon's admin dashboard warns that no Sidekiq process handles fasp; add fasp to a process's queues " +
		"(Plan does when PlanConfig.ExperimentalFeatures names it)"}
}

// Connections is the number of database connections the layout's processes
// may open together: the sum of their DB_POOL values.
func (l Layout) Connections() int {
	n := 0
	for _, p := range l.Processes {
		n += p.DBPool()
	}
	return n
}

// Sentinel errors of Validate and Plan, for callers that branch.
var (
	// ErrScheduler: the scheduler queue is not in exactly one process.
	// sidekiq-scheduler pushes `every` and `interval` jobs once per process
	// listening on it, so a second one runs Mastodon's periodic jobs twice.
	ErrScheduler = errors.New("scheduler must be served by exactly one process")
	// ErrBudget: the database connection budget cannot hold the layout.
	ErrBudget = errors.New("connection budget too small")
	// ErrMemory: a node's memory cannot hold a Sidekiq process.
	ErrMemory = errors.New("node memory too small")
	// ErrInvalid: a field of a layout or plan configuration is wrong.
	ErrInvalid = errors.New("invalid layout")
)

// Validate checks the layout: known nodes with unique names, at least one
// thread per process, no duplicate or empty queue names in a process, no
// negative weights, unique unit names per node, and scheduler in exactly one
// process. Errors name the field (processes[2].queues[1]) and wrap
// ErrInvalid or ErrScheduler.
func (l Layout) Validate() error {
	if _, err := LookupRelease(l.Mastodon); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	nodes := map[string]bool{}
	for i, n := range l.Nodes {
		if n.Name == "" {
			return fmt.Errorf("%w: nodes[%d].name is empty", ErrInvalid, i)
		}
		if nodes[n.Name] {
			return fmt.Errorf("%w: nodes[%d].name %q is a duplicate", ErrInvalid, i, n.Name)
		}
		nodes[n.Name] = true
	}
	units := map[string]bool{}
	var sched []string
	for i, p := range l.Processes {
		at := fmt.Sprintf("processes[%d]", i)
		if !nodes[p.Node] {
			return fmt.Errorf("%w: %s.node %q is not in nodes", ErrInvalid, at, p.Node)
		}
		if p.Unit == "" || !strings.HasSuffix(p.Unit, ".service") || strings.ContainsAny(p.Unit, "/ \n") {
			return fmt.Errorf("%w: %s.unit %q is not a unit file name (name.service)", ErrInvalid, at, p.Unit)
		}
		if units[p.Node+"/"+p.Unit] {
			return fmt.Errorf("%w: %s.unit %q appears twice on node %s", ErrInvalid, at, p.Unit, p.Node)
		}
		units[p.Node+"/"+p.Unit] = true
		if p.Threads < 1 {
			return fmt.Errorf("%w: %s.threads is %d, want at least 1", ErrInvalid, at, p.Threads)
		}
		if len(p.Queues) == 0 {
			return fmt.Errorf("%w: %s.queues is empty", ErrInvalid, at)
		}
		seen := map[string]bool{}
		for j, q := range p.Queues {
			if q.Name == "" || strings.ContainsAny(q.Name, ", \t\n\"'") {
				return fmt.Errorf("%w: %s.queues[%d].name %q is not a queue name", ErrInvalid, at, j, q.Name)
			}
			if seen[q.Name] {
				return fmt.Errorf("%w: %s.queues[%d] %q is listed twice", ErrInvalid, at, j, q.Name)
			}
			seen[q.Name] = true
			if q.Weight < 0 {
				return fmt.Errorf("%w: %s.queues[%d].weight is %d, want 0 or more", ErrInvalid, at, j, q.Weight)
			}
			if q.Name == QueueScheduler {
				sched = append(sched, fmt.Sprintf("%s (%s on %s)", at, p.Unit, p.Node))
			}
		}
	}
	if len(sched) != 1 {
		if len(sched) == 0 {
			return fmt.Errorf("%w: no process lists it", ErrScheduler)
		}
		return fmt.Errorf("%w: %d processes list it: %s", ErrScheduler, len(sched), strings.Join(sched, ", "))
	}
	return nil
}

// SeedNodes are the seed document's Sidekiq worker droplets: Scotty and
// Decker, 2 vCPU and 4 GB each.
func SeedNodes() []Node {
	return []Node{{Name: "Scotty", VCPU: 2, MemoryMB: 4096}, {Name: "Decker", VCPU: 2, MemoryMB: 4096}}
}

// SeedLayout is the layout the seed document describes, as a ready value:
// two worker nodes (Scotty and Decker, 2 vCPU and 4 GB each), each running
// one mastodon-sidekiq.service with Mastodon's dist defaults (-c 25,
// DB_POOL=25) over the queues default, push, ingress, mailers and pull
// with config/sidekiq.yml's weights, and scheduler added only on Decker.
// It opens up to 50 database connections; Plan sizes a layout to a budget.
func SeedLayout() Layout {
	rel, _ := LookupRelease("4.4")
	var main []Queue
	for _, q := range rel.Queues("") {
		if q.Name != QueueScheduler {
			main = append(main, q)
		}
	}
	decker := append(append([]Queue(nil), main...), Queue{Name: QueueScheduler})
	return Layout{
		Mastodon: rel.Mastodon,
		Nodes:    SeedNodes(),
		Processes: []Process{
			{Node: "Scotty", Unit: "mastodon-sidekiq.service", Threads: 25, Queues: main},
			{Node: "Decker", Unit: "mastodon-sidekiq.service", Threads: 25, Queues: decker},
		},
	}
}
