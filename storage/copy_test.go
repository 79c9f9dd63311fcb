package storage

import (
	"errors"
	"testing"
	"time"

	"github.com/l402d/l402d/l402"
	"github.com/lightningnetwork/lnd/lntypes"
)

// TestCopy moves a Badger store into a second store (Postgres in the
// Postgres run) and back, and finds every record, with what is left of
// each time to live, on the other side.
func TestCopy(t *testing.T) {
	ctx := t.Context()
	src, err := Open(ctx, diskOptions(t)) // Badger, whatever the run
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })

	c := fullChallenge(t, t0)
	var key [32]byte
	copy(key[:], "a root key of thirty-two bytes!!")
	if err := src.IssueChallenge(ctx, c, key, &Idempotency{Key: "idem-1", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	var rk struct {
		id  l402.TokenID
		key [32]byte
	}
	rk.id = randomID(t)
	if rk.key, err = src.NewRootKey(ctx, rk.id); err != nil {
		t.Fatal(err)
	}
	revoked := randomID(t)
	if err := src.Revoke(ctx, revoked, "copied"); err != nil {
		t.Fatal(err)
	}
	if err := src.PutIdempotency(ctx, "gone", lntypes.Hash{7}, time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	want, err := src.Challenge(ctx, c.PaymentHash)
	if err != nil {
		t.Fatal(err)
	}

	midOpts, backOpts := diskOptions(t), diskOptions(t)
	mid := openStore(t, midOpts) // Postgres in the Postgres run
	n, err := Copy(ctx, src, mid)
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Fatalf("copied %d entries, want at least 5", n)
	}
	if _, err := Copy(ctx, src, mid); !errors.Is(err, ErrExists) {
		t.Fatalf("a copy into a store with data = %v, want ErrExists", err)
	}
	back := openStore(t, backOpts)
	if _, err := Copy(ctx, mid, back); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		s    *Store
		opts Options
	}{{"copy", mid, midOpts}, {"copy of the copy", back, backOpts}} {
		name, s := tt.name, reopen(t, tt.s, tt.opts)
		got, err := s.Challenge(ctx, c.PaymentHash)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		assertChallenge(t, got, want)
		if k, err := s.RootKey(ctx, c.TokenID); err != nil || k != key {
			t.Fatalf("%s: root key %x, %v", name, k, err)
		}
		if k, err := s.RootKey(ctx, rk.id); err != nil || k != rk.key {
			t.Fatalf("%s: root key %x, %v", name, k, err)
		}
		if r, _ := s.IsRevoked(ctx, revoked); !r {
			t.Fatalf("%s: the revocation was not copied", name)
		}
		if h, ok, err := s.Idempotency(ctx, "idem-1"); err != nil || !ok || h != c.PaymentHash {
			t.Fatalf("%s: idempotency entry %v %v %v", name, h, ok, err)
		}
		if _, ok, _ := s.Idempotency(ctx, "gone"); ok {
			t.Fatalf("%s: an expired entry was copied", name)
		}
	}
}
