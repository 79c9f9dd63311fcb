package consumer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/l402d/l402d/plugin/field"
)

func TestAccessApproveHook(t *testing.T) {
	ln := newFakeLN()
	s := newSeller(t, ln, 50)
	c, _ := newTestConsumer(t, ln)
	ctx := t.Context()
	u := s.srv.URL + "/api/data"
	errNo := errors.New("the person said no")

	var asked []Proposal
	refuse := func(_ context.Context, p Proposal) error { asked = append(asked, p); return errNo }
	_, err := c.Access(ctx, AccessRequest{URL: u, Approve: refuse})
	var ce *ChallengeError
	if !errors.As(err, &ce) || !errors.Is(err, errNo) || ce.PriceSats != 50 || ce.PaymentHash == "" || ln.totalPays() != 0 {
		t.Fatalf("refused approval: %v (%+v), %d payments", err, ce, ln.totalPays())
	}
	if len(asked) != 1 || asked[0].AmountMsat != 50_000 || asked[0].FeeLimitMsat != 10_000 || asked[0].URL != u || asked[0].PaymentHash.String() != ce.PaymentHash {
		t.Fatalf("proposal %+v", asked)
	}

	// Over the budget: refused before the person is asked.
	mustSetBudget(c, BudgetUpdate{PerPaymentSats: ptr[int64](40)})
	if _, err := c.Access(ctx, AccessRequest{URL: u, Approve: refuse}); RefusalOf(err) == nil || RefusalOf(err).Code != "budget_exceeded" || len(asked) != 1 {
		t.Fatalf("over budget: %v, asked %d times", err, len(asked))
	}
	mustSetBudget(c, BudgetUpdate{PerPaymentSats: ptr[int64](1000)})

	approve := func(_ context.Context, p Proposal) error { asked = append(asked, p); return nil }
	r, err := c.Access(ctx, AccessRequest{URL: u, Approve: approve})
	if err != nil || !r.Paid || ln.totalPays() != 1 || len(asked) != 2 {
		t.Fatalf("approved: %v %+v, %d payments, asked %d", err, r, ln.totalPays(), len(asked))
	}
	body(t, r)
	// A cached token serves the next request: nobody is asked.
	r, err = c.Access(ctx, AccessRequest{URL: u, Approve: refuse})
	if err != nil || r.Paid || !r.FromCache || len(asked) != 2 {
		t.Fatalf("cached: %v %+v, asked %d", err, r, len(asked))
	}
	body(t, r)
}

func TestQuoteInvoiceAndChallenge(t *testing.T) {
	ln := newFakeLN()
	s := newSeller(t, ln, 70)
	c, _ := newTestConsumer(t, ln)
	ctx := t.Context()

	pre, h := newPreimage()
	ln.register(pre)
	inv := invoiceFor(t, &chaincfg.RegressionNetParams, h, 30_000, time.Hour)
	q, err := c.QuoteInvoice(ctx, PayInvoiceRequest{Invoice: inv, MaxSats: 0})
	if err != nil || !q.WouldPay || q.PriceSats != 30 || q.FeeLimitSats != 10 || q.PaymentHash != h.String() || q.AlreadyPaid || ln.totalPays() != 0 {
		t.Fatalf("quote: %v %+v", err, q)
	}
	if q, err := c.QuoteInvoice(ctx, PayInvoiceRequest{Invoice: inv, MaxSats: 29}); err != nil || q.WouldPay || q.Refusal == nil || q.Refusal.Code != "price_above_max" {
		t.Fatalf("quote above max: %v %+v", err, q)
	}
	if _, err := c.PayInvoice(ctx, PayInvoiceRequest{Invoice: inv, MaxSats: 0}); err != nil {
		t.Fatal(err)
	}
	if q, err := c.QuoteInvoice(ctx, PayInvoiceRequest{Invoice: inv, MaxSats: 1}); err != nil || !q.WouldPay || !q.AlreadyPaid {
		t.Fatalf("quote of a paid invoice: %v %+v", err, q)
	}
	_, h2 := newPreimage()
	amountless := invoiceFor(t, &chaincfg.RegressionNetParams, h2, 0, time.Hour)
	if q, err := c.QuoteInvoice(ctx, PayInvoiceRequest{Invoice: amountless, MaxSats: 0}); err != nil || q.Refusal == nil || q.Refusal.Code != "amountless_invoice" {
		t.Fatalf("amountless: %v %+v", err, q)
	}
	for _, bad := range []string{"", "lnbcrt1garbage"} {
		var fe *field.Error
		if _, err := c.QuoteInvoice(ctx, PayInvoiceRequest{Invoice: bad, MaxSats: 0}); !errors.As(err, &fe) || fe.Field != "invoice" {
			t.Fatalf("QuoteInvoice(%q): %v", bad, err)
		}
	}

	mac, cinv, ch := s.mint(ctx, "/x")
	q, err = c.QuoteChallenge(ctx, PayChallengeRequest{Invoice: cinv, Macaroon: mac})
	if err != nil || !q.WouldPay || q.PriceSats != 70 || q.PaymentHash != ch.String() || q.Resource != "/x" {
		t.Fatalf("challenge quote: %v %+v", err, q)
	}
	if q, err := c.QuoteChallenge(ctx, PayChallengeRequest{Invoice: inv, Macaroon: mac}); err != nil || q.Refusal == nil || q.Refusal.Code != "hash_mismatch" {
		t.Fatalf("mismatched challenge: %v %+v", err, q)
	}
	if q, err := c.QuoteChallenge(ctx, PayChallengeRequest{Invoice: cinv, Macaroon: "AgEL"}); err != nil || q.Refusal == nil || q.Refusal.Code != "invalid_macaroon" {
		t.Fatalf("bad macaroon: %v %+v", err, q)
	}
	if ln.totalPays() != 1 {
		t.Fatalf("%d payments, want 1", ln.totalPays())
	}
}
