package sidekiqq

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// TimestampUnit is how a job's enqueued_at/created_at is written: a JSON
// float of epoch seconds (Sidekiq 6.5 and 7.x) or a JSON integer of epoch
// milliseconds (Sidekiq 8).
type TimestampUnit string

// Timestamp units.
const (
	Seconds      TimestampUnit = "seconds"
	Milliseconds TimestampUnit = "milliseconds"
)

// Job is what Read needs of a Sidekiq job payload.
type Job struct {
	Class string `json:"class"`
	Queue string `json:"queue"`
	JID   string `json:"jid"`
	// EnqueuedAt is enqueued_at, or created_at when enqueued_at is absent
	// (as Sidekiq's own latency does).
	EnqueuedAt time.Time     `json:"enqueued_at"`
	Unit       TimestampUnit `json:"unit"`
}

// ErrMalformed marks job JSON or a process hash that is not what Sidekiq
// writes.
var ErrMalformed = errors.New("malformed")

// Plausible timestamps: after 2001-09-09 and before 2286-11-20 (1e9 and
// 1e10 epoch seconds). A Sidekiq 8 integer below 1e12 would be 1970-2001 in
// milliseconds: it is seconds written as an integer, which Sidekiq itself
// would misread.
const (
	minEpochSeconds = 1e9
	maxEpochSeconds = 1e10
)

// ParseJob reads a job payload as Sidekiq writes it into queue:<name>,
// retry, schedule or dead. The timestamp's form is detected per job: a
// JSON float is epoch seconds, a JSON integer epoch milliseconds. Errors
// wrap ErrMalformed and never panic, whatever the input.
func ParseJob(data []byte) (Job, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return Job{}, fmt.Errorf("%w job JSON: %v", ErrMalformed, err)
	}
	if fields == nil {
		return Job{}, fmt.Errorf("%w job JSON: null, want an object", ErrMalformed)
	}
	var j Job
	for key, dst := range map[string]*string{"class": &j.Class, "queue": &j.Queue, "jid": &j.JID} {
		raw, ok := fields[key]
		if !ok {
			continue
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return Job{}, fmt.Errorf("%w job JSON: %s is %s, want a string", ErrMalformed, key, clip(raw))
		}
	}
	if j.Class == "" {
		return Job{}, fmt.Errorf("%w job JSON: no class", ErrMalformed)
	}
	key := "enqueued_at"
	raw, ok := fields[key]
	if !ok || string(raw) == "null" {
		key = "created_at"
		raw, ok = fields[key]
	}
	if !ok || string(raw) == "null" {
		return Job{}, fmt.Errorf("%w job JSON: jid %s has neither enqueued_at nor created_at", ErrMalformed, j.JID)
	}
	t, unit, err := parseTimestamp(raw)
	if err != nil {
		return Job{}, fmt.Errorf("%w job JSON: jid %s: %s: %v", ErrMalformed, j.JID, key, err)
	}
	j.EnqueuedAt, j.Unit = t, unit
	return j, nil
}

func parseTimestamp(raw json.RawMessage) (time.Time, TimestampUnit, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return time.Time{}, "", err
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, "", fmt.Errorf("%s is not a number", clip(raw))
	}
	if strings.ContainsAny(string(n), ".eE") {
		f, err := n.Float64()
		if err != nil || math.IsNaN(f) || f < minEpochSeconds || f > maxEpochSeconds {
			return time.Time{}, "", fmt.Errorf("float %s is not epoch seconds", n)
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC(), Seconds, nil
	}
	ms, err := n.Int64()
	if err != nil {
		return time.Time{}, "", fmt.Errorf("integer %s is out of range", n)
	}
	if ms < minEpochSeconds*1000 || ms > maxEpochSeconds*1000 {
		if ms >= minEpochSeconds && ms <= maxEpochSeconds {
			return time.Time{}, "", fmt.Errorf("integer %d looks like epoch seconds; Sidekiq 8 writes integer milliseconds and 6.5/7 float seconds", ms)
		}
		return time.Time{}, "", fmt.Errorf("integer %d is not epoch milliseconds", ms)
	}
	return time.UnixMilli(ms).UTC(), Milliseconds, nil
}

func clip(b []byte) string {
	const max = 60
	s := string(b)
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strconv.Quote(s)
}

// Capsule is one capsule of a Sidekiq 7+ process (info.capsules, 8.0.9+).
type Capsule struct {
	Concurrency int            `json:"concurrency"`
	Mode        string         `json:"mode"`
	Weights     map[string]int `json:"weights"`
}

// ProcessStats is one live Sidekiq process, from its heartbeat hash.
type ProcessStats struct {
	Identity  string    `json:"identity"` // hostname:pid:nonce, the hash's key
	Hostname  string    `json:"hostname"`
	PID       int       `json:"pid"`
	Tag       string    `json:"tag,omitempty"`
	Version   string    `json:"version,omitempty"` // Sidekiq's, 7.1+
	StartedAt time.Time `json:"started_at"`
	Queues    []string  `json:"queues"`
	// Weights per queue, merged over capsules (7.1+; nil before).
	Weights  map[string]int     `json:"weights,omitempty"`
	Capsules map[string]Capsule `json:"capsules,omitempty"` // 8.0.9+
	Labels   []string           `json:"labels,omitempty"`
	Embedded bool               `json:"embedded,omitempty"`
	// Concurrency is the hash's concurrency field (8.1.2+), else
	// info.concurrency, else the sum of the capsules' concurrency;
	// ConcurrencyFrom says which ("hash", "info", "capsules", "" if none).
	Concurrency     int           `json:"concurrency"`
	ConcurrencyFrom string        `json:"concurrency_from"`
	Busy            int           `json:"busy"`
	Beat            time.Time     `json:"beat"`
	HeartbeatAge    time.Duration `json:"heartbeat_age"`
	Quiet           bool          `json:"quiet"`
	RSSKB           int64         `json:"rss_kb"`
	RTT             time.Duration `json:"rtt"`
}

// Serves reports whether the process lists the queue.
func (p ProcessStats) Serves(queue string) bool {
	for _, q := range p.Queues {
		if q == queue {
			return true
		}
	}
	return false
}

// Problem is something in Redis that is not what Sidekiq writes: a job that
// does not parse, a field of the wrong type, a key nobody expects. Read
// reports it and goes on.
type Problem struct {
	Key    string `json:"key"`
	Detail string `json:"detail"`
}

func (p Problem) String() string { return p.Key + ": " + p.Detail }

var knownHashFields = map[string]bool{"info": true, "busy": true, "beat": true, "quiet": true, "rss": true, "rtt_us": true, "concurrency": true}

var knownInfoKeys = map[string]bool{"hostname": true, "started_at": true, "pid": true, "tag": true, "concurrency": true, "queues": true,
	"weights": true, "labels": true, "identity": true, "version": true, "embedded": true, "capsules": true}

// parseProcess reads a process hash (HGETALL <identity>). ok is false when
// the hash has no usable info: Sidekiq's own API skips such processes.
func parseProcess(identity string, h map[string]string, now time.Time) (p ProcessStats, ok bool, probs []Problem) {
	bad := func(format string, a ...any) {
		probs = append(probs, Problem{Key: identity, Detail: fmt.Sprintf(format, a...)})
	}
	p.Identity = identity
	var extra []string
	for k := range h {
		if !knownHashFields[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		bad("unexpected field %q in the process hash", k)
	}
	rawInfo, has := h["info"]
	if !has {
		bad("process hash has no info field")
		return p, false, probs
	}
	var info map[string]json.RawMessage
	if err := json.Unmarshal([]byte(rawInfo), &info); err != nil || info == nil {
		bad("info is not a JSON object: %s", clip([]byte(rawInfo)))
		return p, false, probs
	}
	extra = extra[:0]
	for k := range info {
		if !knownInfoKeys[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		bad("unexpected key %q in info", k)
	}
	field := func(key string, dst any) bool {
		raw, ok := info[key]
		if !ok || string(raw) == "null" {
			return false
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			bad("info.%s is %s: %v", key, clip(raw), typeErr(err))
			return false
		}
		return true
	}
	field("hostname", &p.Hostname)
	field("pid", &p.PID)
	field("tag", &p.Tag)
	field("version", &p.Version)
	field("labels", &p.Labels)
	field("embedded", &p.Embedded)
	field("queues", &p.Queues)
	var started float64
	if field("started_at", &started) && started > 0 && started < maxEpochSeconds {
		p.StartedAt = floatTime(started)
	}
	var id string
	if field("identity", &id) && id != identity {
		bad("info.identity %q differs from the processes member", id)
	}
	if raw, ok := info["weights"]; ok && string(raw) != "null" {
		var list []map[string]int
		var one map[string]int
		if json.Unmarshal(raw, &list) == nil {
			for _, m := range list {
				for q, w := range m {
					if p.Weights == nil {
						p.Weights = map[string]int{}
					}
					p.Weights[q] = w
				}
			}
		} else if json.Unmarshal(raw, &one) == nil {
			p.Weights = one
		} else {
			bad("info.weights is %s, want a list of {queue: weight}", clip(raw))
		}
	}
	field("capsules", &p.Capsules)

	// Concurrency: the hash field (8.1.2+), else info.concurrency, else the
	// capsules' sum.
	if s, ok := h["concurrency"]; ok {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			p.Concurrency, p.ConcurrencyFrom = n, "hash"
		} else {
			bad("concurrency field %s is not a count", clip([]byte(s)))
		}
	}
	if p.ConcurrencyFrom == "" {
		var n int
		if field("concurrency", &n) && n >= 0 {
			p.Concurrency, p.ConcurrencyFrom = n, "info"
		}
	}
	if p.ConcurrencyFrom == "" && len(p.Capsules) > 0 {
		for _, c := range p.Capsules {
			p.Concurrency += c.Concurrency
		}
		p.ConcurrencyFrom = "capsules"
	}
	if p.ConcurrencyFrom == "" {
		bad("no concurrency in the hash, info or capsules")
	}

	if s, ok := h["busy"]; ok {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			p.Busy = n
		} else {
			bad("busy %s is not a count", clip([]byte(s)))
		}
	}
	if s, ok := h["beat"]; ok {
		if f, err := strconv.ParseFloat(s, 64); err == nil && f >= minEpochSeconds && f <= maxEpochSeconds {
			p.Beat = floatTime(f)
			p.HeartbeatAge = max(now.Sub(p.Beat), 0)
		} else {
			bad("beat %s is not float epoch seconds", clip([]byte(s)))
		}
	} else {
		bad("process hash has no beat")
	}
	switch s := h["quiet"]; s {
	case "true":
		p.Quiet = true
	case "false", "":
	default:
		bad("quiet %s is not true or false", clip([]byte(s)))
	}
	if s, ok := h["rss"]; ok && s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			p.RSSKB = n
		} else {
			bad("rss %s is not kilobytes", clip([]byte(s)))
		}
	}
	if s, ok := h["rtt_us"]; ok && s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			p.RTT = time.Duration(n) * time.Microsecond
		} else {
			bad("rtt_us %s is not microseconds", clip([]byte(s)))
		}
	}
	return p, true, probs
}

func floatTime(f float64) time.Time {
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC()
}

func typeErr(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "want " + te.Type.String()
	}
	return err.Error()
}
