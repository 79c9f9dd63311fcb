package gate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
)

// maxQuoteBody bounds a quote request.
const maxQuoteBody = 64 << 10

// QuoteRequest is a quote endpoint body: the discovery draft's bundle
// (section 6.1) and l402d's Resource. Members the gate does not know are
// ignored, as the draft asks.
type QuoteRequest struct {
	Service string `json:"service"`
	// Tier must be 0 (or absent): the gate sells one tier.
	Tier int64 `json:"tier"`
	// Capabilities, when set, narrow the token to these of the service's.
	Capabilities []string `json:"capabilities"`
	// Constraints must be empty: the manifest advertises none.
	Constraints map[string]json.RawMessage `json:"constraints"`
	// MaxPriceMsat, when positive, is the most the client will pay.
	MaxPriceMsat  int64  `json:"max_price_msat"`
	Optimize      string `json:"optimize"`
	TokenID       string `json:"token_id"`
	PaymentMethod string `json:"payment_method"`
	// Resource is one of the service's resources (a path of its pricing
	// rules, as the manifest lists them); empty means the service's own
	// path.
	Resource string `json:"resource"`
}

// QuoteResponse is a quote (section 6.2): a standard L402 challenge for
// the bundle, and what it is for.
type QuoteResponse struct {
	PriceMsat   int64  `json:"price_msat"`
	QuoteExpiry int64  `json:"quote_expiry"`
	Macaroon    string `json:"macaroon"`
	Invoice     string `json:"invoice"`
	PaymentHash string `json:"payment_hash"`
	Service     string `json:"service"`
	Resource    string `json:"resource"`
	// TokenValidUntil is when the bought token stops working (Unix
	// seconds); absent: never.
	TokenValidUntil int64 `json:"token_valid_until,omitempty"`
}

// quoteError is the draft's error envelope (section 6.5), with a fix.
type quoteError struct {
	status int
	Code   string `json:"code"`
	Msg    string `json:"message"`
	Field  string `json:"field,omitempty"`
	Fix    string `json:"fix,omitempty"`
}

func (e *quoteError) Error() string { return e.Code + ": " + e.Msg }

func badQuote(code, field, msg, fix string) *quoteError {
	return &quoteError{status: http.StatusBadRequest, Code: code, Field: field, Msg: msg, Fix: fix}
}

// ParseQuoteRequest reads a quote request body. Errors are the draft's
// malformed_request and name the member at fault.
func ParseQuoteRequest(b []byte) (QuoteRequest, error) {
	var q QuoteRequest
	if len(bytes.TrimSpace(b)) == 0 {
		return q, badQuote("malformed_request", "", "the body is empty", `send a JSON object, e.g. {"service":"api"}`)
	}
	if err := json.Unmarshal(b, &q); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return q, badQuote("malformed_request", te.Field, te.Field+" is a JSON "+te.Value+", want "+te.Type.String(), "see the quote operation in "+OpenAPIPath)
		}
		return q, badQuote("malformed_request", "", "the body is not a JSON object: "+err.Error(), `send a JSON object, e.g. {"service":"api"}`)
	}
	if q.Service == "" {
		return q, badQuote("malformed_request", "service", "service is required", "name a service of "+DiscoveryPath)
	}
	return q, nil
}

// resolve finds what a quote request buys in s: the service, the pricing
// rule and the token's capabilities. offered says which schemes the gate
// sells the service in.
func (q QuoteRequest) resolve(s *Services, offered func(*service) schemeSet) (*service, *rule, []string, *quoteError) {
	var svc *service
	for _, c := range s.list {
		if c.cfg.Name == q.Service {
			svc = c
			break
		}
	}
	switch {
	case svc == nil:
		return nil, nil, nil, badQuote("unknown_service", "service", fmt.Sprintf("no service is named %q", truncate(q.Service)), "name a service of "+DiscoveryPath)
	case svc.cfg.Auth == AuthOff:
		return nil, nil, nil, badQuote("unknown_service", "service", fmt.Sprintf("%q is free: there is nothing to buy", q.Service), "call it without a credential")
	case !offered(svc).has(offerL402):
		// A quote is an L402 challenge; a token the service would
		// refuse must not be sold.
		return nil, nil, nil, badQuote("unsupported_scheme", "service", fmt.Sprintf("%q does not sell L402 tokens (it offers %v)", q.Service, offered(svc).names()),
			"request a resource of the service and pay its 402 in a scheme it offers")
	case q.Tier != 0:
		return nil, nil, nil, badQuote("unknown_tier", "tier", fmt.Sprintf("tier %d is not offered", q.Tier), "omit tier, or send 0: the gate sells one tier")
	case len(q.Constraints) > 0:
		keys := slices.Sorted(maps.Keys(q.Constraints))
		return nil, nil, nil, badQuote("invalid_constraint", "constraints."+truncate(keys[0]), "the manifest advertises no constraints", "omit constraints")
	case q.PaymentMethod != "" && q.PaymentMethod != "bolt11":
		return nil, nil, nil, badQuote("unsupported_payment_method", "payment_method", fmt.Sprintf("%q is not offered", truncate(q.PaymentMethod)), `omit payment_method, or send "bolt11"`)
	case q.MaxPriceMsat < 0:
		return nil, nil, nil, badQuote("malformed_request", "max_price_msat", "is negative", "omit it, or send the most you will pay in msat")
	}
	rl := &svc.rules[len(svc.rules)-1]
	if q.Resource != "" {
		rl = nil
		for i := range svc.rules {
			if svc.rules[i].resource == q.Resource {
				rl = &svc.rules[i]
				break
			}
		}
		if rl == nil {
			return nil, nil, nil, badQuote("unknown_resource", "resource", fmt.Sprintf("%q is not a resource of %q", truncate(q.Resource), q.Service), "send a path of the service's resources in "+DiscoveryPath)
		}
	}
	caps := svc.cfg.Capabilities
	if len(q.Capabilities) > 0 {
		caps = nil
		for _, c := range svc.cfg.Capabilities { // in the service's order, as the draft maps them
			if slices.Contains(q.Capabilities, c) {
				caps = append(caps, c)
			}
		}
		for _, c := range q.Capabilities {
			if !slices.Contains(svc.cfg.Capabilities, c) {
				return nil, nil, nil, badQuote("unknown_capability", "capabilities", fmt.Sprintf("%q is not a capability of %q", truncate(c), q.Service), "send capabilities the manifest lists for the service, or omit them")
			}
		}
	}
	if q.MaxPriceMsat > 0 && rl.price*1000 > q.MaxPriceMsat {
		return nil, nil, nil, &quoteError{status: http.StatusConflict, Code: "unsatisfiable_budget", Field: "max_price_msat",
			Msg: fmt.Sprintf("%s costs %d msat, above max_price_msat %d", rl.resource, rl.price*1000, q.MaxPriceMsat), Fix: "raise max_price_msat, or choose a cheaper resource"}
	}
	return svc, rl, caps, nil
}

// serveQuote is the quote endpoint: a bundle in, a ready-to-pay L402
// challenge out, minted exactly as a 402 of the same resource would be
// and counted against the same limits.
func (g *Gate) serveQuote(w http.ResponseWriter, r *http.Request, st *state) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodPost:
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "POST")
		h.Set("Access-Control-Allow-Headers", "Content-Type")
		h.Set("Allow", "POST, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		h.Set("Allow", "POST, OPTIONS")
		writeQuoteError(w, &quoteError{status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Msg: r.Method + " is not allowed on " + QuotePath, Fix: "POST a JSON bundle"})
		return
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxQuoteBody))
	if err != nil {
		writeQuoteError(w, badQuote("malformed_request", "", "the body could not be read or is over "+strconv.Itoa(maxQuoteBody)+" bytes", "send a small JSON object"))
		return
	}
	req, err := ParseQuoteRequest(b)
	if err != nil {
		var qe *quoteError
		if !errors.As(err, &qe) {
			qe = badQuote("malformed_request", "", err.Error(), "send a JSON object as docs/gate.md describes")
		}
		writeQuoteError(w, qe)
		return
	}
	svc, rl, caps, qe := req.resolve(st.svcs, g.offered)
	if qe != nil {
		writeQuoteError(w, qe)
		return
	}
	var cr *credit
	if svc.prepaidCredit > 0 && g.prepaid != nil {
		rl, cr, _ = g.prepaidOffer(svc, nil)
	}
	ch, no := g.issueFor(r.Context(), svc, rl, g.clientAddr(r), caps, cr)
	if no != nil {
		e := &quoteError{status: no.status, Code: no.body.Code, Msg: no.body.Error, Fix: no.body.Fix}
		if no.status == http.StatusTooManyRequests {
			h.Set("Retry-After", strconv.Itoa(max(int(math.Ceil(no.wait.Seconds())), 1)))
			st.rt[svc.index].count(outRateLimited)
		} else {
			e.Code = "unpriceable"
			st.rt[svc.index].count(outError)
		}
		writeQuoteError(w, e)
		return
	}
	st.rt[svc.index].count(outChallenged)
	resp := QuoteResponse{PriceMsat: rl.price * 1000, QuoteExpiry: ch.ExpiresAt.Unix(), Macaroon: ch.Macaroon, Invoice: ch.Invoice,
		PaymentHash: ch.PaymentHash.String(), Service: svc.cfg.Name, Resource: rl.resource}
	if !ch.ValidUntil.IsZero() {
		resp.TokenValidUntil = ch.ValidUntil.Unix()
	}
	writeJSON(w, http.StatusOK, resp)
}

func writeQuoteError(w http.ResponseWriter, e *quoteError) {
	writeJSON(w, e.status, struct {
		Error *quoteError `json:"error"`
	}{e})
}
