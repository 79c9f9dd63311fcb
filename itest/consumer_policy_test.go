//go:build itest

package itest

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402"
)

// longResourceSeller is an L402 service whose tokens carry a resource
// caveat of 3 KiB (over what the token cache once held), with invoices
// from alice's real LND.
type longResourceSeller struct {
	srv      *httptest.Server
	resource string
	price    int64
	// paid, if set, answers a valid credential.
	paid http.HandlerFunc

	mu     sync.Mutex
	hashes []string
}

func newLongResourceSeller(t *testing.T, price int64, paid http.HandlerFunc) *longResourceSeller {
	t.Helper()
	s := &longResourceSeller{resource: "/" + strings.Repeat("r", 3<<10), price: price, paid: paid}
	keys := &itestKeys{m: map[l402.TokenID][l402.RootKeySize]byte{}}
	aliceLND := lnd(t, testNet(t), "alice")
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cred, err := l402.CredentialFromHeader(r.Header); err == nil {
			if _, err := (&l402.Verifier{Keys: keys}).Verify(r.Context(), cred, l402.Expect{Resource: s.resource}); err == nil {
				if s.paid != nil {
					s.paid(w, r)
					return
				}
				fmt.Fprint(w, "paid content")
				return
			}
		}
		var pre lntypes.Preimage
		rand.Read(pre[:])
		inv, err := aliceLND.Lightning.AddInvoice(r.Context(), &lnrpc.Invoice{RPreimage: pre[:], Value: s.price, Memo: "itest long resource"})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h := lntypes.Hash(sha256.Sum256(pre[:]))
		m, _, err := l402.Mint(r.Context(), keys, l402.MintParams{PaymentHash: h, Resource: s.resource, AmountSats: s.price})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		mac, _ := l402.EncodeMacaroon(m)
		s.mu.Lock()
		s.hashes = append(s.hashes, h.String())
		s.mu.Unlock()
		l402.SetChallenge(w.Header(), l402.Challenge{Macaroon: mac, Invoice: inv.PaymentRequest}, false)
		w.WriteHeader(http.StatusPaymentRequired)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// TestConsumerLongResourceCaveat: a seller minting a 3 KiB resource
// caveat cannot strand bob's payment: it ends succeeded, the budget's
// reservation is settled, and the token is cached and reused for that
// resource.
func TestConsumerLongResourceCaveat(t *testing.T) {
	bob := startBob(t)
	s := newLongResourceSeller(t, 17, nil)

	// The path is the resource, so the token (scoped to it) is reused.
	code, out := access(t, bob, s.srv.URL+s.resource, 0)
	p := obj(out["payment"])
	if code != 200 || out["paid"] != true || p["state"] != "succeeded" || out["body"] != "paid content" {
		t.Fatalf("access: %d %v", code, out)
	}
	hash := str(p["paymentHash"])
	if code, e := bob.call(t, "GET", "/api/consumer/payments/"+hash, nil); code != 200 || str(e["state"]) != "succeeded" {
		t.Fatalf("journal entry: %d %v", code, e)
	}
	code, b := bob.call(t, "GET", "/api/consumer/budget", nil)
	today := obj(b["today"])
	if code != 200 || today["reservedMsat"] != 0.0 || today["spentMsat"] != float64(17_000+int64(p["feeMsat"].(float64))) {
		t.Fatalf("budget: %d %v", code, b)
	}
	if ps := bobPayments(t, hash); len(ps) != 1 || ps[0].Status != lnrpc.Payment_SUCCEEDED {
		t.Fatalf("bob's LND: %v", ps)
	}
	// The token was cached: the next request pays nothing.
	code, out = access(t, bob, s.srv.URL+s.resource, 0)
	if code != 200 || out["paid"] != false || out["fromCache"] != true {
		t.Fatalf("second access: %d %v", code, out)
	}
}

// TestConsumerSpendPolicy: the spend policy over REST, end to end: an
// invoice paid without a url is of an unknown domain (refused under an
// allow list), and payments without approval stop at the rolling cap.
func TestConsumerSpendPolicy(t *testing.T) {
	alice := startDaemon(t, testNet(t).Node("alice"))
	bob := startBob(t, "--consumer.budget.unapproved-per-hour-sats", "50")
	s := newL402Seller(t, alice, 21, false)
	if code, out := bob.callKey(t, bob.adminKey(t), "PUT", "/api/consumer/budget", map[string]any{"allowDomains": []string{"127.0.0.1"}}); code != 200 {
		t.Fatalf("allow list: %d %v", code, out)
	}
	inv, err := lnd(t, testNet(t), "alice").Lightning.AddInvoice(testCtx(t, time.Minute), &lnrpc.Invoice{Value: 5, Memo: "itest policy"})
	if err != nil {
		t.Fatal(err)
	}
	hash := lntypes.Hash(inv.RHash).String()
	code, out := bob.call(t, "POST", "/api/consumer/pay/invoice", map[string]any{"invoice": inv.PaymentRequest})
	if code != 403 || out["code"] != "domain_unknown" || out["field"] != "url" {
		t.Fatalf("invoice without url: %d %v", code, out)
	}
	if ps := bobPayments(t, hash); len(ps) != 0 {
		t.Fatalf("bob paid a refused invoice: %v", ps)
	}
	code, out = bob.call(t, "POST", "/api/consumer/pay/invoice", map[string]any{"invoice": inv.PaymentRequest, "url": s.url("/for-the-invoice")})
	if code != 200 || out["state"] != "succeeded" {
		t.Fatalf("invoice with url: %d %v", code, out)
	}
	// 5 spent; 21 + 10 fee limit fits the 50 cap, the next 31 does not.
	if code, out := access(t, bob, s.url("/a"), 0); code != 200 || out["paid"] != true {
		t.Fatalf("access under the cap: %d %v", code, out)
	}
	code, out = access(t, bob, s.url("/b"), 0)
	if code != 403 || out["code"] != "approval_required" || !strings.Contains(str(out["error"]), "approval") {
		t.Fatalf("access over the cap: %d %v", code, out)
	}
	if ps := bobPayments(t, s.lastHash("/b")); len(ps) != 0 {
		t.Fatalf("bob paid over the cap: %v", ps)
	}
}

// TestConsumerTricklingBody: a seller that, once paid, trickles its body
// a byte at a time is cut off by bob's body deadline: the access answers
// (with a note) instead of hanging, the payment is recorded succeeded and
// the token is cached.
func TestConsumerTricklingBody(t *testing.T) {
	bob := startBob(t, "--consumer.body-timeout", "2s", "--consumer.body-idle-timeout", "1s")
	released := make(chan struct{}, 1)
	s := newLongResourceSeller(t, 13, func(w http.ResponseWriter, r *http.Request) {
		defer func() { released <- struct{}{} }()
		w.WriteHeader(http.StatusOK)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}
	})
	code, out := access(t, bob, s.srv.URL+s.resource, 0)
	p := obj(out["payment"])
	if code != 200 || out["paid"] != true || p["state"] != "succeeded" || !strings.Contains(str(out["note"]), "body-timeout") {
		t.Fatalf("access: %d %v", code, out)
	}
	select {
	case <-released: // bob closed the connection
	case <-testCtx(t, time.Minute).Done():
		t.Fatal("the seller's handler still runs: bob kept the connection")
	}
	if code, toks := bob.call(t, "GET", "/api/consumer/tokens", nil); code != 200 || !strings.Contains(fmt.Sprint(toks), str(p["paymentHash"])) {
		t.Fatalf("token not cached: %d %v", code, toks)
	}
	if ps := bobPayments(t, str(p["paymentHash"])); len(ps) != 1 || ps[0].Status != lnrpc.Payment_SUCCEEDED {
		t.Fatalf("bob's LND: %v", ps)
	}
}
