package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// A prepaid L402 balance is a Session (Prepaid true) keyed by the payment
// hash of the token that bought the credit. It is opened by the first
// request that token pays for, topped up by tokens minted for it (their
// challenges are issued with PrepaidOf set, which writes a fund entry),
// and closed by its holder with an invoice for the rest. Each payment that
// credits it is consumed under scheme "prepaid", so it credits once and
// cannot also be spent as a single-use payment or a session deposit; its
// token is not revoked, since it keeps spending the balance.
//
//	v1/ppfund/<top-up payment hash 32>   the balance id (32) that payment tops up
//	v1/refinv/<invoice payment hash 32>  the balance id (32) whose refund that
//	                                     invoice takes: an invoice is paid once,
//	                                     so a second refund to it would be
//	                                     "found paid" and never made

const schemePrepaid = "prepaid"

func prepaidFundKey(h lntypes.Hash) []byte {
	return append([]byte(prefixPrepaidFund), h[:]...)
}

// putPrepaidFund records, in the commit that issues challenge h, that
// paying h tops up balance id.
func putPrepaidFund(txn kvTxn, h, id lntypes.Hash) error {
	return txn.Set(prepaidFundKey(h), id[:])
}

// prepaidFund returns the balance payment h tops up, ok false if h is no
// top-up.
func prepaidFund(txn kvTxn, h lntypes.Hash) (id lntypes.Hash, ok bool, err error) {
	k := prepaidFundKey(h)
	item, err := txn.Get(k)
	if errors.Is(err, errKeyNotFound) {
		return id, false, nil
	}
	if err != nil {
		return id, false, fmt.Errorf("storage: reading %s: %w", fmtKey(k), err)
	}
	err = item.Value(func(v []byte) error {
		if len(v) != lntypes.HashSize {
			return corrupt(k, "balance id of %d bytes", len(v))
		}
		copy(id[:], v)
		return nil
	})
	return id, err == nil, err
}

// DebitPrepaid takes msat for a request of service from the prepaid
// balance that the token of payment h spends (the caller verified the
// token, its preimage and its prepaid caveat), in one durable commit:
//   - h's own balance, opened with h's challenge price at its first use;
//   - or, for a top-up token, the balance it tops up, credited with h's
//     price the first time h is presented (a top-up of a closed balance
//     opens a balance of its own instead).
//
// A balance that does not cover msat is returned with Debited false and
// nothing taken. Errors: ErrNotFound (no challenge h), ErrSessionMismatch
// (another service's), ErrSessionClosed, a *ConsumedError (h was spent in
// another scheme). With a debit allowance (lazydebit.go), a debit the
// balance and the allowance cover is taken in memory.
func (s *Store) DebitPrepaid(ctx context.Context, h lntypes.Hash, service string, msat int64) (SessionDebit, error) {
	if msat < 0 || service == "" {
		return SessionDebit{}, fmt.Errorf("storage: %w: a prepaid debit needs a service and msat ≥ 0", ErrInvalid)
	}
	if out, ok := s.lazy.take(h, service, true, msat); ok {
		return SessionDebit{Session: out, Debited: true}, nil
	}
	ids, err := s.prepaidIDs(ctx, h)
	if err != nil {
		return SessionDebit{}, err
	}
	var out SessionDebit
	err = s.exclusive(ctx, ids, func() (lntypes.Hash, lntypes.Hash, bool, error) {
		err := s.debitPrepaid(ctx, h, service, msat, &out)
		return h, out.Session.ID, err == nil, err
	})
	return out, err
}

// debitPrepaid is DebitPrepaid's durable commit.
func (s *Store) debitPrepaid(ctx context.Context, h lntypes.Hash, service string, msat int64, out *SessionDebit) error {
	return s.commitOne(ctx, func(txn kvTxn) error {
		*out = SessionDebit{}
		at := s.now()
		b, err := s.prepaidBalance(txn, h, service, at)
		if err != nil {
			return err
		}
		d, err := debit(txn, b, service, msat, at, true)
		var short *BalanceError
		if errors.As(err, &short) {
			out.Session = *b // an opening or a credit prepaidBalance wrote still commits
			return nil
		}
		if err != nil {
			return err
		}
		*out = SessionDebit{Session: *d, Debited: true}
		return nil
	}, nil)
}

// ClosePrepaid closes the prepaid balance the token of payment h spends
// (crediting h first if it is a top-up never presented, opening it if it
// was never used) and records its rest as the refund owed to
// returnInvoice, as CloseSession does. A balance closing or closed already
// is returned unchanged (its refund's fate), whatever invoice is given.
//
// returnHash is the invoice's payment hash: an invoice that took another
// balance's refund is refused (ErrExists).
func (s *Store) ClosePrepaid(ctx context.Context, h lntypes.Hash, service, returnInvoice string, returnHash lntypes.Hash) (Session, error) {
	if returnInvoice == "" || service == "" || returnHash == (lntypes.Hash{}) {
		return Session{}, fmt.Errorf("storage: %w: closing a prepaid balance needs a service and a return invoice", ErrInvalid)
	}
	ids, err := s.prepaidIDs(ctx, h)
	if err != nil {
		return Session{}, err
	}
	var out Session
	err = s.exclusive(ctx, ids, func() (_, _ lntypes.Hash, _ bool, err error) {
		out, err = s.closePrepaid(ctx, h, service, returnInvoice, returnHash)
		return
	})
	return out, err
}

// closePrepaid is ClosePrepaid's durable commit.
func (s *Store) closePrepaid(ctx context.Context, h lntypes.Hash, service, returnInvoice string, returnHash lntypes.Hash) (Session, error) {
	var out Session
	err := s.commitOne(ctx, func(txn kvTxn) error {
		at := s.now()
		b, err := s.prepaidBalance(txn, h, service, at)
		if errors.Is(err, ErrSessionClosed) {
			b, err = s.prepaidOf(txn, h)
			if err == nil {
				out = *b
			}
			return err
		}
		if err != nil {
			return err
		}
		claim, err := claimRefundInvoice(txn, returnHash, b.ID)
		if err != nil {
			return err
		}
		if err := claim(); err != nil {
			return err
		}
		b.ReturnInvoice = returnInvoice
		b.RefundMsat = b.BalanceMsat()
		b.State, b.ClosedAt, b.RefundStatus = SessionClosing, at, RefundPending
		if b.RefundMsat == 0 {
			b.State, b.RefundStatus = SessionClosed, RefundSkipped
		}
		out = *b
		return txn.Set(sessionKey(b.ID), encodeSession(b))
	}, nil)
	return out, err
}

// claimRefundInvoice checks that the invoice of payment hash h takes no
// refund but that of balance or session id, and returns the write that
// claims it for id (nothing to check or claim for a zero h). It writes
// nothing itself.
func claimRefundInvoice(txn kvTxn, h, id lntypes.Hash) (func() error, error) {
	if h == (lntypes.Hash{}) {
		return func() error { return nil }, nil
	}
	rk := append([]byte(prefixRefundInvoice), h[:]...)
	switch item, err := txn.Get(rk); {
	case err == nil:
		var other lntypes.Hash
		if err := item.Value(func(v []byte) error { copy(other[:], v); return nil }); err != nil {
			return nil, err
		}
		if other != id {
			return nil, fmt.Errorf("storage: %w: invoice %s already takes the refund of %s", ErrExists, h, other)
		}
	case !errors.Is(err, errKeyNotFound):
		return nil, fmt.Errorf("storage: reading %s: %w", fmtKey(rk), err)
	}
	return func() error { return txn.Set(rk, id[:]) }, nil
}

// Prepaid returns the prepaid balance the token of payment h spends: its
// own, or the one it tops up, with every debit taken before the call.
// ErrNotFound if there is none yet.
func (s *Store) Prepaid(ctx context.Context, h lntypes.Hash) (*Session, error) {
	ids, err := s.prepaidIDs(ctx, h)
	if err != nil {
		return nil, err
	}
	if err := s.settled(ctx, ids...); err != nil {
		return nil, err
	}
	var out *Session
	err = s.db.View(ctx, func(txn kvTxn) error {
		var err error
		out, err = s.prepaidOf(txn, h)
		return err
	})
	return out, err
}

// prepaidOf reads the balance payment h opened or was credited to.
func (s *Store) prepaidOf(txn kvTxn, h lntypes.Hash) (*Session, error) {
	if b, err := getSession(txn, h); err == nil || !errors.Is(err, ErrNotFound) {
		return b, err
	}
	id, ok, err := prepaidFund(txn, h)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("storage: prepaid balance of %s: %w", h, ErrNotFound)
	}
	return getSession(txn, id)
}

// prepaidBalance returns the open balance the token of payment h spends,
// opening or crediting it as DebitPrepaid says (the writes are in txn; a
// balance it only read is not rewritten, the caller writes what it
// changes).
func (s *Store) prepaidBalance(txn kvTxn, h lntypes.Hash, service string, at time.Time) (*Session, error) {
	if b, err := getSession(txn, h); err == nil {
		return openPrepaid(b, service)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if id, ok, err := prepaidFund(txn, h); err != nil {
		return nil, err
	} else if ok {
		b, err := getSession(txn, id)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if err == nil && b.State == SessionOpen {
			if _, err := openPrepaid(b, service); err != nil {
				return nil, err
			}
			c, spend, err := spendable(txn, h, schemePrepaid, at)
			var used *ConsumedError
			switch {
			case errors.As(err, &used) && used.Scheme == schemePrepaid:
				return b, nil // credited before
			case err != nil:
				return nil, err
			case c.Service != service:
				return nil, fmt.Errorf("storage: %w: payment %s is for service %q", ErrSessionMismatch, h, c.Service)
			}
			if err := spend(); err != nil {
				return nil, err
			}
			b.DepositedMsat += c.PriceSats * 1000
			b.TopUps++
			return b, txn.Set(sessionKey(b.ID), encodeSession(b))
		}
		// The balance it was to top up is closed (or was never opened):
		// the payment opens one of its own, below.
	}
	c, spend, err := spendable(txn, h, schemePrepaid, at)
	var used *ConsumedError
	switch {
	case errors.As(err, &used) && used.Scheme == schemePrepaid:
		// Credited to a balance since closed.
		return nil, fmt.Errorf("storage: prepaid balance of %s: %w", h, ErrSessionClosed)
	case err != nil:
		return nil, err
	case c.Service != service:
		return nil, fmt.Errorf("storage: %w: payment %s is for service %q", ErrSessionMismatch, h, c.Service)
	}
	if err := spend(); err != nil {
		return nil, err
	}
	b := &Session{ID: h, Service: service, Prepaid: true, DepositedMsat: c.PriceSats * 1000, State: SessionOpen, OpenedAt: at, UsedAt: at}
	return b, txn.Set(sessionKey(h), encodeSession(b))
}

// openPrepaid checks that b is an open prepaid balance of service.
func openPrepaid(b *Session, service string) (*Session, error) {
	switch {
	case !b.Prepaid || b.Service != service:
		return nil, fmt.Errorf("storage: %w: %s is not a prepaid balance of service %q", ErrSessionMismatch, b.ID, service)
	case b.State != SessionOpen:
		return nil, fmt.Errorf("storage: prepaid balance %s: %w", b.ID, ErrSessionClosed)
	}
	return b, nil
}
