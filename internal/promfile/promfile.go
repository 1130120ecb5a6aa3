package promfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fediops/fediops"
)

// Config says where a cron job's metrics go: a node_exporter textfile
// collector directory, a Pushgateway, both, or (zero value) nowhere.
type Config struct {
	// Dir is the textfile collector's directory (node_exporter
	// --collector.textfile.directory); the job's metrics are written to
	// Dir/fediops_<job>.prom atomically.
	Dir string
	// PushURL is the Pushgateway's base URL (http://127.0.0.1:9091).
	// Credentials in it (https://user:pass@host) are sent as basic auth
	// and never appear in errors.
	PushURL string
	// Grouping labels are added to the push's grouping key besides job
	// (e.g. instance=<hostname>, so that several hosts do not overwrite
	// one another).
	Grouping map[string]string
	// Client makes the push requests; default http.DefaultClient.
	Client *http.Client
	// Logger receives one debug line per file written or group pushed;
	// default slog.Default().
	Logger *slog.Logger
}

// Environment variables FromEnv reads.
const (
	EnvDir     = "FEDIOPS_METRICS_DIR"
	EnvPushURL = "FEDIOPS_PUSHGATEWAY_URL"
)

// ConfigFromEnv reads FEDIOPS_METRICS_DIR and FEDIOPS_PUSHGATEWAY_URL through
// env.
func ConfigFromEnv(env fediops.Lookup) (Config, error) {
	var c Config
	c.Dir, _ = env(EnvDir)
	c.PushURL, _ = env(EnvPushURL)
	return c, c.Validate()
}

// Enabled reports whether metrics go anywhere.
func (c Config) Enabled() bool { return c.Dir != "" || c.PushURL != "" }

// Validate checks PushURL, naming the field; errors never echo credentials.
func (c Config) Validate() error {
	if c.PushURL == "" {
		return nil
	}
	u, err := url.Parse(c.PushURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: want http(s)://host[:port], got %q", EnvPushURL, redactURL(c.PushURL))
	}
	for k := range c.Grouping {
		if !jobRE.MatchString(k) {
			return fmt.Errorf("grouping label %q is not a label name", k)
		}
	}
	return nil
}

var jobRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// ErrJobName is returned for a job name that is not a Prometheus label value
// fit for a file name ([a-zA-Z_][a-zA-Z0-9_]*).
var ErrJobName = errors.New("job name must match [a-zA-Z_][a-zA-Z0-9_]*")

// Write gathers g once and sends the result where c says: the textfile
// (replacing the file: the job's last run is the truth) and/or the
// Pushgateway (PUT: the group job=<job> is replaced). Both are attempted;
// the errors are joined.
func (c Config) Write(ctx context.Context, job string, g prometheus.Gatherer) error {
	if !jobRE.MatchString(job) {
		return ErrJobName
	}
	if err := c.Validate(); err != nil {
		return err
	}
	mfs, err := g.Gather()
	if err != nil {
		return fmt.Errorf("gather %s: %w", job, err)
	}
	var errs []error
	if c.Dir != "" {
		errs = append(errs, WriteFile(c.File(job), mfs))
	}
	if c.PushURL != "" {
		errs = append(errs, c.push(ctx, job, nil, mfs, false))
	}
	return errors.Join(errs...)
}

// File is the textfile the job's metrics go to: Dir/fediops_<job>.prom.
func (c Config) File(job string) string {
	return filepath.Join(c.Dir, "fediops_"+job+".prom")
}

// WriteFile writes metric families in the text exposition format to name
// atomically: a temporary file in the same directory (not matching *.prom,
// so the collector never reads half a file), fsync, rename. The file is
// left as it was on any error.
func WriteFile(name string, mfs []*dto.MetricFamily) error {
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("encode %s: %w", mf.GetName(), err)
		}
	}
	dir := filepath.Dir(name)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Chmod(0o644); err != nil { // node_exporter usually runs as another user
		tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if d, err := os.Open(dir); err == nil { // make the rename itself durable
		d.Sync()
		d.Close()
	}
	return nil
}

// ReadFile parses a textfile written by WriteFile (or by hand). A missing
// file is no error: it returns no families.
func ReadFile(name string) (map[string]*dto.MetricFamily, error) {
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(f)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	return mfs, nil
}

// push sends mfs to the Pushgateway under job (+ c.Grouping + extra). add
// selects POST (replace only the families sent) over PUT (replace the group).
func (c Config) push(ctx context.Context, job string, extra map[string]string, mfs []*dto.MetricFamily, add bool) error {
	u, err := url.Parse(c.PushURL)
	if err != nil {
		return fmt.Errorf("%s: %q is not a URL", EnvPushURL, redactURL(c.PushURL))
	}
	user := u.User
	u.User = nil
	p := push.New(u.String(), job).Gatherer(prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return mfs, nil }))
	if user != nil {
		pass, _ := user.Password()
		p = p.BasicAuth(user.Username(), pass)
	}
	if c.Client != nil {
		p = p.Client(c.Client)
	}
	keys := make([]string, 0, len(c.Grouping)+len(extra))
	labels := map[string]string{}
	for _, m := range []map[string]string{c.Grouping, extra} {
		for k, v := range m {
			if _, dup := labels[k]; !dup {
				keys = append(keys, k)
			}
			labels[k] = v
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		p = p.Grouping(k, labels[k])
	}
	if add {
		err = p.AddContext(ctx)
	} else {
		err = p.PushContext(ctx)
	}
	if err != nil {
		// push's errors carry the URL; it has no credentials any more.
		return fmt.Errorf("push %s to %s: %w", job, u.Host, err)
	}
	c.logger().Debug("pushed metrics", "job", job, "gateway", u.Host, "grouping", labels)
	return nil
}

func (c Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// redactURL drops the password from a URL for messages. Without "://"
// ("ops:pass@host:9091") url.Parse takes "ops" for the scheme and leaves
// the password in the opaque part or the path, out of Redacted's reach:
// then everything before the last "@" goes.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User == nil {
		if i := strings.LastIndex(s, "@"); i >= 0 {
			return "xxxxx" + s[i:]
		}
	}
	return u.Redacted()
}
