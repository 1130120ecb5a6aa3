package droplets

import (
	"context"
	"fmt"
	"time"

	"github.com/digitalocean/godo"

	"github.com/fediops/fediops/doapi"
)

// Refresh configures RefreshSnapshot.
type Refresh struct {
	// Tier is the tier to snapshot. Required.
	Tier string
	// DropletID is the droplet to snapshot; 0 means the tier's first
	// active droplet by name.
	DropletID int
	// Keep is how many of the tier's snapshots named by SnapshotName
	// survive the prune, the new one included; 0 means 3. The newest
	// snapshot is never deleted, nor one found by the tier's tag alone.
	Keep int
	// Timeout bounds the wait for the snapshot action; 0 means 60 min.
	Timeout time.Duration
}

// RefreshResult is what RefreshSnapshot did.
type RefreshResult struct {
	Droplet  Droplet    `json:"droplet"`
	Snapshot Snapshot   `json:"snapshot"`
	ActionID int        `json:"action_id,omitempty"`
	Existed  bool       `json:"existed"`
	Pruned   []Snapshot `json:"pruned,omitempty"`
}

// RefreshSnapshot takes a new snapshot of one droplet of the tier, named
// SnapshotName(tier, now), waits for the action (polling Actions.Get every
// PollInterval until completed or errored, at most r.Timeout), then deletes
// the tier's snapshots named "<tier>-YYYYMMDD-HHMM" beyond the newest
// r.Keep (snapshots found by the tier's tag alone are kept). A snapshot of
// that name that already exists is not taken again (a retry in the same
// minute is harmless). DigitalOcean snapshots a running droplet live; power it off
// first if the tier keeps state on disk.
func (c *Client) RefreshSnapshot(ctx context.Context, r Refresh) (*RefreshResult, error) {
	if r.Keep == 0 {
		r.Keep = 3
	}
	if r.Keep < 1 {
		return nil, fmt.Errorf("Refresh.Keep: %d, must be at least 1", r.Keep)
	}
	if r.Timeout == 0 {
		r.Timeout = 60 * time.Minute
	}
	ds, err := c.Droplets(ctx, r.Tier)
	if err != nil {
		return nil, err
	}
	res := &RefreshResult{}
	found := false
	for _, d := range ds {
		if (r.DropletID != 0 && d.ID == r.DropletID) || (r.DropletID == 0 && d.Status == "active") {
			res.Droplet, found = d, true
			break
		}
	}
	if !found {
		if r.DropletID != 0 {
			return nil, fmt.Errorf("refresh %s: droplet %d is not in the tier: %w", r.Tier, r.DropletID, ErrNoDroplets)
		}
		return nil, fmt.Errorf("refresh %s: no active droplet: %w", r.Tier, ErrNoDroplets)
	}
	name := SnapshotName(r.Tier, c.cfg.Now())
	existing, err := c.Snapshots(ctx, r.Tier)
	if err != nil {
		return nil, err
	}
	for _, s := range existing {
		if s.Name == name {
			res.Existed = true
		}
	}
	if !res.Existed {
		c.log.InfoContext(ctx, "snapshot", "tier", r.Tier, "droplet", res.Droplet.Name, "name", name)
		action, _, err := c.do.DropletActions.Snapshot(ctx, res.Droplet.ID, name)
		if err != nil {
			return nil, doapi.Wrap(fmt.Sprintf("snapshot droplet %s (%d) as %s", res.Droplet.Name, res.Droplet.ID, name), err)
		}
		res.ActionID = action.ID
		if err := c.WaitAction(ctx, action, r.Timeout); err != nil {
			return res, fmt.Errorf("snapshot %s: %w", name, err)
		}
	}
	all, err := c.Snapshots(ctx, r.Tier)
	if err != nil {
		return res, err
	}
	newIdx := -1
	for i, s := range all {
		if s.Name == name {
			res.Snapshot, newIdx = s, i
			break
		}
	}
	if newIdx < 0 {
		return res, fmt.Errorf("snapshot %s completed but is not listed: %w", name, ErrNoSnapshot)
	}
	// all is newest first; keep the newest r.Keep and the new one. Only
	// snapshots named by SnapshotName are pruned: one that belongs to the
	// tier by its tag alone (a hand-made image) is never deleted.
	kept := 0
	for i, s := range all {
		if _, named := ParseSnapshotName(r.Tier, s.Name); !named {
			continue
		}
		if kept < r.Keep || i == newIdx {
			kept++
			continue
		}
		if _, err := c.do.Snapshots.Delete(ctx, s.ID); err != nil {
			return res, doapi.Wrap(fmt.Sprintf("prune snapshot %s (%s)", s.Name, s.ID), err)
		}
		c.log.InfoContext(ctx, "pruned snapshot", "tier", r.Tier, "name", s.Name, "id", s.ID)
		res.Pruned = append(res.Pruned, s)
	}
	return res, nil
}

// WaitAction polls Actions.Get every PollInterval until a is completed
// (nil), errored (ErrActionErrored) or timeout passed (ErrActionTimeout).
func (c *Client) WaitAction(ctx context.Context, a *godo.Action, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(c.cfg.PollInterval)
	defer t.Stop()
	for {
		switch a.Status {
		case godo.ActionCompleted:
			return nil
		case "errored":
			return fmt.Errorf("action %d (%s): %w", a.ID, a.Type, ErrActionErrored)
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("action %d (%s) still %s after %v: %w", a.ID, a.Type, a.Status, timeout, ErrActionTimeout)
			}
			return ctx.Err()
		case <-t.C:
		}
		next, _, err := c.do.Actions.Get(ctx, a.ID)
		if err != nil {
			if ctx.Err() != nil {
				continue // report the timeout above
			}
			return doapi.Wrap(fmt.Sprintf("get action %d", a.ID), err)
		}
		a = next
	}
}
