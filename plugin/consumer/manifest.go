package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/l402d/l402d/plugin/apiclient"
)

// Limits on a price manifest.
const (
	maxManifestBytes   = 1 << 20
	maxManifestEntries = 1000
)

// Manifest is a service's price list as read from /.well-known/l402.json.
type Manifest = apiclient.Manifest

// ManifestEntry is one priced resource of a manifest.
type ManifestEntry = apiclient.ManifestEntry

// ParseManifest reads a price manifest. It reads the L402 discovery
// draft's manifest (services[].resources[].pricing, provider.node_pubkey,
// quote_endpoint) and its OpenAPI profile (paths whose operations carry
// x-l402-pricing), and, no one format having been standard for long, any
// JSON object whose services, routes, endpoints, resources or prices
// array lists entries with a path (path, pattern, route, endpoint, url or
// resource), a name (name, service or id), a method, a description and a
// price (priceSats, price_sats, amountSats, amount_sats, or price as
// sats; price_msat, priceMsat, amount_msat in msat; or price or pricing
// as an object holding one of those). Members it does not know are
// ignored.
func ParseManifest(b []byte) (*Manifest, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("manifest is not a JSON object: %w", err)
	}
	if _, ok := top["openapi"]; ok && top["paths"] != nil {
		return parseOpenAPI(top)
	}
	m := &Manifest{Format: "list", Entries: []ManifestEntry{}}
	m.Name = jsonString(top, "name")
	var prov map[string]json.RawMessage
	if json.Unmarshal(top["provider"], &prov) == nil && prov != nil {
		m.Format = "l402-discovery"
		m.Name, m.NodePubkey = jsonString(prov, "name"), jsonString(prov, "node_pubkey")
		m.QuoteEndpoint, m.OpenAPI = jsonString(top, "quote_endpoint"), jsonString(top, "openapi")
	}
	if m.Name == "" {
		var svc map[string]json.RawMessage
		if json.Unmarshal(top["service"], &svc) == nil {
			m.Name = jsonString(svc, "name")
		}
	}
	found := false
	for _, k := range []string{"services", "routes", "endpoints", "resources", "prices"} {
		var items []map[string]json.RawMessage
		if json.Unmarshal(top[k], &items) != nil || items == nil {
			continue
		}
		found = true
		for _, it := range items {
			base := ManifestEntry{
				Name:        firstString(it, "name", "service", "id"),
				Path:        firstString(it, "path", "pattern", "route", "endpoint", "url", "resource"),
				Method:      strings.ToUpper(jsonString(it, "method")),
				Description: jsonString(it, "description"),
			}
			var resources []map[string]json.RawMessage
			if json.Unmarshal(it["resources"], &resources) == nil && resources != nil {
				// The draft's service: its resources are the entries.
				for _, r := range resources {
					if len(m.Entries) == maxManifestEntries {
						return m, nil
					}
					e := base
					e.Path, e.Method = jsonString(r, "path"), strings.ToUpper(jsonString(r, "method"))
					e.PriceSats, e.PriceMsat, e.PricingModel = draftPrice(r["pricing"])
					m.Entries = append(m.Entries, e)
				}
				continue
			}
			if len(m.Entries) == maxManifestEntries {
				return m, nil
			}
			base.PriceSats, base.PriceMsat = manifestPrice(it)
			m.Entries = append(m.Entries, base)
		}
	}
	if !found {
		return nil, errors.New("manifest lists no services, routes, endpoints, resources or prices")
	}
	return m, nil
}

// parseOpenAPI reads the draft's OpenAPI profile: every operation with
// x-l402-pricing is an entry.
func parseOpenAPI(top map[string]json.RawMessage) (*Manifest, error) {
	var paths map[string]map[string]json.RawMessage
	if err := json.Unmarshal(top["paths"], &paths); err != nil {
		return nil, fmt.Errorf("openapi: paths is not an object of path items: %w", err)
	}
	m := &Manifest{Format: "openapi", Entries: []ManifestEntry{}}
	var info map[string]json.RawMessage
	if json.Unmarshal(top["info"], &info) == nil && info != nil {
		m.Name = jsonString(info, "title")
		var prov map[string]json.RawMessage
		if json.Unmarshal(info["x-l402-provider"], &prov) == nil && prov != nil {
			m.NodePubkey = jsonString(prov, "node_pubkey")
			if n := jsonString(prov, "name"); n != "" {
				m.Name = n
			}
		}
	}
	m.QuoteEndpoint = jsonString(top, "x-l402-quote-endpoint")
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		for _, method := range []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"} {
			var op map[string]json.RawMessage
			if json.Unmarshal(paths[p][method], &op) != nil || op == nil || op["x-l402-pricing"] == nil {
				continue
			}
			if len(m.Entries) == maxManifestEntries {
				return m, nil
			}
			e := ManifestEntry{Name: jsonString(op, "x-l402-service"), Path: p, Method: strings.ToUpper(method),
				Description: firstString(op, "summary", "description")}
			e.PriceSats, e.PriceMsat, e.PricingModel = draftPrice(op["x-l402-pricing"])
			m.Entries = append(m.Entries, e)
		}
	}
	return m, nil
}

// draftPrice reads the draft's pricing object: a fixed price, a formula's
// base price (the least it costs) or none for a dynamic one.
func draftPrice(raw json.RawMessage) (sats, msat int64, model string) {
	var p map[string]json.RawMessage
	if json.Unmarshal(raw, &p) != nil || p == nil {
		return 0, 0, ""
	}
	model = jsonString(p, "model")
	key := "price_msat"
	if model == "formula" {
		key = "base_msat"
	}
	if n, ok := jsonInt(p, key); ok {
		return (n + 999) / 1000, n, model
	}
	sats, msat = manifestPrice(p)
	return sats, msat, model
}

// manifestPrice reads an entry's price in sats (rounded up) and msat.
func manifestPrice(it map[string]json.RawMessage) (sats, msat int64) {
	for _, k := range []string{"priceSats", "price_sats", "amountSats", "amount_sats", "price"} {
		if n, ok := jsonInt(it, k); ok {
			return n, 0
		}
	}
	for _, k := range []string{"priceMsat", "price_msat", "amount_msat", "amountMsat"} {
		if n, ok := jsonInt(it, k); ok {
			return (n + 999) / 1000, n
		}
	}
	var price map[string]json.RawMessage
	if json.Unmarshal(it["price"], &price) == nil && price != nil {
		return manifestPrice(price)
	}
	return 0, 0
}

// jsonString returns the string m holds at k, "" if none (or not a
// string).
func jsonString(m map[string]json.RawMessage, k string) string {
	var s string
	_ = json.Unmarshal(m[k], &s)
	return s
}

func firstString(m map[string]json.RawMessage, keys ...string) string {
	for _, k := range keys {
		if s := jsonString(m, k); s != "" {
			return s
		}
	}
	return ""
}

// jsonInt reads a non-negative whole number, also from a numeric string.
func jsonInt(m map[string]json.RawMessage, k string) (int64, bool) {
	raw, ok := m[k]
	if !ok {
		return 0, false
	}
	var n int64
	if json.Unmarshal(raw, &n) != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil || json.Unmarshal([]byte(s), &n) != nil {
			return 0, false
		}
	}
	return n, n >= 0
}

// quoteManifest fetches and parses a price manifest.
func (c *Consumer) quoteManifest(ctx context.Context, pr *prepared) (*Quote, error) {
	pr.method, pr.body = http.MethodGet, nil
	resp, err := c.do(ctx, pr, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	q := &Quote{URL: pr.u.String(), Status: resp.StatusCode}
	if resp.StatusCode != http.StatusOK {
		q.Refusal = &Refusal{Code: "no_manifest", Field: "url", Problem: fmt.Sprintf("the manifest answered %d", resp.StatusCode), Fix: "this service publishes no price manifest; quote a resource URL instead"}
		return q, nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestBytes+1))
	if err != nil {
		return nil, &UpstreamError{Method: pr.method, URL: q.URL, Err: err}
	}
	if len(b) > maxManifestBytes {
		q.Refusal = &Refusal{Code: "invalid_manifest", Field: "url", Problem: fmt.Sprintf("the manifest is larger than %d bytes", maxManifestBytes)}
		return q, nil
	}
	if q.Manifest, err = ParseManifest(b); err != nil {
		q.Refusal = &Refusal{Code: "invalid_manifest", Field: "url", Problem: err.Error()}
	}
	return q, nil
}
