package sidekiqq

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultSeenKey is the Redis hash in which Remember keeps the processes a
// check saw, for the next check to compare with (under the namespace, when
// there is one).
const DefaultSeenKey = "fediops:sidekiq:seen"

// DefaultForget is how long Remember keeps reporting a vanished process
// that nothing replaced.
const DefaultForget = 24 * time.Hour

// SeenProcess is a process as Remember keeps it between checks.
type SeenProcess struct {
	Identity  string    `json:"identity"`
	Hostname  string    `json:"hostname"`
	Tag       string    `json:"tag,omitempty"`
	Queues    []string  `json:"queues"`
	StartedAt time.Time `json:"started_at"`
	// Beat is the last heartbeat a check saw.
	Beat time.Time `json:"beat"`
	// Missing is when a check first found it gone; zero while it lives.
	Missing time.Time `json:"missing,omitzero"`
}

// Remember compares the processes of s with those the previous check left
// in Redis (cfg.SeenKey, a hash beside Sidekiq's keys) and stores the new
// state there. It sets s.Vanished to the processes an earlier check saw
// alive that are gone now with nothing to take their place: a process that
// froze or was killed (its record expires ProcessExpiry after its last
// beat) or stopped and was not started again. A process counts as replaced
// when a process on the same host started after its last beat (a restart:
// systemd's Restart=always after a crash, a deploy), so restarts are not
// reported; a vanished process stays reported until one is, or for
// cfg.Forget. `redis-cli DEL fediops:sidekiq:seen` forgets them all (a
// node taken out of service on purpose).
//
// Why Redis and not a local file: cron runs the check as a user that may
// have no state directory, health -prometheus runs it in a process that
// restarts, and several nodes may run it; the state then lives where the
// processes it describes live, is shared by every checker, moves with a
// failover, and expires by itself (2 x Forget) when no check runs. It
// needs a user allowed to write (Mastodon's own is); a cfg.SeenKey of "-"
// turns it off. Concurrent checks are serialised with WATCH.
func Remember(ctx context.Context, c redis.Cmdable, s *Stats, cfg CheckConfig) error {
	cfg = cfg.withDefaults()
	if cfg.SeenKey == "-" {
		return nil
	}
	key := cfg.SeenKey
	if cfg.Namespace != "" {
		key = cfg.Namespace + ":" + key
	}
	update := func(ctx context.Context, r redis.Cmdable, write func(func(redis.Pipeliner) error) error) error {
		raw, err := r.HGetAll(ctx, key).Result()
		if err != nil {
			return err
		}
		prev := map[string]SeenProcess{}
		for id, js := range raw {
			var p SeenProcess
			if json.Unmarshal([]byte(js), &p) == nil {
				prev[id] = p
			}
		}
		next, vanished := compareSeen(prev, s, cfg.Forget)
		s.Vanished = vanished
		return write(func(p redis.Pipeliner) error {
			p.Del(ctx, key)
			if len(next) == 0 {
				return nil
			}
			fields := make([]any, 0, 2*len(next))
			for _, sp := range next {
				js, err := json.Marshal(sp)
				if err != nil {
					return err
				}
				fields = append(fields, sp.Identity, string(js))
			}
			p.HSet(ctx, key, fields...)
			p.Expire(ctx, key, 2*cfg.Forget)
			return nil
		})
	}
	if w, ok := c.(interface {
		Watch(context.Context, func(*redis.Tx) error, ...string) error
	}); ok {
		var err error
		for range 3 {
			err = w.Watch(ctx, func(tx *redis.Tx) error {
				return update(ctx, tx, func(fill func(redis.Pipeliner) error) error {
					_, err := tx.TxPipelined(ctx, fill)
					return err
				})
			}, key)
			if !errors.Is(err, redis.TxFailedErr) {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("remember processes in %s: %w", key, err)
		}
		return nil
	}
	err := update(ctx, c, func(fill func(redis.Pipeliner) error) error {
		_, err := c.TxPipelined(ctx, fill)
		return err
	})
	if err != nil {
		return fmt.Errorf("remember processes in %s: %w", key, err)
	}
	return nil
}

// compareSeen is Remember's arithmetic: the state to store and the
// processes to report as vanished, oldest beat first.
func compareSeen(prev map[string]SeenProcess, s *Stats, forget time.Duration) (next []SeenProcess, vanished []SeenProcess) {
	alive := map[string]bool{}
	for _, p := range s.Processes {
		alive[p.Identity] = true
		beat := p.Beat
		if old, ok := prev[p.Identity]; ok && beat.IsZero() {
			beat = old.Beat
		}
		next = append(next, SeenProcess{Identity: p.Identity, Hostname: hostOf(p.Identity, p.Hostname), Tag: p.Tag,
			Queues: p.Queues, StartedAt: p.StartedAt, Beat: beat})
	}
	var gone []SeenProcess
	for id, p := range prev {
		if !alive[id] {
			if p.Missing.IsZero() {
				p.Missing = s.At
			}
			gone = append(gone, p)
		}
	}
	// Older beats first: the longest gone claim a replacement first; a
	// replacement with the same queues before any other.
	slices.SortFunc(gone, func(a, b SeenProcess) int {
		return cmp.Or(a.Beat.Compare(b.Beat), strings.Compare(a.Identity, b.Identity))
	})
	claimed := map[string]bool{}
	replacement := func(g SeenProcess) bool {
		var best string
		for _, p := range s.Processes {
			if claimed[p.Identity] || hostOf(p.Identity, p.Hostname) != g.Hostname || p.Tag != g.Tag {
				continue
			}
			_, known := prev[p.Identity]
			startedAfter := !p.StartedAt.IsZero() && !g.Beat.IsZero() && p.StartedAt.After(g.Beat)
			if !startedAfter && (known || !p.StartedAt.IsZero()) {
				continue // running since before g's last beat: not a restart of g
			}
			if slices.Equal(p.Queues, g.Queues) {
				best = p.Identity
				break
			}
			if best == "" {
				best = p.Identity
			}
		}
		if best == "" {
			return false
		}
		claimed[best] = true
		return true
	}
	for _, g := range gone {
		if replacement(g) || s.At.Sub(g.Missing) > forget {
			continue
		}
		next = append(next, g)
		vanished = append(vanished, g)
	}
	return next, vanished
}

// hostOf is the process's host name, from its identity (host:pid:nonce)
// when info has none.
func hostOf(identity, hostname string) string {
	if hostname != "" {
		return hostname
	}
	h, _, _ := strings.Cut(identity, ":")
	return h
}
