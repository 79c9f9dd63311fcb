package storage

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/l402d/l402d/l402"
)

// Revocation records that a token may no longer be used.
type Revocation struct {
	TokenID   l402.TokenID
	Reason    string
	RevokedAt time.Time
}

// revocationFormat is the first byte of an encoded revocation.
const revocationFormat = 1

// Revoke durably revokes token id. Revoking a revoked token is a no-op that
// keeps the first reason and time. The token need not exist: revoking is
// always safe.
func (s *Store) Revoke(ctx context.Context, id l402.TokenID, reason string) error {
	k := revocationKey(id)
	v := binary.BigEndian.AppendUint64([]byte{revocationFormat}, uint64(unixNanos(s.now())))
	v = append(v, reason...)
	err := s.update(ctx, true, func(txn kvTxn) error {
		switch _, err := txn.Get(k); {
		case err == nil:
			return nil
		case !errors.Is(err, errKeyNotFound):
			return fmt.Errorf("storage: reading %s: %w", fmtKey(k), err)
		}
		return txn.Set(k, v)
	})
	if err != nil {
		return err
	}
	s.revoked.add(id)
	return nil
}

// IsRevoked reports whether token id was revoked. It reads only memory.
func (s *Store) IsRevoked(_ context.Context, id l402.TokenID) (bool, error) {
	return s.revoked.has(id), nil
}

// Revocations returns every revocation, oldest first.
func (s *Store) Revocations(ctx context.Context) ([]Revocation, error) {
	var out []Revocation
	err := s.forEachRevocation(ctx, func(r Revocation) { out = append(out, r) })
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Revocation) int {
		return cmp.Or(a.RevokedAt.Compare(b.RevokedAt), slices.Compare(a.TokenID[:], b.TokenID[:]))
	})
	return out, nil
}

// loadRevocations fills the in-memory set at open.
func (s *Store) loadRevocations(ctx context.Context) error {
	err := s.forEachRevocation(ctx, func(r Revocation) { s.revoked.add(r.TokenID) })
	if err != nil {
		return fmt.Errorf("storage: loading revocations: %w", err)
	}
	return nil
}

func (s *Store) forEachRevocation(ctx context.Context, fn func(Revocation)) error {
	return s.db.View(ctx, func(txn kvTxn) error {
		return scan(ctx, txn, []byte(prefixRevocation), decodeRevocation, func(r Revocation) error {
			fn(r)
			return nil
		})
	})
}

// decodeRevocation decodes the revocation entry with key k and value v.
func decodeRevocation(k, v []byte) (Revocation, error) {
	prefix := []byte(prefixRevocation)
	var r Revocation
	if len(k) != len(prefix)+len(r.TokenID) {
		return r, corrupt(k, "revocation entry has a %d-byte key", len(k))
	}
	copy(r.TokenID[:], k[len(prefix):])
	rd := reader{b: v}
	if f := rd.byte(); rd.err == nil && f != revocationFormat {
		return r, corrupt(k, "unknown revocation format %d", f)
	}
	r.RevokedAt = fromUnixNanos(int64(rd.uint64()))
	r.Reason = string(rd.rest())
	if rd.err != nil {
		return r, corrupt(k, "%v", rd.err)
	}
	return r, nil
}

// revocationSet is the in-memory set of revoked token ids. Revocations are
// rare, so the common case (none at all) skips even the read lock.
type revocationSet struct {
	n  atomic.Int64
	mu sync.RWMutex
	m  map[l402.TokenID]struct{}
}

func (r *revocationSet) has(id l402.TokenID) bool {
	if r.n.Load() == 0 {
		return false
	}
	r.mu.RLock()
	_, ok := r.m[id]
	r.mu.RUnlock()
	return ok
}

// remove forgets id; only Unconsume does, for the revocation Consume
// made.
func (r *revocationSet) remove(id l402.TokenID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[id]; ok {
		delete(r.m, id)
		r.n.Add(-1)
	}
}

func (r *revocationSet) add(id l402.TokenID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[l402.TokenID]struct{})
	}
	if _, ok := r.m[id]; !ok {
		r.m[id] = struct{}{}
		r.n.Add(1)
	}
}
