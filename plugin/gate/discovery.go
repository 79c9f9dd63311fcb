package gate

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/plugin/producer"
)

// The gate's own paths, served ahead of every service while discovery is
// on. They follow the L402 discovery draft (lightninglabs/L402,
// discovery-spec.md, manifest version "1.0").
const (
	// DiscoveryPath is the manifest: services, prices, caveats.
	DiscoveryPath = "/.well-known/l402.json"
	// OpenAPIPath is the same catalogue as an OpenAPI 3.1 document with
	// the draft's x-l402-* extensions.
	OpenAPIPath = "/l402/openapi.json"
	// QuotePath is the quote endpoint: POST a bundle, get a challenge.
	QuotePath = "/l402/quote"
)

// ManifestVersion is the discovery draft's manifest version the gate
// writes.
const ManifestVersion = "1.0"

// NodeIdentity is implemented by a Producer that knows its node's public
// key (*producer.Producer does); the discovery documents then name it, so
// a client can check that invoices pay the node it expects.
type NodeIdentity interface {
	Node() string
}

// manifestDoc is /.well-known/l402.json: the draft's members, with
// l402d's older ones (scheme, and per service path, auth, priceSats,
// prices, schemes…) beside them for clients written against them. The
// draft tells clients to ignore members they do not know.
type manifestDoc struct {
	Version          string               `json:"version"`
	Provider         providerDoc          `json:"provider"`
	Currencies       []string             `json:"currencies"`
	MacaroonVersions []int                `json:"macaroon_versions"`
	PaymentMethods   []string             `json:"payment_methods"`
	QuoteEndpoint    string               `json:"quote_endpoint"`
	OpenAPI          string               `json:"openapi"`
	Scheme           string               `json:"scheme"`
	Services         []discoveryService   `json:"services"`
	Caveats          map[string]caveatDoc `json:"caveats"`
}

type providerDoc struct {
	Name       string `json:"name"`
	NodePubkey string `json:"node_pubkey,omitempty"`
}

type discoveryService struct {
	Name string `json:"name"`
	Host string `json:"host,omitempty"`
	Path string `json:"path"`
	// Auth is on, off or freebie.
	Auth              string `json:"auth"`
	FreeRequests      int    `json:"freeRequests,omitempty"`
	FreeWindowSeconds int64  `json:"freeWindowSeconds,omitempty"`
	// Resources are the draft's priced resources: one per pricing rule,
	// most specific first. A token bought for one opens its paths only.
	Resources []resourceDoc `json:"resources"`
	// PriceSats is the price of paths no more specific rule prices.
	PriceSats int64 `json:"priceSats,omitempty"`
	// Prices lists every pricing rule as Resources does, in sats.
	Prices []discoveryPrice `json:"prices,omitempty"`
	// TokenValiditySeconds is how long a token works; absent: forever.
	TokenValiditySeconds int64    `json:"tokenValiditySeconds,omitempty"`
	Capabilities         []string `json:"capabilities,omitempty"`
	// FreePaths are the whitelisted patterns.
	FreePaths   []string `json:"freePaths,omitempty"`
	Description string   `json:"description,omitempty"`
	// Schemes are the payment schemes a 402 of the service offers
	// (l402, mpp, x402), one invoice for all.
	Schemes []string `json:"schemes,omitempty"`
	// SessionDepositSats is the deposit of a prepaid MPP session, when
	// the service sells them.
	SessionDepositSats int64 `json:"sessionDepositSats,omitempty"`
	// PricedPerRequest says a pricer prices each request (by its method,
	// path, body or headers): the prices listed are the file's, and a
	// 402 states the request's; MaxPriceSats is the most one can cost.
	PricedPerRequest bool  `json:"pricedPerRequest,omitempty"`
	MaxPriceSats     int64 `json:"maxPriceSats,omitempty"`
	// PrepaidCreditSats is the credit an L402 token of the service buys,
	// when its tokens are prepaid balances rather than passes.
	PrepaidCreditSats int64 `json:"prepaidCreditSats,omitempty"`
	// Meter is set for a metered service (sold through sessions only).
	Meter *meterInfo `json:"meter,omitempty"`
}

// resourceDoc is the draft's resource object. A path ending in '*' is a
// prefix, as in the services file.
type resourceDoc struct {
	Path    string     `json:"path"`
	Pricing pricingDoc `json:"pricing"`
}

// pricingDoc is the draft's pricing object; the gate's prices are fixed.
type pricingDoc struct {
	Model     string `json:"model"`
	PriceMsat int64  `json:"price_msat"`
}

type discoveryPrice struct {
	Path      string `json:"path"`
	PriceSats int64  `json:"priceSats"`
}

// caveatDoc is one entry of the draft's caveat vocabulary.
type caveatDoc struct {
	Type        string `json:"type"`
	Description string `json:"description,omitempty"`
	Attenuation string `json:"attenuation,omitempty"`
}

// catalog is what both discovery documents are rendered from.
type catalog struct {
	provider providerDoc
	services []discoveryService
	caveats  map[string]caveatDoc
}

// newCatalog describes s for discovery. node is the node's key ("" if
// not known yet); offered says which schemes the gate sells a service in.
func newCatalog(s *Services, node string, defaultValidity time.Duration, offered func(*service) schemeSet) catalog {
	if defaultValidity == 0 {
		defaultValidity = producer.DefaultTokenValidity
	}
	name := s.provider
	if name == "" {
		name = "l402d"
	}
	c := catalog{provider: providerDoc{Name: name, NodePubkey: node}, services: make([]discoveryService, 0, len(s.list)), caveats: baseCaveats()}
	for _, svc := range s.list {
		sc := svc.cfg
		d := discoveryService{Name: sc.Name, Host: sc.Host, Path: sc.Path, Auth: string(sc.Auth), Description: sc.Description,
			Capabilities: sc.Capabilities, FreePaths: sc.Whitelist, Resources: []resourceDoc{}}
		if sc.Auth == AuthFreebie {
			d.FreeRequests, d.FreeWindowSeconds = sc.FreeRequests, int64(sc.FreeWindow/time.Second)
		}
		if sc.Auth != AuthOff {
			d.Schemes = offered(svc).names()
			d.PriceSats = sc.PriceSats
			if svc.session {
				d.SessionDepositSats = sc.SessionDepositSats
			}
			d.PrepaidCreditSats = svc.prepaidCredit
			if ps := svc.pricer; ps != nil {
				d.PricedPerRequest, d.MaxPriceSats = true, ps.max
			}
			if m := svc.meter; m != nil {
				d.Schemes = []string{string(producer.SchemeMPP)}
				d.Meter = &meterInfo{Unit: string(m.unit), PriceMsat: m.price, BlockUnits: m.block}
			}
			for _, r := range svc.rules {
				d.Resources = append(d.Resources, resourceDoc{Path: r.resource, Pricing: pricingDoc{Model: "fixed", PriceMsat: r.price * 1000}})
				d.Prices = append(d.Prices, discoveryPrice{Path: r.resource, PriceSats: r.price})
			}
			v := sc.TokenValidity
			if v == 0 {
				v = defaultValidity
			}
			if v > 0 {
				d.TokenValiditySeconds = int64(v / time.Second)
				c.caveats[sc.Name+l402.CondValidUntilSuffix] = caveatDoc{Type: "timestamp", Description: "when tokens of " + sc.Name + " stop working", Attenuation: "earlier"}
			}
			if len(sc.Capabilities) > 0 {
				c.caveats[sc.Name+l402.CondCapabilitiesSuffix] = caveatDoc{Type: "string", Description: "the capabilities of " + sc.Name + " a token grants", Attenuation: "subset"}
			}
		}
		c.services = append(c.services, d)
	}
	return c
}

// baseCaveats are the conditions every token of the gate may carry.
func baseCaveats() map[string]caveatDoc {
	return map[string]caveatDoc{
		l402.CondServices: {Type: "service_list", Description: "the services (name:tier) a token opens", Attenuation: "subset"},
		l402.CondResource: {Type: "string", Description: "the path a token opens; a trailing * opens the paths under it", Attenuation: "subset"},
		l402.CondAmount:   {Type: "integer", Description: "the sats paid for the token (informational)"},
		l402.CondNode:     {Type: "string", Description: "the public key of the node that was paid (informational)"},
	}
}

// manifestJSON renders /.well-known/l402.json.
func (c catalog) manifestJSON() ([]byte, error) {
	return json.MarshalIndent(manifestDoc{
		Version: ManifestVersion, Provider: c.provider, Currencies: []string{"msat"}, MacaroonVersions: []int{0},
		PaymentMethods: []string{"bolt11"}, QuoteEndpoint: QuotePath, OpenAPI: OpenAPIPath, Scheme: "L402",
		Services: c.services, Caveats: c.caveats,
	}, "", "  ")
}

// openAPIJSON renders the catalogue as an OpenAPI 3.1 document. The gate
// prices paths whatever the method, so each priced path has one GET
// operation standing for all methods; a prefix keeps its '*' (OpenAPI has
// no wildcard). A path two services share (on different hosts) is listed
// once, for the first; the manifest lists both.
func (c catalog) openAPIJSON() ([]byte, error) {
	paths := map[string]any{}
	ids := map[string]bool{}
	for _, s := range c.services {
		for _, r := range s.Resources {
			if _, dup := paths[r.Path]; dup {
				continue
			}
			// "/a-b" and "/a_b" spell one id; OpenAPI wants them unique.
			id := operationID(s.Name, r.Path)
			for n := 2; ids[id]; n++ {
				id = operationID(s.Name, r.Path) + "_" + strconv.Itoa(n)
			}
			ids[id] = true
			op := map[string]any{
				"operationId":     id,
				"summary":         s.Name + " " + r.Path,
				"description":     strings.TrimSpace(s.Description + " Any method: the gate prices the path."),
				"security":        securityFor(s.Schemes),
				"x-l402-service":  s.Name,
				"x-l402-pricing":  r.Pricing,
				"x-l402d-schemes": s.Schemes,
				"responses": map[string]any{
					"200": map[string]any{"description": "the upstream's answer, for a paid request"},
					"402": map[string]any{
						"description": "Payment Required: one invoice offered in every scheme listed in x-l402d-schemes",
						"headers": map[string]any{
							"WWW-Authenticate": map[string]any{"schema": map[string]any{"type": "string"}, "description": `L402 macaroon="<base64>", invoice="<bolt11>" and/or Payment id="…", method="lightning", intent="charge", …`},
							"PAYMENT-REQUIRED": map[string]any{"schema": map[string]any{"type": "string"}, "description": "x402 v2 payment requirements, base64 JSON"},
						},
					},
				},
			}
			if len(s.Capabilities) == 1 {
				op["x-l402-capability"] = s.Capabilities[0]
			}
			if s.FreeRequests > 0 {
				op["x-l402d-free-requests"] = map[string]any{"requests": s.FreeRequests, "windowSeconds": s.FreeWindowSeconds}
			}
			item := map[string]any{"get": op}
			if s.Host != "" {
				item["servers"] = []map[string]string{{"url": "//" + s.Host}}
			}
			paths[r.Path] = item
		}
	}
	paths[QuotePath] = quoteOperation()
	return json.MarshalIndent(map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":           c.provider.Name,
			"version":         ManifestVersion,
			"x-l402-version":  ManifestVersion,
			"x-l402-provider": map[string]any{"name": c.provider.Name, "node_pubkey": c.provider.NodePubkey, "currencies": []string{"msat"}},
		},
		"x-l402-quote-endpoint": QuotePath,
		"x-l402-caveats":        c.caveats,
		"components": map[string]any{"securitySchemes": map[string]any{
			"L402":    map[string]any{"type": "apiKey", "in": "header", "name": "Authorization", "x-l402-scheme": "L402"},
			"Payment": map[string]any{"type": "apiKey", "in": "header", "name": "Authorization", "x-l402-scheme": "Payment"},
			"x402":    map[string]any{"type": "apiKey", "in": "header", "name": "PAYMENT-SIGNATURE", "x-l402-scheme": "x402"},
		}},
		"paths": paths,
	}, "", "  ")
}

// securityFor lists the security requirements a service's schemes meet:
// any one of them.
func securityFor(schemes []string) []map[string][]string {
	out := make([]map[string][]string, 0, len(schemes))
	for _, s := range schemes {
		switch producer.Scheme(s) {
		case producer.SchemeL402:
			out = append(out, map[string][]string{"L402": {}})
		case producer.SchemeMPP:
			out = append(out, map[string][]string{"Payment": {}})
		case producer.SchemeX402:
			out = append(out, map[string][]string{"x402": {}})
		}
	}
	return out
}

// operationID names an operation from its service and path, in the
// letters, digits and '_' code generators accept.
func operationID(service, path string) string {
	var b strings.Builder
	b.WriteString(service)
	for _, r := range path {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '*':
			b.WriteString("_any")
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// quoteOperation documents the quote endpoint in the OpenAPI document.
func quoteOperation() map[string]any {
	obj := func(props map[string]any, required ...string) map[string]any {
		m := map[string]any{"type": "object", "properties": props}
		if len(required) > 0 {
			m["required"] = required
		}
		return m
	}
	str := map[string]any{"type": "string"}
	integer := map[string]any{"type": "integer"}
	errBody := map[string]any{"content": map[string]any{"application/json": map[string]any{"schema": obj(map[string]any{
		"error": obj(map[string]any{"code": str, "message": str, "field": str, "fix": str}, "code", "message")}, "error")}}}
	with := func(desc string) map[string]any {
		m := map[string]any{"description": desc}
		for k, v := range errBody {
			m[k] = v
		}
		return m
	}
	return map[string]any{"post": map[string]any{
		"operationId": "l402Quote",
		"summary":     "a ready-to-pay L402 challenge for a service",
		"requestBody": map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": obj(map[string]any{
			"service": str, "tier": integer, "capabilities": map[string]any{"type": "array", "items": str},
			"constraints": map[string]any{"type": "object"}, "max_price_msat": integer, "payment_method": str,
			"resource": map[string]any{"type": "string", "description": "l402d: which of the service's resources (its paths in the manifest); default the service's own path"},
		}, "service")}}},
		"responses": map[string]any{
			"200": map[string]any{"description": "a quote", "content": map[string]any{"application/json": map[string]any{"schema": obj(map[string]any{
				"price_msat": integer, "quote_expiry": integer, "macaroon": str, "invoice": str, "payment_hash": str, "service": str, "resource": str,
			}, "price_msat", "quote_expiry", "macaroon", "invoice")}}},
			"400": with("malformed_request, unknown_service, unknown_resource, unknown_capability, unknown_tier, invalid_constraint or unsupported_payment_method"),
			"409": with("unsatisfiable_budget: the price is above max_price_msat"),
			"429": with("rate_limited or too_many_unpaid_invoices: retry after Retry-After"),
			"503": with("unpriceable: the node cannot create an invoice now"),
		},
	}}
}

// docs are the rendered discovery documents of one state, for one node key.
type docs struct {
	node     string
	manifest []byte
	openapi  []byte
}

// discoveryDocs returns st's discovery documents, rendering them on first
// use and again if the node's key was learned since.
func (g *Gate) discoveryDocs(st *state) (*docs, error) {
	node := ""
	if n, ok := g.cfg.Producer.(NodeIdentity); ok {
		node = n.Node()
	}
	if d := st.docs.Load(); d != nil && d.node == node {
		return d, nil
	}
	c := newCatalog(st.svcs, node, g.cfg.DefaultTokenValidity, g.offered)
	d := &docs{node: node}
	var err error
	if d.manifest, err = c.manifestJSON(); err != nil {
		return nil, err
	}
	if d.openapi, err = c.openAPIJSON(); err != nil {
		return nil, err
	}
	st.docs.Store(d)
	return d, nil
}

// serveDocument answers GET (or HEAD) of a discovery document.
func (g *Gate) serveDocument(w http.ResponseWriter, r *http.Request, st *state) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, r, http.StatusMethodNotAllowed, errorBody{Error: r.Method + " is not allowed on " + r.URL.Path, Code: "method_not_allowed", Fix: "use GET"})
		return
	}
	d, err := g.discoveryDocs(st)
	if err != nil {
		g.log.Error("gate: rendering the discovery documents failed", "err", err)
		writeError(w, r, http.StatusInternalServerError, errorBody{Error: "the discovery document could not be rendered", Code: "internal", Fix: "retry shortly"})
		return
	}
	body := d.manifest
	h := w.Header()
	if r.URL.Path == OpenAPIPath {
		body = d.openapi
	} else {
		h.Set("Link", "<"+OpenAPIPath+`>; rel="service-desc"`)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=60")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}
