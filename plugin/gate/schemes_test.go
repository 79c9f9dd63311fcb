package gate

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402/mpp"
)

// payMPP reads the Payment challenge of a 402, pays it (looks up the
// preimage) and returns the Authorization value and the challenge.
func (f *fixture) payMPP(w *httptest.ResponseRecorder) (string, mpp.Challenge) {
	f.t.Helper()
	if w.Code != http.StatusPaymentRequired {
		f.t.Fatalf("status %d, want 402: %s", w.Code, w.Body)
	}
	cs, err := mpp.ParseChallengesHeader(w.Header())
	if err != nil {
		f.t.Fatalf("no Payment challenge in %q: %v", w.Header().Values("WWW-Authenticate"), err)
	}
	req, err := cs[0].ChargeRequest()
	if err != nil {
		f.t.Fatal(err)
	}
	h, err := lntypes.MakeHashFromStr(req.MethodDetails.PaymentHash)
	if err != nil {
		f.t.Fatal(err)
	}
	pre, ok := f.lnd.preimage(h)
	if !ok {
		f.t.Fatal("no invoice for the challenge")
	}
	v, err := mpp.NewChargeCredential(cs[0], pre)
	if err != nil {
		f.t.Fatal(err)
	}
	return v, cs[0]
}

func TestMPPChargeSpentOnce(t *testing.T) {
	f := newFixture(t, testServices, nil)
	w := f.do("GET", "/api/data")
	tok := f.pay(w)
	auth, ch := f.payMPP(w)
	if b := body(t, w); b["macaroon"] == "" || strings.Join(anyStrings(b["schemes"]), ",") != "l402,mpp,x402" {
		t.Fatalf("402 body %v", b)
	}

	// Bought under /api/* at 10 sats: refused on the 100-sat rule, and
	// not spent by the refusal.
	if w := f.do("GET", "/api/premium/x", "Authorization", auth); w.Code != 402 || body(t, w)["reason"] != "wrong_resource" {
		t.Fatalf("cheap charge on a premium path: %d %s", w.Code, w.Body)
	}
	w = f.do("GET", "/api/data", "Authorization", auth)
	if w.Code != 200 || w.Body.String() != "next /api/data" {
		t.Fatalf("paid charge: %d %s", w.Code, w.Body)
	}
	rc, err := mpp.ParseReceipt(w.Header().Get(mpp.HeaderReceipt))
	if err != nil || rc.ChallengeID != ch.ID {
		t.Fatalf("receipt %+v: %v", rc, err)
	}
	if w := f.do("GET", "/api/data", "Authorization", auth); w.Code != 402 || body(t, w)["reason"] != "consumed" {
		t.Fatalf("replayed charge: %d %s", w.Code, w.Body)
	}
	if w := f.do("GET", "/api/data", "Authorization", tok); w.Code != 402 || body(t, w)["reason"] != "revoked" {
		t.Fatalf("the spent payment's L402 token: %d %s", w.Code, w.Body)
	}
	if hits := f.nextHit.Load(); hits != 1 {
		t.Fatalf("next served %d requests for one payment", hits)
	}
}

// TestMPPChargeForged: a Payment credential that does not check — the
// wrong preimage, or an unpaid challenge — is refused with its reason and
// never reaches the upstream.
func TestMPPChargeForged(t *testing.T) {
	f := newFixture(t, testServices, nil)
	w := f.do("GET", "/api/data")
	cs, err := mpp.ParseChallengesHeader(w.Header())
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := mpp.NewChargeCredential(cs[0], lntypes.Preimage{1})
	if err != nil {
		t.Fatal(err)
	}
	if w := f.do("GET", "/api/data", "Authorization", wrong); w.Code != 402 || body(t, w)["reason"] != "wrong_preimage" {
		t.Fatalf("a charge with the wrong preimage: %d %s", w.Code, w.Body)
	}
	if hits := f.nextHit.Load(); hits != 0 {
		t.Fatalf("next served %d requests without a payment", hits)
	}
}

func TestSchemesOffered(t *testing.T) {
	f := newFixture(t, `
services:
  - name: mpponly
    path: /m/*
    price: 3
    schemes: [mpp]
  - name: l402only
    path: /l/*
    price: 3
    schemes: [l402]
`, nil)
	w := f.do("GET", "/m/x")
	wa := w.Header().Values("WWW-Authenticate")
	if w.Code != 402 || len(wa) != 1 || !strings.HasPrefix(wa[0], "Payment ") || body(t, w)["macaroon"] != "" {
		t.Fatalf("MPP-only 402: %d %q %s", w.Code, wa, w.Body)
	}
	auth, _ := f.payMPP(w)
	if w := f.do("GET", "/m/x", "Authorization", auth); w.Code != 200 {
		t.Fatalf("MPP-only paid: %d %s", w.Code, w.Body)
	}
	w = f.do("GET", "/l/x")
	if wa := w.Header().Values("WWW-Authenticate"); w.Code != 402 || len(wa) != 1 || !strings.HasPrefix(wa[0], "L402 ") || w.Header().Get("PAYMENT-REQUIRED") != "" {
		t.Fatalf("L402-only 402: %d %q", w.Code, wa)
	}
}

func anyStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// A single-use payment whose upstream never answers is given back: the
// error carries no receipt, and the same credential buys the request once
// the upstream is back — once.
func TestChargeGivenBackWhenUpstreamFails(t *testing.T) {
	var fail atomic.Bool
	var served atomic.Int64
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close() // read the request, answer nothing
			}
			return
		}
		served.Add(1)
		_, _ = w.Write([]byte("ok"))
	})
	url, f := proxyFixture(t, `services:
  - name: api
    path: /api/*
    upstream: UPSTREAM
    price: 10
    schemes: [mpp]
`, up)
	auth, _ := f.payMPP(f.do("GET", "/api/data"))

	fail.Store(true)
	resp, b := get(t, url+"/api/data", "Authorization", auth)
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get(mpp.HeaderReceipt) != "" {
		t.Fatalf("upstream down: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	fail.Store(false)
	resp, b = get(t, url+"/api/data", "Authorization", auth)
	if resp.StatusCode != 200 || b != "ok" || resp.Header.Get(mpp.HeaderReceipt) == "" {
		t.Fatalf("retry after the upstream came back: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	if resp, _ := get(t, url+"/api/data", "Authorization", auth); resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("a third use of one payment: %d", resp.StatusCode)
	}
	if n := served.Load(); n != 1 {
		t.Fatalf("the upstream served %d requests for one payment", n)
	}
}
