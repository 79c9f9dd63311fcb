package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/plugin/field"
	"github.com/l402d/l402d/storage"
)

// waitUntil polls cond for up to five seconds.
func waitUntil(t testing.TB, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

// runConsumer runs c's resumer until the test ends.
func runConsumer(t *testing.T, c *Consumer) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func TestPayChallenge(t *testing.T) {
	ln := newFakeLN()
	s := newSeller(t, ln, 12)
	c, st := newTestConsumer(t, ln)
	mac, inv, h := s.mint(t.Context(), "/p")
	res, err := c.PayChallenge(t.Context(), PayChallengeRequest{Invoice: inv, Macaroon: mac})
	if err != nil {
		t.Fatal(err)
	}
	if res.Payment.State != string(storage.PaymentSucceeded) || res.Payment.AlreadyPaid || res.Token.PaymentHash != h.String() || res.Token.Authorization == "" {
		t.Fatalf("%+v %+v", res.Payment, res.Token)
	}
	// The same challenge again, also as a header value: nothing is paid twice.
	again, err := c.PayChallenge(t.Context(), PayChallengeRequest{Challenge: `L402 macaroon="` + mac + `", invoice="` + inv + `"`})
	if err != nil || !again.Payment.AlreadyPaid || again.Token.Authorization != res.Token.Authorization {
		t.Fatalf("again: %v %+v", err, again)
	}
	if ln.payCount(h) != 1 {
		t.Fatalf("paid %d times", ln.payCount(h))
	}
	// Without a URL nothing is cached; with one, it is.
	if toks, _ := st.ListTokens(t.Context()); len(toks) != 0 {
		t.Fatalf("cached without a URL: %+v", toks)
	}
	mac2, inv2, _ := s.mint(t.Context(), "/q")
	if _, err := c.PayChallenge(t.Context(), PayChallengeRequest{Invoice: inv2, Macaroon: mac2, URL: s.srv.URL + "/q"}); err != nil {
		t.Fatal(err)
	}
	r, err := c.Access(t.Context(), AccessRequest{URL: s.srv.URL + "/q"})
	if err != nil || !r.FromCache || r.Status != 200 {
		t.Fatalf("token bought with PayChallenge not reused: %v %+v", err, r)
	}
	body(t, r)

	var fe *field.Error
	if _, err := c.PayChallenge(t.Context(), PayChallengeRequest{Invoice: inv}); !errors.As(err, &fe) {
		t.Fatalf("no macaroon: %v", err)
	}
	if _, err := c.PayChallenge(t.Context(), PayChallengeRequest{Challenge: "Bearer x"}); !errors.As(err, &fe) || fe.Field != "challenge" {
		t.Fatalf("bad challenge: %v", err)
	}
}

func TestPayInvoice(t *testing.T) {
	ln := newFakeLN()
	c, _ := newTestConsumer(t, ln)
	pre, h := newPreimage()
	ln.register(pre)
	inv := invoiceFor(t, regtest, h, 9_000, time.Hour)
	p, err := c.PayInvoice(t.Context(), PayInvoiceRequest{Invoice: inv, MaxSats: 9})
	if err != nil || p.Preimage != pre.String() || p.AmountSats != 9 {
		t.Fatalf("%v %+v", err, p)
	}
	if _, err := c.PayInvoice(t.Context(), PayInvoiceRequest{Invoice: inv, MaxSats: 0}); err != nil || ln.payCount(h) != 1 {
		t.Fatalf("paid again: %v %d", err, ln.payCount(h))
	}
	_, h2 := newPreimage()
	if _, err := c.PayInvoice(t.Context(), PayInvoiceRequest{Invoice: invoiceFor(t, regtest, h2, 9_000, time.Hour), MaxSats: 8}); RefusalOf(err) == nil || ln.payCount(h2) != 0 {
		t.Fatalf("above maxSats: %v", err)
	}
}

func TestPayAlreadyPaidByLNDIsTracked(t *testing.T) {
	ln := newFakeLN()
	s := newSeller(t, ln, 4)
	c, _ := newTestConsumer(t, ln)
	mac, inv, h := s.mint(t.Context(), "/a")
	// LND paid this hash before l402d's journal knew of it (another
	// client of the node, an earlier data dir).
	ln.mu.Lock()
	pre := ln.preimages[h]
	ln.mu.Unlock()
	ln.setPayment(invoices.Payment{PaymentHash: h, State: invoices.PaymentSucceeded, Preimage: pre, AmountMsat: 4000, FeeMsat: 0})
	res, err := c.PayChallenge(t.Context(), PayChallengeRequest{Invoice: inv, Macaroon: mac})
	if err != nil || res.Payment.State != string(storage.PaymentSucceeded) || res.Payment.Preimage != pre.String() {
		t.Fatalf("%v %+v", err, res)
	}
	if ln.payCount(h) != 0 {
		t.Fatal("paid a hash LND already paid")
	}
}

func TestPayFailedThenPaidAgain(t *testing.T) {
	ln := newFakeLN()
	c, st := newTestConsumer(t, ln)
	pre, h := newPreimage() // not registered: no route
	inv := invoiceFor(t, regtest, h, 5_000, time.Hour)
	_, err := c.PayInvoice(t.Context(), PayInvoiceRequest{Invoice: inv, MaxSats: 0})
	var pe *PaymentError
	if !errors.Is(err, ErrPaymentFailed) || !errors.As(err, &pe) || pe.Reason != "no_route" {
		t.Fatalf("got %v", err)
	}
	if b, _ := c.Budget(t.Context()); b.Usage.Total != (storage.BudgetCounter{}) {
		t.Fatalf("a failed payment holds budget: %+v", b.Usage.Total)
	}
	ln.register(pre)
	if _, err := c.PayInvoice(t.Context(), PayInvoiceRequest{Invoice: inv, MaxSats: 0}); err != nil {
		t.Fatal(err)
	}
	p, _ := st.Payment(t.Context(), h)
	if p.State != storage.PaymentSucceeded || p.Attempts != 2 || ln.payCount(h) != 2 {
		t.Fatalf("%+v, %d pays", p, ln.payCount(h))
	}
}

// TestPayInFlightIsResumed: LND's answer does not come (l402d loses LND
// mid-payment); the journal keeps the payment in flight, a second caller
// does not pay again, and the resumer records the outcome and caches the
// token once LND knows it.
func TestPayInFlightIsResumed(t *testing.T) {
	ln := newFakeLN()
	s := newSeller(t, ln, 25)
	c, st := newTestConsumer(t, ln)
	ln.onPay = func(_ context.Context, h lntypes.Hash) (invoices.Payment, error, bool) {
		ln.setPayment(invoices.Payment{PaymentHash: h, State: invoices.PaymentInFlight})
		return invoices.Payment{PaymentHash: h, State: invoices.PaymentInFlight}, fmt.Errorf("send payment: %w: stream closed", invoices.ErrUnavailable), true
	}
	_, err := c.Access(t.Context(), AccessRequest{URL: s.srv.URL + "/slow"})
	var ce *ChallengeError
	if !errors.Is(err, ErrPaymentInFlight) || !errors.As(err, &ce) {
		t.Fatalf("got %v", err)
	}
	h, _ := lntypes.MakeHashFromStr(ce.PaymentHash)
	p, _ := st.Payment(t.Context(), h)
	if p.State != storage.PaymentInFlight {
		t.Fatalf("journal: %+v", p)
	}
	if b, _ := c.Budget(t.Context()); b.Usage.Total.ReservedMsat != 35_000 {
		t.Fatalf("reservation: %+v", b.Usage.Total)
	}
	// Paying the same hash again only asks LND.
	if _, err := c.PayInvoice(t.Context(), PayInvoiceRequest{Invoice: p.Invoice, MaxSats: 0}); !errors.Is(err, ErrPaymentInFlight) || ln.payCount(h) != 1 {
		t.Fatalf("second caller: %v, %d pays", err, ln.payCount(h))
	}

	ln.mu.Lock()
	pre := ln.preimages[h]
	ln.mu.Unlock()
	ln.setPayment(invoices.Payment{PaymentHash: h, State: invoices.PaymentSucceeded, Preimage: pre, AmountMsat: 25_000, FeeMsat: 2_000})
	runConsumer(t, c)
	waitUntil(t, "resumed payment recorded", func() error {
		p, _ := st.Payment(t.Context(), h)
		if p.State != storage.PaymentSucceeded {
			return fmt.Errorf("state %s", p.State)
		}
		return nil
	})
	if toks, _ := st.ListTokens(t.Context()); len(toks) != 1 || toks[0].PaymentHash != h {
		t.Fatalf("token not recovered: %+v", toks)
	}
	if b, _ := c.Budget(t.Context()); b.Usage.Total != (storage.BudgetCounter{SpentMsat: 27_000}) {
		t.Fatalf("budget after resume: %+v", b.Usage.Total)
	}
	r, err := c.Access(t.Context(), AccessRequest{URL: s.srv.URL + "/slow"})
	if err != nil || !r.FromCache || r.Paid {
		t.Fatalf("recovered token not used: %v %+v", err, r)
	}
	body(t, r)
	if ln.payCount(h) != 1 {
		t.Fatalf("%d pays", ln.payCount(h))
	}
}

// TestResumeOnStart: entries a crash left behind are settled by Run: one
// LND never saw fails and frees its budget, one LND paid succeeds and its
// token is recovered.
func TestResumeOnStart(t *testing.T) {
	ln := newFakeLN()
	s := newSeller(t, ln, 8)
	c, st := newTestConsumer(t, ln)
	ctx := t.Context()

	_, neverSent := newPreimage()
	e1 := storage.Payment{PaymentHash: neverSent, Kind: storage.KindInvoice, Invoice: invoiceFor(t, regtest, neverSent, 8_000, time.Hour), AmountMsat: 8_000, FeeLimitMsat: 10_000}
	if _, err := st.ReservePayment(ctx, &e1); err != nil {
		t.Fatal(err)
	}

	mac, inv, paid := s.mint(ctx, "/crash")
	e2 := storage.Payment{PaymentHash: paid, Kind: storage.KindAccess, Invoice: inv, AmountMsat: 8_000, FeeLimitMsat: 10_000,
		Domain: "127.0.0.1", URL: s.srv.URL + "/crash", Macaroon: mac, Origin: Origin(mustURL(t, s.srv.URL)), Scope: "/crash"}
	if _, err := st.ReservePayment(ctx, &e2); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkPaymentInFlight(ctx, paid); err != nil {
		t.Fatal(err)
	}
	ln.mu.Lock()
	pre := ln.preimages[paid]
	ln.mu.Unlock()
	ln.setPayment(invoices.Payment{PaymentHash: paid, State: invoices.PaymentSucceeded, Preimage: pre, AmountMsat: 8_000, FeeMsat: 1})

	runConsumer(t, c)
	waitUntil(t, "both resumed", func() error {
		pend, err := st.PendingPayments(ctx)
		if err != nil || len(pend) != 0 {
			return fmt.Errorf("%v %d pending", err, len(pend))
		}
		return nil
	})
	if p, _ := st.Payment(ctx, neverSent); p.State != storage.PaymentFailed {
		t.Fatalf("never-sent payment: %+v", p)
	}
	if b, _ := c.Budget(ctx); b.Usage.Total != (storage.BudgetCounter{SpentMsat: 8_001}) {
		t.Fatalf("budget: %+v", b.Usage.Total)
	}
	r, err := c.Access(ctx, AccessRequest{URL: s.srv.URL + "/crash"})
	if err != nil || !r.FromCache || r.Status != 200 {
		t.Fatalf("recovered token: %v %+v", err, r)
	}
	body(t, r)
	if ln.totalPays() != 0 {
		t.Fatal("resuming paid")
	}
}

func TestConcurrentSameChallengePaysOnce(t *testing.T) {
	ln := newFakeLN()
	s := newSeller(t, ln, 6)
	c, _ := newTestConsumer(t, ln)
	ln.onPay = func(context.Context, lntypes.Hash) (invoices.Payment, error, bool) {
		time.Sleep(20 * time.Millisecond)
		return invoices.Payment{}, nil, false
	}
	mac, inv, h := s.mint(t.Context(), "/same")
	const n = 8
	var fresh atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			res, err := c.PayChallenge(context.Background(), PayChallengeRequest{Invoice: inv, Macaroon: mac})
			if err != nil {
				t.Error(err)
				return
			}
			if !res.Payment.AlreadyPaid {
				fresh.Add(1)
			}
		})
	}
	wg.Wait()
	if ln.payCount(h) != 1 || fresh.Load() != 1 {
		t.Fatalf("%d pays, %d fresh results; want 1 and 1", ln.payCount(h), fresh.Load())
	}
}

func TestConcurrentAccessBudgetFitsOne(t *testing.T) {
	ln := newFakeLN()
	s := newSeller(t, ln, 50)
	c, _ := newTestConsumer(t, ln)
	mustSetBudget(c, BudgetUpdate{PerDaySats: ptr(int64(100))}) // 60 per payment with the fee limit
	ln.onPay = func(context.Context, lntypes.Hash) (invoices.Payment, error, bool) {
		time.Sleep(20 * time.Millisecond)
		return invoices.Payment{}, nil, false
	}
	const n = 6
	var paid, refused atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r, err := c.Access(context.Background(), AccessRequest{URL: fmt.Sprintf("%s/c/%d", s.srv.URL, i)})
			switch {
			case err == nil && r.Paid:
				paid.Add(1)
				body(t, r)
			case errors.Is(err, storage.ErrBudgetExceeded):
				refused.Add(1)
			default:
				t.Errorf("access %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if paid.Load() != 1 || refused.Load() != n-1 || ln.totalPays() != 1 {
		t.Fatalf("%d paid, %d refused, %d LND payments", paid.Load(), refused.Load(), ln.totalPays())
	}
}

// TestConcurrentAccessSameURLBuysOnce: parallel requests for one
// resource, each met with its own challenge, buy one token between them.
func TestConcurrentAccessSameURLBuysOnce(t *testing.T) {
	ln := newFakeLN()
	s := newSeller(t, ln, 9)
	c, _ := newTestConsumer(t, ln)
	ln.onPay = func(context.Context, lntypes.Hash) (invoices.Payment, error, bool) {
		time.Sleep(30 * time.Millisecond)
		return invoices.Payment{}, nil, false
	}
	const n = 6
	var paid atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			r, err := c.Access(context.Background(), AccessRequest{URL: s.srv.URL + "/one"})
			if err != nil {
				t.Error(err)
				return
			}
			if body(t, r) != "content of /one" {
				t.Errorf("status %d", r.Status)
			}
			if r.Paid {
				paid.Add(1)
			}
		})
	}
	wg.Wait()
	if ln.totalPays() != 1 || paid.Load() != 1 {
		t.Fatalf("%d LND payments, %d paid answers; want 1 and 1", ln.totalPays(), paid.Load())
	}
}

// TestPaidHashSkipsPriceRules: a challenge paid before is answered from
// the journal even once its invoice has expired, and never paid again.
func TestPaidHashSkipsPriceRules(t *testing.T) {
	ln := newFakeLN()
	s := newSeller(t, ln, 3)
	now := time.Now()
	clock := func() time.Time { return now }
	c, _ := newTestConsumer(t, ln, func(c *Config) { c.Now = func() time.Time { return clock() } })
	mac, inv, h := s.mint(t.Context(), "/later")
	first, err := c.PayChallenge(t.Context(), PayChallengeRequest{Invoice: inv, Macaroon: mac})
	if err != nil {
		t.Fatal(err)
	}
	clock = func() time.Time { return now.Add(2 * time.Hour) } // the invoice expired
	again, err := c.PayChallenge(t.Context(), PayChallengeRequest{Invoice: inv, Macaroon: mac, MaxSats: 1})
	if err != nil || !again.Payment.AlreadyPaid || again.Token.Authorization != first.Token.Authorization {
		t.Fatalf("%v %+v", err, again)
	}
	if p, err := c.PayInvoice(t.Context(), PayInvoiceRequest{Invoice: inv, MaxSats: 1}); err != nil || !p.AlreadyPaid {
		t.Fatalf("invoice: %v %+v", err, p)
	}
	_, h2 := newPreimage()
	if _, err := c.PayInvoice(t.Context(), PayInvoiceRequest{Invoice: invoiceFor(t, regtest, h2, 3000, time.Hour), MaxSats: 0}); RefusalOf(err) == nil {
		t.Fatalf("a fresh invoice created before the clock moved is expired: %v", err)
	}
	if ln.payCount(h) != 1 {
		t.Fatalf("%d pays", ln.payCount(h))
	}
}
