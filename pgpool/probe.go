package pgpool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ErrInconclusive: the probe could not arrange for the two transactions to
// run on different server connections (the pool may have one only).
var ErrInconclusive = errors.New("prepared-statement probe inconclusive")

// ProbePreparedStatements tells whether the pool behind cc carries named
// prepared statements across transactions, as pgBouncer 1.21+ does with
// max_prepared_statements set. DO does not say what its pool does ([?]),
// so ask it: the probe prepares a statement in one transaction, holds that
// server connection with a second client, and executes the statement in a
// transaction that therefore runs on another server connection.
//
// Probe.Supported is false (Detail has the server's answer) when the
// statement is unknown there, as with pgBouncer 1.18, where Mastodon's
// PREPARED_STATEMENTS=true fails; true when it ran. It opens up to
// maxHolders+1 client connections (default 8) and leaves no state behind.
// Use it with a config whose DefaultQueryExecMode is any (the probe
// prepares explicitly).
func ProbePreparedStatements(ctx context.Context, cc *pgx.ConnConfig, maxHolders int) (Probe, error) {
	if maxHolders <= 0 {
		maxHolders = 8
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "fediops_probe_" + hex.EncodeToString(b)

	prep, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return Probe{}, fmt.Errorf("probe: connect: %w", err)
	}
	defer prep.Close(ctx)
	// Transaction 1: prepare on server X and learn X's backend pid.
	var pidX uint32
	tx, err := prep.Begin(ctx)
	if err != nil {
		return Probe{}, fmt.Errorf("probe: %w", err)
	}
	if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pidX); err != nil {
		_ = tx.Rollback(ctx)
		return Probe{}, fmt.Errorf("probe: %w", err)
	}
	if _, err := prep.Prepare(ctx, name, "SELECT 42"); err != nil {
		_ = tx.Rollback(ctx)
		return Probe{}, fmt.Errorf("probe: prepare: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Probe{}, fmt.Errorf("probe: %w", err)
	}

	// Hold X with another client inside a transaction. pgBouncer hands out
	// the most recently used server first, so this usually takes one try.
	var holders []pgx.Tx
	defer func() {
		for _, h := range holders {
			_ = h.Rollback(ctx)
			_ = h.Conn().Close(ctx)
		}
	}()
	held := false
	for range maxHolders {
		c, err := pgx.ConnectConfig(ctx, cc)
		if err != nil {
			return Probe{}, fmt.Errorf("probe: connect: %w", err)
		}
		h, err := c.Begin(ctx)
		if err != nil {
			c.Close(ctx)
			return Probe{}, fmt.Errorf("probe: %w", err)
		}
		holders = append(holders, h)
		var pid uint32
		if err := h.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			return Probe{}, fmt.Errorf("probe: %w", err)
		}
		if pid == pidX {
			held = true
			break
		}
	}
	if !held {
		return Probe{}, fmt.Errorf("probe: %w: server %d not reached with %d clients", ErrInconclusive, pidX, maxHolders)
	}

	// Transaction 2: necessarily on another server connection.
	tx, err = prep.Begin(ctx)
	if err != nil {
		return Probe{}, fmt.Errorf("probe: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var pidY uint32
	if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pidY); err != nil {
		return Probe{}, fmt.Errorf("probe: %w", err)
	}
	if pidY == pidX {
		return Probe{}, fmt.Errorf("probe: %w: the pool is not in transaction mode (same server twice)", ErrInconclusive)
	}
	var v int
	execErr := tx.QueryRow(ctx, name).Scan(&v)
	// Leave nothing behind: the holder is on X, where the statement is.
	_, _ = holders[len(holders)-1].Exec(ctx, "DEALLOCATE "+name)
	if execErr != nil {
		return Probe{Supported: false, Detail: execErr.Error()}, nil
	}
	return Probe{Supported: v == 42, Detail: fmt.Sprintf("prepared on server pid %d, ran on %d", pidX, pidY)}, nil
}

// Probe is the answer of ProbePreparedStatements.
type Probe struct {
	Supported bool
	Detail    string // the server's error, or where it ran
}
