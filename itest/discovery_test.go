//go:build itest

package itest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// testDiscovery checks the gate's L402 discovery documents (the draft's
// manifest and its OpenAPI profile) against the services of TestGate, and
// buys through the quote endpoint with bob's LND: the quote's invoice is
// the price the manifest lists, and the token it yields opens exactly the
// quoted resource.
func testDiscovery(t *testing.T, g *gateDaemon) {
	alice := testNet(t).Node("alice").Pubkey

	t.Run("manifest", func(t *testing.T) {
		r := g.get(t, "/.well-known/l402.json")
		prov := obj(r.json["provider"])
		if r.code != 200 || r.json["version"] != "1.0" || prov["node_pubkey"] != alice || r.json["quote_endpoint"] != "/l402/quote" || r.json["openapi"] != "/l402/openapi.json" {
			t.Fatalf("%d %s", r.code, r.raw)
		}
		var api map[string]any
		for _, s := range r.json["services"].([]any) {
			if obj(s)["name"] == "api" {
				api = obj(s)
			}
		}
		res, _ := api["resources"].([]any)
		if len(res) != 2 || obj(res[0])["path"] != "/api/premium/*" || num(obj(obj(res[0])["pricing"])["price_msat"]) != 50000 || obj(obj(res[0])["pricing"])["model"] != "fixed" {
			t.Fatalf("api resources %v", res)
		}
	})

	t.Run("openapi", func(t *testing.T) {
		r := g.get(t, "/l402/openapi.json")
		paths := obj(r.json["paths"])
		op := obj(obj(paths["/api/premium/*"])["get"])
		if r.code != 200 || r.json["openapi"] != "3.1.0" || obj(obj(r.json["info"])["x-l402-provider"])["node_pubkey"] != alice ||
			op["x-l402-service"] != "api" || num(obj(op["x-l402-pricing"])["price_msat"]) != 50000 || paths["/l402/quote"] == nil {
			t.Fatalf("%d %s", r.code, r.raw)
		}
	})

	t.Run("quote, pay, use", func(t *testing.T) {
		q := postQuote(t, g, `{"service":"api","resource":"/api/premium/*","max_price_msat":50000}`, 200)
		if num(q["price_msat"]) != 50000 || q["resource"] != "/api/premium/*" || num(q["quote_expiry"]) < float64(time.Now().Unix()) {
			t.Fatalf("quote %v", q)
		}
		pre := payInvoice(t, "bob", str(q["invoice"]))
		if ps := bobPayments(t, str(q["payment_hash"])); len(ps) != 1 || ps[0].ValueSat != 50 {
			t.Fatalf("bob's LND paid %v for a 50000 msat quote", ps)
		}
		auth := "L402 " + str(q["macaroon"]) + ":" + pre
		if r := g.get(t, "/api/premium/report", "Authorization", auth); r.code != 200 {
			t.Fatalf("quoted token refused: %d %s", r.code, r.raw)
		}

		// A quote for the service's own (cheaper) resource opens its paths, never the premium ones.
		cheap := postQuote(t, g, `{"service":"api"}`, 200)
		if num(cheap["price_msat"]) != 20000 || cheap["resource"] != "/api/*" {
			t.Fatalf("cheap quote %v", cheap)
		}
		cauth := "L402 " + str(cheap["macaroon"]) + ":" + payInvoice(t, "bob", str(cheap["invoice"]))
		if r := g.get(t, "/api/other", "Authorization", cauth); r.code != 200 {
			t.Fatalf("cheap token refused on its own path: %d %s", r.code, r.raw)
		}
		if r := g.get(t, "/api/premium/report", "Authorization", cauth); r.code != http.StatusPaymentRequired || r.json["reason"] != "wrong_resource" {
			t.Fatalf("a 20-sat quote opened a 50-sat path: %d %s", r.code, r.raw)
		}
	})

	t.Run("quote refusals name the field", func(t *testing.T) {
		for _, tc := range []struct {
			body, code, field string
			status            int
		}{
			{`{"service":"api","max_price_msat":19999}`, "unsatisfiable_budget", "max_price_msat", 409},
			{`{"service":"nope"}`, "unknown_service", "service", 400},
			{`{"service":"down"}`, "unknown_service", "service", 400},
			{`{"service":"api","capabilities":["write"]}`, "unknown_capability", "capabilities", 400},
			{`{"service":"api","tier":2}`, "unknown_tier", "tier", 400},
		} {
			e := obj(postQuote(t, g, tc.body, tc.status)["error"])
			if e["code"] != tc.code || e["field"] != tc.field || str(e["fix"]) == "" {
				t.Errorf("%s: %v", tc.body, e)
			}
		}
	})
}

// postQuote POSTs a quote request to the gate and checks the status.
func postQuote(t *testing.T, g *gateDaemon, body string, status int) map[string]any {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t, time.Minute), http.MethodPost, "http://"+g.gate+"/l402/quote", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || resp.StatusCode != status {
		t.Fatalf("quote %s: %d %s", body, resp.StatusCode, raw)
	}
	return m
}
