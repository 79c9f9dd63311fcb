package consumer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
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
// whatever balance it reported before; with says402 set, that 402 reports
// the balance it names (L402-Balance-Msat).
type greedySeller struct {
	t       testing.TB
	ln      *fakeLN
	key     []byte
	opens   atomic.Int64
	topUps  atomic.Int64
	drain   atomic.Bool
	says402 atomic.Pointer[string]
	mu      sync.Mutex
	balance int64
}

func (s *greedySeller) challenge(w http.ResponseWriter) {
	setDepositChallenge(s.t, w, s.ln, s.key, "greedy", "3")
}

// setDepositChallenge sets a session challenge with a fresh 100-sat
// deposit (payable on ln) at amount sats a request.
func setDepositChallenge(t testing.TB, w http.ResponseWriter, ln *fakeLN, key []byte, realm, amount string) {
	pre, h := newPreimage()
	ln.register(pre)
	c, err := mpp.NewSessionChallenge(key, realm, mpp.SessionRequest{Amount: amount, Currency: "sat", PaymentHash: h.String(),
		DepositInvoice: invoiceFor(t, &chaincfg.RegressionNetParams, h, 100_000, time.Hour), DepositAmount: "100"}, time.Now().Add(time.Hour))
	if err != nil {
		t.Error(err)
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
	if v.Action == mpp.ActionTopUp {
		s.topUps.Add(1)
	}
	if v.Action == mpp.ActionBearer && s.drain.Load() {
		s.challenge(w)
		if b := s.says402.Load(); b != nil {
			w.Header().Set(HeaderBalance, *b)
		}
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

// newGreedySeller serves a greedySeller and a consumer that buys from it.
func newGreedySeller(t *testing.T) (*greedySeller, *httptest.Server, *Consumer, *fakeLN) {
	t.Helper()
	ln := newFakeLN()
	s := &greedySeller{t: t, ln: ln, key: make([]byte, 32)}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, _ := newTestConsumer(t, sessionLN{ln, t})
	return s, srv, c, ln
}

// TestSessionConsumerGuards: concurrent first accesses pay one deposit,
// and a seller that asks for a top-up while the balance it reported
// covers the request is refused instead of paid again and again.
func TestSessionConsumerGuards(t *testing.T) {
	s, srv, c, ln := newGreedySeller(t)

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

// TestSessionTopUpStaleRecord: a seller whose 402 reports a balance that
// no longer covers the request gets its top-up paid although the buyer's
// record still shows the balance an earlier answer reported (answers of
// concurrent requests recorded out of order, or a crash between an
// answer and its record): without the 402's word the buyer would refuse
// every top-up and the session would be stuck. A 402 that reports a
// balance covering the request is still refused.
func TestSessionTopUpStaleRecord(t *testing.T) {
	s, srv, c, ln := newGreedySeller(t)
	access := func() (*Response, error) {
		return c.Access(t.Context(), AccessRequest{URL: srv.URL + "/x", Session: true})
	}
	if r, err := access(); err != nil || r.Session == nil || r.Session.BalanceMsat != 97_000 {
		t.Fatalf("open: %+v %v", r, err)
	}
	s.drain.Store(true)
	covers := "97000"
	s.says402.Store(&covers)
	var pe *PolicyError
	if _, err := access(); !errors.As(err, &pe) || pe.Code != "session_topup_refused" {
		t.Fatalf("a 402 whose own balance covers the request: %v, want session_topup_refused", err)
	}
	spent := "2000"
	s.says402.Store(&spent)
	r, err := access()
	if err != nil || r.Status != 200 || !r.Paid {
		t.Fatalf("top-up asked by a 402 reporting 2000 msat left (record: 97000): %+v %v", r, err)
	}
	if n, tu := ln.totalPays(), s.topUps.Load(); n != 2 || tu != 1 {
		t.Fatalf("%d deposits paid, %d top-ups presented; want the opening and one top-up", n, tu)
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
		h(6, storage.HeldOpen, "credit", "http://s/credit/a", 9),
	}
	// L402 prepaid credit is held beside the sessions, and is no session.
	all[5].Prepaid = true
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
		{"prepaid credit is no session, even on the closest URL", storage.HeldOpen, "/credit/a", "", nil, 3},
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

// lossySeller sells metered sessions (so every top-up ask is believed).
// The first top-up presented never arrives (the connection drops before
// the seller reads it); the second is credited and its answer lost (a
// 503, as from a seller shutting down after its commit). It counts what
// it credited.
type lossySeller struct {
	t        testing.TB
	ln       *fakeLN
	key      []byte
	mu       sync.Mutex
	balance  int64
	credited map[lntypes.Hash]bool
	topUps   int
}

func (s *lossySeller) refuse(w http.ResponseWriter, reason string) {
	setDepositChallenge(s.t, w, s.ln, s.key, "lossy", "1")
	w.WriteHeader(http.StatusPaymentRequired)
	_, _ = fmt.Fprintf(w, `{"reason":%q,"service":"feed","meter":{"unit":"kib"}}`, reason)
}

func (s *lossySeller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cred, err := mpp.CredentialFromHeader(r.Header)
	if err != nil {
		s.refuse(w, "")
		return
	}
	v, err := mpp.VerifySession(s.key, cred)
	if err != nil {
		s.t.Errorf("seller: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	switch v.Action {
	case mpp.ActionOpen:
		s.balance = 100_000
	case mpp.ActionTopUp:
		if s.credited[v.TopUp] {
			s.refuse(w, "consumed")
			return
		}
		s.topUps++
		switch s.topUps {
		case 1, 2: // lost on its way (and the transport's retry too): nothing credited
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			return
		case 3: // credited, and the answer lost
			s.credited[v.TopUp] = true
			s.balance += 100_000
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		s.credited[v.TopUp] = true
		s.balance += 100_000
	}
	if s.balance < 1000 {
		s.refuse(w, "insufficient_balance")
		return
	}
	s.balance -= 1000
	w.Header().Set(HeaderBalance, strconv.FormatInt(s.balance, 10))
	w.Header().Set(HeaderMeter, "kib; price-msat=1")
	_, _ = w.Write([]byte("ok"))
}

func (s *lossySeller) drain() {
	s.mu.Lock()
	s.balance = 0
	s.mu.Unlock()
}

// TestSessionTopUpLostAnswer: a top-up whose answer is lost stays pending
// and is presented again, never replaced by a second deposit: every
// deposit paid is credited.
func TestSessionTopUpLostAnswer(t *testing.T) {
	ln := newFakeLN()
	s := &lossySeller{t: t, ln: ln, key: make([]byte, 32), credited: map[lntypes.Hash]bool{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, _ := newTestConsumer(t, sessionLN{ln, t})
	access := func(want int) {
		t.Helper()
		r, err := c.Access(t.Context(), AccessRequest{URL: srv.URL + "/feed/x", Session: true})
		if err != nil || r.Status != want {
			t.Fatalf("access: %v %v; want %d", r, err, want)
		}
		r.Body.Close()
	}
	access(200) // opens: deposit 1
	s.drain()
	if _, err := c.Access(t.Context(), AccessRequest{URL: srv.URL + "/feed/x", Session: true}); err == nil {
		t.Fatal("a top-up whose connection dropped answered")
	} // top-up: deposit 2 paid, never arrived
	access(http.StatusServiceUnavailable) // deposit 2 presented again: credited, answer lost
	access(200)                           // the seller has the balance
	s.drain()
	access(200) // deposit 2 again ("consumed": recorded), then deposit 3
	if n, credited := ln.totalPays(), len(s.credited); n != 3 || credited != 2 {
		t.Fatalf("%d deposits paid, %d top-ups credited; want 3 and 2 (every paid top-up credited)", n, credited)
	}
	list, err := c.Sessions(t.Context())
	if err != nil || len(list) != 1 || list[0].DepositedMsat != 300_000 {
		t.Fatalf("sessions %+v %v; want one with 3 deposits recorded", list, err)
	}
}
