package consumer

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/l402/mpp"
	"github.com/l402d/l402d/storage"
)

// sessionLN is fakeLN that also makes the amountless refund invoices a
// session needs.
type sessionLN struct {
	*fakeLN
	t testing.TB
}

func (s sessionLN) AddInvoice(context.Context, invoices.AddInvoiceRequest) (invoices.Invoice, error) {
	_, h := newPreimage()
	return invoices.Invoice{PaymentHash: h, PaymentRequest: invoiceFor(s.t, &chaincfg.RegressionNetParams, h, 0, time.Hour)}, nil
}

// greedySeller sells sessions and, once drain is set, answers every
// bearer request "insufficient_balance" with a fresh deposit to pay,
// whatever balance it reported before.
type greedySeller struct {
	t       testing.TB
	ln      *fakeLN
	key     []byte
	opens   atomic.Int64
	drain   atomic.Bool
	mu      sync.Mutex
	balance int64
}

func (s *greedySeller) challenge(w http.ResponseWriter) {
	pre, h := newPreimage()
	s.ln.register(pre)
	c, err := mpp.NewSessionChallenge(s.key, "greedy", mpp.SessionRequest{Amount: "3", Currency: "sat", PaymentHash: h.String(),
		DepositInvoice: invoiceFor(s.t, &chaincfg.RegressionNetParams, h, 100_000, time.Hour), DepositAmount: "100"}, time.Now().Add(time.Hour))
	if err != nil {
		s.t.Error(err)
	}
	_ = mpp.SetChallenge(w.Header(), c)
}

func (s *greedySeller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cred, err := mpp.CredentialFromHeader(r.Header)
	if err != nil {
		s.challenge(w)
		w.WriteHeader(http.StatusPaymentRequired)
		return
	}
	v, err := mpp.VerifySession(s.key, cred)
	if err != nil {
		s.t.Errorf("seller: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if v.Action == mpp.ActionOpen {
		s.opens.Add(1)
		s.mu.Lock()
		s.balance = 97_000
		s.mu.Unlock()
	}
	if v.Action == mpp.ActionBearer && s.drain.Load() {
		s.challenge(w)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusPaymentRequired)
		_, _ = w.Write([]byte(`{"reason":"insufficient_balance"}`))
		return
	}
	s.mu.Lock()
	w.Header().Set(HeaderBalance, "97000")
	s.mu.Unlock()
	_, _ = w.Write([]byte("ok"))
}

// TestSessionConsumerGuards: concurrent first accesses pay one deposit,
// and a seller that asks for a top-up while the balance it reported
// covers the request is refused instead of paid again and again.
func TestSessionConsumerGuards(t *testing.T) {
	ln := newFakeLN()
	s := &greedySeller{t: t, ln: ln, key: make([]byte, 32)}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, _ := newTestConsumer(t, sessionLN{ln, t})

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			r, err := c.Access(t.Context(), AccessRequest{URL: srv.URL + "/x", Session: true})
			if err != nil {
				t.Error(err)
				return
			}
			if got := body(t, r); r.Status != 200 || got != "ok" || r.Session == nil || r.Session.BalanceMsat != 97_000 {
				t.Errorf("access: %d %q %+v", r.Status, got, r.Session)
			}
		})
	}
	wg.Wait()
	if n := ln.totalPays(); n != 1 || s.opens.Load() != 1 {
		t.Fatalf("8 concurrent first accesses paid %d deposits and opened %d sessions, want 1", n, s.opens.Load())
	}

	s.drain.Store(true)
	for range 3 {
		_, err := c.Access(t.Context(), AccessRequest{URL: srv.URL + "/x", Session: true})
		var pe *PolicyError
		if !errors.As(err, &pe) || pe.Code != "session_topup_refused" {
			t.Fatalf("top-up while the reported balance covers the request: %v", err)
		}
	}
	if n := ln.totalPays(); n != 1 {
		t.Fatalf("a greedy seller got %d deposits", n)
	}
	list, err := c.Sessions(t.Context())
	if err != nil || len(list) != 1 || list[0].State != "open" || list[0].SessionID == (lntypes.Hash{}).String() {
		t.Fatalf("sessions %+v %v", list, err)
	}
}

func TestPickHeld(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	h := func(id byte, state, service, u string, used int) storage.HeldSession {
		return storage.HeldSession{ID: lntypes.Hash{id}, State: state, Service: service, URL: u, UpdatedAt: t0.Add(time.Duration(used) * time.Minute)}
	}
	all := []storage.HeldSession{
		h(1, storage.HeldOpen, "feed", "http://s/feed/a", 1),
		h(2, storage.HeldOpen, "api", "http://s/api/x", 1),
		h(3, storage.HeldOpen, "api", "http://s/api/y", 5),
		h(4, storage.HeldOpening, "", "http://s/api/z", 1),
		h(5, storage.HeldClosed, "api", "http://s/api/q", 9),
	}
	tests := []struct {
		name, state, path, service string
		skip                       map[lntypes.Hash]bool
		want                       byte // 0: none
	}{
		{"closest URL", storage.HeldOpen, "/feed/b", "", nil, 1},
		{"most recent of equals", storage.HeldOpen, "/api/q", "", nil, 3},
		{"longer prefix wins", storage.HeldOpen, "/api/x/1", "", nil, 2},
		{"named service", storage.HeldOpen, "/feed/b", "api", nil, 3},
		{"skipped", storage.HeldOpen, "/api/q", "api", map[lntypes.Hash]bool{{3}: true}, 2},
		{"none of the service", storage.HeldOpen, "/x", "other", nil, 0},
		{"opening without a service resumes for any", storage.HeldOpening, "/api/z", "api", nil, 4},
		{"only the state asked for", storage.HeldClosed, "/api/q", "", nil, 5},
	}
	for _, tt := range tests {
		got := pickHeld(all, tt.state, tt.path, tt.service, tt.skip)
		switch {
		case tt.want == 0 && got != nil:
			t.Errorf("%s: picked %x, want none", tt.name, got.ID[0])
		case tt.want != 0 && (got == nil || got.ID[0] != tt.want):
			t.Errorf("%s: picked %v, want %d", tt.name, got, tt.want)
		}
	}
}
