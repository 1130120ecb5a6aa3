// Package dofake is the one stand-in for the DigitalOcean API that every
// test of fediops (and the demo) talks to: start it with
// New(Options{}).Start(t) and point godo at the URL it returns.
//
// It is stateful: database clusters with their CA and connection pools,
// CDN endpoints (list, create, TTL, custom domain, purge), droplets (create,
// list by tag, get, delete), droplet actions (snapshot) and their polling,
// snapshots (list, delete), load balancers (add and remove droplets, 422
// when the load balancer targets a tag) and tags. Seed it with AddCluster,
// AddEndpoint, AddDroplet, AddSnapshot and AddLoadBalancer.
//
// Every request is checked against DigitalOcean's own OpenAPI
// specification (the part in openapi/, copied by openapi/gen.go): path and
// query parameters, the JSON body's types, required fields, patterns
// (a droplet name with "_" is refused), enums (a CDN TTL of 120 is
// refused), lengths and read-only fields, and by default fields the
// specification marks deprecated. A refused request gets DO's error body
// and is counted (Checked); Calls and Count tell what was asked; Fail
// queues faults (404, 422, 500, 429 with Retry-After, or an answer lost
// after the change was made).
//
// It serves plain HTTP on loopback only: httptest in tests, Listen for a
// program.
package dofake
