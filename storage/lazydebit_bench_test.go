package storage

import (
	"fmt"
	"sync"
	"testing"

	"github.com/lightningnetwork/lnd/lntypes"
)

// BenchmarkDebit: 16 clients debiting one balance 1 sat a request, an
// MPP session and a prepaid credit, durably and with an allowance of 10
// requests.
func BenchmarkDebit(b *testing.B) {
	for _, allowance := range []int64{0, 10_000, 100_000} {
		for _, kind := range []string{"session", "prepaid"} {
			b.Run(kind+fmt.Sprintf("/allowance=%d", allowance), func(b *testing.B) {
				o := DefaultOptions(b.TempDir())
				o.Logger = quietLogger()
				o.DebitAllowanceMsat = allowance
				s := openStore(b, o)
				ctx := b.Context()
				c := fullChallenge(b, t0)
				c.Service, c.Resource, c.PriceSats, c.ExpiresAt = "api", "/deposit", 1<<40, c.CreatedAt.AddDate(10, 0, 0)
				if err := s.PutChallenge(ctx, c); err != nil {
					b.Fatal(err)
				}
				id := c.PaymentHash
				debit := func() error {
					if kind == "session" {
						_, err := s.DebitSession(ctx, id, "api", 1000)
						return err
					}
					_, err := s.DebitPrepaid(ctx, id, "api", 1000)
					return err
				}
				if kind == "session" {
					if _, err := s.OpenSession(ctx, id, "api", "/deposit", "lnbcrt1r", lntypes.Hash{}, 0); err != nil {
						b.Fatal(err)
					}
				} else if err := debit(); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				work := make(chan struct{})
				var wg sync.WaitGroup
				for range 16 {
					wg.Go(func() {
						for range work {
							if err := debit(); err != nil {
								b.Error(err)
							}
						}
					})
				}
				for range b.N {
					work <- struct{}{}
				}
				close(work)
				wg.Wait()
			})
		}
	}
}
