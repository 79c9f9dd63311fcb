package storage

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lightningnetwork/lnd/lntypes"
)

const testDeposit = "mpp-session"

// putDeposit stores a session deposit challenge of svc for sats.
func putDeposit(t *testing.T, s *Store, svc, resource string, sats int64) lntypes.Hash {
	t.Helper()
	c := fullChallenge(t, t0)
	c.Service, c.Resource, c.PriceSats = svc, resource, sats
	if err := s.PutChallenge(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return c.PaymentHash
}

// books checks that what went in equals what was spent, is left and is
// refunded.
func books(t *testing.T, ss Session) {
	t.Helper()
	if ss.DepositedMsat != ss.DebitedMsat+ss.BalanceMsat()+ss.RefundMsat {
		t.Fatalf("books do not balance: deposited %d != debited %d + balance %d + refund %d", ss.DepositedMsat, ss.DebitedMsat, ss.BalanceMsat(), ss.RefundMsat)
	}
}

func TestSessionLife(t *testing.T) {
	clk := newClock(t0)
	opts := diskOptions(t)
	opts.Now = clk.Now
	s := openStore(t, opts)
	ctx := t.Context()
	dep := putDeposit(t, s, "api", testDeposit, 100)

	// Opening pays for the opening request.
	o, err := s.OpenSession(ctx, dep, "api", testDeposit, "lnbcrt1return", lntypes.Hash{}, 10_000)
	if err != nil || !o.Debited || o.Session.BalanceMsat() != 90_000 || o.Session.Requests != 1 {
		t.Fatalf("OpenSession = %+v, %v; want debited, 90000 msat left", o, err)
	}
	if ok, _ := s.IsRevoked(ctx, mustChallenge(t, s, dep).TokenID); !ok {
		t.Error("the deposit's L402 token is not revoked: it would buy twice")
	}
	// A retried open debits the open session, and a deposit is no charge.
	if o, err = s.OpenSession(ctx, dep, "api", testDeposit, "lnbcrt1other", lntypes.Hash{}, 10_000); err != nil || o.Session.BalanceMsat() != 80_000 || o.Session.ReturnInvoice != "lnbcrt1return" {
		t.Fatalf("second open = %+v, %v; want a debit of the first session", o, err)
	}
	if _, err := s.Consume(ctx, dep, "mpp"); !errors.Is(err, ErrConsumed) {
		t.Errorf("Consume of a session deposit = %v, want ErrConsumed", err)
	}

	// Refusals write nothing.
	for name, f := range map[string]func() error{
		"other service": func() error { _, err := s.DebitSession(ctx, dep, "other", 1); return err },
		"overdraw":      func() error { _, err := s.DebitSession(ctx, dep, "api", 80_001); return err },
		"unknown":       func() error { _, err := s.DebitSession(ctx, randomHash(t), "api", 1); return err },
		"not a deposit": func() error {
			h := putDeposit(t, s, "api", "/paid", 100)
			_, err := s.TopUpSession(ctx, dep, h, "api", testDeposit, 0)
			return err
		},
		"open with a charge's invoice": func() error {
			h := putDeposit(t, s, "api", "/paid", 100)
			_, err := s.OpenSession(ctx, h, "api", testDeposit, "lnbcrt1r", lntypes.Hash{}, 0)
			return err
		},
	} {
		if err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if got, _ := s.Session(ctx, dep); got.BalanceMsat() != 80_000 || got.Requests != 2 {
		t.Fatalf("after refusals the session is %+v, want it untouched", got)
	}

	// A top-up is credited once.
	top := putDeposit(t, s, "api", testDeposit, 50)
	if o, err = s.TopUpSession(ctx, dep, top, "api", testDeposit, 10_000); err != nil || !o.Debited || o.Session.BalanceMsat() != 120_000 {
		t.Fatalf("TopUpSession = %+v, %v; want 120000 left", o, err)
	}
	if _, err := s.TopUpSession(ctx, dep, top, "api", testDeposit, 0); !errors.Is(err, ErrConsumed) {
		t.Fatalf("replayed top-up = %v, want ErrConsumed", err)
	}
	// A top-up cannot open a session of its own.
	if _, err := s.OpenSession(ctx, top, "api", testDeposit, "lnbcrt1x", lntypes.Hash{}, 0); !errors.Is(err, ErrConsumed) {
		t.Fatalf("open with a spent top-up = %v, want ErrConsumed", err)
	}

	// A debit given back; closing records the refund before paying it.
	if ok, err := s.UndebitSession(ctx, dep, 10_000); !ok || err != nil {
		t.Fatalf("UndebitSession = %v, %v", ok, err)
	}
	closed, err := s.CloseSession(ctx, dep)
	if err != nil || closed.State != SessionClosing || closed.RefundMsat != 130_000 || closed.BalanceMsat() != 0 || closed.RefundStatus != RefundPending {
		t.Fatalf("CloseSession = %+v, %v; want closing with 130000 owed", closed, err)
	}
	books(t, closed)
	if _, err := s.DebitSession(ctx, dep, "api", 1); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("debit after close = %v, want ErrSessionClosed", err)
	}
	if ok, _ := s.UndebitSession(ctx, dep, 10_000); ok {
		t.Fatal("a closed session took a debit back after its refund was reckoned")
	}
	again, err := s.CloseSession(ctx, dep)
	if err != nil || again.RefundMsat != 130_000 || again.State != SessionClosing {
		t.Fatalf("second close = %+v, %v; want the same refund", again, err)
	}
	// The journal survives a restart; the outcome is recorded once.
	s = reopen(t, s, opts)
	pending, err := s.Sessions(ctx, SessionClosing)
	if err != nil || len(pending) != 1 || pending[0].ID != dep {
		t.Fatalf("closing sessions after restart = %+v, %v", pending, err)
	}
	done, err := s.FinishRefund(ctx, dep, true, 1000, "")
	if err != nil || done.State != SessionClosed || done.RefundStatus != RefundSucceeded || done.RefundFeeMsat != 1000 {
		t.Fatalf("FinishRefund = %+v, %v", done, err)
	}
	books(t, done)
	if done, _ = s.FinishRefund(ctx, dep, false, 0, "late failure"); done.RefundStatus != RefundSucceeded {
		t.Fatal("a late failure overwrote a succeeded refund")
	}
}

func mustChallenge(t *testing.T, s *Store, h lntypes.Hash) *Challenge {
	t.Helper()
	c, err := s.Challenge(t.Context(), h)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSessionNeverOverdraws: concurrent debits on one balance (sharing
// group commits) take exactly what it holds, and concurrent opens of one
// deposit make one session.
func TestSessionNeverOverdraws(t *testing.T) {
	s := openStore(t, diskOptions(t))
	ctx := t.Context()
	dep := putDeposit(t, s, "api", testDeposit, 50)
	var wg sync.WaitGroup
	var ok, low atomic.Int64
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 8 {
				_, err := s.OpenSession(ctx, dep, "api", testDeposit, "lnbcrt1r", lntypes.Hash{}, 1000)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrInsufficientBalance):
					low.Add(1)
				default:
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	got, err := s.Session(ctx, dep)
	if err != nil {
		t.Fatal(err)
	}
	if ok.Load() != 50 || low.Load() != 78 || got.DebitedMsat != 50_000 || got.Requests != 50 || got.BalanceMsat() != 0 {
		t.Fatalf("%d debits, %d refused, session %+v; want 50 of 128 taken and the balance 0", ok.Load(), low.Load(), got)
	}
	books(t, *got)
}

func FuzzDecodeSession(f *testing.F) {
	ss := &Session{Service: "api", ReturnInvoice: "lnbcrt1r", DepositedMsat: 5, State: SessionOpen}
	f.Add(make([]byte, 32), encodeSession(ss))
	f.Add([]byte{1}, []byte{sessionFormat, '{', '}'})
	f.Add(make([]byte, 32), []byte{sessionFormat, 'n', 'u', 'l', 'l'})
	f.Fuzz(func(t *testing.T, keyRest, v []byte) {
		got, err := decodeSession(append([]byte(prefixSession), keyRest...), v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, err := decodeSession(sessionKey(got.ID), encodeSession(got))
		if err != nil || again.DepositedMsat != got.DepositedMsat || again.State != got.State || again.ID != got.ID {
			t.Fatalf("round trip: %+v %+v %v", got, again, err)
		}
	})
}

func FuzzDecodeHeld(f *testing.F) {
	f.Add([]byte("https://a.example\x00"+string(make([]byte, 32))), []byte(`{"url":"https://a.example/x","state":"open"}`))
	f.Add([]byte("\x00"), []byte(`null`))
	f.Fuzz(func(t *testing.T, keyRest, v []byte) {
		got, err := decodeHeld(append([]byte(prefixHeld), keyRest...), v)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("untyped error %v", err)
		}
		_ = got
	})
}

// TestMeterSession: metering takes what it asks or, at the end of the
// balance, what is left; refuses below its minimum; counts no request;
// gives back only what it took and only while the session is open.
func TestMeterSession(t *testing.T) {
	s := openStore(t, diskOptions(t))
	ctx := t.Context()
	dep := putDeposit(t, s, "api", testDeposit, 10)
	if _, err := s.OpenSession(ctx, dep, "api", testDeposit, "lnbcrt1r", lntypes.Hash{}, 1000); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name            string
		want, min, took int64
		err             error
		balance         int64
	}{
		{"whole block", 4000, 1, 4000, nil, 5000},
		{"another", 4000, 1000, 4000, nil, 1000},
		{"what is left", 4000, 1, 1000, nil, 0},
		{"nothing left", 4000, 1, 0, ErrInsufficientBalance, 0},
	}
	for _, tt := range tests {
		took, ss, err := s.MeterSession(ctx, dep, "api", tt.want, tt.min)
		if took != tt.took || !errors.Is(err, tt.err) {
			t.Fatalf("%s: MeterSession = %d, %v; want %d, %v", tt.name, took, err, tt.took, tt.err)
		}
		if err == nil && (ss.BalanceMsat() != tt.balance || ss.Requests != 1) {
			t.Fatalf("%s: session %+v; want balance %d and still 1 request", tt.name, ss, tt.balance)
		}
	}
	for name, f := range map[string]func() error{
		"zero":          func() error { _, _, err := s.MeterSession(ctx, dep, "api", 0, 0); return err },
		"min over want": func() error { _, _, err := s.MeterSession(ctx, dep, "api", 1, 2); return err },
		"other service": func() error { _, _, err := s.MeterSession(ctx, dep, "other", 1, 1); return err },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if ok, err := s.UnmeterSession(ctx, dep, 9001); ok || err != nil {
		t.Fatalf("giving back more than metering took = %v, %v; want refused", ok, err)
	}
	if ok, err := s.UnmeterSession(ctx, dep, 2500); !ok || err != nil {
		t.Fatalf("UnmeterSession = %v, %v", ok, err)
	}
	got, _ := s.Session(ctx, dep)
	if got.MeteredMsat != 6500 || got.DebitedMsat != 7500 || got.BalanceMsat() != 2500 {
		t.Fatalf("after give-back %+v; want 6500 metered, 2500 left", got)
	}
	books(t, *got)
	closed, err := s.CloseSession(ctx, dep)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.UnmeterSession(ctx, dep, 1000); ok {
		t.Fatal("a closed session took metering back after its refund was reckoned")
	}
	books(t, closed)
}

// TestRefundedHeldSessionCreditsOnce: a refund received frees today's
// budget (day and domain) once, however often the close is recorded, and
// never below zero.
func TestRefundedHeldSessionCreditsOnce(t *testing.T) {
	s := openStore(t, diskOptions(t))
	ctx := t.Context()
	h := &HeldSession{ID: randomHash(t), Origin: "http://shop.example", URL: "http://shop.example/x", State: HeldOpen, DepositedMsat: 50_000}
	if err := s.PutHeldSession(ctx, h); err != nil {
		t.Fatal(err)
	}
	err := s.update(ctx, true, func(txn kvTxn) error {
		return addBudget(txn, dayOf(s.now()), "example", BudgetCounter{SpentMsat: 60_000})
	})
	if err != nil {
		t.Fatal(err)
	}
	done := *h
	done.State, done.RefundMsat = HeldRefunded, 45_000
	var wg sync.WaitGroup
	var credits atomic.Int64
	for range 8 {
		wg.Go(func() {
			c := done
			if ok, err := s.RefundedHeldSession(ctx, &c, "example"); err != nil {
				t.Error(err)
			} else if ok {
				credits.Add(1)
			}
		})
	}
	wg.Wait()
	u, err := s.BudgetUsage(ctx, s.now())
	if err != nil {
		t.Fatal(err)
	}
	if credits.Load() != 1 || u.Total.SpentMsat != 15_000 || len(u.Domains) != 1 || u.Domains[0].SpentMsat != 15_000 {
		t.Fatalf("%d credits, usage %+v; want one credit of 45000", credits.Load(), u)
	}
	if _, err := s.RefundedHeldSession(ctx, h, "example"); err == nil {
		t.Fatal("an open session was recorded refunded")
	}
}
