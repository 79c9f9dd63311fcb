//go:build itest

package itest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// startPricer serves alice's pricer on loopback: X-Model big costs 20
// sats, anything else 2, answers cached for a minute. It counts its calls.
func startPricer(t *testing.T) (addr string, calls *atomic.Int64, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	calls = new(atomic.Int64)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var req struct {
			Headers map[string][]string `json:"headers"`
			Body    []byte              `json:"body"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		price := 2
		if m := req.Headers["X-Model"]; len(m) > 0 && m[0] == "big" {
			price = 20
		}
		fmt.Fprintf(w, `{"priceSats": %d, "cacheSeconds": 60}`, price)
	})}
	go srv.Serve(ln)
	stop = func() { srv.Close() }
	t.Cleanup(stop)
	return ln.Addr().String(), calls, stop
}

func TestDynamicPrices(t *testing.T) {
	u := startGateUpstreams(t)
	pricer, calls, stopPricer := startPricer(t)
	g := startGateDaemon(t, fmt.Sprintf(`services:
  - name: llm
    path: /llm/*
    upstream: http://%s
    price: 2
    pricer_url: http://%s/price
    pricer_headers: [X-Model]
    pricer_max: 50
    pricer_fallback: 5
    session_deposit: 100
`, u.http, pricer), "--gate.mint-rate", "100", "--gate.mint-burst", "1000")

	t.Run("the pricer's answer is the price of the 402 and of what a credential must have paid", func(t *testing.T) {
		small, body := g.buy(t, "/llm/chat", 2, "X-Model", "small")
		if num(body["priceSats"]) != 2 {
			t.Fatalf("402 %v", body)
		}
		if r := g.get(t, "/llm/chat", "X-Model", "small", "Authorization", small); r.code != 200 {
			t.Fatalf("small with its token: %d %s", r.code, r.raw)
		}
		r := g.get(t, "/llm/chat", "X-Model", "big", "Authorization", small)
		if r.code != 402 || r.json["reason"] != "wrong_amount" || num(r.json["amountSats"]) != 20 {
			t.Fatalf("big with a 2-sat token: %d %s", r.code, r.raw)
		}
		big := "L402 " + str(r.json["macaroon"]) + ":" + payInvoice(t, "bob", str(r.json["invoice"]))
		for _, model := range []string{"big", "small"} { // a 20-sat token buys either
			if r := g.get(t, "/llm/chat", "X-Model", model, "Authorization", big); r.code != 200 {
				t.Fatalf("%s with the 20-sat token: %d %s", model, r.code, r.raw)
			}
		}
		// Answers are cached per model: a few calls, not one per request.
		if n := calls.Load(); n > 4 {
			t.Fatalf("the pricer was called %d times for 2 distinct requests", n)
		}
	})

	t.Run("a session is debited each request's price", func(t *testing.T) {
		b, r := openSession(t, g, "/llm/chat")
		if r.code != 200 || balanceOf(t, r) != 98_000 {
			t.Fatalf("open: %d %s", r.code, r.raw)
		}
		if r := g.get(t, "/llm/chat", "Authorization", sessionAuth(t, b), "X-Model", "big"); r.code != 200 || balanceOf(t, r) != 78_000 {
			t.Fatalf("big on the session: %d %s", r.code, r.raw)
		}
		if r := b.closeAt(t, "/llm/chat"); r.code != 200 || msat(r.json["refundMsat"]) != 78_000 || b.refundPaid(t) != 78_000 {
			t.Fatalf("close: %d %s", r.code, r.raw)
		}
	})

	t.Run("a pricer that is down gives way to the fallback price", func(t *testing.T) {
		stopPricer()
		_, body := g.buy(t, "/llm/other", 5, "X-Model", "new")
		if num(body["priceSats"]) != 5 {
			t.Fatalf("402 %v", body)
		}
		waitFor(t, 10*time.Second, "the discovery document to say the service is priced per request", func() error {
			r := g.get(t, "/.well-known/l402.json")
			for _, x := range r.json["services"].([]any) {
				if s := x.(map[string]any); s["name"] == "llm" && s["pricedPerRequest"] == true && num(s["maxPriceSats"]) == 50 {
					return nil
				}
			}
			return fmt.Errorf("discovery: %s", r.raw)
		})
	})
}
