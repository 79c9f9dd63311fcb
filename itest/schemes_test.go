//go:build itest

package itest

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/l402/mpp"
	"github.com/l402d/l402d/l402/x402"
)

// schemeServices offers one service in all three schemes and one in
// each scheme alone.
func schemeServices(upstream string) string {
	return fmt.Sprintf(`services:
  - name: all
    path: /all/*
    upstream: http://%[1]s
    price: 5
    pricing:
      - path: /all/premium/*
        price: 50
  - name: mpponly
    path: /mpp/*
    upstream: http://%[1]s
    price: 6
    schemes: [mpp]
  - name: x402only
    path: /x402/*
    upstream: http://%[1]s
    price: 7
    schemes: [x402]
  - name: flaky
    path: /flaky/*
    upstream: http://%[1]s
    price: 8
    schemes: [mpp, x402]
`, upstream)
}

// offer is one 402 read in every scheme it offers.
type offer struct {
	resp    gateResp
	hash    string // the body's paymentHash
	invoice string
	l402    *l402.Challenge
	mpp     *mpp.Challenge
	x402    *x402.PaymentRequirements
	x402Res *x402.ResourceInfo
}

// offerFor gets a 402 for path and parses every challenge in it.
func (g *gateDaemon) offerFor(t testing.TB, path string) offer {
	t.Helper()
	r := g.get(t, path)
	if r.code != http.StatusPaymentRequired {
		t.Fatalf("GET %s unpaid: %d %s", path, r.code, r.raw)
	}
	o := offer{resp: r, hash: str(r.json["paymentHash"]), invoice: str(r.json["invoice"])}
	if cs, err := l402.ParseChallenges(r.header.Values("WWW-Authenticate")); err == nil {
		o.l402 = &cs[0]
	}
	if cs, err := mpp.ParseChallengesHeader(r.header); err == nil && len(cs) > 0 {
		o.mpp = &cs[0]
	}
	if v := r.header.Get(x402.HeaderPaymentRequired); v != "" {
		pr, err := x402.DecodePaymentRequired(v)
		if err != nil {
			t.Fatalf("PAYMENT-REQUIRED: %v", err)
		}
		if offers := pr.LightningOffers(); len(offers) == 1 {
			o.x402, o.x402Res = &offers[0], pr.Resource
		}
	}
	return o
}

// mppAuth answers the offer's Payment challenge with preimage.
func (o offer) mppAuth(t testing.TB, preimage string) string {
	t.Helper()
	pre, err := lntypes.MakePreimageFromStr(preimage)
	if err != nil {
		t.Fatal(err)
	}
	v, err := mpp.NewChargeCredential(*o.mpp, pre)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// x402Sig answers the offer's x402 requirement with preimage.
func (o offer) x402Sig(t testing.TB, preimage string) string {
	t.Helper()
	pre, err := lntypes.MakePreimageFromStr(preimage)
	if err != nil {
		t.Fatal(err)
	}
	v, err := x402.EncodeHeader(x402.NewLightningPayment(*o.x402, o.x402Res, pre))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSchemes(t *testing.T) {
	u := startGateUpstreams(t)
	g := startGateDaemon(t, schemeServices(u.http), "--gate.mint-rate", "100", "--gate.mint-burst", "1000")
	alice := testNet(t).Node("alice").Pubkey

	t.Run("one invoice offered in three schemes", func(t *testing.T) {
		o := g.offerFor(t, "/all/x")
		if o.l402 == nil || o.mpp == nil || o.x402 == nil {
			t.Fatalf("402 offers L402 %v, MPP %v, x402 %v; want all three:\n%v", o.l402 != nil, o.mpp != nil, o.x402 != nil, o.resp.header)
		}
		if o.l402.Invoice != o.invoice {
			t.Errorf("L402 invoice differs from the body's")
		}
		req, err := o.mpp.ChargeRequest()
		if err != nil {
			t.Fatal(err)
		}
		if req.MethodDetails.Invoice != o.invoice || req.MethodDetails.PaymentHash != o.hash || req.Amount != "5" || req.Currency != "sat" ||
			req.MethodDetails.Network != "regtest" || o.mpp.Realm == "" || o.mpp.Expires == "" {
			t.Errorf("MPP challenge %+v request %+v", o.mpp, req)
		}
		e, _ := o.x402.LightningExtra()
		if e.Invoice != o.invoice || o.x402.Amount != "5000" || o.x402.PayTo != alice || o.x402.Network != x402.NetworkRegtest ||
			o.x402Res == nil || o.x402Res.URL != "http://"+g.gate+"/all/x" {
			t.Errorf("x402 requirement %+v resource %+v", o.x402, o.x402Res)
		}
		if got := fmt.Sprint(o.resp.json["schemes"]); got != "[l402 mpp x402]" {
			t.Errorf("body schemes %s", got)
		}
		if l := o.resp.header.Get("Link"); l != `</.well-known/l402.json>; rel="l402-manifest"` {
			t.Errorf("Link %q", l)
		}
	})

	t.Run("MPP charge buys one request", func(t *testing.T) {
		o := g.offerFor(t, "/all/mpp")
		pre := payInvoice(t, "bob", o.invoice)
		auth := o.mppAuth(t, pre)
		r := g.get(t, "/all/mpp", "Authorization", auth)
		if r.code != 200 || r.json["path"] != "/all/mpp" || r.json["authorization"] != "" {
			t.Fatalf("paid MPP request: %d %s", r.code, r.raw)
		}
		rc, err := mpp.ParseReceipt(r.header.Get(mpp.HeaderReceipt))
		if err != nil || rc.Reference != o.hash || rc.ChallengeID != o.mpp.ID || rc.Method != "lightning" {
			t.Fatalf("Payment-Receipt %+v: %v", rc, err)
		}
		// Single use, whatever scheme it comes back in.
		if r := g.get(t, "/all/mpp", "Authorization", auth); r.code != 402 || r.json["reason"] != "consumed" {
			t.Fatalf("MPP replay: %d %v", r.code, r.json)
		}
		if r := g.get(t, "/all/mpp", x402.HeaderPaymentSignature, o.x402Sig(t, pre)); r.code != 402 || r.json["reason"] != "consumed" {
			t.Fatalf("the same payment as x402: %d %v", r.code, r.json)
		}
		tok := "L402 " + o.l402.Macaroon + ":" + pre
		if r := g.get(t, "/all/mpp", "Authorization", tok); r.code != 402 || r.json["reason"] != "revoked" {
			t.Fatalf("the same payment's L402 token: %d %v", r.code, r.json)
		}
	})

	t.Run("x402 payment buys one request", func(t *testing.T) {
		o := g.offerFor(t, "/all/x402")
		pre := payInvoice(t, "bob", o.invoice)
		sig := o.x402Sig(t, pre)
		r := g.get(t, "/all/x402", x402.HeaderPaymentSignature, sig)
		if r.code != 200 || r.json["path"] != "/all/x402" {
			t.Fatalf("paid x402 request: %d %s", r.code, r.raw)
		}
		sr, err := x402.DecodeSettlementResponse(r.header.Get(x402.HeaderPaymentResponse))
		if err != nil || !sr.Success || sr.Transaction != o.hash || sr.Network != x402.NetworkRegtest {
			t.Fatalf("PAYMENT-RESPONSE %+v: %v", sr, err)
		}
		if r := g.get(t, "/all/x402", x402.HeaderPaymentSignature, sig); r.code != 402 || r.json["reason"] != "consumed" {
			t.Fatalf("x402 replay: %d %v", r.code, r.json)
		}
		if r := g.get(t, "/all/x402", "Authorization", o.mppAuth(t, pre)); r.code != 402 || r.json["reason"] != "consumed" {
			t.Fatalf("the same payment as MPP: %d %v", r.code, r.json)
		}
	})

	t.Run("a charge whose upstream does not answer is given back", func(t *testing.T) {
		for _, scheme := range []string{"mpp", "x402"} {
			path := "/flaky/" + scheme
			o := g.offerFor(t, path)
			pre := payInvoice(t, "bob", o.invoice)
			name, value := "Authorization", o.mppAuth(t, pre)
			if scheme == "x402" {
				name, value = x402.HeaderPaymentSignature, o.x402Sig(t, pre)
			}
			u.flaky.Store(true)
			r := g.get(t, path, name, value)
			u.flaky.Store(false)
			if r.code != http.StatusBadGateway || r.header.Get(mpp.HeaderReceipt) != "" || r.header.Get(x402.HeaderPaymentResponse) != "" {
				t.Fatalf("%s, upstream silent: %d %v %s", scheme, r.code, r.header, r.raw)
			}
			r = g.get(t, path, name, value)
			if r.code != 200 || r.json["path"] != path || (r.header.Get(mpp.HeaderReceipt) == "" && r.header.Get(x402.HeaderPaymentResponse) == "") {
				t.Fatalf("%s, the same credential once the upstream is back: %d %v %s", scheme, r.code, r.header, r.raw)
			}
			if r := g.get(t, path, name, value); r.code != 402 || r.json["reason"] != "consumed" {
				t.Fatalf("%s, a third use of one payment: %d %s", scheme, r.code, r.raw)
			}
		}
		// l402d's consumer: it pays once, keeps the credential over the
		// 502, and the next access buys with it, paying nothing more.
		bob := startBob(t)
		u.flaky.Store(true)
		code, out := access(t, bob, "http://"+g.gate+"/flaky/bob", 0)
		u.flaky.Store(false)
		hash := str(obj(out["payment"])["paymentHash"])
		if code != 200 || out["status"] != 502.0 || out["paid"] != true || hash == "" {
			t.Fatalf("bob, upstream silent: %d %v", code, out)
		}
		code, out = access(t, bob, "http://"+g.gate+"/flaky/bob", 0)
		if code != 200 || out["status"] != 200.0 || out["paid"] == true {
			t.Fatalf("bob, once the upstream is back: %d %v", code, out)
		}
		if ps := bobPayments(t, hash); len(ps) != 1 {
			t.Fatalf("bob's LND paid %s %d times", hash, len(ps))
		}
	})

	t.Run("a refused charge is not spent", func(t *testing.T) {
		o := g.offerFor(t, "/all/cheap")
		pre := payInvoice(t, "bob", o.invoice)
		auth := o.mppAuth(t, pre)
		// Bought at 5 sats under /all/*: no good for a 50-sat path, and
		// still good where it was bought for.
		if r := g.get(t, "/all/premium/report", "Authorization", auth); r.code != 402 || r.json["reason"] != "wrong_resource" {
			t.Fatalf("cheap charge on a premium path: %d %v", r.code, r.json)
		}
		if r := g.get(t, "/all/premium/report", x402.HeaderPaymentSignature, o.x402Sig(t, pre)); r.code != 402 || r.json["reason"] != "wrong_resource" {
			t.Fatalf("cheap x402 payment on a premium path: %d %v", r.code, r.json)
		}
		// A wrong preimage, a tampered challenge: refused, nothing spent.
		if r := g.get(t, "/all/cheap", "Authorization", o.mppAuth(t, hex.EncodeToString(make([]byte, 32)))); r.code != 402 || r.json["reason"] != "wrong_preimage" {
			t.Fatalf("wrong preimage: %d %v", r.code, r.json)
		}
		tampered := *o.mpp
		tampered.Expires = "2099-01-01T00:00:00Z"
		to := o
		to.mpp = &tampered
		if r := g.get(t, "/all/cheap", "Authorization", to.mppAuth(t, pre)); r.code != 402 || r.json["reason"] != "bad_challenge_id" {
			t.Fatalf("tampered challenge: %d %v", r.code, r.json)
		}
		if r := g.get(t, "/all/cheap", "Authorization", auth); r.code != 200 {
			t.Fatalf("the charge after refusals elsewhere: %d %s", r.code, r.raw)
		}
	})

	t.Run("concurrent presentations: one is served", func(t *testing.T) {
		o := g.offerFor(t, "/all/race")
		pre := payInvoice(t, "bob", o.invoice)
		creds := [][2]string{{"Authorization", o.mppAuth(t, pre)}, {x402.HeaderPaymentSignature, o.x402Sig(t, pre)}}
		var ok, consumed atomic.Int32
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				c := creds[i%2]
				switch r := g.get(t, "/all/race", c[0], c[1]); {
				case r.code == 200:
					ok.Add(1)
				case r.code == 402 && r.json["reason"] == "consumed":
					consumed.Add(1)
				default:
					t.Errorf("presentation %d: %d %s", i, r.code, r.raw)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 || consumed.Load() != 15 {
			t.Fatalf("%d served, %d refused as consumed; want 1 and 15", ok.Load(), consumed.Load())
		}
	})

	t.Run("single-scheme services", func(t *testing.T) {
		o := g.offerFor(t, "/mpp/a")
		if o.l402 != nil || o.x402 != nil || o.mpp == nil || str(o.resp.json["macaroon"]) != "" {
			t.Fatalf("MPP-only 402: L402 %v x402 %v MPP %v macaroon %q", o.l402 != nil, o.x402 != nil, o.mpp != nil, str(o.resp.json["macaroon"]))
		}
		pre := payInvoice(t, "bob", o.invoice)
		if r := g.get(t, "/mpp/a", "Authorization", o.mppAuth(t, pre)); r.code != 200 {
			t.Fatalf("MPP-only paid: %d %s", r.code, r.raw)
		}

		o = g.offerFor(t, "/x402/a")
		if o.l402 != nil || o.mpp != nil || o.x402 == nil {
			t.Fatalf("x402-only 402: L402 %v MPP %v x402 %v", o.l402 != nil, o.mpp != nil, o.x402 != nil)
		}
		pre = payInvoice(t, "bob", o.invoice)
		if r := g.get(t, "/x402/a", x402.HeaderPaymentSignature, o.x402Sig(t, pre)); r.code != 200 {
			t.Fatalf("x402-only paid: %d %s", r.code, r.raw)
		}
	})

	t.Run("a spent charge stays spent across kill -9", func(t *testing.T) {
		o := g.offerFor(t, "/all/crash")
		pre := payInvoice(t, "bob", o.invoice)
		auth := o.mppAuth(t, pre)
		if r := g.get(t, "/all/crash", "Authorization", auth); r.code != 200 {
			t.Fatalf("%d %s", r.code, r.raw)
		}
		paidUnspent := g.offerFor(t, "/all/later")
		pre2 := payInvoice(t, "bob", paidUnspent.invoice)
		g.kill9(t)
		g.start(t)
		waitFor(t, 30*time.Second, "the gate to listen again", func() error {
			resp, err := http.Get("http://" + g.gate + "/.well-known/l402.json")
			if err != nil {
				return err
			}
			resp.Body.Close()
			return nil
		})
		if r := g.get(t, "/all/crash", "Authorization", auth); r.code != 402 || r.json["reason"] != "consumed" {
			t.Fatalf("replay after kill -9: %d %v", r.code, r.json)
		}
		// Paid before the crash, presented after: honoured.
		if r := g.get(t, "/all/later", x402.HeaderPaymentSignature, paidUnspent.x402Sig(t, pre2)); r.code != 200 {
			t.Fatalf("a payment made before kill -9: %d %s", r.code, r.raw)
		}
	})

	t.Run("x402 facilitator settles once", func(t *testing.T) {
		code, sup := g.call(t, "GET", "/x402/supported", nil)
		if code != 200 || fmt.Sprint(sup["kinds"]) != fmt.Sprintf("[map[network:%s scheme:exact x402Version:2]]", x402.NetworkRegtest) {
			t.Fatalf("supported: %d %v", code, sup)
		}
		// A resource server sells with an invoice l402d issued over REST.
		code, ch := g.call(t, "POST", "/api/l402/challenges", map[string]any{"resource": "/report/42", "priceSats": 9})
		if code != 201 && code != 200 {
			t.Fatalf("create: %d %v", code, ch)
		}
		inv := str(ch["invoice"])
		reqs := x402.NewLightningRequirements(x402.NetworkRegtest, alice, inv, 9000, 600)
		o := offer{x402: &reqs, x402Res: &x402.ResourceInfo{URL: "https://seller.example/report/42"}}
		body := func(pre string) map[string]any {
			pl, err := x402.DecodePaymentPayload(o.x402Sig(t, pre))
			if err != nil {
				t.Fatal(err)
			}
			return map[string]any{"x402Version": 2, "paymentPayload": pl, "paymentRequirements": reqs}
		}
		if code, v := g.call(t, "POST", "/x402/verify", body(hex.EncodeToString(make([]byte, 32)))); code != 200 || v["isValid"] != false ||
			v["invalidReason"] != x402.ReasonPreimageHashMismatch {
			t.Fatalf("verify before paying: %d %v", code, v)
		}
		pre := payInvoice(t, "bob", inv)
		if code, v := g.call(t, "POST", "/x402/verify", body(pre)); code != 200 || v["isValid"] != true {
			t.Fatalf("verify: %d %v", code, v)
		}
		code, st := g.call(t, "POST", "/x402/settle", body(pre))
		if code != 200 || st["success"] != true || st["transaction"] != str(ch["paymentHash"]) || st["network"] != x402.NetworkRegtest {
			t.Fatalf("settle: %d %v", code, st)
		}
		for _, path := range []string{"/x402/settle", "/x402/verify"} {
			code, v := g.call(t, "POST", path, body(pre))
			if code != 200 || (v["errorReason"] != x402.ReasonDuplicateSettlement && v["invalidReason"] != x402.ReasonDuplicateSettlement) {
				t.Fatalf("%s after settling: %d %v", path, code, v)
			}
		}
		// The requirement a resource server passes must be the one issued.
		cheaper := x402.NewLightningRequirements(x402.NetworkRegtest, alice, inv, 1000, 600)
		b := body(pre)
		b["paymentRequirements"] = cheaper
		if code, v := g.call(t, "POST", "/x402/verify", b); code != 200 || v["isValid"] != false {
			t.Fatalf("verify against a requirement l402d did not issue: %d %v", code, v)
		}
	})

	t.Run("l402d's consumer buys in whichever scheme is offered", func(t *testing.T) {
		bob := startBob(t)
		for _, tc := range []struct{ path, scheme string }{{"/mpp/bob", "mpp"}, {"/x402/bob", "x402"}, {"/all/bob", "l402"}} {
			u := "http://" + g.gate + tc.path
			code, out := access(t, bob, u, 0)
			pay := obj(out["payment"])
			if code != 200 || out["status"] != 200.0 || out["paid"] != true || pay["scheme"] != tc.scheme || pay["state"] != "succeeded" {
				t.Fatalf("%s: %d %v", tc.path, code, out)
			}
			if tc.scheme != "l402" && str(pay["receipt"]) == "" {
				t.Fatalf("%s: no receipt recorded: %v", tc.path, pay)
			}
			hash := str(pay["paymentHash"])
			code, entry := bob.call(t, "GET", "/api/consumer/payments/"+hash, nil)
			if code != 200 || entry["scheme"] != tc.scheme {
				t.Fatalf("%s: journal entry %d %v", tc.path, code, entry)
			}
			// Again: a single-use scheme pays again, a token is reused.
			code, out = access(t, bob, u, 0)
			again := obj(out["payment"])
			switch {
			case code != 200 || out["status"] != 200.0:
				t.Fatalf("%s again: %d %v", tc.path, code, out)
			case tc.scheme == "l402" && (out["paid"] != false || out["fromCache"] != true):
				t.Fatalf("%s again: the token was not reused: %v", tc.path, out)
			case tc.scheme != "l402" && (out["paid"] != true || str(again["paymentHash"]) == hash):
				t.Fatalf("%s again: a single-use payment was not bought afresh: %v", tc.path, out)
			}
			if ps := bobPayments(t, hash); len(ps) != 1 {
				t.Fatalf("%s: bob's LND paid %s %d times", tc.path, hash, len(ps))
			}
		}
	})

	t.Run("discovery lists the schemes", func(t *testing.T) {
		r := g.get(t, "/.well-known/l402.json")
		for _, s := range r.json["services"].([]any) {
			m := s.(map[string]any)
			want := map[string]string{"all": "[l402 mpp x402]", "mpponly": "[mpp]", "x402only": "[x402]", "flaky": "[mpp x402]"}[str(m["name"])]
			if got := fmt.Sprint(m["schemes"]); got != want {
				t.Errorf("service %s schemes %s, want %s", m["name"], got, want)
			}
		}
	})
}
