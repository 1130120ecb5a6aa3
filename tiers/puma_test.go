package tiers

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/fediops/fediops/pgpool"
)

func TestPumaRule(t *testing.T) {
	cases := []struct {
		vcpu, workers, threads int
	}{
		{1, 1, 3}, // 1.5 rounds down
		{2, 3, 9}, // the seed
		{3, 4, 12},
		{4, 6, 18},
		{5, 7, 21},
		{8, 12, 36},
	}
	for _, c := range cases {
		s, err := PumaSizing{VCPU: c.vcpu}.Plan()
		if err != nil {
			t.Fatal(err)
		}
		if s.WebConcurrency != c.workers || s.MaxThreads != c.threads || s.DBPool != c.threads {
			t.Errorf("vcpu %d: got %d/%d/%d, want %d/%d/%d", c.vcpu, s.WebConcurrency, s.MaxThreads, s.DBPool, c.workers, c.threads, c.threads)
		}
		if s.ConnectionsPerNode != c.workers*c.threads || s.Nodes != 1 {
			t.Errorf("vcpu %d: per node %d nodes %d", c.vcpu, s.ConnectionsPerNode, s.Nodes)
		}
		if s.Err() != nil || len(s.Alternatives) != 0 {
			t.Errorf("vcpu %d without limits: err %v alts %v", c.vcpu, s.Err(), s.Alternatives)
		}
	}
}

func TestPumaSeedFits(t *testing.T) {
	// The seed: two 2 vCPU / 4 GiB web nodes against a 4 GiB database.
	s, err := PumaSizing{VCPU: 2, MemoryMiB: 4096, Nodes: 2, DBLimit: 97}.Plan()
	if err != nil {
		t.Fatal(err)
	}
	if s.ConnectionsPerTier != 54 || s.Headroom != 43 || s.MemoryNeededMiB != 1024+3*450 {
		t.Fatalf("got %+v", s)
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if got := s.Env(); got != "WEB_CONCURRENCY=3\nMAX_THREADS=9\nDB_POOL=9\n" {
		t.Fatalf("env %q", got)
	}
	// Sidekiq's 2 x 25 and streaming's 2 x 10 on top leave -27.
	s, _ = PumaSizing{VCPU: 2, Nodes: 2, DBLimit: 97, OtherConnections: 70}.Plan()
	if !s.OverDB || s.Headroom != -27 || !errors.Is(s.Err(), ErrOverDBBudget) {
		t.Fatalf("got %+v err %v", s, s.Err())
	}
}

func TestPumaOverBudgetAlternatives(t *testing.T) {
	// The case: 4 vCPU against a 4 GiB database: 6 x 18 = 108 > 97.
	s, err := PumaSizing{VCPU: 4, MemoryMiB: 8192, DBLimit: 97}.Plan()
	if err != nil {
		t.Fatal(err)
	}
	if s.ConnectionsPerNode != 108 || s.Headroom != -11 || !s.OverDB || s.OverMemory {
		t.Fatalf("got %+v", s)
	}
	err = s.Err()
	if !errors.Is(err, ErrOverDBBudget) || errors.Is(err, ErrOverMemory) || !strings.Contains(err.Error(), "by 11") {
		t.Fatalf("err %v", err)
	}
	want := map[string][3]int{
		"fewer-threads":   {6, 16, 16},
		"fewer-workers":   {5, 18, 18},
		"bigger-database": {6, 18, 18},
	}
	if len(s.Alternatives) != len(want) {
		t.Fatalf("alternatives %+v", s.Alternatives)
	}
	for _, a := range s.Alternatives {
		w, ok := want[a.Kind]
		if !ok || [3]int{a.WebConcurrency, a.MaxThreads, a.DBPool} != w {
			t.Errorf("%s: %+v, want %v", a.Kind, a, w)
		}
		if a.ConnectionsPerTier > a.DBLimit {
			t.Errorf("%s does not fit: %d > %d", a.Kind, a.ConnectionsPerTier, a.DBLimit)
		}
		if a.Kind == "bigger-database" && (a.DBSizeGiB != 8 || a.DBLimit != 197) {
			t.Errorf("bigger database: %+v", a)
		}
	}
}

func TestPumaOverMemory(t *testing.T) {
	// 4 vCPU on a 2 GiB node: 6 workers need 1024 + 2700 MiB.
	s, err := PumaSizing{VCPU: 4, MemoryMiB: 2048, WorkerRSSMiB: 450}.Plan()
	if err != nil {
		t.Fatal(err)
	}
	if !s.OverMemory || s.OverDB || !errors.Is(s.Err(), ErrOverMemory) {
		t.Fatalf("got %+v %v", s, s.Err())
	}
	kinds := map[string]Alternative{}
	for _, a := range s.Alternatives {
		if _, dup := kinds[a.Kind]; dup {
			t.Errorf("two %s alternatives", a.Kind)
		}
		kinds[a.Kind] = a
	}
	if len(kinds) != 2 {
		t.Errorf("alternatives %+v", s.Alternatives)
	}
	// (2048-1024)/450 = 2 workers fit.
	if a := kinds["fewer-workers"]; a.WebConcurrency != 2 || a.MaxThreads != 18 || a.MemoryMiB > 2048 {
		t.Errorf("fewer workers %+v", a)
	}
	if a := kinds["bigger-droplet"]; a.MemoryMiB != 4096 {
		t.Errorf("bigger droplet %+v", a)
	}
	if _, ok := kinds["bigger-database"]; ok {
		t.Errorf("no database alternative expected: %+v", s.Alternatives)
	}
}

func TestPumaOverrides(t *testing.T) {
	s, err := PumaSizing{VCPU: 2, MaxThreads: 5, DBPool: 4, Nodes: 3, DBLimit: 47}.Plan()
	if err != nil {
		t.Fatal(err)
	}
	if s.WebConcurrency != 3 || s.MaxThreads != 5 || s.DBPool != 4 || s.ConnectionsPerTier != 36 || s.Headroom != 11 {
		t.Fatalf("got %+v", s)
	}
	s, _ = PumaSizing{WebConcurrency: 2}.Plan()
	if s.WebConcurrency != 2 || s.MaxThreads != 6 {
		t.Fatalf("got %+v", s)
	}
}

func TestPumaValidate(t *testing.T) {
	for _, p := range []PumaSizing{{}, {VCPU: -1}, {VCPU: 2, Nodes: -1}, {VCPU: 2, DBLimit: -3}, {VCPU: 2, WorkersPerVCPU: -1}} {
		if _, err := p.Plan(); err == nil {
			t.Errorf("%+v: no error", p)
		} else if !strings.Contains(err.Error(), "PumaSizing") {
			t.Errorf("error does not name the field: %v", err)
		}
	}
}

func TestPumaOutputs(t *testing.T) {
	s, _ := PumaSizing{VCPU: 4, DBLimit: 97}.Plan()
	var b bytes.Buffer
	if err := s.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"WEB_CONCURRENCY=6", "headroom", "-11", "fewer-threads", "bigger-database"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := s.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Env          map[string]int `json:"env"`
		Headroom     int            `json:"headroom"`
		Error        string         `json:"error"`
		Alternatives []Alternative  `json:"alternatives"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Env["WEB_CONCURRENCY"] != 6 || got.Headroom != -11 || got.Error == "" || len(got.Alternatives) != 3 {
		t.Fatalf("json %s", b.String())
	}
}

func TestPumaWithPgpoolBudget(t *testing.T) {
	if DBLimit(4) != 97 || DBLimit(1) != 22 || DefaultDBSizes[3] != (DBSize{8, 197}) {
		t.Fatalf("limits %d %v", DBLimit(4), DefaultDBSizes)
	}
	s, _ := PumaSizing{VCPU: 2, Nodes: 2, DBLimit: DBLimit(4)}.Plan()
	// Directly against the database (no pool): the same 54 of 97.
	rep := pgpool.NewBudget(4).Add(s.Demands("web")...).Report()
	if rep.Err() != nil || rep.Used != s.ConnectionsPerTier || rep.Headroom != s.Headroom {
		t.Fatalf("pgpool report %+v, sizing %d/%d", rep, s.ConnectionsPerTier, s.Headroom)
	}
	s, _ = PumaSizing{VCPU: 4, DBLimit: DBLimit(4)}.Plan()
	rep = pgpool.NewBudget(4).Add(s.Demands("web")...).Report()
	if !errors.Is(rep.Err(), pgpool.ErrOverBudget) || rep.Overflow != -s.Headroom {
		t.Fatalf("pgpool report %+v, sizing headroom %d", rep, s.Headroom)
	}
}

func TestPumaOverBoth(t *testing.T) {
	// Others already take more than the limit: only a bigger database helps.
	s, _ := PumaSizing{VCPU: 2, DBLimit: 22, OtherConnections: 30}.Plan()
	if len(s.Alternatives) != 1 || s.Alternatives[0].Kind != "bigger-database" || s.Alternatives[0].DBLimit != 97 {
		t.Fatalf("%+v", s.Alternatives)
	}
	// 4 vCPU on a 2 GiB node against a 1 GiB database: memory allows 2
	// workers, the budget 22/2 = 11 threads each.
	s, _ = PumaSizing{VCPU: 4, MemoryMiB: 2048, DBLimit: 22}.Plan()
	if !s.OverDB || !s.OverMemory {
		t.Fatalf("%+v", s)
	}
	for _, a := range s.Alternatives {
		if a.Kind == "fewer-threads" && (a.WebConcurrency != 2 || a.MaxThreads != 11 || a.ConnectionsPerTier > 22 || a.MemoryMiB > 2048) {
			t.Errorf("fewer threads %+v", a)
		}
		if a.Kind == "fewer-workers" && (a.WebConcurrency != 1 || a.MaxThreads != 18) {
			t.Errorf("fewer workers %+v", a)
		}
	}
}
