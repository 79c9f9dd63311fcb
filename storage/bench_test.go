package storage

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/l402d/l402d/l402"
	"github.com/lightningnetwork/lnd/lntypes"
)

// benchKeys stores n root keys and returns their ids.
func benchKeys(b *testing.B, s *Store, n int) []l402.TokenID {
	b.Helper()
	ids := make([]l402.TokenID, n)
	for i := range ids {
		ids[i] = randomID(b)
		if _, err := s.NewRootKey(b.Context(), ids[i]); err != nil {
			b.Fatal(err)
		}
	}
	return ids
}

func BenchmarkRootKeyCacheHit(b *testing.B) {
	s := openStore(b, Options{})
	ids := benchKeys(b, s, 1024)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := s.RootKey(ctx, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRootKeyCacheHitParallel(b *testing.B) {
	s := openStore(b, Options{})
	ids := benchKeys(b, s, 1024)
	ctx := context.Background()
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) * 97
		for pb.Next() {
			if _, err := s.RootKey(ctx, ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkRootKeyUnknown is a forged token id against a complete cache:
// answered from memory.
func BenchmarkRootKeyUnknown(b *testing.B) {
	s := openStore(b, Options{})
	benchKeys(b, s, 1024)
	ctx := context.Background()
	id := randomID(b)
	for b.Loop() {
		if _, err := s.RootKey(ctx, id); err == nil {
			b.Fatal("found a random id")
		}
	}
}

// BenchmarkRootKeyCold reads through to Badger (cache disabled), from a
// reopened on-disk store so the keys come from tables, not the memtable.
func BenchmarkRootKeyCold(b *testing.B) {
	opts := diskOptions(b)
	opts.RootKeyCacheSize = -1
	s := openStore(b, opts)
	ids := benchKeys(b, s, 4096)
	s = reopen(b, s, opts)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := s.RootKey(ctx, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIsRevoked(b *testing.B) {
	s := openStore(b, Options{})
	for range 100 {
		if err := s.Revoke(b.Context(), randomID(b), "bench"); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	id := randomID(b)
	for b.Loop() {
		if ok, _ := s.IsRevoked(ctx, id); ok {
			b.Fatal("revoked")
		}
	}
}

// The write benchmarks run on disk with SyncWrites, as l402d does: they
// measure an fsync per operation, serial and with concurrent writers that
// share fsyncs through Badger's group commit.
func BenchmarkNewRootKey(b *testing.B) {
	for _, par := range []bool{false, true} {
		b.Run(parallelName(par), func(b *testing.B) {
			s := openStore(b, diskOptions(b))
			ctx := context.Background()
			run(b, par, func() {
				if _, err := s.NewRootKey(ctx, randomID(b)); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

func BenchmarkPutChallenge(b *testing.B) {
	for _, par := range []bool{false, true} {
		b.Run(parallelName(par), func(b *testing.B) {
			s := openStore(b, diskOptions(b))
			ctx := context.Background()
			now := time.Now()
			run(b, par, func() {
				if err := s.PutChallenge(ctx, fullChallenge(b, now)); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

func BenchmarkSettle(b *testing.B) {
	for _, par := range []bool{false, true} {
		b.Run(parallelName(par), func(b *testing.B) {
			s := openStore(b, diskOptions(b))
			ctx := context.Background()
			now := time.Now()
			hashes := make([]lntypes.Hash, b.N)
			for i := range hashes {
				c := fullChallenge(b, now)
				hashes[i] = c.PaymentHash
				if err := s.PutChallenge(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
			var next atomic.Int64
			b.ResetTimer()
			run(b, par, func() {
				i := next.Add(1)
				st := Settlement{PaymentHash: hashes[(i-1)%int64(len(hashes))], AmountPaidMsat: 21000, SettleIndex: uint64(i)}
				if _, err := s.Settle(ctx, st); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

func parallelName(par bool) string {
	if par {
		return "parallel"
	}
	return "serial"
}

// run calls op b.N times, from GOMAXPROCS*8 goroutines if par (a server
// has many requests in flight, mostly waiting on the disk).
func run(b *testing.B, par bool, op func()) {
	b.ReportAllocs()
	if !par {
		for range b.N {
			op()
		}
		return
	}
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			op()
		}
	})
}
