package sidekiqq

import (
	"errors"
	"strings"
	"testing"

	"github.com/fediops/fediops/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestLookupRelease(t *testing.T) {
	for _, tc := range []struct {
		in, mastodon, sidekiq string
		ms                    bool
	}{
		{"4.3", "4.3", "6.5", false}, {"v4.4.2", "4.4", "7.3", false}, {"4.5.0-beta.1", "4.5", "8.0", true},
		{"4.6", "4.6", "8.1", true}, {"", DefaultMastodon, "8.0", true}, {"4.4rc1", "4.4", "7.3", false},
	} {
		r, err := LookupRelease(tc.in)
		if err != nil || r.Mastodon != tc.mastodon || r.Sidekiq != tc.sidekiq || r.MillisecondTimestamps != tc.ms {
			t.Errorf("LookupRelease(%q) = %+v, %v", tc.in, r, err)
		}
	}
	for _, bad := range []string{"4.2", "5.0", "four", "4", "4.40"} {
		if _, err := LookupRelease(bad); !errors.Is(err, ErrUnknownRelease) {
			t.Errorf("LookupRelease(%q) err = %v, want ErrUnknownRelease", bad, err)
		}
	}
}

func queueArgs(qs []Queue) string {
	var s []string
	for _, q := range qs {
		s = append(s, q.Arg())
	}
	return strings.Join(s, " ")
}

func TestQueuesByRelease(t *testing.T) {
	for _, tc := range []struct{ version, features, want string }{
		{"4.3", "", "default,8 push,6 ingress,4 mailers,2 pull scheduler"},
		{"4.3", "fasp", "default,8 push,6 ingress,4 mailers,2 pull scheduler"},
		{"4.4", "", "default,8 push,6 ingress,4 mailers,2 pull scheduler"},
		{"4.4", "status_reference, fasp", "default,8 push,6 ingress,4 mailers,2 pull scheduler fasp"},
		{"4.6", "fasping", "default,8 push,6 ingress,4 mailers,2 pull scheduler"},
	} {
		r, _ := LookupRelease(tc.version)
		if got := queueArgs(r.Queues(tc.features)); got != tc.want {
			t.Errorf("%s EXPERIMENTAL_FEATURES=%q: %s, want %s", tc.version, tc.features, got, tc.want)
		}
	}
}

func TestSeedLayout(t *testing.T) {
	l := SeedLayout()
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(l.Nodes) != 2 || l.Nodes[0] != (Node{"Scotty", 2, 4096}) || l.Nodes[1] != (Node{"Decker", 2, 4096}) {
		t.Fatalf("nodes %+v", l.Nodes)
	}
	for _, p := range l.Processes {
		if got, want := p.Serves(QueueScheduler), p.Node == "Decker"; got != want {
			t.Errorf("%s serves scheduler = %v", p.Node, got)
		}
		for _, q := range []string{QueueDefault, QueueIngress, QueuePush, QueuePull, QueueMailers} {
			if !p.Serves(q) {
				t.Errorf("%s does not serve %s", p.Node, q)
			}
		}
	}
}

func TestPlan(t *testing.T) {
	seed := SeedNodes()
	for _, tc := range []struct {
		name    string
		cfg     PlanConfig
		threads []int  // per process, layout order
		nodes   string // node of each process
		err     error
	}{
		{name: "seed 40", cfg: PlanConfig{Nodes: seed, Budget: 40}, threads: []int{10, 10, 10, 10}, nodes: "Scotty Scotty Decker Decker"},
		{name: "seed 23 uneven", cfg: PlanConfig{Nodes: seed, Budget: 23}, threads: []int{5, 6, 6, 6}, nodes: "Scotty Scotty Decker Decker"},
		{name: "seed plenty capped at 25", cfg: PlanConfig{Nodes: seed, Budget: 500}, threads: []int{25, 25, 25, 25}, nodes: "Scotty Scotty Decker Decker"},
		{name: "budget drops processes", cfg: PlanConfig{Nodes: seed, Budget: 12}, threads: []int{6, 6}, nodes: "Scotty Decker"},
		{name: "budget 15 gives 3 processes", cfg: PlanConfig{Nodes: seed, Budget: 15}, threads: []int{5, 5, 5}, nodes: "Scotty Decker Decker"},
		{name: "budget too small", cfg: PlanConfig{Nodes: seed, Budget: 9}, err: ErrBudget},
		{name: "no budget", cfg: PlanConfig{Nodes: seed}, err: ErrBudget},
		{name: "memory caps threads", cfg: PlanConfig{Nodes: []Node{{"small", 2, 2048}, {"big", 1, 8192}}, Budget: 100},
			threads: []int{11, 11, 25}, nodes: "small small big"},
		{name: "memory drops a process", cfg: PlanConfig{Nodes: []Node{{"tiny", 2, 1400}}, Budget: 100}, threads: []int{11}, nodes: "tiny"},
		{name: "memory too small", cfg: PlanConfig{Nodes: []Node{{"tiny", 1, 1024}}, Budget: 100}, err: ErrMemory},
		{name: "processes per node", cfg: PlanConfig{Nodes: seed, Budget: 60, ProcessesPerNode: 1}, threads: []int{25, 25}, nodes: "Scotty Decker"},
		{name: "unknown scheduler node", cfg: PlanConfig{Nodes: seed, Budget: 60, SchedulerNode: "Kirk"}, err: ErrInvalid},
		{name: "duplicate node", cfg: PlanConfig{Nodes: []Node{seed[0], seed[0]}, Budget: 60}, err: ErrInvalid},
		{name: "zero vcpu", cfg: PlanConfig{Nodes: []Node{{"x", 0, 4096}}, Budget: 60}, err: ErrInvalid},
		{name: "unknown release", cfg: PlanConfig{Mastodon: "3.5", Nodes: seed, Budget: 60}, err: ErrUnknownRelease},
		{name: "min above max", cfg: PlanConfig{Nodes: seed, Budget: 60, MinThreads: 30}, err: ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Plan(tc.cfg)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var threads []int
			var nodes []string
			sched := 0
			for _, p := range l.Processes {
				threads = append(threads, p.Threads)
				nodes = append(nodes, p.Node)
				if p.DBPool() != p.Threads {
					t.Errorf("DB_POOL %d != threads %d", p.DBPool(), p.Threads)
				}
				if p.Serves(QueueScheduler) {
					sched++
				}
			}
			if strings.Join(nodes, " ") != tc.nodes || len(threads) != len(tc.threads) {
				t.Fatalf("processes on %v threads %v, want %s %v", nodes, threads, tc.nodes, tc.threads)
			}
			for i := range threads {
				if threads[i] != tc.threads[i] {
					t.Fatalf("threads %v, want %v", threads, tc.threads)
				}
			}
			if sched != 1 {
				t.Errorf("scheduler in %d processes", sched)
			}
			budget := tc.cfg.Budget
			if l.Connections() > budget {
				t.Errorf("connections %d over budget %d", l.Connections(), budget)
			}
			last := l.Processes[len(l.Processes)-1].Node
			for _, p := range l.Processes {
				if p.Serves(QueueScheduler) && p.Node != last {
					t.Errorf("scheduler on %s, want the last node %s", p.Node, last)
				}
			}
		})
	}
}

// TestPlanInvariants sweeps budgets and node shapes: a plan either fails
// with a sentinel or fits the budget with scheduler exactly once.
func TestPlanInvariants(t *testing.T) {
	for budget := 1; budget <= 130; budget += 3 {
		for vcpu := 1; vcpu <= 4; vcpu++ {
			for _, mem := range []int{1024, 2048, 4096, 8192} {
				nodes := []Node{{"a", vcpu, mem}, {"b", 1, 4096}, {"c", vcpu, 2048}}
				l, err := Plan(PlanConfig{Nodes: nodes, Budget: budget, Mastodon: "4.4", ExperimentalFeatures: "fasp"})
				if err != nil {
					if !errors.Is(err, ErrBudget) && !errors.Is(err, ErrMemory) {
						t.Fatalf("budget %d vcpu %d mem %d: %v", budget, vcpu, mem, err)
					}
					continue
				}
				if l.Connections() > budget {
					t.Fatalf("budget %d: %d connections", budget, l.Connections())
				}
				if err := l.Validate(); err != nil {
					t.Fatal(err)
				}
				for _, p := range l.Processes {
					if p.Threads < 5 || p.Threads > 25 || !p.Serves(QueueFASP) {
						t.Fatalf("budget %d: process %+v", budget, p)
					}
				}
			}
		}
	}
}

func TestValidate(t *testing.T) {
	mut := func(f func(*Layout)) Layout {
		l := SeedLayout()
		l.Processes = append([]Process(nil), l.Processes...)
		for i := range l.Processes {
			l.Processes[i].Queues = append([]Queue(nil), l.Processes[i].Queues...)
		}
		f(&l)
		return l
	}
	for _, tc := range []struct {
		name string
		l    Layout
		err  error
		msg  string
	}{
		{"two schedulers", mut(func(l *Layout) { l.Processes[0].Queues = append(l.Processes[0].Queues, Queue{Name: QueueScheduler}) }),
			ErrScheduler, "2 processes list it"},
		{"no scheduler", mut(func(l *Layout) { l.Processes[1].Queues = l.Processes[1].Queues[:5] }), ErrScheduler, "no process"},
		{"zero threads", mut(func(l *Layout) { l.Processes[0].Threads = 0 }), ErrInvalid, "processes[0].threads"},
		{"unknown node", mut(func(l *Layout) { l.Processes[0].Node = "Kirk" }), ErrInvalid, `processes[0].node "Kirk"`},
		{"bad queue", mut(func(l *Layout) { l.Processes[0].Queues[1].Name = "a,b" }), ErrInvalid, "processes[0].queues[1].name"},
		{"dup queue", mut(func(l *Layout) { l.Processes[0].Queues[1].Name = "default" }), ErrInvalid, "listed twice"},
		{"negative weight", mut(func(l *Layout) { l.Processes[0].Queues[0].Weight = -1 }), ErrInvalid, "weight"},
		{"bad unit", mut(func(l *Layout) { l.Processes[0].Unit = "sidekiq" }), ErrInvalid, "unit"},
		{"dup unit", mut(func(l *Layout) { l.Processes[1].Node = "Scotty" }), ErrInvalid, "appears twice"},
	} {
		err := tc.l.Validate()
		if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %v containing %q", tc.name, err, tc.err, tc.msg)
		}
	}
}

func TestCommandQuoting(t *testing.T) {
	p := Process{Node: "n", Unit: "x.service", Threads: 3, Queues: []Queue{{Name: "default", Weight: 2}}}
	got := p.Command(UnitOptions{WorkingDirectory: "/srv/my app", RailsEnv: "it's"}).String()
	want := `cd '/srv/my app' && 'RAILS_ENV=it'\''s' DB_POOL=3 MALLOC_ARENA_MAX=2 LD_PRELOAD=libjemalloc.so /home/mastodon/.rbenv/shims/bundle exec sidekiq -c 3 -q default,2`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
