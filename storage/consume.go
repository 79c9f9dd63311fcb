package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402"
)

// ErrConsumed: a single-use payment was already spent. Errors are
// *ConsumedError.
var ErrConsumed = errors.New("payment already consumed")

// ConsumedError says when, and by which scheme, a payment was spent.
type ConsumedError struct {
	PaymentHash lntypes.Hash
	Scheme      string
	At          time.Time
}

func (e *ConsumedError) Error() string {
	return fmt.Sprintf("payment %s was already consumed by %s at %s", e.PaymentHash, e.Scheme, e.At.UTC().Format(time.RFC3339))
}

// Is matches ErrConsumed.
func (e *ConsumedError) Is(target error) bool { return target == ErrConsumed }

// usedFormat is the first byte of an encoded consumption.
const usedFormat = 1

// MaxSchemeLen bounds the scheme name stored with a consumption.
const MaxSchemeLen = 16

// Consume spends the payment of challenge h once, for a single-use scheme
// (an MPP charge, an x402 settlement), and returns the challenge. In the
// same durable commit (shared with concurrent issues and spends: one
// fsync for all) it revokes the challenge's L402 token: one invoice
// answered in several schemes buys one thing, so the reusable token of a
// payment spent as a charge is no good any more.
//
// It fails with an error wrapping ErrNotFound when h is not a challenge
// of this store (the store never spends what it did not issue), and with a
// *ConsumedError when h was spent before, by any scheme. Concurrent calls
// for one hash: exactly one succeeds. The caller serves what was paid for
// only after Consume returned nil: the consumption is on disk by then, so
// a crash after it cannot give the payment a second use.
func (s *Store) Consume(ctx context.Context, h lntypes.Hash, scheme string) (*Challenge, error) {
	if scheme == "" || len(scheme) > MaxSchemeLen {
		return nil, fmt.Errorf("storage: %w: scheme must be 1 to %d bytes", ErrInvalid, MaxSchemeLen)
	}
	at := s.now()
	var c *Challenge
	err := s.commitOne(ctx, func(txn kvTxn) error {
		var (
			write func() error
			err   error
		)
		if c, write, err = spendable(txn, h, scheme, at); err != nil {
			return err
		}
		return write()
	}, func() { s.revoked.add(c.TokenID) })
	if err != nil {
		return nil, err
	}
	s.derive(c)
	return c, nil
}

// spendable reads challenge h and checks that its payment was never
// spent, and returns the writes that spend it for scheme at at: its
// consumption and the revocation of its L402 token (an earlier
// revocation keeps its reason). It writes nothing itself, so a refusal
// leaves a group commit's transaction clean.
func spendable(txn kvTxn, h lntypes.Hash, scheme string, at time.Time) (*Challenge, func() error, error) {
	c, err := getChallenge(txn, h)
	if err != nil {
		return nil, nil, err
	}
	uk := usedKey(h)
	switch item, err := txn.Get(uk); {
	case err == nil:
		return nil, nil, item.Value(func(b []byte) error { return decodeUsed(uk, h, b) })
	case !errors.Is(err, errKeyNotFound):
		return nil, nil, fmt.Errorf("storage: reading %s: %w", fmtKey(uk), err)
	}
	rk := revocationKey(c.TokenID)
	_, rerr := txn.Get(rk)
	if rerr != nil && !errors.Is(rerr, errKeyNotFound) {
		return nil, nil, fmt.Errorf("storage: reading %s: %w", fmtKey(rk), rerr)
	}
	write := func() error {
		v := binary.BigEndian.AppendUint64([]byte{usedFormat}, uint64(unixNanos(at)))
		if err := txn.Set(uk, append(v, scheme...)); err != nil {
			return err
		}
		if rerr == nil || scheme == schemePrepaid {
			// Revoked before: keep the first reason. A prepaid token
			// stays valid: it spends the balance its payment credited.
			return nil
		}
		rv := binary.BigEndian.AppendUint64([]byte{revocationFormat}, uint64(unixNanos(at)))
		return txn.Set(rk, append(rv, spentReason(scheme)...))
	}
	return c, write, nil
}

// spentReason is the reason of the revocation Consume writes.
func spentReason(scheme string) string { return "spent as a " + scheme + " payment" }

// Unconsume gives back a payment that Consume spent for scheme when what
// it paid for was never served (the gate's upstream did not answer): it
// deletes the consumption and the revocation Consume wrote in the same
// commit, and no other, so the same credential, or the payment's L402
// token, buys the request again. It reports whether there was such a
// consumption to undo. Only the caller whose Consume succeeded may call
// it, once: no one else can have spent the payment since.
func (s *Store) Unconsume(ctx context.Context, h lntypes.Hash, scheme string) (bool, error) {
	uk := usedKey(h)
	var unrevoked *l402.TokenID
	undone := false
	err := s.update(ctx, true, func(txn kvTxn) error {
		undone, unrevoked = false, nil
		item, err := txn.Get(uk)
		if errors.Is(err, errKeyNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("storage: reading %s: %w", fmtKey(uk), err)
		}
		var used *ConsumedError
		if err := item.Value(func(b []byte) error { return decodeUsed(uk, h, b) }); !errors.As(err, &used) {
			return err
		}
		if used.Scheme != scheme {
			return nil
		}
		if err := txn.Delete(uk); err != nil {
			return err
		}
		undone = true
		c, err := getChallenge(txn, h)
		if err != nil {
			return err
		}
		rk := revocationKey(c.TokenID)
		item, err = txn.Get(rk)
		if errors.Is(err, errKeyNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("storage: reading %s: %w", fmtKey(rk), err)
		}
		var r Revocation
		if err := item.Value(func(b []byte) (err error) { r, err = decodeRevocation(rk, b); return err }); err != nil {
			return err
		}
		if r.Reason != spentReason(scheme) || !r.RevokedAt.Equal(used.At) {
			return nil // revoked for another reason, or before: it stays
		}
		unrevoked = &c.TokenID
		return txn.Delete(rk)
	})
	if err != nil {
		return false, err
	}
	if unrevoked != nil {
		s.revoked.remove(*unrevoked)
	}
	return undone, nil
}

// Consumed reports whether the payment of h was spent by a single-use
// scheme, and if so returns a *ConsumedError saying when and how; it
// returns nil when it was not.
func (s *Store) Consumed(ctx context.Context, h lntypes.Hash) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	uk := usedKey(h)
	return s.db.View(ctx, func(txn kvTxn) error {
		item, err := txn.Get(uk)
		if errors.Is(err, errKeyNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("storage: reading %s: %w", fmtKey(uk), err)
		}
		return item.Value(func(b []byte) error { return decodeUsed(uk, h, b) })
	})
}

// decodeUsed turns a stored consumption into its *ConsumedError.
func decodeUsed(k []byte, h lntypes.Hash, b []byte) error {
	if len(b) < 9 || b[0] != usedFormat {
		return corrupt(k, "consumption of %d bytes", len(b))
	}
	return &ConsumedError{PaymentHash: h, Scheme: string(b[9:]), At: fromUnixNanos(int64(binary.BigEndian.Uint64(b[1:9])))}
}
