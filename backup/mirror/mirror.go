// Package mirror copies Mastodon's media from Spaces to a Backblaze B2
// bucket and keeps only the latest copy of each object there: build a
// Mirror with New(Config{Source: a *spaces.Client, B2: a b2store.Config})
// and call Run from a timer (Units renders it: every 4 hours).
package mirror

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fediops/fediops/backup"
	"github.com/fediops/fediops/backup/b2store"
	"github.com/fediops/fediops/backup/internal/endpoint"
	"github.com/fediops/fediops/spaces"
)

// Errors of Mirror.Run that callers branch on.
var (
	// ErrShrink: the source lost more objects than MaxDeleteFraction
	// allows since the last run; nothing was deleted.
	ErrShrink = errors.New("the source shrank suspiciously; deletions refused")
	// ErrListing: listing the source failed; nothing was deleted.
	ErrListing = errors.New("listing the source failed; deletions skipped")
)

// Source is where media comes from: *spaces.Client is one.
type Source interface {
	// Objects lists every object under prefix; an error ends the listing.
	Objects(ctx context.Context, prefix string) iter.Seq2[spaces.Object, error]
	// Get streams one object; the Object describes what is streamed.
	Get(ctx context.Context, key string) (io.ReadCloser, spaces.Object, error)
}

// Defaults for Config's zero values.
const (
	DefaultWorkers            = 16
	DefaultMaxDeleteFraction  = 0.10
	DefaultCheckpointEvery    = 2000
	DefaultCheckpointInterval = 30 * time.Second
	DefaultPartSize           = 100_000_000 // B2's recommended part size
	DefaultLargeFileThreshold = 200_000_000
	DefaultAttempts           = 5
	DefaultBackoff            = time.Second
	maxErrorSamples           = 10
	stateFolder               = ".fediops-mirror/"
)

// Config says what to mirror where. Zero values mean the documented
// defaults; Validate names the first bad field.
type Config struct {
	Source     Source
	SourceName string // for reports and the state, e.g. "spaces:mastodon-media"
	Prefix     string // source keys to mirror; "" = all

	// B2 is the target bucket and its key (b2store.ConfigFromEnv reads
	// them). The mirror asks for SSE-B2 on uploads unless NoSSE, and gives
	// a nil Transport enough idle connections for Workers.
	B2 b2store.Config
	// TargetPrefix is put before every key in B2, e.g. "media/". The mirror
	// only ever lists or deletes names under it (and its state file), so a
	// bucket can be shared with other backups. "" = the bucket root.
	TargetPrefix string
	// StateName is the state file's name; "" = DefaultState with
	// TargetPrefix inserted after its folder (".fediops-mirror/media/state.json.zst").
	StateName string

	Workers int // transfers in flight; 0 = DefaultWorkers
	// MaxDeleteFraction refuses a run whose deletions exceed this share of
	// the objects mirrored so far (0 = DefaultMaxDeleteFraction; negative =
	// no limit, for an intended mass deletion).
	MaxDeleteFraction  float64
	DryRun             bool          // plan and report only: nothing written
	Verify             bool          // list B2 in full and reconcile (automatic on the first run)
	CheckpointEvery    int           // save the state after this many changes; 0 = 2000
	CheckpointInterval time.Duration // ... or this often; 0 = 30 s
	PartSize           int64         // large-file part size; 0 = 100 MB (min 5 MB)
	LargeFileThreshold int64         // objects above this go up as large files; 0 = 200 MB
	Attempts           int           // tries per object (each with a fresh read of the source); 0 = 5
	Backoff            time.Duration // first wait before an object's retry, doubled each time; 0 = 1 s
	NoSSE              bool          // do not ask for SSE-B2 on uploads (default: ask)

	Logger    *slog.Logger // nil = slog.Default()
	Host      string       // for reports; "" = os.Hostname
	Notifiers []Notifier   // one report per run
	// OnAction, when set, is called for every planned action (also in a
	// dry run), from several goroutines.
	OnAction func(Action)
	// OnDone, when set, is called for every action done (not in a dry
	// run), from several goroutines: a progress display counts them.
	OnDone func(Action)
	// Progress, when set, receives every byte copied as it streams (from
	// several goroutines; a retried transfer's bytes again): a progress
	// display counts them. Its errors are ignored.
	Progress io.Writer
}

// Action is one planned change: Op is "copy" (new), "update" (changed),
// "delete" (gone from the source) or "delete-version" (an old or unknown
// version of a B2 name).
type Action struct {
	Op   string
	Key  string // B2 name
	Size int64
}

// Validate names the first missing or bad field.
func (c *Config) Validate() error {
	switch {
	case c.Source == nil:
		return errors.New("mirror config: Source is nil")
	case c.Workers < 0 || c.Attempts < 0 || c.CheckpointEvery < 0:
		return errors.New("mirror config: Workers, Attempts and CheckpointEvery must not be negative")
	case c.PartSize != 0 && c.PartSize < b2store.MinChunkSize:
		return fmt.Errorf("mirror config: PartSize %d is below B2's minimum part size %d", c.PartSize, b2store.MinChunkSize)
	case c.MaxDeleteFraction > 1:
		return fmt.Errorf("mirror config: MaxDeleteFraction %g is above 1", c.MaxDeleteFraction)
	case strings.HasPrefix(c.TargetPrefix, "/"):
		return fmt.Errorf("mirror config: TargetPrefix %q starts with /", c.TargetPrefix)
	}
	return c.B2.Validate()
}

func (c Config) withDefaults() Config {
	c.Workers = cmp.Or(c.Workers, DefaultWorkers)
	c.CheckpointEvery = cmp.Or(c.CheckpointEvery, DefaultCheckpointEvery)
	c.Attempts = cmp.Or(c.Attempts, DefaultAttempts)
	c.MaxDeleteFraction = cmp.Or(c.MaxDeleteFraction, DefaultMaxDeleteFraction)
	c.CheckpointInterval = cmp.Or(c.CheckpointInterval, DefaultCheckpointInterval)
	c.PartSize = cmp.Or(c.PartSize, DefaultPartSize)
	c.LargeFileThreshold = cmp.Or(c.LargeFileThreshold, DefaultLargeFileThreshold)
	c.Backoff = cmp.Or(c.Backoff, DefaultBackoff)
	c.SourceName = cmp.Or(c.SourceName, "source")
	if c.StateName == "" { // one state per target prefix, outside every prefix
		c.StateName = stateFolder + c.TargetPrefix + "state.json.zst"
	}
	c.B2.ServerSideEncryption = !c.NoSSE
	if c.B2.Transport == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 2*c.Workers + 4
		tr.ResponseHeaderTimeout = 2 * time.Minute
		c.B2.Transport = tr
	}
	c.B2.Logger = cmp.Or(c.B2.Logger, c.Logger)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Host == "" {
		c.Host, _ = os.Hostname()
	}
	return c
}

func (c *Config) backoff(ctx context.Context, attempt int, hint time.Duration) error {
	d := hint
	if d <= 0 {
		d = c.Backoff << min(attempt-1, 5)
		d = min(d, 30*time.Second)
		d += time.Duration(rand.Int64N(int64(d)/2 + 1))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Mirror copies a Spaces (S3) bucket to a B2 bucket and keeps only the
// latest copy of each object there. Build it with New, call Run from a
// timer (Units: every 4 hours).
//
// State: a zstd-compressed JSON file in B2 (DefaultState) records,
// for each source key, the size, ETag and last-modified time of the copy
// and its B2 file id. A run lists only the source and copies what is new
// or changed (size, then ETag, else last-modified); unchanged objects are
// neither read nor listed in B2. The first run, -verify, a state written
// for another source, or a state not marked clean (a checkpoint of an
// interrupted or failed run) makes the run list every B2 version under
// TargetPrefix first: newest versions are adopted (their file info holds
// src_etag and src_last_modified_millis), older versions, hide markers and
// unfinished large files are removed. The state is saved every
// CheckpointEvery changes or CheckpointInterval and at the end, as a new
// B2 version (an upload is all or nothing) after which the old one is
// deleted; a run that changed nothing writes nothing.
//
// Only the latest copy: B2 keeps every version of a name, so the mirror
// deletes versions itself, by file id — the replaced version right after
// its successor is uploaded, all versions of a name gone from the source.
// No lifecycle rule is needed (one with daysFromHidingToDeleting: 1 does
// no harm) and nothing is hidden; an object is never without a copy.
//
// Safety: deletions happen only after a complete source listing, and not
// at all when they exceed MaxDeleteFraction of the mirrored objects
// (ErrShrink) or the listing failed (ErrListing). DryRun
// reports every action through OnAction and writes nothing.
//
// Transfers: Workers objects in flight, each streamed from the source's
// GET body straight into b2_upload_file with its SHA1 sent after the body,
// so memory does not grow with object size; objects above
// LargeFileThreshold go up in PartSize parts, streamed the same way. A
// failed transfer is retried with a fresh GET (Attempts, Backoff); one that
// still fails is counted in the report and retried by the next run.
// Uploads ask for SSE-B2 (AES256, Backblaze-managed keys); the real
// endpoints are https, and plain http is refused except on loopback.
type Mirror struct{ cfg Config }

// New checks cfg and fills in defaults.
func New(cfg Config) (*Mirror, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if c, ok := cfg.Source.(interface{ Config() spaces.Config }); ok {
		if err := endpoint.RequireTLS("S3_ENDPOINT", c.Config().Endpoint); err != nil {
			return nil, err
		}
	}
	return &Mirror{cfg: cfg.withDefaults()}, nil
}

// mirrorRun is the state of one Run.
type mirrorRun struct {
	cfg *Config
	b2  *b2store.Client
	log *slog.Logger
	src Source

	mu       sync.Mutex // guards state, rep, sinceSave
	state    *state
	rep      *Report
	changes  int
	lastSave time.Time

	saveMu   sync.Mutex // one state upload at a time; guards stateIDs, saves
	stateIDs []string   // B2 versions of the state file
	saves    int
	wasClean bool // the stored state was clean when the run began
	dirty    sync.Once
	dirtyErr error
}

type job struct {
	op       string // copy, update, delete, delete-version
	key      string // source key ("" for delete-version)
	name     string // B2 name
	obj      spaces.Object
	oldID    string // version to delete after a copy, or the one to delete
	size     int64
	fromList bool
}

// Run mirrors once and notifies. It returns the report and an error that
// is ErrShrink or ErrListing (wrapped) when deletions were
// refused, ctx's error when interrupted (the state is saved: a rerun goes
// on where this one stopped), or a summary of per-object failures.
func (mr *Mirror) Run(ctx context.Context) (Report, error) {
	cfg := mr.cfg
	rep := Report{Host: cfg.Host, Source: cfg.SourceName, Target: "b2://" + cfg.B2.Bucket + "/" + cfg.TargetPrefix,
		Started: time.Now(), DryRun: cfg.DryRun}
	err := mr.run(ctx, &cfg, &rep)
	rep.Finished = time.Now()
	rep.Err = err
	nerr := backup.NotifyAll(ctx, cfg.Notifiers, func(ctx context.Context, n Notifier) error { return n.NotifyMirror(ctx, rep) })
	return rep, errors.Join(err, nerr)
}

func (mr *Mirror) run(ctx context.Context, cfg *Config, rep *Report) error {
	b2, err := b2store.Dial(ctx, cfg.B2)
	if err != nil {
		return err
	}
	m := &mirrorRun{cfg: cfg, b2: b2, log: cfg.Logger, src: cfg.Source, rep: rep, lastSave: time.Now()}
	st, stID, err := m.loadState(ctx)
	if err != nil {
		return err
	}
	identity := cfg.SourceName + "/" + cfg.Prefix
	verify := cfg.Verify
	switch {
	case st == nil:
		verify = true
		st = &state{Version: 1, Source: identity, Target: rep.Target, Objects: map[string]*entry{}}
	case st.Source != identity || st.Target != rep.Target:
		m.log.WarnContext(ctx, "the mirror's state was written for another source or target; reconciling with a full B2 listing",
			"state_source", st.Source, "source", identity)
		verify = true
		st = &state{Version: 1, Source: identity, Target: rep.Target, Objects: map[string]*entry{}}
	case !st.Clean:
		m.log.InfoContext(ctx, "the last mirror run did not finish cleanly; listing B2 in full")
		verify = true
	}
	if stID != "" {
		m.stateIDs = []string{stID}
	}
	m.state = st
	m.wasClean = st.Clean && stID != ""
	rep.Verified = verify

	jobs := make(chan job, cfg.Workers*4)
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				m.do(ctx, j)
			}
		}()
	}
	var extra []job // versions found by verify that must go (after the guard)
	if verify && !cfg.DryRun {
		n, err := b2.CancelUnfinished(ctx, cfg.TargetPrefix)
		if err != nil {
			m.log.WarnContext(ctx, "cancel unfinished large files", "err", err)
		}
		rep.Cancelled = n
	}
	if verify {
		if extra, err = m.reconcile(ctx); err != nil {
			close(jobs)
			wg.Wait()
			return err
		}
	}
	known := len(m.state.Objects)

	// Stream the source listing into the workers.
	var listErr error
	for o, err := range m.src.Objects(ctx, cfg.Prefix) {
		if err != nil {
			listErr = err
			break
		}
		name := cfg.TargetPrefix + o.Key
		if strings.HasPrefix(name, stateFolder) || name == cfg.StateName {
			m.log.WarnContext(ctx, "a source key collides with the mirror's state folder; skipped", "key", o.Key)
			continue
		}
		m.mu.Lock()
		rep.Listed++
		rep.ListedBytes += o.Size
		e := m.state.Objects[o.Key]
		var j job
		switch {
		case e == nil:
			j = job{op: "copy", key: o.Key, name: name, obj: o, size: o.Size, fromList: true}
		case e.changed(o.Size, o.ETag, o.LastModified):
			e.seen, e.pending = true, true
			j = job{op: "update", key: o.Key, name: name, obj: o, oldID: e.ID, size: o.Size, fromList: true}
		default:
			e.seen = true
			rep.Unchanged++
		}
		m.mu.Unlock()
		if j.op != "" {
			select {
			case jobs <- j:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
	}

	// Deletions: only after a complete listing, and only within the limit.
	var guardErr error
	if ctx.Err() == nil {
		m.mu.Lock()
		var dels []job
		for k, e := range m.state.Objects {
			if !e.seen && !e.pending {
				dels = append(dels, job{op: "delete", key: k, name: cfg.TargetPrefix + k, oldID: e.ID, size: e.Size})
			}
		}
		m.mu.Unlock()
		sort.Slice(dels, func(i, j int) bool { return dels[i].key < dels[j].key })
		switch {
		case listErr != nil:
			guardErr = fmt.Errorf("%w: %v", ErrListing, listErr)
		case cfg.MaxDeleteFraction >= 0 && len(dels) > 0 && float64(len(dels)) > cfg.MaxDeleteFraction*float64(known):
			guardErr = fmt.Errorf("%w: %d of %d mirrored objects are gone from %s (limit %.0f%%; rerun with a higher MaxDeleteFraction if intended)",
				ErrShrink, len(dels), known, cfg.SourceName, cfg.MaxDeleteFraction*100)
		default:
			for _, j := range append(dels, extra...) {
				select {
				case jobs <- j:
				case <-ctx.Done():
				}
			}
		}
		if guardErr != nil {
			m.mu.Lock()
			rep.Refused = len(dels)
			m.mu.Unlock()
			m.log.ErrorContext(ctx, "deletions refused", "err", guardErr)
		}
	}
	close(jobs)
	wg.Wait()

	if cfg.DryRun {
		return errors.Join(guardErr, ctx.Err(), rep.objectErr())
	}
	clean := ctx.Err() == nil && guardErr == nil && rep.Errors == 0
	sctx, cancel := backup.CleanupContext(ctx, 2*time.Minute)
	defer cancel()
	var saveErr error
	changed := rep.Copied+rep.Deleted+rep.StaleVersions+rep.Errors > 0
	if changed || verify || !m.wasClean || !clean {
		saveErr = m.saveState(sctx, clean)
	}
	rep.StateSaves = m.saves
	if ctx.Err() != nil {
		rep.Interrupted = true
		return errors.Join(fmt.Errorf("interrupted: %w", ctx.Err()), saveErr)
	}
	return errors.Join(guardErr, saveErr, rep.objectErr())
}

// reconcile lists every version under TargetPrefix, adopts the newest
// version of each name into the state (it came from an earlier or
// interrupted run: its file info records the source's size, ETag and
// time), and returns the versions to delete: older ones, hide markers,
// and copies the state records differently.
func (m *mirrorRun) reconcile(ctx context.Context) ([]job, error) {
	cfg := m.cfg
	var extra []job
	var last string
	for f, err := range m.b2.Versions(ctx, cfg.TargetPrefix) {
		if err != nil {
			return extra, err
		}
		if f.Name == cfg.StateName || strings.HasPrefix(f.Name, stateFolder) {
			if f.Name == cfg.StateName && f.Action == "upload" && !slices.Contains(m.stateIDs, f.ID) {
				m.stateIDs = append(m.stateIDs, f.ID) // stray state versions go at the next save
			}
			continue
		}
		m.adopt(ctx, f, f.Name != last, &extra)
		last = f.Name
	}
	return extra, nil
}

// adopt takes one B2 version found by reconcile: the newest version of a
// name into the state, any other onto extra (to delete).
func (m *mirrorRun) adopt(ctx context.Context, f b2store.File, newest bool, extra *[]job) {
	key := strings.TrimPrefix(f.Name, m.cfg.TargetPrefix)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rep.B2Versions++
	if newest && f.Action == "upload" {
		e := &entry{Size: f.Size, ID: f.ID, ETag: f.Info["src_etag"]}
		if ms, err := strconv.ParseInt(f.Info["src_last_modified_millis"], 10, 64); err == nil {
			e.Modified = ms
		}
		if old, ok := m.state.Objects[key]; ok && old.ID != f.ID {
			m.log.InfoContext(ctx, "B2 holds a newer copy than the mirror's state records", "name", f.Name)
		}
		m.state.Objects[key] = e
		return
	}
	if newest { // a hide marker on top: the name is deleted in B2
		delete(m.state.Objects, key)
	}
	*extra = append(*extra, job{op: "delete-version", name: f.Name, oldID: f.ID, size: f.Size})
}

func (m *mirrorRun) action(j job) {
	if m.cfg.OnAction != nil {
		m.cfg.OnAction(Action{Op: j.op, Key: j.name, Size: j.size})
	}
}

// do runs one job in a worker.
func (m *mirrorRun) do(ctx context.Context, j job) {
	if ctx.Err() != nil {
		return
	}
	m.action(j)
	if m.cfg.DryRun {
		m.mu.Lock()
		switch j.op {
		case "copy", "update":
			m.rep.Copied++
			m.rep.CopiedBytes += j.size
		case "delete":
			m.rep.Deleted++
			m.rep.DeletedBytes += j.size
		case "delete-version":
			m.rep.StaleVersions++
		}
		m.mu.Unlock()
		return
	}
	m.dirty.Do(func() {
		if !m.wasClean {
			return // the stored state is already marked as not clean
		}
		m.dirtyErr = m.saveState(ctx, false)
	})
	if m.dirtyErr != nil {
		m.fail(j, fmt.Errorf("mark the state as in progress: %w", m.dirtyErr))
		return
	}
	switch j.op {
	case "copy", "update":
		m.copy(ctx, j)
	case "delete":
		if err := m.b2.DeleteVersion(ctx, j.name, j.oldID); err != nil {
			m.fail(j, err)
			return
		}
		m.mu.Lock()
		delete(m.state.Objects, j.key)
		m.rep.Deleted++
		m.rep.DeletedBytes += j.size
		m.changes++
		m.mu.Unlock()
		m.done(j)
		m.checkpoint(ctx)
	case "delete-version":
		if err := m.b2.DeleteVersion(ctx, j.name, j.oldID); err != nil {
			m.fail(j, err)
			return
		}
		m.mu.Lock()
		m.rep.StaleVersions++
		m.mu.Unlock()
	}
}

func (m *mirrorRun) done(j job) {
	if m.cfg.OnDone != nil {
		m.cfg.OnDone(Action{Op: j.op, Key: j.name, Size: j.size})
	}
}

// progressWriter hands bytes to Config.Progress and never fails the
// transfer: progress is cosmetic.
type progressWriter struct{ w io.Writer }

func (p progressWriter) Write(b []byte) (int, error) {
	_, _ = p.w.Write(b)
	return len(b), nil
}

func (m *mirrorRun) fail(j job, err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return // reported once as an interruption
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rep.Errors++
	if len(m.rep.ErrorSamples) < maxErrorSamples {
		m.rep.ErrorSamples = append(m.rep.ErrorSamples, fmt.Sprintf("%s %s: %v", j.op, j.name, err))
	}
	m.log.Error("object failed", "op", j.op, "name", j.name, "err", err)
}

// copy streams one object from the source into B2, retrying with a fresh
// source stream, then deletes the version it replaced.
func (m *mirrorRun) copy(ctx context.Context, j job) {
	var id string
	var obj spaces.Object
	var err error
	for attempt := 1; ; attempt++ {
		var rc io.ReadCloser
		rc, obj, err = m.src.Get(ctx, j.key)
		if errors.Is(err, spaces.ErrNotFound) {
			m.log.InfoContext(ctx, "an object vanished from the source while mirroring", "key", j.key)
			m.mu.Lock()
			if e := m.state.Objects[j.key]; e != nil {
				e.pending = false
				e.seen = false // it will go with the next run's deletions
			}
			m.mu.Unlock()
			return
		}
		if err == nil {
			info := map[string]string{"src_etag": obj.ETag}
			if !obj.LastModified.IsZero() {
				info["src_last_modified_millis"] = strconv.FormatInt(obj.LastModified.UnixMilli(), 10)
			}
			var f b2store.File
			var body io.Reader = rc
			if m.cfg.Progress != nil {
				body = io.TeeReader(rc, progressWriter{m.cfg.Progress})
			}
			f, err = m.b2.PutSized(ctx, j.name, body, obj.Size, b2store.SizedOptions{Info: info,
				LargeAbove: m.cfg.LargeFileThreshold, PartSize: m.cfg.PartSize})
			rc.Close()
			if err == nil {
				id = f.ID
				break
			}
			err = fmt.Errorf("upload: %w", err)
		}
		if ctx.Err() != nil {
			m.fail(j, ctx.Err())
			return
		}
		if attempt >= m.cfg.Attempts || !b2store.Retryable(err) {
			m.fail(j, fmt.Errorf("after %d attempts: %w", attempt, err))
			return
		}
		m.mu.Lock()
		m.rep.Retries++
		m.mu.Unlock()
		if m.cfg.backoff(ctx, attempt, b2store.RetryAfter(err)) != nil {
			return
		}
	}
	m.mu.Lock()
	m.state.Objects[j.key] = &entry{Size: obj.Size, ETag: obj.ETag, Modified: obj.LastModified.UnixMilli(), ID: id, seen: true}
	m.rep.Copied++
	m.rep.CopiedBytes += obj.Size
	m.changes++
	m.mu.Unlock()
	m.done(j)
	if j.oldID != "" && j.oldID != id {
		if err := m.b2.DeleteVersion(ctx, j.name, j.oldID); err != nil {
			m.fail(job{op: "delete-version", name: j.name}, err)
		} else {
			m.mu.Lock()
			m.rep.StaleVersions++
			m.mu.Unlock()
		}
	}
	m.checkpoint(ctx)
}

// checkpoint saves the state every CheckpointEvery changes or
// CheckpointInterval, so that a killed run costs little.
func (m *mirrorRun) checkpoint(ctx context.Context) {
	m.mu.Lock()
	due := m.changes >= m.cfg.CheckpointEvery || time.Since(m.lastSave) >= m.cfg.CheckpointInterval
	if due {
		m.changes = 0
		m.lastSave = time.Now()
	}
	m.mu.Unlock()
	if !due || ctx.Err() != nil {
		return
	}
	if err := m.saveState(ctx, false); err != nil {
		m.log.WarnContext(ctx, "save the mirror's state (checkpoint)", "err", err)
	}
}
