package backup

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
)

// ErrVerify means a restore drill restored a copy whose row (or key)
// counts differ from the source's by more than the tolerance.
var ErrVerify = errors.New("restored row counts differ from the source")

// Verifier is a restore drill: backup/pgdump's Drill, backup/mysqldump's
// Drill, backup/rdb's Drill.
type Verifier interface {
	// Run restores the backup described by m somewhere scratch, compares
	// it with its live source and removes the scratch copy.
	Run(ctx context.Context, store Store, m Manifest, u Unsealer) (VerifyReport, error)
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)

// ScratchName is the name of a restore drill's scratch database: name
// when set, else "<database>_verify_<backup id>" in lower case. It must be
// a plain SQL identifier of at most 63 bytes (PostgreSQL's limit; MySQL
// allows 64).
func ScratchName(name, database string, m Manifest) (string, error) {
	if name == "" {
		name = strings.ToLower(database + "_verify_" + m.ID)
	}
	if !identRE.MatchString(name) || len(name) > 63 {
		return name, fmt.Errorf("scratch database name %q is not a plain identifier of at most 63 bytes", name)
	}
	return name, nil
}

// RunDrill is the frame of a Verifier's Run: it refuses a backup that is
// not of kind, runs drill, times it into the report and words its error
// "verify <object>: ...".
func RunDrill(m Manifest, kind string, drill func(rep *VerifyReport) error) (VerifyReport, error) {
	t0 := time.Now()
	var rep VerifyReport
	var err error
	if m.Kind != kind {
		err = fmt.Errorf("a %s backup, not %s", m.Kind, kind)
	} else {
		err = drill(&rep)
	}
	rep.Duration = time.Since(t0)
	if err != nil {
		return rep, fmt.Errorf("verify %s: %w", m.Object, err)
	}
	return rep, nil
}

// TableCount is one compared table (or, for Redis, the key count).
type TableCount struct {
	Table    string
	Source   int64
	Restored int64 // -1 when counting failed
}

// VerifyReport is a drill's outcome.
type VerifyReport struct {
	Scratch  string // the scratch database or file
	Tables   []TableCount
	Restore  RestoreStats
	Duration time.Duration
}

// Compare counts each table's restored rows with count, adds them to
// r.Tables (-1 when counting failed) and returns ErrVerify (wrapped,
// naming every table that failed or differs from its source count by more
// than tolerance, 0.02 being 2%).
func (r *VerifyReport) Compare(tables []TableCount, tolerance float64, count func(table string) (int64, error)) error {
	var bad []string
	for _, t := range tables {
		n, err := count(t.Table)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", t.Table, err))
			n = -1
		}
		t.Restored = n
		r.Tables = append(r.Tables, t)
		if n >= 0 && math.Abs(float64(n-t.Source)) > tolerance*float64(t.Source) {
			bad = append(bad, fmt.Sprintf("%s: source %d rows, restored %d", t.Table, t.Source, n))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrVerify, strings.Join(bad, "; "))
	}
	return nil
}
