package storage

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

func TestIdempotency(t *testing.T) {
	s := openStore(t, Options{})
	ctx := t.Context()
	h1, h2 := randomHash(t), randomHash(t)

	if _, ok, err := s.Idempotency(ctx, "k"); err != nil || ok {
		t.Fatalf("Idempotency of a missing key = %v, %v", ok, err)
	}
	if err := s.PutIdempotency(ctx, "k", h1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := s.Idempotency(ctx, "k"); err != nil || !ok || got != h1 {
		t.Fatalf("Idempotency = %s, %v, %v; want %s", got, ok, err, h1)
	}
	if got, existed, err := s.PutIdempotencyIfAbsent(ctx, "k", h2, time.Minute); err != nil || !existed || got != h1 {
		t.Fatalf("PutIdempotencyIfAbsent over a live entry = %s, %v, %v; want %s", got, existed, err, h1)
	}
	if _, existed, err := s.PutIdempotencyIfAbsent(ctx, "other", h2, time.Minute); err != nil || existed {
		t.Fatalf("PutIdempotencyIfAbsent of a new key = %v, %v", existed, err)
	}
	if got, _, _ := s.Idempotency(ctx, "other"); got != h2 {
		t.Fatalf("entry stored by PutIdempotencyIfAbsent = %s, want %s", got, h2)
	}

	invalid := []struct {
		name string
		key  string
		ttl  time.Duration
	}{
		{"empty key", "", time.Minute},
		{"long key", string(make([]byte, MaxIdempotencyKeyLen+1)), time.Minute},
		{"zero ttl", "k", 0},
		{"negative ttl", "k", -time.Second},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.PutIdempotency(ctx, tt.key, h1, tt.ttl); !errors.Is(err, ErrInvalid) {
				t.Errorf("PutIdempotency: %v, want ErrInvalid", err)
			}
			if _, _, err := s.PutIdempotencyIfAbsent(ctx, tt.key, h1, tt.ttl); !errors.Is(err, ErrInvalid) {
				t.Errorf("PutIdempotencyIfAbsent: %v, want ErrInvalid", err)
			}
		})
	}
}

func TestIdempotencyExpires(t *testing.T) {
	s := openStore(t, diskOptions(t))
	ctx := t.Context()
	h1, h2 := randomHash(t), randomHash(t)
	if err := s.PutIdempotency(ctx, "short", h1, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.PutIdempotency(ctx, "long", h1, time.Hour); err != nil {
		t.Fatal(err)
	}
	// Badger expires at whole seconds: poll rather than guess.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, ok, err := s.Idempotency(ctx, "short")
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a 1 s idempotency entry is still there after 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, ok, _ := s.Idempotency(ctx, "long"); !ok {
		t.Error("the 1 h entry expired too")
	}
	if got, existed, err := s.PutIdempotencyIfAbsent(ctx, "short", h2, time.Minute); err != nil || existed || got != (lntypes.Hash{}) {
		t.Fatalf("PutIdempotencyIfAbsent over an expired entry = %s, %v, %v", got, existed, err)
	}
	if got, _, _ := s.Idempotency(ctx, "short"); got != h2 {
		t.Fatalf("entry = %s, want the new %s", got, h2)
	}
}

func TestPutIdempotencyIfAbsentRace(t *testing.T) {
	s := openStore(t, diskOptions(t))
	ctx := t.Context()
	for round := range 5 {
		const racers = 16
		var wg sync.WaitGroup
		winners := make([]lntypes.Hash, racers)
		var errs [racers]error
		for i := range racers {
			wg.Go(func() {
				mine := randomHash(t)
				got, existed, err := s.PutIdempotencyIfAbsent(ctx, "race", mine, time.Minute)
				if !existed {
					got = mine
				}
				winners[i], errs[i] = got, err
			})
		}
		wg.Wait()
		stored, _, err := s.Idempotency(ctx, "race")
		if err != nil {
			t.Fatal(err)
		}
		for i := range racers {
			if errs[i] != nil {
				t.Fatalf("round %d racer %d: %v", round, i, errs[i])
			}
			if winners[i] != stored {
				t.Fatalf("round %d: racer %d saw %s, the store holds %s", round, i, winners[i], stored)
			}
		}
		if err := s.PutIdempotency(ctx, "race", randomHash(t), time.Nanosecond); err != nil {
			t.Fatal(err)
		}
		waitGone(t, s, "race")
	}
}

// waitGone polls until the idempotency entry key has expired.
func waitGone(t *testing.T, s *Store, key string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok, err := s.Idempotency(t.Context(), key); err != nil || !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("entry %q did not expire", key)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
