package storage

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402"
)

// issueTopUp issues a challenge of svc for sats whose payment tops up
// prepaid balance of.
func issueTopUp(t *testing.T, s *Store, svc string, sats int64, of lntypes.Hash) lntypes.Hash {
	t.Helper()
	c := fullChallenge(t, t0)
	c.Service, c.Resource, c.PriceSats, c.PrepaidOf = svc, "/api/*", sats, of
	var key [l402.RootKeySize]byte
	if err := s.IssueChallenge(t.Context(), c, key, nil); err != nil {
		t.Fatal(err)
	}
	return c.PaymentHash
}

func TestPrepaidLife(t *testing.T) {
	s := openStore(t, diskOptions(t))
	ctx := t.Context()
	p := putDeposit(t, s, "api", "/api/*", 10) // a credit of 10 sats

	debit := func(h lntypes.Hash, msat int64) SessionDebit {
		t.Helper()
		d, err := s.DebitPrepaid(ctx, h, "api", msat)
		if err != nil {
			t.Fatalf("DebitPrepaid(%s, %d): %v", h, msat, err)
		}
		books(t, d.Session)
		return d
	}
	if d := debit(p, 3000); !d.Debited || d.Session.BalanceMsat() != 7000 || d.Session.ID != p || !d.Session.Prepaid {
		t.Fatalf("first use = %+v; want its own balance opened with 10,000 msat, 7,000 left", d)
	}
	if ok, _ := s.IsRevoked(ctx, mustChallenge(t, s, p).TokenID); ok {
		t.Error("the prepaid token was revoked: it could not spend its own balance")
	}
	if _, err := s.Consume(ctx, p, "mpp"); !errors.Is(err, ErrConsumed) {
		t.Errorf("Consume of a prepaid credit = %v, want ErrConsumed: it would buy twice", err)
	}
	if _, err := s.OpenSession(ctx, p, "api", "/api/*", "lnbcrt1r", lntypes.Hash{}, 0); err == nil {
		t.Error("a prepaid credit opened an MPP session too")
	}
	debit(p, 3000)
	if d := debit(p, 3000); !d.Debited || d.Session.BalanceMsat() != 1000 {
		t.Fatalf("third use = %+v; want 1,000 left", d)
	}
	if d := debit(p, 3000); d.Debited || d.Session.BalanceMsat() != 1000 || d.Session.Requests != 3 {
		t.Fatalf("short use = %+v; want refused, nothing taken", d)
	}

	// A top-up credits the balance once, whichever token then spends it.
	top := issueTopUp(t, s, "api", 10, p)
	if d := debit(top, 3000); !d.Debited || d.Session.ID != p || d.Session.BalanceMsat() != 8000 || d.Session.TopUps != 1 {
		t.Fatalf("first use of the top-up = %+v; want balance %s credited 10,000 then debited", d, p)
	}
	if d := debit(top, 3000); d.Session.BalanceMsat() != 5000 || d.Session.DepositedMsat != 20_000 {
		t.Fatalf("second use of the top-up = %+v; want no second credit", d)
	}
	if d := debit(p, 3000); d.Session.BalanceMsat() != 2000 {
		t.Fatalf("the first token after the top-up = %+v; want the shared balance", d)
	}

	// Refusals.
	for name, f := range map[string]func() error{
		"other service": func() error { _, err := s.DebitPrepaid(ctx, p, "other", 1); return err },
		"unknown":       func() error { _, err := s.DebitPrepaid(ctx, randomHash(t), "api", 1); return err },
		"top-up of another service": func() error {
			_, err := s.DebitPrepaid(ctx, issueTopUp(t, s, "other", 10, p), "other", 1)
			return err
		},
		"an MPP session": func() error {
			dep := putDeposit(t, s, "api", testDeposit, 10)
			if _, err := s.OpenSession(ctx, dep, "api", testDeposit, "lnbcrt1r", lntypes.Hash{}, 0); err != nil {
				return nil
			}
			_, err := s.DebitPrepaid(ctx, dep, "api", 1)
			return err
		},
	} {
		if err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if b, _ := s.Prepaid(ctx, p); b.BalanceMsat() != 2000 {
		t.Fatalf("refusals changed the balance: %+v", b)
	}

	// Close with the holder's invoice, from either token; a retry learns
	// the same refund whatever invoice it names.
	c, err := s.ClosePrepaid(ctx, top, "api", "lnbcrt1return", lntypes.Hash{1})
	if err != nil || c.State != SessionClosing || c.RefundMsat != 2000 || c.ReturnInvoice != "lnbcrt1return" {
		t.Fatalf("ClosePrepaid = %+v, %v; want closing with 2,000 msat owed", c, err)
	}
	books(t, c)
	if c2, err := s.ClosePrepaid(ctx, p, "api", "lnbcrt1other", lntypes.Hash{2}); err != nil || c2.ReturnInvoice != "lnbcrt1return" || c2.RefundMsat != 2000 {
		t.Fatalf("second close = %+v, %v; want the first close unchanged", c2, err)
	}
	if _, err := s.DebitPrepaid(ctx, p, "api", 1); !errors.Is(err, ErrSessionClosed) {
		t.Errorf("debit after close = %v, want ErrSessionClosed", err)
	}
	if _, err := s.DebitPrepaid(ctx, top, "api", 1); !errors.Is(err, ErrSessionClosed) {
		t.Errorf("debit of a credited top-up after close = %v, want ErrSessionClosed", err)
	}
	// A top-up paid for a balance closed since opens one of its own.
	late := issueTopUp(t, s, "api", 10, p)
	if d := debit(late, 1000); !d.Debited || d.Session.ID != late || d.Session.BalanceMsat() != 9000 {
		t.Fatalf("top-up of a closed balance = %+v; want a balance of its own", d)
	}
}

// TestPrepaidCloseUnused: a credit never used, and a top-up paid but
// never presented, are refunded whole by a close.
func TestPrepaidCloseUnused(t *testing.T) {
	s := openStore(t, Options{})
	ctx := t.Context()
	p := putDeposit(t, s, "api", "/api/*", 10)
	c, err := s.ClosePrepaid(ctx, p, "api", "lnbcrt1r", lntypes.Hash{3})
	if err != nil || c.RefundMsat != 10_000 || c.DepositedMsat != 10_000 {
		t.Fatalf("close of an unused credit = %+v, %v; want all 10,000 msat owed", c, err)
	}
	q := putDeposit(t, s, "api", "/api/*", 10)
	if _, err := s.DebitPrepaid(ctx, q, "api", 4000); err != nil {
		t.Fatal(err)
	}
	top := issueTopUp(t, s, "api", 5, q)
	if _, err = s.ClosePrepaid(ctx, top, "api", "lnbcrt1r", lntypes.Hash{3}); !errors.Is(err, ErrExists) {
		t.Fatalf("a second refund to one invoice = %v, want ErrExists: it would be found paid and never made", err)
	}
	if c, err = s.ClosePrepaid(ctx, top, "api", "lnbcrt1r", lntypes.Hash{4}); err != nil || c.RefundMsat != 11_000 || c.TopUps != 1 {
		t.Fatalf("close by a top-up never presented = %+v, %v; want it credited then 11,000 msat owed", c, err)
	}
	books(t, c)
}

// TestPrepaidNeverOverdraws: 16 clients spending one credit at once, its
// opening and a top-up among them, take exactly what was paid.
func TestPrepaidNeverOverdraws(t *testing.T) {
	s := openStore(t, diskOptions(t))
	ctx := t.Context()
	p := putDeposit(t, s, "api", "/api/*", 50)
	// The balance is open before its top-up is sold, as the gate sells
	// one only to a balance that fell short. (A top-up of a balance not
	// opened opens its own: crediting the first would credit a payment
	// no one proved.)
	if _, err := s.DebitPrepaid(ctx, p, "api", 0); err != nil {
		t.Fatal(err)
	}
	top := issueTopUp(t, s, "api", 50, p)
	var ok, short atomic.Int64
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			h := p
			if i%2 == 1 {
				h = top
			}
			for range 20 {
				d, err := s.DebitPrepaid(ctx, h, "api", 1000)
				switch {
				case err != nil:
					t.Error(err)
					return
				case d.Debited:
					ok.Add(1)
				default:
					short.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b, err := s.Prepaid(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if ok.Load() != 100 || b.DebitedMsat != 100_000 || b.BalanceMsat() != 0 || b.Requests != 101 {
		t.Fatalf("%d debits went through, %d refused; balance %+v; want exactly 100 of 1,000 msat from 100,000", ok.Load(), short.Load(), b)
	}
}

// TestRefundInvoiceOnce: an invoice takes one refund, across sessions and
// prepaid balances; a refused open spends nothing.
func TestRefundInvoiceOnce(t *testing.T) {
	s := openStore(t, Options{})
	ctx := t.Context()
	inv := lntypes.Hash{9}
	a := putDeposit(t, s, "api", testDeposit, 10)
	if _, err := s.OpenSession(ctx, a, "api", testDeposit, "lnbcrt1r", inv, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenSession(ctx, a, "api", testDeposit, "lnbcrt1r", inv, 0); err != nil {
		t.Fatalf("a retried open with its own invoice: %v", err)
	}
	b := putDeposit(t, s, "api", testDeposit, 10)
	if _, err := s.OpenSession(ctx, b, "api", testDeposit, "lnbcrt1r", inv, 0); !errors.Is(err, ErrExists) {
		t.Fatalf("a second session on one return invoice = %v, want ErrExists", err)
	}
	if o, err := s.OpenSession(ctx, b, "api", testDeposit, "lnbcrt1r2", lntypes.Hash{10}, 0); err != nil || o.Session.DepositedMsat != 10_000 {
		t.Fatalf("the refused deposit with a fresh invoice = %+v, %v; want it unspent before", o, err)
	}
	p := putDeposit(t, s, "api", "/api/*", 10)
	if _, err := s.ClosePrepaid(ctx, p, "api", "lnbcrt1r", inv); !errors.Is(err, ErrExists) {
		t.Fatalf("a prepaid refund to a session's invoice = %v, want ErrExists", err)
	}
}
