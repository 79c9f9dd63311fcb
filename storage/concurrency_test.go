package storage

import (
	"sync"
	"testing"
	"time"

	"github.com/l402d/l402d/l402"
)

// TestConcurrentWriters has many goroutines create root keys and challenges
// and settle them, each challenge by two goroutines at once and some twice,
// then checks that nothing was lost and nothing was counted twice.
func TestConcurrentWriters(t *testing.T) {
	tests := []struct {
		name string
		opts func(t *testing.T) Options
	}{
		{"in memory", func(*testing.T) Options { return Options{} }},
		{"on disk", func(t *testing.T) Options { return diskOptions(t) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const (
				workers   = 16
				perWorker = 25
			)
			s := openStore(t, tt.opts(t))
			ctx := t.Context()
			day := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)

			type made struct {
				id  l402.TokenID
				key [l402.RootKeySize]byte
				c   *Challenge
			}
			results := make([][]made, workers)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range perWorker {
						id := randomID(t)
						key, err := s.NewRootKey(ctx, id)
						if err != nil {
							t.Error(err)
							return
						}
						c := fullChallenge(t, day.Add(time.Duration(w*perWorker+i)*time.Minute))
						c.TokenID = id
						if err := s.PutChallenge(ctx, c); err != nil {
							t.Error(err)
							return
						}
						results[w] = append(results[w], made{id, key, c})
					}
				})
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}

			// Every challenge is settled by two goroutines at once, and
			// challenges with an even index a third time.
			var all []made
			for _, r := range results {
				all = append(all, r...)
			}
			var (
				mu      sync.Mutex
				changed = make(map[int]int)
			)
			settle := func(i int) {
				st := Settlement{
					PaymentHash:    all[i].c.PaymentHash,
					AmountPaidMsat: int64(1000 + i),
					SettledAt:      day.Add(24 * time.Hour),
					SettleIndex:    uint64(i + 1),
				}
				ok, err := s.Settle(ctx, st)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					changed[i]++
					mu.Unlock()
				}
			}
			work := make(chan int)
			for range workers {
				wg.Go(func() {
					for i := range work {
						settle(i)
					}
				})
			}
			for i := range all {
				work <- i
				work <- i
				if i%2 == 0 {
					work <- i
				}
			}
			close(work)
			wg.Wait()

			var revenue int64
			for i := range all {
				if changed[i] != 1 {
					t.Errorf("challenge %d reported changed %d times, want once", i, changed[i])
				}
				revenue += int64(1000 + i)
			}
			n := uint64(len(all))
			want := Counters{Created: n, Settled: n, RevenueMsat: revenue}
			st, err := s.Stats(ctx, time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if st.Total != want || st.Range != want {
				t.Errorf("Stats total %+v range %+v, want %+v", st.Total, st.Range, want)
			}
			if len(st.Days) != 2 || st.Days[0].Created != n || st.Days[1].Settled != n {
				t.Errorf("Days = %+v", st.Days)
			}
			if cur, err := s.SettleCursor(ctx); err != nil || cur != n {
				t.Errorf("SettleCursor = %d, %v; want %d", cur, err, n)
			}
			for _, m := range all {
				if key, err := s.RootKey(ctx, m.id); err != nil || key != m.key {
					t.Fatalf("RootKey = %x, %v; want %x", key, err, m.key)
				}
			}
			if page, _, err := s.ListChallenges(ctx, ChallengeFilter{State: StateSettled, Limit: MaxListLimit}); err != nil || len(page) != len(all) {
				t.Errorf("ListChallenges(settled) = %d, %v; want %d", len(page), err, len(all))
			}
		})
	}
}
