package gate

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/l402d/l402d/plugin/producer"
)

// discoveryDoc is /.well-known/l402.json: what a client (or an agent)
// needs to know to budget for the gate's services before the first 402.
// Upstream addresses are not in it.
type discoveryDoc struct {
	Version  int                `json:"version"`
	Scheme   string             `json:"scheme"`
	Services []discoveryService `json:"services"`
}

type discoveryService struct {
	Name string `json:"name"`
	Host string `json:"host,omitempty"`
	Path string `json:"path"`
	// Auth is on, off or freebie.
	Auth              string `json:"auth"`
	FreeRequests      int    `json:"freeRequests,omitempty"`
	FreeWindowSeconds int64  `json:"freeWindowSeconds,omitempty"`
	// PriceSats is the price of paths no more specific rule prices.
	PriceSats int64 `json:"priceSats,omitempty"`
	// Prices lists every pricing rule, most specific first; a token
	// bought under one opens that rule's paths only.
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
}

type discoveryPrice struct {
	Path      string `json:"path"`
	PriceSats int64  `json:"priceSats"`
}

// discoveryJSON renders the discovery document once per services file.
// offered says which schemes the gate can sell for a service.
func discoveryJSON(s *Services, defaultValidity time.Duration, offered func(*service) schemeSet) ([]byte, error) {
	if defaultValidity == 0 {
		defaultValidity = producer.DefaultTokenValidity
	}
	doc := discoveryDoc{Version: 1, Scheme: "L402", Services: make([]discoveryService, 0, len(s.list))}
	for _, svc := range s.list {
		c := svc.cfg
		d := discoveryService{Name: c.Name, Host: c.Host, Path: c.Path, Auth: string(c.Auth), Description: c.Description,
			Capabilities: c.Capabilities, FreePaths: c.Whitelist}
		if c.Auth == AuthFreebie {
			d.FreeRequests, d.FreeWindowSeconds = c.FreeRequests, int64(c.FreeWindow/time.Second)
		}
		if c.Auth != AuthOff {
			d.Schemes = offered(svc).names()
			d.PriceSats = c.PriceSats
			for _, r := range svc.rules {
				d.Prices = append(d.Prices, discoveryPrice{Path: r.resource, PriceSats: r.price})
			}
			v := c.TokenValidity
			if v == 0 {
				v = defaultValidity
			}
			if v > 0 {
				d.TokenValiditySeconds = int64(v / time.Second)
			}
		}
		doc.Services = append(doc.Services, d)
	}
	return json.MarshalIndent(doc, "", "  ")
}

func (g *Gate) serveDiscovery(w http.ResponseWriter, r *http.Request, st *state) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, r, http.StatusMethodNotAllowed, errorBody{Error: r.Method + " is not allowed on " + DiscoveryPath, Code: "method_not_allowed", Fix: "use GET"})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=60")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Content-Length", strconv.Itoa(len(st.discovery)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(st.discovery)
	}
}
