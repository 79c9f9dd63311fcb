//go:build itest

package itest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"

	"github.com/l402d/l402d/l402/x402"
)

// prepaidServices sells credit of 1,000 sats as L402 tokens, spent at 3
// sats a request and 10 on the dear paths, beside a service selling
// passes at 2.
func prepaidServices(upstream string) string {
	return fmt.Sprintf(`services:
  - name: credit
    path: /pre/*
    upstream: http://%[1]s
    price: 3
    pricing:
      - path: /pre/dear/*
        price: 10
    prepaid_credit: 1000
  - name: pass
    path: /pass/*
    upstream: http://%[1]s
    price: 2
  - name: bulk
    path: /bulk/*
    upstream: http://%[1]s
    price: 1
    prepaid_credit: 1000
`, upstream)
}

// refundReq POSTs a refund request with token auth and invoice.
func (g *gateDaemon) refund(t testing.TB, auth, invoice string) gateResp {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"invoice": invoice})
	req, err := http.NewRequestWithContext(testCtx(t, time.Minute), "POST", "http://"+g.gate+"/.well-known/l402/refund", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := gateResp{code: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.json)
	return r
}

// bobInvoice is an invoice of bob's (amount 0: amountless) and its hash.
func bobInvoice(t testing.TB, sats int64) (string, []byte) {
	t.Helper()
	inv, err := lnd(t, testNet(t), "bob").Lightning.AddInvoice(testCtx(t, time.Minute), &lnrpc.Invoice{Memo: "prepaid refund", Value: sats, Expiry: 24 * 3600})
	if err != nil {
		t.Fatal(err)
	}
	return inv.PaymentRequest, inv.RHash
}

// bobReceived is what bob's invoice of hash h received, msat (0: unpaid).
func bobReceived(t testing.TB, h []byte) int64 {
	t.Helper()
	inv, err := lnd(t, testNet(t), "bob").Lightning.LookupInvoice(testCtx(t, time.Minute), &lnrpc.PaymentHash{RHash: h})
	if err != nil {
		t.Fatal(err)
	}
	if inv.State != lnrpc.Invoice_SETTLED {
		return 0
	}
	return inv.AmtPaidMsat
}

// prepaidBook is the gate's record of the prepaid balance id, books checked.
func prepaidBook(t testing.TB, g *gateDaemon, id string) map[string]any {
	t.Helper()
	s := sessionBooks(t, g)[id]
	if s == nil || s["kind"] != "l402" {
		t.Fatalf("no prepaid balance %s in GET /api/l402/sessions: %v", id, s)
	}
	return s
}

// spendCredit spends one credit of 1,000 sats at 3 a request from 16
// clients (400 tried: exactly 333 served), then has its 1,000 msat of
// change refunded to a fresh invoice of bob's, which it returns.
func spendCredit(t *testing.T, g *gateDaemon, auth string) (refundInvoice string) {
	t.Helper()
	ok, refused := hammer(t, 16, 25, func() gateResp { return g.get(t, "/pre/a", "Authorization", auth) })
	if ok != 333 || refused != 67 {
		t.Fatalf("%d served, %d refused; want 333 and 67", ok, refused)
	}
	ret, retHash := bobInvoice(t, 0)
	if r := g.refund(t, auth, ret); r.code != 200 || msat(r.json["refundMsat"]) != 1000 || bobReceived(t, retHash) != 1000 {
		t.Fatalf("refund: %d %s", r.code, r.raw)
	}
	return ret
}

func TestPrepaidCredit(t *testing.T) {
	u := startGateUpstreams(t)
	g := startGateDaemon(t, prepaidServices(u.http), "--gate.mint-rate", "100", "--gate.mint-burst", "1000", "--gate.token-rate", "-1")

	t.Run("one payment buys 100 requests and more, a top-up more, and the change comes back", func(t *testing.T) {
		r := g.get(t, "/pre/a")
		if r.code != 402 {
			t.Fatalf("unpaid: %d %s", r.code, r.raw)
		}
		checkChallenge(t, r, 1000)
		pp, _ := r.json["prepaid"].(map[string]any)
		if num(r.json["priceSats"]) != 3 || pp == nil || num(pp["creditSats"]) != 1000 || pp["topUpOf"] != nil || pp["refundPath"] != "/.well-known/l402/refund" {
			t.Fatalf("402 body %s", r.raw)
		}
		// The credit's invoice is sold as a token only: paid as a single
		// MPP charge or x402 payment it would buy one request.
		if len(r.header.Values("WWW-Authenticate")) != 1 || r.header.Get(x402.HeaderPaymentRequired) != "" {
			t.Fatalf("a prepaid 402 offers more than the L402 credit: %q, %q", r.header.Values("WWW-Authenticate"), r.header.Get(x402.HeaderPaymentRequired))
		}
		id := str(r.json["paymentHash"])
		auth := "L402 " + str(r.json["macaroon"]) + ":" + payInvoice(t, "bob", str(r.json["invoice"]))
		for i := 1; i <= 100; i++ {
			if r := g.get(t, "/pre/a", "Authorization", auth); r.code != 200 || balanceOf(t, r) != 1_000_000-int64(i)*3000 {
				t.Fatalf("request %d: %d %s balance %s", i, r.code, r.raw, r.header.Get("L402-Balance-Msat"))
			}
		}
		// The dear path costs its own price from the same credit.
		for i := 1; i <= 70; i++ {
			if r := g.get(t, "/pre/dear/x", "Authorization", auth); r.code != 200 || balanceOf(t, r) != 700_000-int64(i)*10_000 {
				t.Fatalf("dear request %d: %d %s", i, r.code, r.raw)
			}
		}
		// Empty: 402 with a top-up of the same balance.
		r = g.get(t, "/pre/dear/y", "Authorization", auth)
		pp, _ = r.json["prepaid"].(map[string]any)
		if r.code != 402 || r.json["reason"] != "insufficient_balance" || pp == nil || pp["topUpOf"] != id || num(pp["balanceMsat"]) != 0 {
			t.Fatalf("empty balance: %d %s", r.code, r.raw)
		}
		top := "L402 " + str(r.json["macaroon"]) + ":" + payInvoice(t, "bob", str(r.json["invoice"]))
		if r := g.get(t, "/pre/dear/y", "Authorization", top); r.code != 200 || balanceOf(t, r) != 990_000 {
			t.Fatalf("top-up: %d %s", r.code, r.raw)
		}
		// Either token spends the one balance; the top-up credits once.
		if r := g.get(t, "/pre/a", "Authorization", auth); r.code != 200 || balanceOf(t, r) != 987_000 {
			t.Fatalf("first token after the top-up: %d %s", r.code, r.raw)
		}
		if r := g.get(t, "/pre/a", "Authorization", top); r.code != 200 || balanceOf(t, r) != 984_000 {
			t.Fatalf("top-up token again: %d %s", r.code, r.raw)
		}

		// Refund: a bad invoice is refused and changes nothing.
		withAmount, _ := bobInvoice(t, 5)
		if r := g.refund(t, auth, withAmount); r.code != 400 || r.json["field"] != "invoice" {
			t.Fatalf("refund to an invoice with an amount: %d %s", r.code, r.raw)
		}
		ret, retHash := bobInvoice(t, 0)
		r = g.refund(t, top, ret)
		if r.code != 200 || msat(r.json["refundMsat"]) != 984_000 || r.json["refundStatus"] != "succeeded" || r.json["sessionId"] != id {
			t.Fatalf("refund: %d %s", r.code, r.raw)
		}
		if got := bobReceived(t, retHash); got != 984_000 {
			t.Fatalf("bob's invoice received %d msat, want 984000", got)
		}
		// A retried refund (another invoice, even) answers the first, paid once.
		other, otherHash := bobInvoice(t, 0)
		if r := g.refund(t, auth, other); r.code != 200 || msat(r.json["refundMsat"]) != 984_000 || bobReceived(t, otherHash) != 0 {
			t.Fatalf("second refund: %d %s", r.code, r.raw)
		}
		// Closed: both tokens buy nothing, and the 402 sells new credit.
		for _, a := range []string{auth, top} {
			r := g.get(t, "/pre/a", "Authorization", a)
			pp, _ := r.json["prepaid"].(map[string]any)
			if r.code != 402 || r.json["reason"] != "session_closed" || pp == nil || pp["topUpOf"] != nil {
				t.Fatalf("after the refund: %d %s", r.code, r.raw)
			}
		}
		s := prepaidBook(t, g, id)
		if msat(s["depositedMsat"]) != 2_000_000 || msat(s["debitedMsat"]) != 1_016_000 || msat(s["requests"]) != 173 || msat(s["topUps"]) != 1 ||
			s["state"] != "closed" {
			t.Fatalf("books %v", s)
		}
	})

	t.Run("bob's l402d buys 1,000 requests with one payment and gets its change back", func(t *testing.T) {
		bob := startBob(t)
		access := func(path string) map[string]any {
			t.Helper()
			code, out := bob.call(t, "POST", "/api/consumer/access", map[string]any{"url": "http://" + g.gate + path, "maxSats": 1000})
			if code != 200 || msat(out["status"]) != 200 {
				t.Fatalf("access %s: %d %v", path, code, out)
			}
			return out
		}
		first := access("/bulk/a")
		if first["paid"] != true {
			t.Fatalf("first access: %v", first)
		}
		var id string
		for i := 2; i <= 1000; i++ {
			if out := access("/bulk/a"); out["paid"] != false {
				t.Fatalf("access %d paid again: %v", i, out)
			}
		}
		code, list := bob.call(t, "GET", "/api/consumer/sessions", nil)
		for _, x := range list["sessions"].([]any) {
			if s := x.(map[string]any); s["kind"] == "l402" && msat(s["depositedMsat"]) == 1_000_000 {
				id = str(s["sessionId"])
			}
		}
		if code != 200 || id == "" {
			t.Fatalf("bob holds no prepaid balance: %d %v", code, list)
		}
		if s := prepaidBook(t, g, id); msat(s["requests"]) != 1000 || msat(s["debitedMsat"]) != 1_000_000 {
			t.Fatalf("alice's books after 1,000 requests %v", s)
		}
		// Spent: the next request tops the same balance up.
		if out := access("/bulk/b"); out["paid"] != true {
			t.Fatalf("top-up access: %v", out)
		}
		code, out := bob.call(t, "POST", "/api/consumer/sessions/"+id+"/close", nil)
		if code != 200 || out["state"] != "refunded" || msat(out["refundMsat"]) != 999_000 || out["kind"] != "l402" {
			t.Fatalf("close: %d %v", code, out)
		}
		// What bob spent is what alice's gate debited: two credits paid
		// once each, the rest back on bob's node.
		s := prepaidBook(t, g, id)
		if msat(s["depositedMsat"]) != 2_000_000 || msat(s["debitedMsat"]) != 1_001_000 || msat(s["refundMsat"]) != 999_000 || s["refundStatus"] != "succeeded" || msat(s["topUps"]) != 1 {
			t.Fatalf("alice's books %v", s)
		}
		if ps := bobPayments(t, id); len(ps) != 1 || ps[0].ValueMsat != 1_000_000 {
			t.Fatalf("bob paid the credit %d times", len(ps))
		}
		if code, out := bob.call(t, "POST", "/api/consumer/sessions/"+id+"/close", nil); code != 200 || out["state"] != "refunded" || msat(out["refundMsat"]) != 999_000 {
			t.Fatalf("second close: %d %v", code, out)
		}
		code, list = bob.call(t, "GET", "/api/consumer/sessions", nil)
		if n := len(list["sessions"].([]any)); code != 200 || n != 1 {
			t.Fatalf("bob holds %d records of one balance: %v", n, list)
		}
	})

	t.Run("a pass is no credit, and credit is no pass elsewhere", func(t *testing.T) {
		pass, _ := g.buy(t, "/pass/a", 2)
		if r := g.get(t, "/pass/a", "Authorization", pass); r.code != 200 || r.header.Get("L402-Balance-Msat") != "" {
			t.Fatalf("pass: %d %s", r.code, r.raw)
		}
		ret, _ := bobInvoice(t, 0)
		if r := g.refund(t, pass, ret); r.code != 401 || r.json["code"] != "wrong_amount" {
			t.Fatalf("refund of a pass: %d %s", r.code, r.raw)
		}
		r := g.get(t, "/pre/a")
		credit := "L402 " + str(r.json["macaroon"]) + ":" + payInvoice(t, "bob", str(r.json["invoice"]))
		if r := g.get(t, "/pass/a", "Authorization", credit); r.code != 402 || (r.json["reason"] != "wrong_service" && r.json["reason"] != "wrong_resource") {
			t.Fatalf("credit of one service on another: %d %s", r.code, r.raw)
		}
		if r := g.refund(t, "L402 garbage:00", ret); r.code == 200 || r.code >= 500 {
			t.Fatalf("refund with a bad token: %d %s", r.code, r.raw)
		}
	})

	t.Run("16 clients on one credit never overdraw", func(t *testing.T) {
		r := g.get(t, "/pre/a")
		id := str(r.json["paymentHash"])
		auth := "L402 " + str(r.json["macaroon"]) + ":" + payInvoice(t, "bob", str(r.json["invoice"]))
		ret := spendCredit(t, g, auth)
		// A credit never used is refunded whole, but not to an invoice
		// that took another refund: paid once, it would be "found paid"
		// and the second refund never made.
		r = g.get(t, "/pre/a")
		unused := "L402 " + str(r.json["macaroon"]) + ":" + payInvoice(t, "bob", str(r.json["invoice"]))
		if r := g.refund(t, unused, ret); r.code != 400 || r.json["field"] != "invoice" {
			t.Fatalf("refund to a used invoice: %d %s", r.code, r.raw)
		}
		fresh, freshHash := bobInvoice(t, 0)
		if r := g.refund(t, unused, fresh); r.code != 200 || msat(r.json["refundMsat"]) != 1_000_000 || bobReceived(t, freshHash) != 1_000_000 {
			t.Fatalf("refund of an unused credit: %d %s", r.code, r.raw)
		}
		if s := prepaidBook(t, g, id); msat(s["requests"]) != 333 || msat(s["debitedMsat"]) != 999_000 {
			t.Fatalf("books %v", s)
		}
	})

	t.Run("kill -9 under load and at the refund: every answer was paid for and the refund is paid once", func(t *testing.T) {
		r := g.get(t, "/pre/a")
		id := str(r.json["paymentHash"])
		auth := "L402 " + str(r.json["macaroon"]) + ":" + payInvoice(t, "bob", str(r.json["invoice"]))
		served := killUnderLoad(t, g, "/pre/a", auth)
		s := prepaidBook(t, g, id)
		if got := msat(s["requests"]); got < served.Load() || msat(s["debitedMsat"]) != got*3000 {
			t.Fatalf("%d requests answered 200 but %d debited: %v", served.Load(), got, s)
		}

		ret, retHash := bobInvoice(t, 0)
		done := make(chan struct{})
		go func() {
			defer close(done)
			body, _ := json.Marshal(map[string]string{"invoice": ret})
			req, _ := http.NewRequest("POST", "http://"+g.gate+"/.well-known/l402/refund", bytes.NewReader(body))
			req.Header.Set("Authorization", auth)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		waitFor(t, 30*time.Second, "the close to reach the store", func() error {
			if bobReceived(t, retHash) > 0 {
				return nil
			}
			if s := sessionBooks(t, g)[id]; s["state"] == "open" {
				return fmt.Errorf("still open")
			}
			return nil
		})
		g.kill9(t)
		<-done
		g.start(t)
		r = g.refund(t, auth, ret)
		if r.code != 200 {
			t.Fatalf("refund after restart: %d %s", r.code, r.raw)
		}
		want := msat(r.json["refundMsat"])
		waitFor(t, time.Minute, "the refund to be recorded", func() error {
			if s := prepaidBook(t, g, id); s["refundStatus"] != "succeeded" {
				return fmt.Errorf("refund %v", s["refundStatus"])
			}
			return nil
		})
		s = prepaidBook(t, g, id)
		if got := bobReceived(t, retHash); got != want || want != msat(s["refundMsat"]) || want == 0 {
			t.Fatalf("bob received %d msat; the gate owes %d (refund said %d)", got, msat(s["refundMsat"]), want)
		}
		if msat(s["depositedMsat"]) != 1_000_000 || msat(s["debitedMsat"]) != msat(s["requests"])*3000 {
			t.Fatalf("books %v", s)
		}
	})
}

// TestPrepaidDebitAllowance: a gate that debits prepaid credit in memory
// (--db.debit-allowance-msat, 10 requests' worth) still never overdraws
// under 16 clients, and a kill -9 under load loses at most the allowance
// of the debits answered — to the seller — while the books balance and
// the refund pays exactly what the books owe.
func TestPrepaidDebitAllowance(t *testing.T) {
	const allowance = 30_000 // 10 requests at 3 sats
	u := startGateUpstreams(t)
	g := startGateDaemon(t, prepaidServices(u.http), "--gate.mint-rate", "100", "--gate.mint-burst", "1000", "--gate.token-rate", "-1",
		"--db.debit-allowance-msat", strconv.Itoa(allowance))
	buy := func() (id, auth string) {
		r := g.get(t, "/pre/a")
		return str(r.json["paymentHash"]), "L402 " + str(r.json["macaroon"]) + ":" + payInvoice(t, "bob", str(r.json["invoice"]))
	}

	t.Run("16 clients on one credit never overdraw", func(t *testing.T) {
		id, auth := buy()
		spendCredit(t, g, auth)
		if s := prepaidBook(t, g, id); msat(s["requests"]) != 333 || msat(s["debitedMsat"]) != 999_000 {
			t.Fatalf("books %v", s)
		}
	})

	t.Run("kill -9 under load loses at most the allowance, to the seller; the refund pays the books", func(t *testing.T) {
		id, auth := buy()
		served := killUnderLoad(t, g, "/pre/a", auth)
		s := prepaidBook(t, g, id)
		got := msat(s["requests"])
		// killUnderLoad's 4 clients may have had a debited request in
		// flight, unanswered, when the kill came.
		if lost := served.Load()*3000 - msat(s["debitedMsat"]); lost > allowance || got > served.Load()+4 || msat(s["debitedMsat"]) != got*3000 {
			t.Fatalf("%d requests answered 200, %d debited after the crash (allowance %d msat): %v", served.Load(), got, allowance, s)
		}
		t.Logf("%d requests answered, %d on disk after kill -9 (allowance: 10)", served.Load(), got)
		ret, retHash := bobInvoice(t, 0)
		r := g.refund(t, auth, ret)
		if r.code != 200 {
			t.Fatalf("refund: %d %s", r.code, r.raw)
		}
		waitFor(t, time.Minute, "the refund to be recorded", func() error {
			if s := prepaidBook(t, g, id); s["refundStatus"] != "succeeded" {
				return fmt.Errorf("refund %v", s["refundStatus"])
			}
			return nil
		})
		s = prepaidBook(t, g, id)
		if want := msat(s["depositedMsat"]) - msat(s["debitedMsat"]); bobReceived(t, retHash) != want || msat(s["refundMsat"]) != want {
			t.Fatalf("bob received %d msat; the books owe %d: %v", bobReceived(t, retHash), want, s)
		}
	})
}
