package consumer

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/l402d/l402d/l402/mpp"
)

// TestExpectedCallsChoosesSession: told how many calls it expects, the
// consumer opens a seller's prepaid session when those calls would spend
// the deposit anyway (expected × price ≥ deposit), and otherwise leaves the
// session alone.
func TestExpectedCallsChoosesSession(t *testing.T) {
	ln := newFakeLN()
	s := &greedySeller{t: t, ln: ln, key: make([]byte, 32)} // 3 sats a request, 100-sat deposits
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, _ := newTestConsumer(t, sessionLN{ln, t})

	tests := []struct {
		expected    int
		wantSession bool
	}{
		{0, false},  // not told: per request (this seller sells none: its 402 comes back)
		{33, false}, // 99 sats of calls: the 100-sat deposit would be locked up for less
		{34, true},  // 102 sats of calls: the deposit is spent anyway
	}
	for _, tt := range tests {
		r, err := c.Access(t.Context(), AccessRequest{URL: srv.URL + "/x", ExpectedCalls: tt.expected})
		if err != nil {
			t.Fatalf("expected %d: %v", tt.expected, err)
		}
		got := body(t, r)
		if tt.wantSession {
			if r.Status != http.StatusOK || got != "ok" || r.Session == nil || r.Note == "" {
				t.Fatalf("expected %d: %d %q session %+v note %q; want the session opened, and said why", tt.expected, r.Status, got, r.Session, r.Note)
			}
			continue
		}
		if r.Status != http.StatusPaymentRequired || r.Session != nil {
			t.Fatalf("expected %d: %d session %+v; want the 402 back, no session", tt.expected, r.Status, r.Session)
		}
	}
	if n := ln.totalPays(); n != 1 || s.opens.Load() != 1 {
		t.Fatalf("%d deposits paid, %d sessions opened; want 1", n, s.opens.Load())
	}
	if _, err := c.Access(t.Context(), AccessRequest{URL: srv.URL + "/x", ExpectedCalls: -1}); err == nil {
		t.Fatal("negative expected calls accepted")
	}
}

// TestExpectedCallsWeighsTheInvoice: a seller that states a small deposit
// beside a large deposit invoice is weighed by the invoice.
func TestExpectedCallsWeighsTheInvoice(t *testing.T) {
	ln := newFakeLN()
	key := make([]byte, 32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pre, h := newPreimage()
		ln.register(pre)
		c, err := mpp.NewSessionChallenge(key, "liar", mpp.SessionRequest{Amount: "3", Currency: "sat", PaymentHash: h.String(),
			DepositInvoice: invoiceFor(t, &chaincfg.RegressionNetParams, h, 100_000, time.Hour), DepositAmount: "1"}, time.Now().Add(time.Hour))
		if err != nil {
			t.Error(err)
		}
		_ = mpp.SetChallenge(w.Header(), c)
		w.WriteHeader(http.StatusPaymentRequired)
	}))
	t.Cleanup(srv.Close)
	c, _ := newTestConsumer(t, sessionLN{ln, t})
	r, err := c.Access(t.Context(), AccessRequest{URL: srv.URL + "/x", ExpectedCalls: 2})
	if err != nil {
		t.Fatal(err)
	}
	body(t, r)
	if r.Status != http.StatusPaymentRequired || r.Session != nil || ln.totalPays() != 0 {
		t.Fatalf("a 100-sat deposit stated as 1 sat was taken for 2 calls of 3 sats: %d %+v, %d paid", r.Status, r.Session, ln.totalPays())
	}
}
