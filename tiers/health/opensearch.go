package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/opensearch-project/opensearch-go/v2"
	"github.com/opensearch-project/opensearch-go/v2/opensearchapi"

	"github.com/fediops/fediops"
)

// MastodonIndices are the search indices of a Mastodon release ("4.3"):
// accounts, statuses and tags since 4.0, public_statuses since 4.2,
// instances since 4.3 (lib/mastodon/cli/search.rb). "" means the newest.
func MastodonIndices(release string) []string {
	out := []string{"accounts", "statuses", "tags"}
	var major, minor int
	if release == "" {
		major, minor = 99, 0
	} else if _, err := fmt.Sscanf(release, "%d.%d", &major, &minor); err != nil {
		major, minor = 99, 0
	}
	if major > 4 || major == 4 && minor >= 2 {
		out = append(out, "public_statuses")
	}
	if major > 4 || major == 4 && minor >= 3 {
		out = append(out, "instances")
	}
	return out
}

// IndexName is the name Chewy gives Mastodon's index base under prefix:
// "<prefix>_<base>", or base when prefix is empty. A suffixed index
// (accounts_1700000000) made by a zero-downtime reset carries the plain
// name as an alias, which answers the same existence check.
func IndexName(prefix, base string) string {
	if prefix == "" {
		return base
	}
	return prefix + "_" + base
}

// OpenSearchConfig says where Mastodon's search server is.
type OpenSearchConfig struct {
	// URL is the server, e.g. "http://10.118.0.8:9200".
	URL      string
	Username string
	Password string
	// CAPEM is the CA certificate for an https URL with a private CA.
	CAPEM []byte
	// Prefix is ES_PREFIX (Mastodon falls back to REDIS_NAMESPACE).
	Prefix string
	// Release picks the indices (MastodonIndices); "" means the newest.
	Release string
	// Indices overrides the index bases to look for.
	Indices []string
	// Transport is the HTTP transport; nil means the library default.
	Transport http.RoundTripper
}

// OpenSearchConfigFromEnv reads Mastodon's ES_* variables: ES_ENABLED
// (must be "true", else ok is false), ES_HOST (default localhost; may carry
// a scheme), ES_PORT (9200), ES_USER, ES_PASS, ES_PREFIX, else
// REDIS_NAMESPACE.
func OpenSearchConfigFromEnv(env fediops.Lookup) (cfg OpenSearchConfig, ok bool) {
	get := func(k, def string) string {
		if v, ok := env(k); ok && v != "" {
			return v
		}
		return def
	}
	if get("ES_ENABLED", "") != "true" {
		return cfg, false
	}
	host := get("ES_HOST", "localhost")
	if !strings.Contains(host, "://") {
		host = "http://" + host
	}
	cfg.URL = host + ":" + get("ES_PORT", "9200")
	cfg.Username = get("ES_USER", "")
	cfg.Password = get("ES_PASS", "")
	cfg.Prefix = get("ES_PREFIX", get("REDIS_NAMESPACE", ""))
	return cfg, true
}

// OpenSearchProbe checks the search VM: cluster health, unassigned shards
// and Mastodon's indices. It implements Check.
type OpenSearchProbe struct {
	cfg    OpenSearchConfig
	client *opensearch.Client
}

// redactURL drops any user:password from u for errors and logs.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	p.User = nil
	return p.String()
}

// NewOpenSearchProbe builds the probe's opensearch-go client (no retries:
// the health report wants the first answer).
func NewOpenSearchProbe(cfg OpenSearchConfig) (*OpenSearchProbe, error) {
	if cfg.URL == "" {
		return nil, errors.New("OpenSearchConfig.URL: required")
	}
	// Checked here so that no parse error (which quotes the URL, password
	// included) comes back from the client.
	if u, err := url.Parse(cfg.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("OpenSearchConfig.URL: want http(s)://host:port (ES_HOST, ES_PORT)")
	}
	c, err := opensearch.NewClient(opensearch.Config{
		Addresses: []string{cfg.URL}, Username: cfg.Username, Password: cfg.Password,
		CACert: cfg.CAPEM, Transport: cfg.Transport, DisableRetry: true,
	})
	if err != nil {
		return nil, fmt.Errorf("opensearch client for %s: %w", redactURL(cfg.URL), err)
	}
	shown := cfg
	shown.URL = redactURL(cfg.URL)
	return &OpenSearchProbe{cfg: shown, client: c}, nil
}

// SearchHealth is what the probe found.
type SearchHealth struct {
	ClusterName      string   `json:"cluster_name"`
	Status           string   `json:"status"`
	Nodes            int      `json:"number_of_nodes"`
	ActiveShards     int      `json:"active_shards"`
	UnassignedShards int      `json:"unassigned_shards"`
	Present          []string `json:"present"`
	Missing          []string `json:"missing"`
}

// ErrSearchUnhealthy is wrapped by Probe's error for a red cluster or
// missing indices.
var ErrSearchUnhealthy = errors.New("search unhealthy")

// Probe reads _cluster/health and checks each index with HEAD. The error
// is a *Warning for a yellow cluster (a single node with replicas
// configured; Mastodon's ES_PRESET=single_node_cluster sets none) or for
// unassigned shards on a green one, ErrSearchUnhealthy for red or missing
// indices, and the server's answer for a non-2xx reply.
func (p *OpenSearchProbe) Probe(ctx context.Context) (SearchHealth, error) {
	var h SearchHealth
	resp, err := opensearchapi.ClusterHealthRequest{}.Do(ctx, p.client)
	if err != nil {
		return h, fmt.Errorf("opensearch %s: cluster health: %w", p.cfg.URL, err)
	}
	if err := decodeOS(resp, &h); err != nil {
		return h, fmt.Errorf("opensearch %s: cluster health: %w", p.cfg.URL, err)
	}
	bases := p.cfg.Indices
	if bases == nil {
		bases = MastodonIndices(p.cfg.Release)
	}
	for _, b := range bases {
		name := IndexName(p.cfg.Prefix, b)
		resp, err := opensearchapi.IndicesExistsRequest{Index: []string{name}}.Do(ctx, p.client)
		if err != nil {
			return h, fmt.Errorf("opensearch %s: index %s: %w", p.cfg.URL, name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			h.Present = append(h.Present, name)
		case http.StatusNotFound:
			h.Missing = append(h.Missing, name)
		default:
			return h, fmt.Errorf("opensearch %s: index %s: HEAD answered %d", p.cfg.URL, name, resp.StatusCode)
		}
	}
	switch {
	case h.Status == "red":
		return h, fmt.Errorf("opensearch %s: cluster red, %d unassigned shards: %w", p.cfg.URL, h.UnassignedShards, ErrSearchUnhealthy)
	case len(h.Missing) > 0:
		return h, fmt.Errorf("opensearch %s: missing indices %s (run tootctl search deploy): %w",
			p.cfg.URL, strings.Join(h.Missing, ", "), ErrSearchUnhealthy)
	case h.Status == "yellow":
		return h, Warn(fmt.Errorf("opensearch %s: cluster yellow, %d unassigned shards", p.cfg.URL, h.UnassignedShards))
	case h.Status != "green":
		return h, fmt.Errorf("opensearch %s: unknown cluster status %q: %w", p.cfg.URL, h.Status, ErrSearchUnhealthy)
	case h.UnassignedShards > 0:
		return h, Warn(fmt.Errorf("opensearch %s: %d unassigned shards", p.cfg.URL, h.UnassignedShards))
	}
	return h, nil
}

// decodeOS decodes a 2xx JSON answer, or turns a non-2xx one into an
// error carrying the status and OpenSearch's error type and reason.
func decodeOS(resp *opensearchapi.Response, v any) error {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.IsError() {
		var e struct {
			Error json.RawMessage `json:"error"`
		}
		reason := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && len(e.Error) > 0 {
			var obj struct{ Type, Reason string }
			if json.Unmarshal(e.Error, &obj) == nil && obj.Type != "" {
				reason = obj.Type + ": " + obj.Reason
			} else {
				reason = strings.Trim(string(e.Error), `"`)
			}
		}
		return fmt.Errorf("status %d: %s", resp.StatusCode, truncate(reason, 200))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("status %d: decode: %w", resp.StatusCode, err)
	}
	return nil
}

// Name implements Check.
func (p *OpenSearchProbe) Name() string { return "search" }

// Run implements Check.
func (p *OpenSearchProbe) Run(ctx context.Context) (string, error) {
	h, err := p.Probe(ctx)
	detail := fmt.Sprintf("%s, %d nodes, %d unassigned, %d/%d indices", h.Status, h.Nodes, h.UnassignedShards,
		len(h.Present), len(h.Present)+len(h.Missing))
	if h.Status == "" {
		detail = ""
	}
	return detail, err
}
