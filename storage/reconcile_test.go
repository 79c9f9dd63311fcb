package storage

import (
	"slices"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// TestReconcileState: a looked-up settlement is recorded without moving
// the settle cursor; Unsettled lists the pending challenges payable since
// a time; the reconciled mark persists and never moves back.
func TestReconcileState(t *testing.T) {
	opts := diskOptions(t)
	opts.Now = func() time.Time { return t0 }
	s := openStore(t, opts)
	ctx := t.Context()
	mk := func(expires time.Time) *Challenge {
		c := fullChallenge(t, t0)
		c.ExpiresAt = expires
		if err := s.PutChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	old := mk(t0.Add(-2 * time.Hour)) // expired long ago
	recent := mk(t0.Add(-time.Minute))
	live := mk(t0.Add(time.Hour))
	never := mk(time.Time{})
	paid := mk(t0.Add(time.Hour))
	canceled := mk(t0.Add(time.Hour))
	if _, err := s.CancelChallenge(ctx, canceled.PaymentHash); err != nil {
		t.Fatal(err)
	}

	changed, err := s.Settle(ctx, Settlement{PaymentHash: paid.PaymentHash, AmountPaidMsat: 1000, SettleIndex: 7, FromLookup: true})
	if err != nil || !changed {
		t.Fatalf("Settle from lookup: %v %v", changed, err)
	}
	if cur, _ := s.SettleCursor(ctx); cur != 0 {
		t.Fatalf("cursor %d after a looked-up settlement, want 0", cur)
	}
	if c, _ := s.Challenge(ctx, paid.PaymentHash); c.State != StateSettled || c.SettleIndex != 7 {
		t.Fatalf("looked-up settlement not recorded: %+v", c)
	}

	sorted := func(hs ...lntypes.Hash) []string {
		var out []string
		for _, h := range hs {
			out = append(out, h.String())
		}
		slices.Sort(out)
		return out
	}
	for _, tt := range []struct {
		since time.Time
		want  []string
	}{
		{time.Time{}, sorted(old.PaymentHash, recent.PaymentHash, live.PaymentHash, never.PaymentHash)},
		{t0.Add(-10 * time.Minute), sorted(recent.PaymentHash, live.PaymentHash, never.PaymentHash)},
		{t0.Add(2 * time.Hour), sorted(never.PaymentHash)},
	} {
		hs, err := s.Unsettled(ctx, tt.since)
		if err != nil {
			t.Fatal(err)
		}
		if got := sorted(hs...); !slices.Equal(got, tt.want) {
			t.Errorf("Unsettled(%v) = %v, want %v", tt.since, got, tt.want)
		}
	}

	if at, err := s.Reconciled(ctx); err != nil || !at.IsZero() {
		t.Fatalf("Reconciled of a new store: %v %v", at, err)
	}
	if err := s.SetReconciled(ctx, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetReconciled(ctx, t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, opts)
	if at, err := s.Reconciled(ctx); err != nil || !at.Equal(t0) {
		t.Fatalf("Reconciled after reopen = %v %v, want %v (never back)", at, err, t0)
	}
}

// BenchmarkUnsettled100k: what listing the challenges to reconcile costs
// with 100,000 unpaid challenges in the store (one index walk, no record
// reads), for a full pass and for the bounded pass after a mark, where
// only the last 1,000 are still payable.
func BenchmarkUnsettled100k(b *testing.B) {
	s := openStore(b, Options{Now: func() time.Time { return t0 }})
	ctx := b.Context()
	const n = 100_000
	for i := range n {
		c := fullChallenge(b, t0.Add(time.Duration(i-n)*time.Second))
		c.ExpiresAt = c.CreatedAt.Add(10 * time.Minute)
		if err := s.PutChallenge(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name  string
		since time.Time
		want  int
	}{
		{"all", time.Time{}, n},
		{"since-mark", t0.Add(-1000*time.Second + 10*time.Minute), 1000},
	} {
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				hs, err := s.Unsettled(ctx, tt.since)
				if err != nil || len(hs) != tt.want {
					b.Fatalf("%d hashes, %v; want %d", len(hs), err, tt.want)
				}
			}
		})
	}
}
