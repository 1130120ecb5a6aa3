package pgpool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/digitalocean/godo"

	"github.com/fediops/fediops/doapi"
)

// DatabasesAPI is the part of godo's DatabasesService pgpool uses;
// (*godo.Client).Databases satisfies it.
type DatabasesAPI interface {
	Get(ctx context.Context, databaseID string) (*godo.Database, *godo.Response, error)
	GetCA(ctx context.Context, databaseID string) (*godo.DatabaseCA, *godo.Response, error)
	ListPools(ctx context.Context, databaseID string, opts *godo.ListOptions) ([]godo.DatabasePool, *godo.Response, error)
	GetPool(ctx context.Context, databaseID, name string) (*godo.DatabasePool, *godo.Response, error)
	CreatePool(ctx context.Context, databaseID string, req *godo.DatabaseCreatePoolRequest) (*godo.DatabasePool, *godo.Response, error)
	UpdatePool(ctx context.Context, databaseID, name string, req *godo.DatabaseUpdatePoolRequest) (*godo.Response, error)
}

// Manager manages one cluster's CA and pools through the DO API.
type Manager struct {
	API     DatabasesAPI // (*godo.Client).Databases, the client from doapi.New
	Cluster string       // the database cluster's ID
	Limits  Limits       // zero value: DO; LimitsFromEnv adds the FEDIOPS_DB_* overrides
	// Reserve is how many connections to keep free of pools for direct
	// use (migrations, backups); plans never give pools more than
	// limit - Reserve.
	Reserve int
	Logger  *slog.Logger // one line per applied step; default slog.Default()
}

// ErrNotFound: the API answered 404 for the cluster or pool (the same
// value as doapi.ErrNotFound).
var ErrNotFound = doapi.ErrNotFound

func (m *Manager) log() *slog.Logger {
	if m.Logger == nil {
		return slog.Default()
	}
	return m.Logger
}

func (m *Manager) limits() Limits {
	if m.Limits == (Limits{}) {
		return DO
	}
	return m.Limits
}

// CA returns the cluster's CA certificate as PEM.
func (m *Manager) CA(ctx context.Context) ([]byte, error) {
	ca, _, err := m.API.GetCA(ctx, m.Cluster)
	if err != nil {
		return nil, doapi.Wrap("fetch CA for "+m.Cluster, err)
	}
	if ca == nil || len(ca.Certificate) == 0 {
		return nil, fmt.Errorf("fetch CA for %s: %w: empty answer", m.Cluster, ErrBadCA)
	}
	if _, err := parseCA(ca.Certificate); err != nil {
		return nil, fmt.Errorf("fetch CA for %s: %w", m.Cluster, err)
	}
	return ca.Certificate, nil
}

// FetchCA writes the cluster's CA to path (mode 0644, through a temporary
// file and a rename), ready for FEDIOPS_DB_CA_FILE, PGSSLROOTCERT and the
// streaming server's NODE_EXTRA_CA_CERTS. An unchanged file is left alone.
func (m *Manager) FetchCA(ctx context.Context, path string) (changed bool, err error) {
	pem, err := m.CA(ctx)
	if err != nil {
		return false, err
	}
	if old, err := os.ReadFile(path); err == nil && string(old) == string(pem) {
		return false, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return false, fmt.Errorf("write CA %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(pem)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return false, fmt.Errorf("write CA %s: %w", path, err)
	}
	return true, nil
}

// CAChanged reports whether FetchCA would write path: the file is missing
// or differs from the cluster's CA. It writes nothing: the dry run of
// FetchCA.
func (m *Manager) CAChanged(ctx context.Context, path string) (bool, error) {
	pem, err := m.CA(ctx)
	if err != nil {
		return false, err
	}
	old, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	} else if err != nil {
		return false, fmt.Errorf("read CA %s: %w", path, err)
	}
	return !bytes.Equal(old, pem), nil
}

// Host returns the cluster's host name for DB_HOST: the public one, or
// with private the one inside the cluster's VPC (for droplets in that VPC).
// DO serves the pool (25061) and the database (25060) on the same name.
func (m *Manager) Host(ctx context.Context, private bool) (string, error) {
	db, _, err := m.API.Get(ctx, m.Cluster)
	if err != nil {
		return "", doapi.Wrap("get cluster "+m.Cluster, err)
	}
	conn, which := db.Connection, "public"
	if private {
		conn, which = db.PrivateConnection, "private"
	}
	if conn == nil || conn.Host == "" {
		return "", fmt.Errorf("host of cluster %s: the API gave no %s host", m.Cluster, which)
	}
	return conn.Host, nil
}

// ErrNoRoom: the cluster's other pools and Manager.Reserve leave no
// connection for a pool (Room).
var ErrNoRoom = errors.New("no connections left")

// Room returns the largest size pool may have: the cluster's connection
// limit minus the sizes of its other pools and Reserve, which is what
// PlanPools allows. When that is less than 1 it returns ErrNoRoom, with
// the figures.
func (m *Manager) Room(ctx context.Context, pool string) (int, error) {
	b, err := m.Budget(ctx)
	if err != nil {
		return 0, err
	}
	r := b.WithPool(pool, 0).Add(Direct("reserve (Manager.Reserve)", m.Reserve)).Report()
	if r.Headroom < 1 {
		return 0, fmt.Errorf("cluster %s: %w for pool %s: limit %d - other pools %d - reserve %d; shrink a pool or lower the reserve",
			m.Cluster, ErrNoRoom, pool, r.Limit, r.PoolSum, r.Direct)
	}
	return r.Headroom, nil
}

// Pools lists the cluster's connection pools, all pages.
func (m *Manager) Pools(ctx context.Context) ([]godo.DatabasePool, error) {
	all, err := doapi.All(ctx, func(ctx context.Context, o *godo.ListOptions) ([]godo.DatabasePool, *godo.Response, error) {
		return m.API.ListPools(ctx, m.Cluster, o)
	})
	return all, doapi.Wrap("list pools of "+m.Cluster, err)
}

// DirectDatabase returns the database behind pool: the value for
// FEDIOPS_DB_DIRECT_NAME.
func (m *Manager) DirectDatabase(ctx context.Context, pool string) (string, error) {
	p, _, err := m.API.GetPool(ctx, m.Cluster, pool)
	if err != nil {
		return "", doapi.Wrap(fmt.Sprintf("get pool %s of %s", pool, m.Cluster), err)
	}
	return p.Database, nil
}

// Budget returns the cluster's budget: its limit from its size slug and
// its pools' sizes. Add the demand to it.
func (m *Manager) Budget(ctx context.Context) (Budget, error) {
	b, _, err := m.state(ctx)
	return b, err
}

func (m *Manager) state(ctx context.Context) (Budget, []godo.DatabasePool, error) {
	db, _, err := m.API.Get(ctx, m.Cluster)
	if err != nil {
		return Budget{}, nil, doapi.Wrap("get cluster "+m.Cluster, err)
	}
	// A fixed limit (FEDIOPS_DB_CONN_LIMIT) needs no size; otherwise the
	// size slug gives the memory the limit follows.
	l, gib := m.limits(), 0
	if l.Fixed == 0 {
		if gib, err = SizeGiB(db.SizeSlug); err != nil {
			return Budget{}, nil, fmt.Errorf("cluster %s: %w", m.Cluster, err)
		}
	}
	pools, err := m.Pools(ctx)
	if err != nil {
		return Budget{}, nil, err
	}
	b := Budget{Limit: l.Connections(gib), MaxPools: l.MaxPools}
	for _, p := range pools {
		b.Pools = append(b.Pools, PoolSize{p.Name, p.Size})
	}
	return b, pools, nil
}

// PoolSpec is a pool as it should be. Mode defaults to "transaction".
type PoolSpec struct {
	Name     string
	Database string // the database it maps to
	User     string
	Size     int
	Mode     string
}

// StepKind is what a plan step does.
type StepKind string

// The step kinds.
const (
	StepKeep   StepKind = "keep"   // already as wanted
	StepCreate StepKind = "create" // CreatePool
	StepUpdate StepKind = "update" // UpdatePool: size, mode, database or user change
)

// Step is one change of a Plan.
type Step struct {
	Kind StepKind
	Want PoolSpec
	Have *godo.DatabasePool // nil for create
}

func (s Step) String() string {
	w := s.Want
	switch s.Kind {
	case StepCreate:
		return fmt.Sprintf("create pool %s: db=%s user=%s size=%d mode=%s", w.Name, w.Database, w.User, w.Size, w.Mode)
	case StepUpdate:
		h := s.Have
		var ch []string
		if h.Size != w.Size {
			ch = append(ch, fmt.Sprintf("size %d -> %d", h.Size, w.Size))
		}
		if h.Mode != w.Mode {
			ch = append(ch, fmt.Sprintf("mode %s -> %s", h.Mode, w.Mode))
		}
		if h.Database != w.Database {
			ch = append(ch, fmt.Sprintf("db %s -> %s", h.Database, w.Database))
		}
		if w.User != "" && h.User != w.User {
			ch = append(ch, fmt.Sprintf("user %s -> %s", h.User, w.User))
		}
		return fmt.Sprintf("update pool %s: %s", w.Name, strings.Join(ch, ", "))
	}
	return fmt.Sprintf("keep pool %s: size=%d mode=%s", w.Name, w.Size, w.Mode)
}

// Plan is the dry run of EnsurePools: print it, then Apply it.
type Plan struct {
	Cluster string
	Steps   []Step // shrinking updates first, so the sum of sizes never passes the limit midway
	Report  Report // the budget after the plan
}

// Changes counts the steps that call the API.
func (p *Plan) Changes() int {
	n := 0
	for _, s := range p.Steps {
		if s.Kind != StepKeep {
			n++
		}
	}
	return n
}

func (p *Plan) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "cluster %s: %d change(s)\n", p.Cluster, p.Changes())
	for i, s := range p.Steps {
		fmt.Fprintf(&sb, "  %d. %s\n", i+1, s)
	}
	fmt.Fprintf(&sb, "  after: limit %d, pools %d, reserve/direct %d, headroom %d\n", p.Report.Limit, p.Report.PoolSum, p.Report.Direct, p.Report.Headroom)
	return sb.String()
}

// PlanPools compares the wanted pools with the cluster's and returns the
// steps that make them so, without changing anything. Pools not named
// are kept and counted. It fails when the result would pass the
// connection limit (minus Reserve) or the pool count, naming the sizes.
func (m *Manager) PlanPools(ctx context.Context, want ...PoolSpec) (*Plan, error) {
	b, pools, err := m.state(ctx)
	if err != nil {
		return nil, err
	}
	have := map[string]*godo.DatabasePool{}
	for i := range pools {
		have[pools[i].Name] = &pools[i]
	}
	plan := &Plan{Cluster: m.Cluster}
	var shrink, grow, keep []Step
	for _, w := range want {
		if w.Mode == "" {
			w.Mode = "transaction"
		}
		if w.Name == "" || w.Database == "" || w.Size < 1 {
			return nil, fmt.Errorf("plan pools: %w: pool %q needs a name, a database and a size >= 1", ErrInvalid, w.Name)
		}
		h, ok := have[w.Name]
		switch {
		case !ok:
			grow = append(grow, Step{Kind: StepCreate, Want: w})
		case h.Size == w.Size && h.Mode == w.Mode && h.Database == w.Database && (w.User == "" || h.User == w.User):
			keep = append(keep, Step{Kind: StepKeep, Want: w, Have: h})
		case w.Size < h.Size:
			shrink = append(shrink, Step{Kind: StepUpdate, Want: w, Have: h})
		default:
			grow = append(grow, Step{Kind: StepUpdate, Want: w, Have: h})
		}
		b = b.WithPool(w.Name, w.Size)
	}
	plan.Steps = append(append(append(plan.Steps, keep...), shrink...), grow...)
	if m.Reserve > 0 {
		b = b.Add(Direct("reserve (Manager.Reserve)", m.Reserve))
	}
	plan.Report = b.Report()
	if err := plan.Report.Err(); err != nil {
		return plan, fmt.Errorf("plan pools for %s: %w", m.Cluster, err)
	}
	return plan, nil
}

// Apply carries out a plan's steps in order. A create that the API
// refuses because the pool exists (a retried POST whose first attempt
// went through) counts as done when the pool is as wanted.
func (m *Manager) Apply(ctx context.Context, p *Plan) error {
	for _, s := range p.Steps {
		w := s.Want
		switch s.Kind {
		case StepKeep:
			continue
		case StepCreate:
			_, _, err := m.API.CreatePool(ctx, m.Cluster, &godo.DatabaseCreatePoolRequest{
				Name: w.Name, Database: w.Database, User: w.User, Size: w.Size, Mode: w.Mode})
			if err != nil {
				if code := doapi.Status(err); code == http.StatusUnprocessableEntity || code == http.StatusConflict {
					if h, _, gerr := m.API.GetPool(ctx, m.Cluster, w.Name); gerr == nil && h.Size == w.Size && h.Mode == w.Mode && h.Database == w.Database {
						m.log().Info("pool already created", "cluster", m.Cluster, "pool", w.Name)
						continue
					}
				}
				return doapi.Wrap(fmt.Sprintf("create pool %s in %s", w.Name, m.Cluster), err)
			}
		case StepUpdate:
			user := w.User
			if user == "" {
				user = s.Have.User
			}
			_, err := m.API.UpdatePool(ctx, m.Cluster, w.Name, &godo.DatabaseUpdatePoolRequest{
				User: user, Size: w.Size, Database: w.Database, Mode: w.Mode})
			if err != nil {
				return doapi.Wrap(fmt.Sprintf("update pool %s in %s", w.Name, m.Cluster), err)
			}
		}
		m.log().Info(""+s.String(), "cluster", m.Cluster)
	}
	return nil
}

// EnsurePools plans and applies in one call; with dryRun it only plans.
func (m *Manager) EnsurePools(ctx context.Context, dryRun bool, want ...PoolSpec) (*Plan, error) {
	p, err := m.PlanPools(ctx, want...)
	if err != nil || dryRun {
		return p, err
	}
	return p, m.Apply(ctx, p)
}
