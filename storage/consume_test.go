package storage

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// consumeFixture is an on-disk store on a settable clock at t0, holding
// one challenge.
func consumeFixture(t *testing.T) (*Store, Options, *clock, *Challenge) {
	t.Helper()
	clk := newClock(t0)
	opts := diskOptions(t)
	opts.Now = clk.Now
	s := openStore(t, opts)
	c := fullChallenge(t, t0)
	if err := s.PutChallenge(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return s, opts, clk, c
}

func TestConsume(t *testing.T) {
	s, opts, clk, c := consumeFixture(t)
	ctx := t.Context()
	if err := s.Consumed(ctx, c.PaymentHash); err != nil {
		t.Fatalf("Consumed before any consumption = %v, want nil", err)
	}
	clk.Set(t0.Add(time.Minute))
	got, err := s.Consume(ctx, c.PaymentHash, "mpp")
	if err != nil {
		t.Fatal(err)
	}
	if got.TokenID != c.TokenID || got.Resource != c.Resource || got.PriceSats != c.PriceSats {
		t.Errorf("Consume returned %+v, want the stored challenge %+v", got, c)
	}
	if ok, _ := s.IsRevoked(ctx, c.TokenID); !ok {
		t.Error("the L402 token of a consumed payment is not revoked")
	}

	// A replay, by the same or another scheme, and after a restart.
	check := func(s *Store, scheme string) {
		t.Helper()
		_, err := s.Consume(ctx, c.PaymentHash, scheme)
		var ce *ConsumedError
		if !errors.As(err, &ce) || !errors.Is(err, ErrConsumed) {
			t.Fatalf("second Consume(%s) = %v, want a *ConsumedError", scheme, err)
		}
		if ce.Scheme != "mpp" || !ce.At.Equal(t0.Add(time.Minute)) || ce.PaymentHash != c.PaymentHash {
			t.Errorf("ConsumedError = %+v, want the first consumption (mpp at t0+1m)", ce)
		}
		if err := s.Consumed(ctx, c.PaymentHash); !errors.Is(err, ErrConsumed) {
			t.Errorf("Consumed = %v, want ErrConsumed", err)
		}
	}
	check(s, "mpp")
	check(s, "x402")
	s = reopen(t, s, opts)
	check(s, "x402")
	if ok, _ := s.IsRevoked(ctx, c.TokenID); !ok {
		t.Error("the revocation of a consumed payment's token did not survive a restart")
	}
}

func TestConsumeRefuses(t *testing.T) {
	s := openStore(t, Options{Now: func() time.Time { return t0 }})
	ctx := t.Context()
	if _, err := s.Consume(ctx, randomHash(t), "mpp"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Consume of a hash this store never issued = %v, want ErrNotFound", err)
	}
	c := fullChallenge(t, t0)
	if err := s.PutChallenge(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, scheme := range []string{"", "a-scheme-name-too-long"} {
		if _, err := s.Consume(ctx, c.PaymentHash, scheme); !errors.Is(err, ErrInvalid) {
			t.Errorf("Consume with scheme %q = %v, want ErrInvalid", scheme, err)
		}
	}
	if err := s.Consumed(ctx, c.PaymentHash); err != nil {
		t.Errorf("a refused Consume left a consumption: %v", err)
	}
	// A token revoked before keeps its first revocation.
	if err := s.Revoke(ctx, c.TokenID, "leaked"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Consume(ctx, c.PaymentHash, "x402"); err != nil {
		t.Fatal(err)
	}
	revs, err := s.Revocations(ctx)
	if err != nil || len(revs) != 1 || revs[0].Reason != "leaked" {
		t.Errorf("Revocations = %+v, %v; want the first one kept", revs, err)
	}
}

// TestConsumeConcurrent: many concurrent spends of one payment, in any
// mix of schemes, and exactly one wins.
func TestConsumeConcurrent(t *testing.T) {
	s := openStore(t, diskOptions(t))
	ctx := t.Context()
	c := fullChallenge(t, time.Now())
	if err := s.PutChallenge(ctx, c); err != nil {
		t.Fatal(err)
	}
	var wins, consumed atomic.Int32
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			_, err := s.Consume(ctx, c.PaymentHash, []string{"mpp", "x402"}[i%2])
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, ErrConsumed):
				consumed.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || consumed.Load() != 31 {
		t.Errorf("%d spends succeeded and %d were refused as consumed, want 1 and 31", wins.Load(), consumed.Load())
	}
}

func TestUnconsume(t *testing.T) {
	s, opts, clk, c := consumeFixture(t)
	ctx := t.Context()
	if undone, err := s.Unconsume(ctx, c.PaymentHash, "mpp"); err != nil || undone {
		t.Fatalf("Unconsume of an unspent payment = %v, %v; want false, nil", undone, err)
	}
	if _, err := s.Consume(ctx, c.PaymentHash, "mpp"); err != nil {
		t.Fatal(err)
	}
	if undone, err := s.Unconsume(ctx, c.PaymentHash, "x402"); err != nil || undone {
		t.Fatalf("Unconsume by another scheme = %v, %v; want false, nil", undone, err)
	}
	if undone, err := s.Unconsume(ctx, c.PaymentHash, "mpp"); err != nil || !undone {
		t.Fatalf("Unconsume = %v, %v; want true, nil", undone, err)
	}
	s = reopen(t, s, opts)
	if err := s.Consumed(ctx, c.PaymentHash); err != nil {
		t.Fatalf("Consumed after Unconsume (and a restart) = %v, want nil", err)
	}
	if ok, _ := s.IsRevoked(ctx, c.TokenID); ok {
		t.Fatal("the token stays revoked after its payment was given back")
	}
	// Given back, the payment buys once more, and only once.
	if _, err := s.Consume(ctx, c.PaymentHash, "x402"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Consume(ctx, c.PaymentHash, "mpp"); !errors.Is(err, ErrConsumed) {
		t.Fatalf("second Consume after a give-back = %v, want ErrConsumed", err)
	}

	// A token revoked before its payment was spent stays revoked when
	// the payment is given back.
	d := fullChallenge(t, t0)
	if err := s.PutChallenge(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, d.TokenID, "operator"); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(time.Hour))
	if _, err := s.Consume(ctx, d.PaymentHash, "mpp"); err != nil {
		t.Fatal(err)
	}
	if undone, err := s.Unconsume(ctx, d.PaymentHash, "mpp"); err != nil || !undone {
		t.Fatalf("Unconsume = %v, %v", undone, err)
	}
	if ok, _ := s.IsRevoked(ctx, d.TokenID); !ok {
		t.Fatal("Unconsume lifted an operator's revocation")
	}
	s = reopen(t, s, opts)
	if ok, _ := s.IsRevoked(ctx, d.TokenID); !ok {
		t.Fatal("Unconsume deleted an operator's revocation")
	}
}

// Spends share group commits with each other and with issues: in one
// batch, each payment is spent once, a spend of an unknown payment fails
// alone, and the issues beside them are stored.
func TestConsumeGroupCommit(t *testing.T) {
	s := openStore(t, diskOptions(t))
	ctx := t.Context()
	var hashes []*Challenge
	for range 16 {
		c := fullChallenge(t, time.Now())
		if err := s.PutChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, c)
	}
	batches := 0
	s.issueHook = func(at issueStage) {
		if at == issueBatched {
			batches++
		}
	}
	var wins [16]atomic.Int32
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			c := hashes[i%16]
			_, err := s.Consume(ctx, c.PaymentHash, "mpp")
			switch {
			case err == nil:
				wins[i%16].Add(1)
			case !errors.Is(err, ErrConsumed):
				t.Error(err)
			}
		})
		if i%8 == 0 {
			wg.Go(func() {
				if _, err := s.Consume(ctx, randomHash(t), "x402"); !errors.Is(err, ErrNotFound) {
					t.Errorf("spending an unknown payment: %v", err)
				}
			})
			wg.Go(func() {
				c := fullChallenge(t, time.Now())
				var key [32]byte
				key[0] = byte(i)
				if err := s.IssueChallenge(ctx, c, key, nil); err != nil {
					t.Errorf("an issue beside the spends: %v", err)
				}
			})
		}
	}
	wg.Wait()
	for i := range wins {
		if n := wins[i].Load(); n != 1 {
			t.Errorf("payment %d spent %d times", i, n)
		}
		if ok, _ := s.IsRevoked(ctx, hashes[i].TokenID); !ok {
			t.Errorf("payment %d spent, its token not revoked", i)
		}
	}
	t.Logf("%d spends, 8 refused spends and 8 issues in %d commits", 64, batches)
}
