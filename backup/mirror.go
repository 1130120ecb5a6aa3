package backup

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
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	b2base "github.com/Backblaze/blazer/base"

	"github.com/fediops/fediops/spaces"
)

// Sentinel errors of Mirror.Run.
var (
	// ErrMirrorShrink: the source lost more objects than MaxDeleteFraction
	// allows since the last run; nothing was deleted.
	ErrMirrorShrink = errors.New("backup: mirror: source shrank suspiciously; deletions refused")
	// ErrMirrorListing: listing the source failed; nothing was deleted.
	ErrMirrorListing = errors.New("backup: mirror: source listing failed; deletions skipped")
)

// MirrorSource is where media comes from: *spaces.Client is one.
type MirrorSource interface {
	// Objects lists every object under prefix; an error ends the listing.
	Objects(ctx context.Context, prefix string) iter.Seq2[spaces.Object, error]
	// Get streams one object; the Object describes what is streamed.
	Get(ctx context.Context, key string) (io.ReadCloser, spaces.Object, error)
}

// Defaults for MirrorConfig's zero values.
const (
	DefaultMirrorWorkers         = 16
	DefaultMaxDeleteFraction     = 0.10
	DefaultCheckpointEvery       = 2000
	DefaultCheckpointInterval    = 30 * time.Second
	DefaultMirrorPartSize        = 100_000_000 // B2's recommended part size
	DefaultLargeFileThreshold    = 200_000_000
	DefaultMirrorAttempts        = 5
	DefaultMirrorBackoff         = time.Second
	minB2PartSize                = 5_000_000
	mirrorMaxErrorSamples        = 10
	mirrorStatePrefixReservation = ".fediops-mirror/"
)

// MirrorConfig says what to mirror where. Zero values mean the documented
// defaults; Validate names the first bad field.
type MirrorConfig struct {
	Source     MirrorSource
	SourceName string // for reports and the state, e.g. "spaces:mastodon-media"
	Prefix     string // source keys to mirror; "" = all

	B2KeyID   string // B2_APPLICATION_KEY_ID
	B2Key     string // B2_APPLICATION_KEY (never logged)
	B2Bucket  string // target bucket
	B2APIBase string // "" = Backblaze; must be https unless loopback
	// TargetPrefix is put before every key in B2, e.g. "media/". The mirror
	// only ever lists or deletes names under it (and its state file), so a
	// bucket can be shared with other backups. "" = the bucket root.
	TargetPrefix string
	// StateName is the state file's name; "" = DefaultMirrorState with
	// TargetPrefix inserted after its folder (".fediops-mirror/media/state.json.zst").
	StateName string

	Workers int // transfers in flight; 0 = DefaultMirrorWorkers
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
	Attempts           int           // tries per object and per B2 call; 0 = 5
	Backoff            time.Duration // first wait before a retry, doubled each time; 0 = 1 s
	NoSSE              bool          // do not ask for SSE-B2 on uploads (default: ask)

	Transport http.RoundTripper // B2 HTTP transport; nil = a pooled one
	Logger    *slog.Logger      // nil = slog.Default()
	Host      string            // for reports; "" = os.Hostname
	Notifiers []MirrorNotifier  // one report per run
	// OnAction, when set, is called for every planned action (also in a
	// dry run), from several goroutines.
	OnAction func(MirrorAction)
}

// MirrorAction is one planned change: Op is "copy" (new), "update"
// (changed), "delete" (gone from the source) or "delete-version" (an old
// or unknown version of a B2 name).
type MirrorAction struct {
	Op   string
	Key  string // B2 name
	Size int64
}

// Validate names the first missing or bad field.
func (c *MirrorConfig) Validate() error {
	switch {
	case c.Source == nil:
		return errors.New("backup: mirror: MirrorConfig.Source is nil")
	case c.B2KeyID == "":
		return errors.New("backup: mirror: B2_APPLICATION_KEY_ID (MirrorConfig.B2KeyID) is empty")
	case c.B2Key == "":
		return errors.New("backup: mirror: B2_APPLICATION_KEY (MirrorConfig.B2Key) is empty")
	case c.B2Bucket == "":
		return errors.New("backup: mirror: MirrorConfig.B2Bucket is empty")
	case c.Workers < 0 || c.Attempts < 0 || c.CheckpointEvery < 0:
		return errors.New("backup: mirror: Workers, Attempts and CheckpointEvery must not be negative")
	case c.PartSize != 0 && c.PartSize < minB2PartSize:
		return fmt.Errorf("backup: mirror: PartSize %d is below B2's minimum part size %d", c.PartSize, minB2PartSize)
	case c.MaxDeleteFraction > 1:
		return fmt.Errorf("backup: mirror: MaxDeleteFraction %g is above 1", c.MaxDeleteFraction)
	case strings.HasPrefix(c.TargetPrefix, "/"):
		return fmt.Errorf("backup: mirror: TargetPrefix %q starts with /", c.TargetPrefix)
	}
	return requireTLS("B2 API base", c.B2APIBase)
}

func (c MirrorConfig) withDefaults() MirrorConfig {
	c.Workers = cmp.Or(c.Workers, DefaultMirrorWorkers)
	c.CheckpointEvery = cmp.Or(c.CheckpointEvery, DefaultCheckpointEvery)
	c.Attempts = cmp.Or(c.Attempts, DefaultMirrorAttempts)
	c.MaxDeleteFraction = cmp.Or(c.MaxDeleteFraction, DefaultMaxDeleteFraction)
	c.CheckpointInterval = cmp.Or(c.CheckpointInterval, DefaultCheckpointInterval)
	c.PartSize = cmp.Or(c.PartSize, DefaultMirrorPartSize)
	c.LargeFileThreshold = cmp.Or(c.LargeFileThreshold, DefaultLargeFileThreshold)
	c.Backoff = cmp.Or(c.Backoff, DefaultMirrorBackoff)
	c.SourceName = cmp.Or(c.SourceName, "source")
	if c.StateName == "" { // one state per target prefix, outside every prefix
		c.StateName = mirrorStatePrefixReservation + c.TargetPrefix + "state.json.zst"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Host == "" {
		c.Host, _ = os.Hostname()
	}
	return c
}

func (c *MirrorConfig) backoff(ctx context.Context, attempt int, hint time.Duration) error {
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
// latest copy of each object there. Build it with NewMirror, call Run from
// a timer (MirrorUnits: every 4 hours).
//
// State: a zstd-compressed JSON file in B2 (DefaultMirrorState) records,
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
// (ErrMirrorShrink) or the listing failed (ErrMirrorListing). DryRun
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
type Mirror struct{ cfg MirrorConfig }

// NewMirror checks cfg and fills in defaults.
func NewMirror(cfg MirrorConfig) (*Mirror, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if c, ok := cfg.Source.(interface{ Config() spaces.Config }); ok {
		if err := requireTLS("S3_ENDPOINT", c.Config().Endpoint); err != nil {
			return nil, err
		}
	}
	return &Mirror{cfg: cfg.withDefaults()}, nil
}

// mirrorRun is the state of one Run.
type mirrorRun struct {
	cfg *MirrorConfig
	t   *b2Target
	log *slog.Logger
	src MirrorSource

	mu       sync.Mutex // guards state, rep, sinceSave
	state    *mirrorState
	rep      *MirrorReport
	changes  int
	lastSave time.Time

	saveMu   sync.Mutex // one state upload at a time; guards stateIDs, saves
	stateIDs []string   // B2 versions of the state file
	saves    int
	wasClean bool // the stored state was clean when the run began
	dirty    sync.Once
	dirtyErr error
}

type mirrorJob struct {
	op       string // copy, update, delete, delete-version
	key      string // source key ("" for delete-version)
	name     string // B2 name
	obj      spaces.Object
	oldID    string // version to delete after a copy, or the one to delete
	size     int64
	fromList bool
}

// Run mirrors once and notifies. It returns the report and an error that
// is ErrMirrorShrink or ErrMirrorListing (wrapped) when deletions were
// refused, ctx's error when interrupted (the state is saved: a rerun goes
// on where this one stopped), or a summary of per-object failures.
func (mr *Mirror) Run(ctx context.Context) (MirrorReport, error) {
	cfg := mr.cfg
	rep := MirrorReport{Host: cfg.Host, Source: cfg.SourceName, Target: "b2://" + cfg.B2Bucket + "/" + cfg.TargetPrefix,
		Started: time.Now(), DryRun: cfg.DryRun}
	err := mr.run(ctx, &cfg, &rep)
	rep.Finished = time.Now()
	rep.Err = err
	for _, n := range cfg.Notifiers {
		nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		if nerr := n.NotifyMirror(nctx, rep); nerr != nil {
			err = errors.Join(err, fmt.Errorf("backup: mirror: notify: %w", nerr))
		}
		cancel()
	}
	return rep, err
}

func (mr *Mirror) run(ctx context.Context, cfg *MirrorConfig, rep *MirrorReport) error {
	t, err := openB2Target(ctx, cfg)
	if err != nil {
		return err
	}
	m := &mirrorRun{cfg: cfg, t: t, log: cfg.Logger, src: cfg.Source, rep: rep, lastSave: time.Now()}
	st, stID, err := m.loadState(ctx)
	if err != nil {
		return err
	}
	identity := cfg.SourceName + "/" + cfg.Prefix
	verify := cfg.Verify
	switch {
	case st == nil:
		verify = true
		st = &mirrorState{Version: 1, Source: identity, Target: rep.Target, Objects: map[string]*mirrorEntry{}}
	case st.Source != identity || st.Target != rep.Target:
		m.log.WarnContext(ctx, "mirror: state was written for another source or target; reconciling with a full B2 listing",
			"state_source", st.Source, "source", identity)
		verify = true
		st = &mirrorState{Version: 1, Source: identity, Target: rep.Target, Objects: map[string]*mirrorEntry{}}
	case !st.Clean:
		m.log.InfoContext(ctx, "mirror: the last run did not finish cleanly; listing B2 in full")
		verify = true
	}
	if stID != "" {
		m.stateIDs = []string{stID}
	}
	m.state = st
	m.wasClean = st.Clean && stID != ""
	rep.Verified = verify

	jobs := make(chan mirrorJob, cfg.Workers*4)
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
	var extra []mirrorJob // versions found by verify that must go (after the guard)
	if verify && !cfg.DryRun {
		n, err := t.cancelUnfinished(ctx, cfg.TargetPrefix)
		if err != nil {
			m.log.WarnContext(ctx, "mirror: cancel unfinished large files", "err", err)
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
		if strings.HasPrefix(name, mirrorStatePrefixReservation) || name == cfg.StateName {
			m.log.WarnContext(ctx, "mirror: source key collides with the mirror's state folder; skipped", "key", o.Key)
			continue
		}
		m.mu.Lock()
		rep.Listed++
		rep.ListedBytes += o.Size
		e := m.state.Objects[o.Key]
		var j mirrorJob
		switch {
		case e == nil:
			j = mirrorJob{op: "copy", key: o.Key, name: name, obj: o, size: o.Size, fromList: true}
		case e.changed(o.Size, o.ETag, o.LastModified):
			e.seen, e.pending = true, true
			j = mirrorJob{op: "update", key: o.Key, name: name, obj: o, oldID: e.ID, size: o.Size, fromList: true}
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
		var dels []mirrorJob
		for k, e := range m.state.Objects {
			if !e.seen && !e.pending {
				dels = append(dels, mirrorJob{op: "delete", key: k, name: cfg.TargetPrefix + k, oldID: e.ID, size: e.Size})
			}
		}
		m.mu.Unlock()
		sort.Slice(dels, func(i, j int) bool { return dels[i].key < dels[j].key })
		switch {
		case listErr != nil:
			guardErr = fmt.Errorf("%w: %v", ErrMirrorListing, listErr)
		case cfg.MaxDeleteFraction >= 0 && len(dels) > 0 && float64(len(dels)) > cfg.MaxDeleteFraction*float64(known):
			guardErr = fmt.Errorf("%w: %d of %d mirrored objects are gone from %s (limit %.0f%%; rerun with a higher MaxDeleteFraction if intended)",
				ErrMirrorShrink, len(dels), known, cfg.SourceName, cfg.MaxDeleteFraction*100)
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
			m.log.ErrorContext(ctx, "mirror: deletions refused", "err", guardErr)
		}
	}
	close(jobs)
	wg.Wait()

	if cfg.DryRun {
		return errors.Join(guardErr, ctx.Err(), rep.objectErr())
	}
	clean := ctx.Err() == nil && guardErr == nil && rep.Errors == 0
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	var saveErr error
	changed := rep.Copied+rep.Deleted+rep.StaleVersions+rep.Errors > 0
	if changed || verify || !m.wasClean || !clean {
		saveErr = m.saveState(sctx, clean)
	}
	rep.StateSaves = m.saves
	if ctx.Err() != nil {
		rep.Interrupted = true
		return errors.Join(fmt.Errorf("backup: mirror: interrupted: %w", ctx.Err()), saveErr)
	}
	return errors.Join(guardErr, saveErr, rep.objectErr())
}

// reconcile lists every version under TargetPrefix, adopts the newest
// version of each name into the state (it came from an earlier or
// interrupted run: its file info records the source's size, ETag and
// time), and returns the versions to delete: older ones, hide markers,
// and copies the state records differently.
func (m *mirrorRun) reconcile(ctx context.Context) ([]mirrorJob, error) {
	cfg := m.cfg
	var extra []mirrorJob
	var last string
	err := m.t.versions(ctx, cfg.TargetPrefix, func(f b2File) error {
		if f.Name == cfg.StateName || strings.HasPrefix(f.Name, mirrorStatePrefixReservation) {
			if f.Name == cfg.StateName && f.Action == "upload" && !contains(m.stateIDs, f.ID) {
				m.stateIDs = append(m.stateIDs, f.ID) // stray state versions go at the next save
			}
			return nil
		}
		key := strings.TrimPrefix(f.Name, cfg.TargetPrefix)
		newest := f.Name != last
		last = f.Name
		m.mu.Lock()
		defer m.mu.Unlock()
		m.rep.B2Versions++
		if newest && f.Action == "upload" {
			e := &mirrorEntry{Size: f.Size, ID: f.ID, ETag: f.Info["src_etag"]}
			if ms, err := strconv.ParseInt(f.Info["src_last_modified_millis"], 10, 64); err == nil {
				e.Modified = ms
			}
			if old, ok := m.state.Objects[key]; ok && old.ID != f.ID {
				m.log.InfoContext(ctx, "mirror: B2 holds a newer copy than the state records", "name", f.Name)
			}
			m.state.Objects[key] = e
			return nil
		}
		if newest { // a hide marker on top: the name is deleted in B2
			delete(m.state.Objects, key)
		}
		extra = append(extra, mirrorJob{op: "delete-version", name: f.Name, oldID: f.ID, size: f.Size})
		return nil
	})
	return extra, err
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func (m *mirrorRun) action(j mirrorJob) {
	if m.cfg.OnAction != nil {
		m.cfg.OnAction(MirrorAction{Op: j.op, Key: j.name, Size: j.size})
	}
}

// do runs one job in a worker.
func (m *mirrorRun) do(ctx context.Context, j mirrorJob) {
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
		if err := m.t.deleteVersion(ctx, j.name, j.oldID); err != nil {
			m.fail(j, err)
			return
		}
		m.mu.Lock()
		delete(m.state.Objects, j.key)
		m.rep.Deleted++
		m.rep.DeletedBytes += j.size
		m.changes++
		m.mu.Unlock()
		m.checkpoint(ctx)
	case "delete-version":
		if err := m.t.deleteVersion(ctx, j.name, j.oldID); err != nil {
			m.fail(j, err)
			return
		}
		m.mu.Lock()
		m.rep.StaleVersions++
		m.mu.Unlock()
	}
}

func (m *mirrorRun) fail(j mirrorJob, err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return // reported once as an interruption
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rep.Errors++
	if len(m.rep.ErrorSamples) < mirrorMaxErrorSamples {
		m.rep.ErrorSamples = append(m.rep.ErrorSamples, fmt.Sprintf("%s %s: %v", j.op, j.name, err))
	}
	m.log.Error("mirror: object failed", "op", j.op, "name", j.name, "err", err)
}

// copy streams one object from the source into B2, retrying with a fresh
// source stream, then deletes the version it replaced.
func (m *mirrorRun) copy(ctx context.Context, j mirrorJob) {
	var id string
	var obj spaces.Object
	var err error
	for attempt := 1; ; attempt++ {
		var rc io.ReadCloser
		rc, obj, err = m.src.Get(ctx, j.key)
		if errors.Is(err, spaces.ErrNotFound) {
			m.log.InfoContext(ctx, "mirror: object vanished from the source while mirroring", "key", j.key)
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
			if ms := strconvMillis(obj.LastModified); ms != "" {
				info["src_last_modified_millis"] = ms
			}
			id, err = m.t.uploadOnce(ctx, j.name, rc, obj.Size, info)
			rc.Close()
			if err == nil {
				break
			}
			err = fmt.Errorf("upload: %w", err)
		}
		if ctx.Err() != nil {
			m.fail(j, ctx.Err())
			return
		}
		if attempt >= m.cfg.Attempts || !retryable(err) {
			m.fail(j, fmt.Errorf("after %d attempts: %w", attempt, err))
			return
		}
		if b2base.Action(errors.Unwrap(err)) == b2base.ReAuthenticate {
			if aerr := m.t.authorize(ctx); aerr != nil {
				m.fail(j, aerr)
				return
			}
		}
		m.mu.Lock()
		m.rep.Retries++
		m.mu.Unlock()
		if m.cfg.backoff(ctx, attempt, b2base.Backoff(errors.Unwrap(err))) != nil {
			return
		}
	}
	m.mu.Lock()
	m.state.Objects[j.key] = &mirrorEntry{Size: obj.Size, ETag: obj.ETag, Modified: obj.LastModified.UnixMilli(), ID: id, seen: true}
	m.rep.Copied++
	m.rep.CopiedBytes += obj.Size
	m.changes++
	m.mu.Unlock()
	if j.oldID != "" && j.oldID != id {
		if err := m.t.deleteVersion(ctx, j.name, j.oldID); err != nil {
			m.fail(mirrorJob{op: "delete-version", name: j.name}, err)
		} else {
			m.mu.Lock()
			m.rep.StaleVersions++
			m.mu.Unlock()
		}
	}
	m.checkpoint(ctx)
}

// retryable tells a failure worth another attempt (server errors, expired
// tokens, network trouble, a source that changed mid-read) from one that
// will not heal (a refused request).
func retryable(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if code, _ := b2base.Code(e); code != 0 {
			return b2base.Action(e) != b2base.Punt
		}
	}
	return true
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
		m.log.WarnContext(ctx, "mirror: checkpoint", "err", err)
	}
}
