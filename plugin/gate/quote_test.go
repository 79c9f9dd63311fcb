package gate

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402"
)

// quote POSTs body to the quote endpoint.
func (f *fixture) quote(body string) *httptest.ResponseRecorder {
	f.t.Helper()
	r := httptest.NewRequest(http.MethodPost, QuotePath, strings.NewReader(body))
	r.RemoteAddr = "192.0.2.1:5555"
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

// token pays a quote (looks up its preimage) and returns the
// Authorization value.
func (f *fixture) token(q QuoteResponse) string {
	f.t.Helper()
	h, err := lntypes.MakeHashFromStr(q.PaymentHash)
	if err != nil {
		f.t.Fatal(err)
	}
	pre, ok := f.lnd.preimage(h)
	if !ok {
		f.t.Fatal("no invoice for the quote")
	}
	return l402.AuthorizationValue(q.Macaroon, pre)
}

func decodeQuote(t *testing.T, w *httptest.ResponseRecorder) QuoteResponse {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("quote: %d %s", w.Code, w.Body)
	}
	var q QuoteResponse
	if err := json.Unmarshal(w.Body.Bytes(), &q); err != nil {
		t.Fatal(err)
	}
	return q
}

const quoteServices = testServices + `
  - name: mpponly
    path: /mpp/*
    price: 3
    schemes: [mpp]
`

func TestQuote(t *testing.T) {
	f := newFixture(t, quoteServices, nil)

	t.Run("a quote is a challenge for the service's own price", func(t *testing.T) {
		q := decodeQuote(t, f.quote(`{"service":"api","unknown_member":{"x":1}}`))
		if q.PriceMsat != 10000 || q.Resource != "/api/*" || q.Service != "api" || q.Macaroon == "" || q.Invoice == "" || q.QuoteExpiry == 0 || q.TokenValidUntil == 0 {
			t.Fatalf("%+v", q)
		}
		auth := f.token(q)
		if w := f.do("GET", "/api/x", "Authorization", auth); w.Code != 200 || w.Header().Get("X-Next") != "1" {
			t.Fatalf("paid quote refused: %d %s", w.Code, w.Body)
		}
		// The 10-sat token must not open the 100-sat paths.
		if w := f.do("GET", "/api/premium/x", "Authorization", auth); w.Code != http.StatusPaymentRequired {
			t.Fatalf("cheap quote opened a premium path: %d", w.Code)
		}
		if w := f.do("GET", "/other/x", "Authorization", auth); w.Code != http.StatusPaymentRequired {
			t.Fatalf("quote for api opened other: %d", w.Code)
		}
	})

	t.Run("a resource of the service at its own price", func(t *testing.T) {
		q := decodeQuote(t, f.quote(`{"service":"api","resource":"/api/premium/*","capabilities":["read"],"max_price_msat":100000,"tier":0}`))
		if q.PriceMsat != 100000 || q.Resource != "/api/premium/*" {
			t.Fatalf("%+v", q)
		}
		if w := f.do("GET", "/api/premium/x", "Authorization", f.token(q)); w.Code != 200 {
			t.Fatalf("premium quote refused: %d %s", w.Code, w.Body)
		}
	})

	for _, tc := range []struct {
		name, body string
		status     int
		code, fld  string
	}{
		{"empty body", ``, 400, "malformed_request", ""},
		{"not an object", `[1]`, 400, "malformed_request", ""},
		{"no service", `{}`, 400, "malformed_request", "service"},
		{"service of the wrong type", `{"service":5}`, 400, "malformed_request", "service"},
		{"unknown service", `{"service":"nope"}`, 400, "unknown_service", "service"},
		{"free service", `{"service":"free"}`, 400, "unknown_service", "service"},
		{"service without L402", `{"service":"mpponly"}`, 400, "unsupported_scheme", "service"},
		{"unknown resource", `{"service":"api","resource":"/other/*"}`, 400, "unknown_resource", "resource"},
		{"unknown capability", `{"service":"api","capabilities":["write"]}`, 400, "unknown_capability", "capabilities"},
		{"tier", `{"service":"api","tier":1}`, 400, "unknown_tier", "tier"},
		{"constraint", `{"service":"api","constraints":{"valid_until":1}}`, 400, "invalid_constraint", "constraints.valid_until"},
		{"bolt12", `{"service":"api","payment_method":"bolt12"}`, 400, "unsupported_payment_method", "payment_method"},
		{"negative budget", `{"service":"api","max_price_msat":-1}`, 400, "malformed_request", "max_price_msat"},
		{"over budget", `{"service":"api","max_price_msat":9999}`, 409, "unsatisfiable_budget", "max_price_msat"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := f.quote(tc.body)
			var e struct {
				Error quoteError `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != tc.status || e.Error.Code != tc.code || e.Error.Field != tc.fld || e.Error.Msg == "" || e.Error.Fix == "" {
				t.Fatalf("%d %s (err %v)", w.Code, w.Body, err)
			}
		})
	}

	t.Run("methods", func(t *testing.T) {
		if w := f.do("GET", QuotePath); w.Code != 405 || w.Header().Get("Allow") != "POST, OPTIONS" {
			t.Fatalf("GET: %d %v", w.Code, w.Header())
		}
		if w := f.do("OPTIONS", QuotePath); w.Code != 204 || w.Header().Get("Access-Control-Allow-Methods") != "POST" {
			t.Fatalf("OPTIONS: %d %v", w.Code, w.Header())
		}
	})
}

// Quotes spend the same mint allowance as 402s: a client cannot mint
// invoices faster through the quote endpoint.
func TestQuoteLimits(t *testing.T) {
	f := newFixture(t, testServices, func(c *Config) { c.MintRate, c.MintBurst = 1, 3 })
	f.do("GET", "/api/x") // one 402
	for range 2 {
		decodeQuote(t, f.quote(`{"service":"api"}`))
	}
	w := f.quote(`{"service":"api"}`)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), `"rate_limited"`) {
		t.Fatalf("fourth mint: %d %s", w.Code, w.Body)
	}

	down := newFixture(t, testServices, nil)
	down.lnd.down = true
	if w := down.quote(`{"service":"api"}`); w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"unpriceable"`) {
		t.Fatalf("LND down: %d %s", w.Code, w.Body)
	}
}

// TestOpenAPIOperationIDsUnique: paths that spell one operation id
// ("/api/a-b" and "/api/a_b") get distinct ids, as OpenAPI requires.
func TestOpenAPIOperationIDsUnique(t *testing.T) {
	f := newFixture(t, `services:
  - name: api
    path: /api/*
    price: 1
    pricing:
      - path: /api/a-b
        price: 2
      - path: /api/a_b
        price: 3
`, nil)
	w := f.do("GET", OpenAPIPath)
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for p, ops := range doc.Paths {
		for _, op := range ops {
			if op.OperationID == "" {
				continue
			}
			if other, dup := seen[op.OperationID]; dup {
				t.Fatalf("operationId %q names %s and %s", op.OperationID, other, p)
			}
			seen[op.OperationID] = p
		}
	}
	if len(seen) < 4 {
		t.Fatalf("operations %v, want the three priced paths and the quote", seen)
	}
}
