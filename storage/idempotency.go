package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// MaxIdempotencyKeyLen bounds idempotency keys, which callers compose from
// client, resource, price and the client's own key.
const MaxIdempotencyKeyLen = 1024

// PutIdempotency maps key to the payment hash of the challenge it produced,
// for ttl, replacing any earlier entry. Badger expires entries at whole
// seconds, so an entry lives between ttl-1s and ttl.
func (s *Store) PutIdempotency(ctx context.Context, key string, h lntypes.Hash, ttl time.Duration) error {
	if err := checkIdempotency(key, ttl); err != nil {
		return err
	}
	k := idempotencyKey(key)
	return s.update(ctx, false, func(txn kvTxn) error {
		return txn.SetTTL(k, h[:], ttl)
	})
}

// Idempotency returns the payment hash stored under key, if the entry
// exists and has not expired.
func (s *Store) Idempotency(ctx context.Context, key string) (lntypes.Hash, bool, error) {
	if err := ctx.Err(); err != nil {
		return lntypes.Hash{}, false, err
	}
	var h lntypes.Hash
	var ok bool
	err := s.db.View(ctx, func(txn kvTxn) error {
		var err error
		h, ok, err = getIdempotency(txn, idempotencyKey(key))
		return err
	})
	return h, ok, err
}

// PutIdempotencyIfAbsent stores key → h for ttl unless a live entry exists,
// in which case it returns that entry's hash and existed true. It is one
// transaction, retried on conflict, so of two racing callers with the same
// key exactly one stores its hash and the other gets it back.
func (s *Store) PutIdempotencyIfAbsent(ctx context.Context, key string, h lntypes.Hash, ttl time.Duration) (existing lntypes.Hash, existed bool, err error) {
	if err := checkIdempotency(key, ttl); err != nil {
		return lntypes.Hash{}, false, err
	}
	k := idempotencyKey(key)
	err = s.update(ctx, false, func(txn kvTxn) error {
		var err error
		existing, existed, err = getIdempotency(txn, k)
		if err != nil || existed {
			return err
		}
		return txn.SetTTL(k, h[:], ttl)
	})
	if err != nil {
		return lntypes.Hash{}, false, err
	}
	return existing, existed, nil
}

func checkIdempotency(key string, ttl time.Duration) error {
	if key == "" || len(key) > MaxIdempotencyKeyLen {
		return fmt.Errorf("storage: %w: idempotency key must be 1 to %d bytes, got %d",
			ErrInvalid, MaxIdempotencyKeyLen, len(key))
	}
	if ttl <= 0 {
		return fmt.Errorf("storage: %w: idempotency ttl %v is not positive", ErrInvalid, ttl)
	}
	return nil
}

func getIdempotency(txn kvTxn, k []byte) (lntypes.Hash, bool, error) {
	var h lntypes.Hash
	item, err := txn.Get(k)
	if errors.Is(err, errKeyNotFound) {
		return h, false, nil
	}
	if err != nil {
		return h, false, fmt.Errorf("storage: reading %s: %w", fmtKey(k), err)
	}
	err = item.Value(func(v []byte) error {
		if len(v) != len(h) {
			return corrupt(k, "idempotency entry is %d bytes, want %d", len(v), len(h))
		}
		copy(h[:], v)
		return nil
	})
	return h, err == nil, err
}
