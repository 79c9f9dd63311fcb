package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// Limits on one ListChallenges page.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// Cursor marks a position in a ListChallenges listing. Pass the one a call
// returned as ChallengeFilter.After to get the next page. It is opaque and
// URL-safe.
type Cursor string

// ChallengeFilter selects challenges for ListChallenges. Zero fields do
// not filter.
type ChallengeFilter struct {
	State    ChallengeState // as derived: "pending" excludes expired ones
	Resource string         // exact match
	Since    time.Time      // created at or after
	Until    time.Time      // created before
	Limit    int            // <= 0: DefaultListLimit; at most MaxListLimit
	After    Cursor         // continue after this position
}

// ListChallenges returns challenges matching f, newest first, and a cursor
// for the next page, empty when there is none (a full page may be followed
// by an empty one). It walks the creation-time index, whose entries carry
// state, expiry and resource, so it reads only the records it returns.
func (s *Store) ListChallenges(ctx context.Context, f ChallengeFilter) ([]Challenge, Cursor, error) {
	switch f.State {
	case "", StatePending, StateSettled, StateExpired, StateCanceled:
	default:
		return nil, "", fmt.Errorf("storage: %w: unknown challenge state %q", ErrInvalid, f.State)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)

	prefix := []byte(prefixByCreated)
	r, err := newTimeRange(prefix, f.Since, f.Until, f.After)
	if err != nil {
		return nil, "", err
	}
	start, after, since := r.start, r.after, r.since
	if after != nil && bytes.Compare(after, start) < 0 {
		start = after
	}
	now := s.now()

	var out []Challenge
	var next Cursor
	err = s.db.View(ctx, func(txn kvTxn) error {
		it := txn.NewIterator(iterOptions{Prefix: prefix, Reverse: true})
		defer it.Close()
		n := 0
		for it.Seek(start); it.Valid(); it.Next() {
			if n++; n%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			item := it.Item()
			k := item.Key()
			if after != nil && bytes.Equal(k, after) {
				continue
			}
			if len(k) != len(prefix)+8+lntypes.HashSize {
				return corrupt(k, "index entry has a %d-byte key", len(k))
			}
			if binary.BigEndian.Uint64(k[len(prefix):]) < since {
				break
			}
			match, err := f.matchesIndex(item, k, now)
			if err != nil {
				return err
			}
			if !match {
				continue
			}
			var h lntypes.Hash
			copy(h[:], k[len(prefix)+8:])
			c, err := getChallenge(txn, h)
			if err != nil {
				return fmt.Errorf("storage: index entry %s: %w", fmtKey(k), err)
			}
			c.State = effectiveState(c.State, c.ExpiresAt, now)
			out = append(out, *c)
			if len(out) == limit {
				next = cursorAt(prefix, k)
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// Encoding.

// matchesIndex reports whether the challenge of the by-created index
// entry k (item) passes f's state and resource filters at now.
func (f ChallengeFilter) matchesIndex(item *kvItem, k []byte, now time.Time) (bool, error) {
	var match bool
	err := item.Value(func(v []byte) error {
		state, expires, resource, err := decodeIndexValue(k, v)
		if err != nil {
			return err
		}
		match = (f.State == "" || effectiveState(state, expires, now) == f.State) &&
			(f.Resource == "" || f.Resource == string(resource))
		return nil
	})
	return match, err
}
