package storage

import (
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/l402d/l402d/l402"
)

// TestDeleteUnpaid: an unpaid challenge expired before the cut-off goes
// with its index entry and root key (also for a complete cache and after a
// reopen); a settled, never-expiring or not yet expired one stays; the
// created counters are kept.
func TestDeleteUnpaid(t *testing.T) {
	opts := diskOptions(t)
	opts.Now = func() time.Time { return t0 }
	s := openStore(t, opts)
	ctx := t.Context()
	mk := func(expires time.Time) *Challenge {
		c := fullChallenge(t, t0)
		c.ExpiresAt = expires
		if err := s.IssueChallenge(ctx, c, [l402.RootKeySize]byte{1}, nil); err != nil {
			t.Fatal(err)
		}
		return c
	}
	cut := t0.Add(-time.Hour)
	expired := mk(t0.Add(-2 * time.Hour))
	canceled := mk(t0.Add(-2 * time.Hour))
	if _, err := s.CancelChallenge(ctx, canceled.PaymentHash); err != nil {
		t.Fatal(err)
	}
	paid := mk(t0.Add(-2 * time.Hour))
	if _, err := s.Settle(ctx, Settlement{PaymentHash: paid.PaymentHash, AmountPaidMsat: 1000, SettleIndex: 1}); err != nil {
		t.Fatal(err)
	}
	recent := mk(t0.Add(-time.Minute))
	never := mk(time.Time{})

	cands, err := s.SweepCandidates(ctx, cut, 10)
	if err != nil || len(cands) != 2 || !slices.Contains(cands, expired.PaymentHash) || !slices.Contains(cands, canceled.PaymentHash) {
		t.Fatalf("candidates %v %v, want the expired and the canceled one", cands, err)
	}
	for _, c := range []*Challenge{expired, canceled, paid, recent, never} {
		want := c == expired || c == canceled
		got, err := s.DeleteUnpaid(ctx, c.PaymentHash, cut)
		if err != nil || got != want {
			t.Fatalf("DeleteUnpaid(%s) = %v %v, want %v", c.Resource, got, err, want)
		}
	}
	s = reopen(t, s, opts)
	for _, c := range []*Challenge{expired, canceled, paid, recent, never} {
		gone := c == expired || c == canceled
		_, cerr := s.Challenge(ctx, c.PaymentHash)
		_, kerr := s.RootKey(ctx, c.TokenID)
		if gone != errors.Is(cerr, ErrNotFound) || gone != errors.Is(kerr, l402.ErrUnknownToken) {
			t.Fatalf("after sweep: challenge %v root key %v, want gone %v", cerr, kerr, gone)
		}
	}
	if list, _, _ := s.ListChallenges(ctx, ChallengeFilter{}); len(list) != 3 {
		t.Fatalf("%d challenges listed, want 3", len(list))
	}
	if st, _ := s.Stats(ctx, time.Time{}, time.Time{}); st.Total.Created != 5 || st.Total.Settled != 1 {
		t.Fatalf("stats %+v: created counters must survive the sweep", st.Total)
	}
}

// TestUnpaidFloodPlateau mints a steady flood of challenges that are never
// paid, sweeping as the Sweeper would, and prints the store's key count,
// size on disk and start-up time as simulated time passes: with the sweep
// they level off at what the retention window holds, instead of growing
// with everything ever minted.
func TestUnpaidFloodPlateau(t *testing.T) {
	const (
		perRound  = 500
		rounds    = 24
		step      = 10 * time.Minute // one round of simulated time
		expiry    = 10 * time.Minute
		retention = time.Hour
	)
	clk := newClock(t0)
	opts := diskOptions(t)
	opts.Now = clk.Now
	opts.SyncWrites = false // IssueChallenge still syncs each group commit
	s := openStore(t, opts)
	ctx := t.Context()
	live := func() int {
		n := 0
		_ = s.db.View(ctx, func(txn kvTxn) error {
			it := txn.NewIterator(iterOptions{Prefix: []byte(prefixRootKey)})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				n++
			}
			return nil
		})
		return n
	}
	var peak int
	for round := 1; round <= rounds; round++ {
		now := clk.Now()
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < perRound; i += 16 {
					c := fullChallenge(t, now)
					c.ExpiresAt = now.Add(expiry)
					if err := s.IssueChallenge(ctx, c, [l402.RootKeySize]byte{byte(i)}, nil); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		clk.Set(now.Add(step))
		// The sweep: what LND confirmed unpaid, past expiry + retention.
		before := clk.Now().Add(-retention)
		for {
			hs, err := s.SweepCandidates(ctx, before, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hs {
				if _, err := s.DeleteUnpaid(ctx, h, before); err != nil {
					t.Fatal(err)
				}
			}
			if len(hs) < 1000 {
				break
			}
		}
		n := live()
		peak = max(peak, n)
		if round%6 == 0 {
			start := time.Now()
			s = reopen(t, s, opts)
			t.Logf("after %3d min: %6d minted, %5d root keys stored, %6.1f MB on disk, reopen %v",
				round*int(step/time.Minute), round*perRound, n, float64(dirSize(t, opts.Dir))/1e6, time.Since(start).Round(time.Millisecond))
		}
	}
	// The window holds what was minted in expiry + retention, plus the
	// round in flight.
	bound := int((expiry+retention)/step+1) * perRound
	if peak > bound {
		t.Fatalf("store held up to %d root keys under the flood, want at most %d", peak, bound)
	}
	if st, _ := s.Stats(ctx, time.Time{}, time.Time{}); st.Total.Created != perRound*rounds {
		t.Fatalf("created counter %d, want %d", st.Total.Created, perRound*rounds)
	}
}

func dirSize(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
