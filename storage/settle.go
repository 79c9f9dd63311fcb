package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// Settle records that the invoice of a challenge was paid. In one
// transaction it marks the challenge settled, adds it to the revenue
// counters and, unless st.FromLookup, advances the settle cursor to at
// least st.SettleIndex.
// Settling a settled challenge changes nothing and reports changed false. A
// payment hash that is no challenge of ours (another invoice of the node)
// only advances the cursor and also reports false. A canceled or expired
// challenge that was paid after all is settled: the money arrived.
func (s *Store) Settle(ctx context.Context, st Settlement) (changed bool, err error) {
	if st.AmountPaidMsat < 0 {
		return false, fmt.Errorf("storage: %w: negative amount %d msat", ErrInvalid, st.AmountPaidMsat)
	}
	if !representable(st.SettledAt) {
		return false, fmt.Errorf("storage: %w: settle time %v is out of range", ErrInvalid, st.SettledAt)
	}
	if st.SettledAt.IsZero() {
		st.SettledAt = s.now()
	}
	shard := shardOf(st.PaymentHash)
	err = s.update(ctx, false, func(txn kvTxn) error {
		changed = false
		if !st.FromLookup {
			if err := advanceCursor(txn, shard, st.SettleIndex); err != nil {
				return err
			}
		}
		c, err := getChallenge(txn, st.PaymentHash)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if c.State == StateSettled {
			return nil
		}
		c.State = StateSettled
		c.SettledAt = st.SettledAt
		c.AmountPaidMsat = st.AmountPaidMsat
		c.SettleIndex = st.SettleIndex
		if err := putChallengeRecord(txn, c); err != nil {
			return err
		}
		d := Counters{Settled: 1, RevenueMsat: st.AmountPaidMsat}
		if err := addCounters(txn, shard, dayOf(st.SettledAt), d); err != nil {
			return err
		}
		changed = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return changed, nil
}

// AdvanceSettleCursor raises the settle cursor to index if it is lower. The
// invoice watcher calls it for settled invoices it has nothing else to do
// with; Settle does it itself.
func (s *Store) AdvanceSettleCursor(ctx context.Context, index uint64) error {
	return s.update(ctx, false, func(txn kvTxn) error {
		return advanceCursor(txn, byte(index%shards), index)
	})
}

// SettleCursor returns the highest settle index recorded: the watcher
// resumes its subscription after it.
func (s *Store) SettleCursor(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var cur uint64
	err := s.db.View(ctx, func(txn kvTxn) error {
		for sh := range byte(shards) {
			v, err := getCursor(txn, sh)
			if err != nil {
				return err
			}
			cur = max(cur, v)
		}
		return nil
	})
	return cur, err
}

// Reconciled returns when the invoice watcher last completed a
// reconciliation (the time it subscribed before looking invoices up), or
// the zero time if none ever completed.
func (s *Store) Reconciled(ctx context.Context) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	k := []byte(keyReconciled)
	var at time.Time
	err := s.db.View(ctx, func(txn kvTxn) error {
		item, err := txn.Get(k)
		if errors.Is(err, errKeyNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("storage: reading %s: %w", fmtKey(k), err)
		}
		return item.Value(func(v []byte) error {
			if len(v) != 8 {
				return corrupt(k, "reconciled mark is %d bytes, want 8", len(v))
			}
			at = fromUnixNanos(int64(binary.BigEndian.Uint64(v)))
			return nil
		})
	})
	return at, err
}

// SetReconciled records that a reconciliation completed for everything
// that could have settled before at. The mark never moves back.
func (s *Store) SetReconciled(ctx context.Context, at time.Time) error {
	if !representable(at) || at.IsZero() {
		return fmt.Errorf("storage: %w: reconciled time %v is out of range", ErrInvalid, at)
	}
	k := []byte(keyReconciled)
	return s.update(ctx, true, func(txn kvTxn) error {
		item, err := txn.Get(k)
		switch {
		case err == nil:
			var prev int64
			if err := item.Value(func(v []byte) error {
				if len(v) != 8 {
					return corrupt(k, "reconciled mark is %d bytes, want 8", len(v))
				}
				prev = int64(binary.BigEndian.Uint64(v))
				return nil
			}); err != nil {
				return err
			}
			if prev >= unixNanos(at) {
				return nil
			}
		case !errors.Is(err, errKeyNotFound):
			return fmt.Errorf("storage: reading %s: %w", fmtKey(k), err)
		}
		return txn.Set(k, binary.BigEndian.AppendUint64(nil, uint64(unixNanos(at))))
	})
}

// Unsettled returns the payment hashes of challenges not recorded as paid
// or canceled whose invoice was still payable at or after since: pending,
// expired at or after since, or never expiring. A zero since returns all
// of them. It walks the creation index only.
func (s *Store) Unsettled(ctx context.Context, since time.Time) ([]lntypes.Hash, error) {
	return s.hashesByCreated(ctx, 0, func(state ChallengeState, expires time.Time) bool {
		return state == StatePending && (since.IsZero() || expires.IsZero() || !expires.Before(since))
	})
}

// hashesByCreated walks the creation index, oldest first, and returns the
// payment hashes of the challenges whose state and invoice expiry keep
// accepts, at most limit of them (0: no limit). It reads no challenge
// record.
func (s *Store) hashesByCreated(ctx context.Context, limit int, keep func(state ChallengeState, expires time.Time) bool) ([]lntypes.Hash, error) {
	prefix := []byte(prefixByCreated)
	var out []lntypes.Hash
	err := s.db.View(ctx, func(txn kvTxn) error {
		it := txn.NewIterator(iterOptions{Prefix: prefix})
		defer it.Close()
		n := 0
		for it.Rewind(); it.Valid() && (limit == 0 || len(out) < limit); it.Next() {
			if n++; n%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			item := it.Item()
			k := item.Key()
			if len(k) != len(prefix)+8+lntypes.HashSize {
				return corrupt(k, "index entry has a %d-byte key", len(k))
			}
			var want bool
			if err := item.Value(func(v []byte) error {
				state, expires, _, err := decodeIndexValue(k, v)
				want = keep(state, expires)
				return err
			}); err != nil {
				return err
			}
			if want {
				var h lntypes.Hash
				copy(h[:], k[len(prefix)+8:])
				out = append(out, h)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func getCursor(txn kvTxn, shard byte) (uint64, error) {
	k := settleCursorKey(shard)
	item, err := txn.Get(k)
	if errors.Is(err, errKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("storage: reading %s: %w", fmtKey(k), err)
	}
	var cur uint64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return corrupt(k, "settle cursor is %d bytes, want 8", len(v))
		}
		cur = binary.BigEndian.Uint64(v)
		return nil
	})
	return cur, err
}

// advanceCursor raises one shard of the cursor to index. Reading the shard
// makes concurrent advances of the same shard conflict and retry, so the
// maximum always wins.
func advanceCursor(txn kvTxn, shard byte, index uint64) error {
	cur, err := getCursor(txn, shard)
	if err != nil || index <= cur {
		return err
	}
	return txn.Set(settleCursorKey(shard), binary.BigEndian.AppendUint64(nil, index))
}
