package dofake

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// specFiles is the part of DigitalOcean's OpenAPI specification the fake
// serves (openapi/gen.go copies it from github.com/digitalocean/openapi).
//
//go:embed openapi
var specFiles embed.FS

type spec struct {
	doc    *openapi3.T
	router routers.Router
}

// loadSpec reads the embedded specification once per process.
var loadSpec = sync.OnceValues(func() (*spec, error) {
	sub, err := fs.Sub(specFiles, "openapi")
	if err != nil {
		return nil, err
	}
	l := openapi3.NewLoader()
	l.IsExternalRefsAllowed = true
	l.ReadFromURIFunc = func(_ *openapi3.Loader, u *url.URL) ([]byte, error) {
		return fs.ReadFile(sub, strings.TrimPrefix(path.Clean(u.Path), "/"))
	}
	doc, err := l.LoadFromFile("openapi.yaml")
	if err != nil {
		return nil, fmt.Errorf("load DigitalOcean's specification: %w", err)
	}
	// DO's own examples do not all match its schemas; the schemas rule.
	r, err := legacy.NewRouter(doc, openapi3.DisableExamplesValidation())
	if err != nil {
		return nil, fmt.Errorf("route DigitalOcean's specification: %w", err)
	}
	return &spec{doc: doc, router: r}, nil
})

// uuidFormat checks "format: uuid" (cluster and CDN endpoint IDs) as DO
// does: its IDs are RFC 4122 UUIDs.
var uuidFormat = openapi3.WithStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC4122))

// Invalid is a request DigitalOcean's specification refuses: the fake
// answers it with Status and Message, as DO answers 400/422.
type Invalid struct {
	Status  int
	Message string
}

func (e *Invalid) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Message) }

// check validates r against the operation route found: path and query
// parameters, the JSON body (types, required fields, patterns, enums,
// lengths, read-only fields) and, unless allowDeprecated, the body's use
// of a deprecated field with another value than its default. r.Body stays
// readable.
func (sp *spec) check(r *http.Request, route *routers.Route, params map[string]string, allowDeprecated bool) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return &Invalid{http.StatusBadRequest, "unreadable body: " + err.Error()}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, SkipSettingDefaults: true,
			SchemaValidationOptions: []openapi3.SchemaValidationOption{uuidFormat}}}
	err = openapi3filter.ValidateRequest(r.Context(), in)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		status := http.StatusUnprocessableEntity
		var re *openapi3filter.RequestError
		if errors.As(err, &re) && re.Parameter != nil {
			status = http.StatusBadRequest
			if re.Parameter.In == openapi3.ParameterInPath {
				status = http.StatusNotFound // DO answers 404 for an ID of the wrong shape
			}
		}
		return &Invalid{status, oneLine(err)}
	}
	if allowDeprecated || len(bytes.TrimSpace(body)) == 0 || route.Operation.RequestBody == nil {
		return nil
	}
	var obj map[string]any
	if json.Unmarshal(body, &obj) != nil {
		return nil
	}
	mt := route.Operation.RequestBody.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil {
		return nil
	}
	var used []string
	for name, field := range deprecatedFields(mt.Schema.Value, map[*openapi3.Schema]bool{}) {
		// Sending the default is saying nothing (godo always sends
		// "private_networking": false); another value relies on the field.
		if v, ok := obj[name]; ok && !reflect.DeepEqual(v, field.Default) {
			used = append(used, name)
		}
	}
	if len(used) > 0 {
		sort.Strings(used)
		return &Invalid{http.StatusUnprocessableEntity, "deprecated field(s) sent: " + strings.Join(used, ", ")}
	}
	return nil
}

// deprecatedFields finds the top-level properties of s (through allOf,
// oneOf and anyOf) that the specification marks deprecated.
func deprecatedFields(s *openapi3.Schema, seen map[*openapi3.Schema]bool) map[string]*openapi3.Schema {
	out := map[string]*openapi3.Schema{}
	if s == nil || seen[s] {
		return out
	}
	seen[s] = true
	for name, p := range s.Properties {
		if p.Value != nil && p.Value.Deprecated {
			out[name] = p.Value
		}
	}
	for _, sub := range slices.Concat(s.AllOf, s.OneOf, s.AnyOf) {
		maps.Copy(out, deprecatedFields(sub.Value, seen))
	}
	return out
}

// oneLine shortens a validation error to its first line, the part that
// names the field and the rule.
func oneLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return strings.TrimSpace(s)
}
