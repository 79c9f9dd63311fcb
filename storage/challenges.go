package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/l402d/l402d/l402"
	"github.com/lightningnetwork/lnd/lntypes"
)

// ChallengeState is where a challenge is in its life.
type ChallengeState string

// Challenge states. Only pending, settled and canceled are stored; expired
// is derived when a challenge is read: pending and past its ExpiresAt.
const (
	StatePending  ChallengeState = "pending"
	StateSettled  ChallengeState = "settled"
	StateExpired  ChallengeState = "expired"
	StateCanceled ChallengeState = "canceled"
)

// Challenge is one L402 challenge as handed out, and what became of it.
type Challenge struct {
	PaymentHash lntypes.Hash
	TokenID     l402.TokenID

	Resource    string
	Description string
	Service     string
	PriceSats   int64
	Invoice     string // BOLT 11
	Macaroon    string // base64, exactly as handed out
	ClientID    string // who asked (API key id or IP), for audits

	CreatedAt time.Time
	ExpiresAt time.Time // zero: never expires

	State          ChallengeState
	SettledAt      time.Time
	AmountPaidMsat int64
	SettleIndex    uint64 // LND's settle index of the payment

	// PrepaidOf, set on a challenge being issued, makes its payment a
	// top-up of that prepaid balance (written beside the record as a
	// v1/ppfund/ entry; it is not read back into Challenge).
	PrepaidOf lntypes.Hash
}

// Settlement is a paid invoice as reported by LND.
type Settlement struct {
	PaymentHash    lntypes.Hash
	AmountPaidMsat int64
	SettledAt      time.Time // zero: now
	SettleIndex    uint64
	// FromLookup marks a settlement found by looking the invoice up
	// rather than read from LND's settlement stream. The stream delivers
	// settlements in settle-index order, so recording one of those means
	// every lower index was recorded too and the cursor may move; a
	// looked-up one comes out of order and leaves the cursor alone.
	FromLookup bool
}

// PutChallenge durably stores a new challenge and counts it. A zero
// CreatedAt is set to now and an empty State to pending, in c as well, so
// the caller sees what was stored. It fails with ErrExists if the payment
// hash is taken and with ErrInvalid if c is not a fresh, pending challenge.
func (s *Store) PutChallenge(ctx context.Context, c *Challenge) error {
	return s.putChallenge(ctx, c)
}

// Idempotency is an idempotency entry to write with a challenge.
type Idempotency struct {
	Key string
	TTL time.Duration
}

// IssueChallenge stores, in one durable commit, a new token's root key,
// its challenge and, if idem is set, the idempotency entry that points at
// it, so that issuing costs one fsync on top of LND's AddInvoice. Calls
// that arrive while a commit is syncing are committed together in the next
// transaction (group commit): Badger syncs once per transaction, so under
// concurrency this is what keeps issuing bound by LND rather than by the
// disk. It fails with ErrExists if the token id or the payment hash is
// taken, and writes nothing then.
func (s *Store) IssueChallenge(ctx context.Context, c *Challenge, key [l402.RootKeySize]byte, idem *Idempotency) error {
	if idem != nil {
		if err := checkIdempotency(idem.Key, idem.TTL); err != nil {
			return err
		}
	}
	w, err := s.prepareChallenge(c)
	if err != nil {
		return err
	}
	req := &commitReq{
		apply:     func(txn kvTxn) error { return applyIssue(txn, w, key, idem) },
		committed: func() { s.keys.put(w.c.TokenID, key) },
		done:      make(chan error, 1),
	}
	if err := s.handOver(ctx, req); err != nil {
		return err
	}
	// The commit is not abandoned when ctx ends: the caller just stops
	// waiting. The committer owns the root key cache update, so what it
	// committed is verifiable whether or not anyone still waits for it
	// (an idempotent retry hands this very challenge back).
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// putChallenge validates and writes a new challenge in its own commit.
func (s *Store) putChallenge(ctx context.Context, c *Challenge) error {
	w, err := s.prepareChallenge(c)
	if err != nil {
		return err
	}
	return s.update(ctx, true, func(txn kvTxn) error {
		if err := w.check(txn); err != nil {
			return err
		}
		return w.write(txn)
	})
}

// Challenge returns the challenge with payment hash h, or an error wrapping
// ErrNotFound.
func (s *Store) Challenge(ctx context.Context, h lntypes.Hash) (*Challenge, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var c *Challenge
	err := s.db.View(ctx, func(txn kvTxn) error {
		var err error
		c, err = getChallenge(txn, h)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.derive(c)
	return c, nil
}

// CancelChallenge marks a pending challenge canceled (its invoice was
// canceled). A settled or canceled challenge is left alone and reports
// false; an unknown one yields an error wrapping ErrNotFound.
func (s *Store) CancelChallenge(ctx context.Context, h lntypes.Hash) (changed bool, err error) {
	err = s.update(ctx, false, func(txn kvTxn) error {
		changed = false
		c, err := getChallenge(txn, h)
		if err != nil {
			return err
		}
		if c.State != StatePending {
			return nil
		}
		c.State = StateCanceled
		changed = true
		return putChallengeRecord(txn, c)
	})
	if err != nil {
		return false, err
	}
	return changed, nil
}

// getChallenge reads and decodes one challenge record, without deriving
// the expired state.
func getChallenge(txn kvTxn, h lntypes.Hash) (*Challenge, error) {
	k := challengeKey(h)
	item, err := txn.Get(k)
	if errors.Is(err, errKeyNotFound) {
		return nil, fmt.Errorf("storage: challenge %s: %w", h, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: reading %s: %w", fmtKey(k), err)
	}
	var c *Challenge
	err = item.Value(func(v []byte) error {
		var err error
		c, err = decodeChallenge(k, v)
		return err
	})
	return c, err
}

// putChallengeRecord rewrites an existing challenge and its index entry.
func putChallengeRecord(txn kvTxn, c *Challenge) error {
	if err := txn.Set(challengeKey(c.PaymentHash), encodeChallenge(c)); err != nil {
		return err
	}
	return txn.Set(byCreatedKey(c.CreatedAt, c.PaymentHash), indexValue(c))
}

// derive turns a stored pending state into expired once ExpiresAt passed.
func (s *Store) derive(c *Challenge) {
	c.State = effectiveState(c.State, c.ExpiresAt, s.now())
}

func effectiveState(stored ChallengeState, expiresAt, now time.Time) ChallengeState {
	if stored == StatePending && !expiresAt.IsZero() && now.After(expiresAt) {
		return StateExpired
	}
	return stored
}

// Listing.
