package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402"
)

// Session verdicts, for errors.Is. Each fails its request alone in a
// group commit, having written nothing.
var (
	// ErrSessionClosed: the session was closed; it serves nothing more.
	ErrSessionClosed = errors.New("session is closed")
	// ErrInsufficientBalance: the session's balance does not cover the
	// debit. Errors are *BalanceError.
	ErrInsufficientBalance = errors.New("session balance too low")
	// ErrSessionMismatch: the session, or the deposit offered for it,
	// belongs to another service, or a deposit is not a session deposit.
	ErrSessionMismatch = errors.New("session does not match")
)

// BalanceError says what a refused debit wanted and what there was.
type BalanceError struct {
	BalanceMsat, WantMsat int64
}

func (e *BalanceError) Error() string {
	return fmt.Sprintf("session balance %d msat does not cover %d msat", e.BalanceMsat, e.WantMsat)
}

// Is matches ErrInsufficientBalance.
func (e *BalanceError) Is(target error) bool { return target == ErrInsufficientBalance }

// SessionState is where a session is in its life.
type SessionState string

// Session states.
const (
	// SessionOpen: debits and top-ups are taken.
	SessionOpen SessionState = "open"
	// SessionClosing: closed to debits; the refund of RefundMsat to
	// ReturnInvoice is owed and may be in flight.
	SessionClosing SessionState = "closing"
	// SessionClosed: the refund was paid (RefundStatus "succeeded"),
	// nothing was owed ("skipped"), or it failed for good ("failed": the
	// amount stays owed, in RefundMsat, for the operator).
	SessionClosed SessionState = "closed"
)

// Refund statuses.
const (
	RefundPending   = "pending"
	RefundSucceeded = "succeeded"
	RefundFailed    = "failed"
	RefundSkipped   = "skipped"
)

// Session is a prepaid balance: an MPP session opened with a deposit
// invoice of this node, debited per request, topped up with further
// deposits, and closed with the rest refunded. Its books always balance:
// DepositedMsat = DebitedMsat + BalanceMsat() + RefundMsat.
type Session struct {
	// ID is the payment hash of the opening deposit.
	ID      lntypes.Hash `json:"-"`
	Service string       `json:"service"`
	// ReturnInvoice is the holder's amountless invoice for the refund.
	ReturnInvoice string `json:"returnInvoice"`

	DepositedMsat int64 `json:"depositedMsat"`
	DebitedMsat   int64 `json:"debitedMsat"`
	// RefundMsat is the balance at close, owed to ReturnInvoice.
	RefundMsat int64 `json:"refundMsat"`
	// RefundFeeMsat is what routing the refund cost the node.
	RefundFeeMsat int64  `json:"refundFeeMsat,omitempty"`
	RefundStatus  string `json:"refundStatus,omitempty"`
	RefundError   string `json:"refundError,omitempty"`
	// MeteredMsat is the part of DebitedMsat that metering took as
	// responses flowed (per KiB or per second), beyond the requests'
	// prices.
	MeteredMsat int64 `json:"meteredMsat,omitempty"`
	// Prepaid marks an L402 prepaid balance (see DebitPrepaid) rather
	// than an MPP session; it has no ReturnInvoice until it is closed.
	Prepaid bool `json:"prepaid,omitempty"`
	// Requests counts debits (less those given back); TopUps the
	// deposits after the first.
	Requests int64 `json:"requests"`
	TopUps   int64 `json:"topUps"`

	State    SessionState `json:"state"`
	OpenedAt time.Time    `json:"openedAt"`
	UsedAt   time.Time    `json:"usedAt"`
	ClosedAt time.Time    `json:"closedAt,omitzero"`
}

// BalanceMsat is what the session can still spend.
func (s *Session) BalanceMsat() int64 {
	if s.State != SessionOpen {
		return 0
	}
	return s.DepositedMsat - s.DebitedMsat
}

// SessionDebit is the outcome of an open or a top-up that also pays for
// the request carrying it.
type SessionDebit struct {
	Session Session
	// Debited is false when the balance did not cover the request: the
	// deposit was taken, the request was not paid for.
	Debited bool
}

// sessionKey: v1/sess/<id 32>, the session as JSON (sessionFormat ‖ JSON).
func sessionKey(id lntypes.Hash) []byte {
	return append([]byte(prefixSession), id[:]...)
}

const sessionFormat = 1

func encodeSession(s *Session) []byte {
	b, _ := json.Marshal(s) // plain fields: cannot fail
	return append([]byte{sessionFormat}, b...)
}

func decodeSession(k, v []byte) (*Session, error) {
	if len(k) != len(prefixSession)+lntypes.HashSize || len(v) < 2 || v[0] != sessionFormat {
		return nil, fmt.Errorf("storage: %s: %w: not a session record", fmtKey(k), ErrCorrupt)
	}
	s := new(Session)
	if err := json.Unmarshal(v[1:], s); err != nil {
		return nil, fmt.Errorf("storage: %s: %w: %v", fmtKey(k), ErrCorrupt, err)
	}
	copy(s.ID[:], k[len(prefixSession):])
	return s, nil
}

func getSession(txn kvTxn, id lntypes.Hash) (*Session, error) {
	k := sessionKey(id)
	item, err := txn.Get(k)
	if errors.Is(err, errKeyNotFound) {
		return nil, fmt.Errorf("storage: session %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: reading %s: %w", fmtKey(k), err)
	}
	var s *Session
	err = item.Value(func(v []byte) error {
		var err error
		s, err = decodeSession(k, v)
		return err
	})
	return s, err
}

// getMPPSession is getSession for the MPP session operations, which a
// prepaid L402 balance is not open to: its id is a token's payment hash,
// and it is spent only as DebitPrepaid says.
func getMPPSession(txn kvTxn, id lntypes.Hash) (*Session, error) {
	s, err := getSession(txn, id)
	if err == nil && s.Prepaid {
		return nil, fmt.Errorf("storage: %w: %s is a prepaid L402 balance, not an MPP session", ErrSessionMismatch, id)
	}
	return s, err
}

// takeDeposit checks that deposit h is a session deposit of service
// (its challenge's resource is depositResource) not spent yet, and returns
// the writes that spend it: its consumption (scheme "session") and the
// revocation of its L402 token, as Consume writes them, so that one
// deposit is credited once and never also used as a token or a charge.
func (s *Store) takeDeposit(txn kvTxn, h lntypes.Hash, service, depositResource string, at time.Time) (msat int64, token l402.TokenID, write func() error, err error) {
	c, write, err := spendable(txn, h, schemeSession, at)
	if err != nil {
		return 0, token, nil, err
	}
	if c.Service != service || c.Resource != depositResource {
		return 0, token, nil, fmt.Errorf("storage: %w: payment %s is not a session deposit of service %q", ErrSessionMismatch, h, service)
	}
	return c.PriceSats * 1000, c.TokenID, write, nil
}

// revokedDeposit tells the revocation cache about a deposit's token that
// a committed write revoked.
func (s *Store) revokedDeposit(tok *l402.TokenID) {
	if tok != nil {
		s.revoked.add(*tok)
	}
}

// schemeSession is the scheme a session deposit is consumed under.
const schemeSession = "session"

// openSession is OpenSession's durable commit.
func (s *Store) openSession(ctx context.Context, id lntypes.Hash, service, depositResource, returnInvoice string, returnHash lntypes.Hash, debitMsat int64) (SessionDebit, error) {
	if debitMsat < 0 || service == "" || returnInvoice == "" {
		return SessionDebit{}, fmt.Errorf("storage: %w: a session needs a service, a return invoice and a debit ≥ 0", ErrInvalid)
	}
	var (
		out   SessionDebit
		spent *l402.TokenID
	)
	err := s.commitOne(ctx, func(txn kvTxn) error {
		out, spent = SessionDebit{}, nil
		at := s.now()
		if cur, err := getMPPSession(txn, id); err == nil {
			d, err := debit(txn, cur, service, debitMsat, at, true)
			if err != nil {
				return err
			}
			out = SessionDebit{Session: *d, Debited: true}
			return nil
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		msat, tok, spend, err := s.takeDeposit(txn, id, service, depositResource, at)
		if err != nil {
			return err
		}
		claim, err := claimRefundInvoice(txn, returnHash, id)
		if err != nil {
			return err
		}
		if err := spend(); err != nil {
			return err
		}
		if err := claim(); err != nil {
			return err
		}
		spent = &tok
		ss := &Session{ID: id, Service: service, ReturnInvoice: returnInvoice, DepositedMsat: msat, State: SessionOpen, OpenedAt: at, UsedAt: at}
		if msat >= debitMsat {
			ss.DebitedMsat, ss.Requests = debitMsat, 1
			out.Debited = true
		}
		out.Session = *ss
		return txn.Set(sessionKey(id), encodeSession(ss))
	}, func() { s.revokedDeposit(spent) })
	return out, err
}

// debit takes msat from open session cur for a request of service (or,
// request false, for metering) and writes it; it writes nothing when it
// refuses.
func debit(txn kvTxn, cur *Session, service string, msat int64, at time.Time, request bool) (*Session, error) {
	switch {
	case cur.Service != service:
		return nil, fmt.Errorf("storage: %w: session %s is for service %q", ErrSessionMismatch, cur.ID, cur.Service)
	case cur.State != SessionOpen:
		return nil, fmt.Errorf("storage: session %s: %w", cur.ID, ErrSessionClosed)
	case cur.BalanceMsat() < msat:
		return nil, &BalanceError{BalanceMsat: cur.BalanceMsat(), WantMsat: msat}
	}
	cur.DebitedMsat += msat
	if request {
		cur.Requests++
	} else {
		cur.MeteredMsat += msat
	}
	cur.UsedAt = at
	return cur, txn.Set(sessionKey(cur.ID), encodeSession(cur))
}

// debitSession is DebitSession's durable commit.
func (s *Store) debitSession(ctx context.Context, id lntypes.Hash, service string, msat int64) (Session, error) {
	if msat < 0 {
		return Session{}, fmt.Errorf("storage: %w: negative debit", ErrInvalid)
	}
	var out Session
	err := s.commitOne(ctx, func(txn kvTxn) error {
		cur, err := getMPPSession(txn, id)
		if err != nil {
			return err
		}
		d, err := debit(txn, cur, service, msat, s.now(), true)
		if err != nil {
			return err
		}
		out = *d
		return nil
	}, nil)
	return out, err
}

// UndebitSession gives back one debit of msat that DebitSession (or an
// open or top-up) took for a request that was never served (the gate's
// upstream did not answer). Only the caller whose debit succeeded may
// call it, once. A session closed since keeps the debit: its refund was
// reckoned without it, and the books must still balance.
func (s *Store) UndebitSession(ctx context.Context, id lntypes.Hash, msat int64) (bool, error) {
	return s.undebit(ctx, id, msat, true)
}

// undebitDurable is undebit's durable commit.
func (s *Store) undebitDurable(ctx context.Context, id lntypes.Hash, msat int64, request bool) (bool, error) {
	undone := false
	err := s.commitOne(ctx, func(txn kvTxn) error {
		undone = false
		cur, err := getSession(txn, id)
		if err != nil {
			return err
		}
		switch {
		case cur.State != SessionOpen || cur.DebitedMsat < msat:
			return nil
		case request && cur.Requests == 0, !request && cur.MeteredMsat < msat:
			return nil
		}
		cur.DebitedMsat -= msat
		if request {
			cur.Requests--
		} else {
			cur.MeteredMsat -= msat
		}
		undone = true
		return txn.Set(sessionKey(id), encodeSession(cur))
	}, nil)
	return undone, err
}

// meterSession is MeterSession's durable commit.
func (s *Store) meterSession(ctx context.Context, id lntypes.Hash, service string, wantMsat, minMsat int64) (took int64, out Session, err error) {
	if wantMsat <= 0 || minMsat <= 0 || minMsat > wantMsat {
		return 0, Session{}, fmt.Errorf("storage: %w: meter debit of %d msat (at least %d)", ErrInvalid, wantMsat, minMsat)
	}
	err = s.commitOne(ctx, func(txn kvTxn) error {
		took = 0
		cur, err := getMPPSession(txn, id)
		if err != nil {
			return err
		}
		msat := min(wantMsat, cur.BalanceMsat())
		if msat < minMsat {
			msat = minMsat // refused below, with the balance in the error
		}
		d, err := debit(txn, cur, service, msat, s.now(), false)
		if err != nil {
			return err
		}
		took, out = msat, *d
		return nil
	}, nil)
	return took, out, err
}

// UnmeterSession gives back msat of what MeterSession took that the
// response did not use (it ended before it spent it). Only the caller
// whose MeterSession took it may call it, once. A session closed since
// keeps it, as UndebitSession does.
func (s *Store) UnmeterSession(ctx context.Context, id lntypes.Hash, msat int64) (bool, error) {
	if msat <= 0 {
		return false, nil
	}
	return s.undebit(ctx, id, msat, false)
}

// topUpSession is TopUpSession's durable commit.
func (s *Store) topUpSession(ctx context.Context, id, topUp lntypes.Hash, service, depositResource string, debitMsat int64) (SessionDebit, error) {
	if debitMsat < 0 {
		return SessionDebit{}, fmt.Errorf("storage: %w: negative debit", ErrInvalid)
	}
	if topUp == id {
		return SessionDebit{}, fmt.Errorf("storage: %w: a session's own deposit is no top-up", ErrSessionMismatch)
	}
	var (
		out   SessionDebit
		spent *l402.TokenID
	)
	err := s.commitOne(ctx, func(txn kvTxn) error {
		out, spent = SessionDebit{}, nil
		at := s.now()
		cur, err := getMPPSession(txn, id)
		if err != nil {
			return err
		}
		switch {
		case cur.Service != service:
			return fmt.Errorf("storage: %w: session %s is for service %q", ErrSessionMismatch, id, cur.Service)
		case cur.State != SessionOpen:
			return fmt.Errorf("storage: session %s: %w", id, ErrSessionClosed)
		}
		msat, tok, spend, err := s.takeDeposit(txn, topUp, service, depositResource, at)
		if err != nil {
			return err
		}
		if err := spend(); err != nil {
			return err
		}
		spent = &tok
		cur.DepositedMsat += msat
		cur.TopUps++
		cur.UsedAt = at
		if cur.BalanceMsat() >= debitMsat {
			cur.DebitedMsat += debitMsat
			cur.Requests++
			out.Debited = true
		}
		out.Session = *cur
		return txn.Set(sessionKey(id), encodeSession(cur))
	}, func() { s.revokedDeposit(spent) })
	return out, err
}

// closeSession is CloseSession's durable commit.
func (s *Store) closeSession(ctx context.Context, id lntypes.Hash) (Session, error) {
	var out Session
	err := s.commitOne(ctx, func(txn kvTxn) error {
		cur, err := getMPPSession(txn, id)
		if err != nil {
			return err
		}
		out = *cur
		if cur.State != SessionOpen {
			return nil
		}
		at := s.now()
		cur.RefundMsat = cur.BalanceMsat()
		cur.State, cur.ClosedAt, cur.RefundStatus = SessionClosing, at, RefundPending
		if cur.RefundMsat == 0 {
			cur.State, cur.RefundStatus = SessionClosed, RefundSkipped
		}
		out = *cur
		return txn.Set(sessionKey(id), encodeSession(cur))
	}, nil)
	return out, err
}

// Writes of a balance, each run exclusively of debits in memory (see
// lazydebit.go) around its durable commit above.

// OpenSession opens session id with its deposit (a challenge of this
// store for service whose resource is depositResource, paid: the caller
// checked the preimage) and, if the deposit covers it, debits debitMsat
// for the request that opens it — in one durable commit, shared with
// concurrent writes. The deposit is consumed as Consume does, so it opens
// one session once.
//
// Opening a session that is open already (a retried open) debits it like
// DebitSession. returnHash, if not zero, is the return invoice's payment
// hash: an invoice that takes another session's or balance's refund is
// refused with ErrExists before anything is spent (LND pays a hash once,
// so the second refund would be found paid and never made). Errors:
// ErrNotFound (no such deposit), ErrSessionMismatch, ErrConsumed (the
// deposit was spent otherwise), ErrSessionClosed, ErrExists.
func (s *Store) OpenSession(ctx context.Context, id lntypes.Hash, service, depositResource, returnInvoice string, returnHash lntypes.Hash, debitMsat int64) (out SessionDebit, err error) {
	err = s.exclusive(ctx, []lntypes.Hash{id}, func() (lntypes.Hash, lntypes.Hash, bool, error) {
		out, err = s.openSession(ctx, id, service, depositResource, returnInvoice, returnHash, debitMsat)
		return id, id, err == nil, err
	})
	return out, err
}

// DebitSession takes msat from open session id for a request of service,
// durably (group commit), or refuses with ErrNotFound, ErrSessionMismatch,
// ErrSessionClosed or a *BalanceError and takes nothing. Concurrent debits
// never overdraw: each is checked against the balance the ones committed
// before it left.
// With a debit allowance (lazydebit.go), a debit the balance and the
// allowance cover is taken in memory.
func (s *Store) DebitSession(ctx context.Context, id lntypes.Hash, service string, msat int64) (out Session, err error) {
	if out, ok := s.lazy.take(id, service, false, msat); ok {
		return out, nil
	}
	err = s.exclusive(ctx, []lntypes.Hash{id}, func() (lntypes.Hash, lntypes.Hash, bool, error) {
		out, err = s.debitSession(ctx, id, service, msat)
		return id, id, err == nil, err
	})
	return out, err
}

// undebit gives back msat of a request's debit (request true) or of
// metering (false), as debit took it, while the session is open.
func (s *Store) undebit(ctx context.Context, id lntypes.Hash, msat int64, request bool) (undone bool, err error) {
	err = s.exclusive(ctx, []lntypes.Hash{id}, func() (_, _ lntypes.Hash, _ bool, err error) {
		undone, err = s.undebitDurable(ctx, id, msat, request)
		return
	})
	return undone, err
}

// MeterSession takes, for a metered response of service, up to wantMsat
// from open session id — all of it, or what the balance holds if that is
// less but at least minMsat — durably, and returns what it took. It
// counts no request. It refuses, taking nothing, with ErrNotFound,
// ErrSessionMismatch, ErrSessionClosed, or a *BalanceError when the
// balance is under minMsat.
func (s *Store) MeterSession(ctx context.Context, id lntypes.Hash, service string, wantMsat, minMsat int64) (took int64, out Session, err error) {
	err = s.exclusive(ctx, []lntypes.Hash{id}, func() (lntypes.Hash, lntypes.Hash, bool, error) {
		took, out, err = s.meterSession(ctx, id, service, wantMsat, minMsat)
		return id, id, err == nil, err
	})
	return took, out, err
}

// TopUpSession credits deposit topUp (a session deposit of the session's
// service, paid, not spent) to open session id and, if the balance then
// covers it, debits debitMsat for the request carrying the top-up — one
// durable commit. The deposit is consumed, so it is credited once.
func (s *Store) TopUpSession(ctx context.Context, id, topUp lntypes.Hash, service, depositResource string, debitMsat int64) (out SessionDebit, err error) {
	err = s.exclusive(ctx, []lntypes.Hash{id}, func() (lntypes.Hash, lntypes.Hash, bool, error) {
		out, err = s.topUpSession(ctx, id, topUp, service, depositResource, debitMsat)
		return id, id, err == nil, err
	})
	return out, err
}

// CloseSession closes open session id to debits and records its balance
// as the refund owed to its return invoice (state closing, refund
// pending; closed and skipped when nothing is owed), durably, before the
// caller pays it: the record is the refund's journal. Closing a session
// that is closing or closed returns it unchanged, so a retried close
// learns the refund's fate.
func (s *Store) CloseSession(ctx context.Context, id lntypes.Hash) (out Session, err error) {
	err = s.exclusive(ctx, []lntypes.Hash{id}, func() (_, _ lntypes.Hash, _ bool, err error) {
		out, err = s.closeSession(ctx, id)
		return
	})
	return out, err
}

// FinishRefund records the outcome of a closing session's refund:
// succeeded (with what routing it cost) or failed for good (problem says
// why; the amount stays owed in RefundMsat). A session not closing is
// returned unchanged.
func (s *Store) FinishRefund(ctx context.Context, id lntypes.Hash, succeeded bool, feeMsat int64, problem string) (Session, error) {
	var out Session
	err := s.update(ctx, true, func(txn kvTxn) error {
		cur, err := getSession(txn, id)
		if err != nil {
			return err
		}
		out = *cur
		if cur.State != SessionClosing {
			return nil
		}
		cur.State = SessionClosed
		if succeeded {
			cur.RefundStatus, cur.RefundFeeMsat, cur.RefundError = RefundSucceeded, feeMsat, ""
		} else {
			cur.RefundStatus, cur.RefundError = RefundFailed, truncateString(problem, 200)
		}
		out = *cur
		return txn.Set(sessionKey(id), encodeSession(cur))
	})
	return out, err
}

// Session returns session id, with every debit taken before the call,
// or an error wrapping ErrNotFound.
func (s *Store) Session(ctx context.Context, id lntypes.Hash) (*Session, error) {
	if err := s.settled(ctx, id); err != nil {
		return nil, err
	}
	var out *Session
	err := s.db.View(ctx, func(txn kvTxn) error {
		var err error
		out, err = getSession(txn, id)
		return err
	})
	return out, err
}

// Sessions lists every session in state (all of them for ""), in id
// order.
func (s *Store) Sessions(ctx context.Context, state SessionState) ([]Session, error) {
	if err := s.settled(ctx, s.lazy.balances()...); err != nil {
		return nil, err
	}
	var out []Session
	err := s.db.View(ctx, func(txn kvTxn) error {
		return scan(ctx, txn, []byte(prefixSession), decodeSession, func(ss *Session) error {
			if state == "" || ss.State == state {
				out = append(out, *ss)
			}
			return nil
		})
	})
	return out, err
}

func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
