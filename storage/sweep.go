package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// Retention of unpaid challenges. A challenge whose invoice expired unpaid
// (or was canceled) is worth nothing once its invoice can no longer be
// paid, yet its record, index entry and root key would stay forever and
// every start would load the key: an unpaid-mint flood would grow the
// store and the start-up scan without bound. SweepCandidates and
// DeleteUnpaid let the producer delete them once LND has confirmed the
// invoice was not paid. What stats need is kept: the per-day created
// counters are separate entries and are not touched.

// SweepCandidates returns up to limit payment hashes of challenges stored
// as pending or canceled whose invoice expired before before, oldest
// first. A challenge that never expires is never a candidate. It walks
// the creation index only.
func (s *Store) SweepCandidates(ctx context.Context, before time.Time, limit int) ([]lntypes.Hash, error) {
	if limit <= 0 {
		return nil, nil
	}
	return s.hashesByCreated(ctx, limit, func(state ChallengeState, expires time.Time) bool {
		return sweepable(state, expires, before)
	})
}

func sweepable(state ChallengeState, expires, before time.Time) bool {
	return state != StateSettled && !expires.IsZero() && expires.Before(before)
}

// DeleteUnpaid deletes a challenge, its index entry, its root key and its
// prepaid fund entry if any, in one transaction, if it is still unpaid
// (pending or canceled) and its invoice expired before before; otherwise
// it changes nothing and reports false. The caller must have made sure the
// invoice can no longer be paid (LND says it is not settled and it is past
// expiry and a grace).
// Revenue and created counters are kept.
func (s *Store) DeleteUnpaid(ctx context.Context, h lntypes.Hash, before time.Time) (deleted bool, err error) {
	var c *Challenge
	err = s.update(ctx, false, func(txn kvTxn) error {
		deleted = false
		got, err := getChallenge(txn, h)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		c = got
		if !sweepable(c.State, c.ExpiresAt, before) {
			return nil
		}
		for _, k := range [][]byte{challengeKey(h), byCreatedKey(c.CreatedAt, h), rootKeyKey(c.TokenID), prepaidFundKey(h)} {
			if err := txn.Delete(k); err != nil {
				return fmt.Errorf("storage: deleting %s: %w", fmtKey(k), err)
			}
		}
		deleted = true
		return nil
	})
	if err != nil {
		return false, err
	}
	if deleted {
		s.keys.del(c.TokenID)
	}
	return deleted, nil
}
