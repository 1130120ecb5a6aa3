package backup

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Defaults of Retention's zero values.
const (
	DefaultKeepFor  = 14 * 24 * time.Hour
	DefaultKeepLast = 6 // one day of 4-hourly backups
	// DefaultOrphanAge is how old an unlisted object (data without manifest)
	// must be before Prune removes it: older than any run in progress.
	DefaultOrphanAge = 24 * time.Hour
)

// Retention decides which complete backups to delete: those older than
// KeepFor, except that the newest KeepLast of each source are always kept.
// A backup exactly KeepFor old is kept.
type Retention struct {
	KeepFor   time.Duration // 0 = DefaultKeepFor (14 days)
	KeepLast  int           // 0 = DefaultKeepLast; negative is an error
	OrphanAge time.Duration // 0 = DefaultOrphanAge
}

func (r Retention) withDefaults() (Retention, error) {
	if r.KeepFor < 0 || r.KeepLast < 0 || r.OrphanAge < 0 {
		return r, errors.New("retention: KeepFor, KeepLast and OrphanAge must not be negative")
	}
	if r.KeepFor == 0 {
		r.KeepFor = DefaultKeepFor
	}
	if r.KeepLast == 0 {
		r.KeepLast = DefaultKeepLast
	}
	if r.OrphanAge == 0 {
		r.OrphanAge = DefaultOrphanAge
	}
	return r, nil
}

// Plan splits backups into the ones to keep and the ones to delete at now.
func (r Retention) Plan(now time.Time, backups []Entry) (keep, drop []Entry, err error) {
	r, err = r.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	bySource := map[string][]Entry{}
	for _, e := range backups {
		bySource[e.Source] = append(bySource[e.Source], e)
	}
	cutoff := now.Add(-r.KeepFor)
	sources := make([]string, 0, len(bySource))
	for s := range bySource {
		sources = append(sources, s)
	}
	sort.Strings(sources)
	for _, s := range sources {
		list := bySource[s]
		sort.Slice(list, func(i, j int) bool { return list[i].Time.After(list[j].Time) })
		for i, e := range list {
			if i < r.KeepLast || !e.Time.Before(cutoff) {
				keep = append(keep, e)
			} else {
				drop = append(drop, e)
			}
		}
	}
	return keep, drop, nil
}

// PruneResult reports what Prune removed (or would remove, in a dry run).
type PruneResult struct {
	Kept    []Entry
	Deleted []Entry
	Orphans []ObjectInfo // unlisted objects removed
	DryRun  bool
}

// Prune applies the policy to the backups of source (all sources when
// source is "") under prefix. It deletes each manifest before its data, so
// an interrupted prune never leaves a listed backup without data. With
// dryRun it only reports.
func Prune(ctx context.Context, store Store, prefix, source string, r Retention, now time.Time, dryRun bool) (PruneResult, error) {
	res := PruneResult{DryRun: dryRun}
	cat, err := Scan(ctx, store, prefix)
	if err != nil {
		return res, err
	}
	var mine []Entry
	for _, e := range cat.Backups {
		if source == "" || e.Source == source {
			mine = append(mine, e)
		}
	}
	keep, drop, err := r.Plan(now, mine)
	if err != nil {
		return res, err
	}
	res.Kept = keep
	r, _ = r.withDefaults()
	for _, o := range cat.Orphans {
		if (source == "" || hasSourcePrefix(o.Name, prefix, source)) && now.Sub(o.Modified) > r.OrphanAge {
			res.Orphans = append(res.Orphans, o)
		}
	}
	if dryRun {
		res.Deleted = drop
		return res, nil
	}
	for _, e := range drop {
		if err := store.Delete(ctx, e.ManifestObject); err != nil {
			return res, fmt.Errorf("prune %s: %w", e.ManifestObject, err)
		}
		if err := store.Delete(ctx, e.DataObject); err != nil {
			return res, fmt.Errorf("prune %s: %w", e.DataObject, err)
		}
		res.Deleted = append(res.Deleted, e)
	}
	for _, o := range res.Orphans {
		if err := store.Delete(ctx, o.Name); err != nil {
			return res, fmt.Errorf("prune unlisted %s: %w", o.Name, err)
		}
	}
	return res, nil
}

func hasSourcePrefix(name, prefix, source string) bool {
	p := prefix + source + "/"
	return len(name) > len(p) && name[:len(p)] == p
}
