package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// PaymentState is where an outgoing payment is in the journal.
//
//	reserved ──► in_flight ──► succeeded
//	    │            │
//	    └────────────┴───────► failed ──► reserved (paid again)
//
// reserved: the entry and its budget reservation are on disk, LND has not
// been asked yet. in_flight: LND may know the payment. succeeded and
// failed are final; only a failed payment may be reserved again (LND
// allows retrying a failed payment hash; it refuses a second payment of a
// succeeded or pending one).
type PaymentState string

// Payment states.
const (
	PaymentReserved  PaymentState = "reserved"
	PaymentInFlight  PaymentState = "in_flight"
	PaymentSucceeded PaymentState = "succeeded"
	PaymentFailed    PaymentState = "failed"
)

// Final reports whether the state is succeeded or failed.
func (s PaymentState) Final() bool { return s == PaymentSucceeded || s == PaymentFailed }

// PaymentKind says what a payment bought.
type PaymentKind string

// Payment kinds.
const (
	KindAccess    PaymentKind = "access"    // an L402 challenge met while fetching a URL
	KindChallenge PaymentKind = "challenge" // an L402 challenge paid directly
	KindInvoice   PaymentKind = "invoice"   // a bare invoice
)

// Payment schemes: how the service is answered once the invoice is paid.
// An L402 token is reusable; MPP (the Payment HTTP auth scheme) and x402
// credentials are single-use.
const (
	SchemeL402 = "l402"
	SchemeMPP  = "mpp"
	SchemeX402 = "x402"
)

// SingleUse reports whether a credential of scheme is good for one request.
func SingleUse(scheme string) bool { return scheme == SchemeMPP || scheme == SchemeX402 }

// Payment is one journal entry: an outgoing payment, keyed by its hash.
type Payment struct {
	PaymentHash lntypes.Hash
	State       PaymentState
	Kind        PaymentKind
	Invoice     string
	// AmountMsat is the invoice amount (what LND reports once paid).
	AmountMsat int64
	// FeeLimitMsat is the routing fee cap; amount + fee limit is what the
	// payment reserves from the budget until it is final.
	FeeLimitMsat int64
	// FeeMsat and Preimage are set once the payment succeeded.
	FeeMsat  int64
	Preimage lntypes.Preimage

	// Domain is the budget domain ("" for none); URL the resource bought.
	Domain string
	URL    string
	// Macaroon is the token bought (base64), Origin and Scope where it is
	// cached once the payment succeeds; all empty for a bare invoice.
	Macaroon string
	Origin   string
	Scope    string
	// Scheme is how the service is answered ("" for a bare invoice).
	// Offer, for a single-use scheme, is what the credential is made of
	// once the preimage is known (the consumer gives it meaning), so a
	// payment resumed after a crash still yields its credential. Receipt
	// is what the service returned on accepting the credential, cut to
	// MaxReceiptLen.
	Scheme  string
	Offer   string
	Receipt string

	// BudgetDay is the UTC day (midnight) the reservation counts against.
	BudgetDay time.Time
	// Approved: a person approved this payment, so the rolling
	// unapproved-spend cap does not apply to it. UnapprovedMinute is the
	// Unix minute whose unapproved counter holds its reservation (set by
	// ReservePayment; 0 for an approved payment).
	Approved         bool
	UnapprovedMinute int64
	// Attempts counts reservations: more than one after failures.
	Attempts      uint32
	CreatedAt     time.Time // first reservation
	UpdatedAt     time.Time
	SettledAt     time.Time // when it became final
	FailureReason string
}

// PaymentOutcome is how a payment ended, as LND reports it.
type PaymentOutcome struct {
	Succeeded bool
	Preimage  lntypes.Preimage
	// AmountMsat and FeeMsat as LND reports them; a zero AmountMsat keeps
	// the invoice amount.
	AmountMsat int64
	FeeMsat    int64
	// FailureReason says why a failed payment failed.
	FailureReason string
}

// ReservePayment durably writes a journal entry in state reserved for p
// and reserves amount + fee limit from the current UTC day's budget, in
// one transaction, so that no two payments can take the same part of a
// budget and no payment starts without its entry on disk. It fills p's
// State, BudgetDay, Attempts and times.
//
// If an entry for the hash exists and is not failed, nothing is written:
// the error wraps ErrExists and existing is that entry (a succeeded one
// carries the preimage). A failed entry is reserved again. A payment over
// budget yields a *BudgetError (errors.Is ErrBudgetExceeded).
func (s *Store) ReservePayment(ctx context.Context, p *Payment) (existing *Payment, err error) {
	if err := validatePayment(p); err != nil {
		return nil, err
	}
	now := s.now()
	day := dayOf(now)
	var out Payment
	err = s.update(ctx, true, func(txn kvTxn) error {
		existing = nil
		q := *p
		q.State, q.BudgetDay, q.UpdatedAt = PaymentReserved, dayStart(day), now
		q.FeeMsat, q.Preimage, q.SettledAt, q.FailureReason = 0, lntypes.Preimage{}, time.Time{}, ""
		old, err := getPayment(txn, p.PaymentHash)
		switch {
		case errors.Is(err, ErrNotFound):
			q.CreatedAt, q.Attempts = now, 1
			if err := txn.Set(paymentIdxKey(now, q.PaymentHash), nil); err != nil {
				return err
			}
		case err != nil:
			return err
		case old.State != PaymentFailed:
			existing = old
			return fmt.Errorf("storage: payment %s is %s: %w", p.PaymentHash, old.State, ErrExists)
		default:
			q.CreatedAt, q.Attempts = old.CreatedAt, old.Attempts+1
		}
		if err := checkBudgetTxn(txn, day, q.Domain, q.AmountMsat, q.FeeLimitMsat); err != nil {
			return err
		}
		reserve := BudgetCounter{ReservedMsat: satAdd(q.AmountMsat, q.FeeLimitMsat)}
		if err := addBudget(txn, day, q.Domain, reserve); err != nil {
			return err
		}
		q.UnapprovedMinute = 0
		if !q.Approved {
			if err := checkUnapprovedTxn(txn, now, q.AmountMsat, q.FeeLimitMsat); err != nil {
				return err
			}
			q.UnapprovedMinute = minuteOf(now)
			if err := addUnapproved(txn, q.UnapprovedMinute, reserve); err != nil {
				return err
			}
		}
		out = q
		return txn.Set(paymentKey(q.PaymentHash), encodePayment(&q))
	})
	if err != nil {
		return existing, err
	}
	*p = out
	return nil, nil
}

// MarkPaymentInFlight durably moves a reserved payment to in_flight: from
// now on LND may know it. An in_flight payment is left as it is; a final
// one yields an error wrapping ErrInvalid.
func (s *Store) MarkPaymentInFlight(ctx context.Context, h lntypes.Hash) error {
	now := s.now()
	return s.update(ctx, true, func(txn kvTxn) error {
		p, err := getPayment(txn, h)
		if err != nil {
			return err
		}
		switch p.State {
		case PaymentInFlight:
			return nil
		case PaymentReserved:
			p.State, p.UpdatedAt = PaymentInFlight, now
			return txn.Set(paymentKey(h), encodePayment(p))
		}
		return fmt.Errorf("storage: %w: payment %s is already %s", ErrInvalid, h, p.State)
	})
}

// CompletePayment records a payment's final outcome in one durable
// transaction: the entry becomes succeeded or failed, its reservation is
// released and, if it succeeded, amount + fee are counted as spent and
// tok (if not nil) is put in the token cache. A token the cache cannot
// hold is dropped with a logged reason: it never keeps the outcome from
// being recorded. Completing a final entry
// changes nothing and returns it with changed false, so an outcome is
// never counted twice.
func (s *Store) CompletePayment(ctx context.Context, h lntypes.Hash, o PaymentOutcome, tok *Token) (p *Payment, changed bool, err error) {
	if o.Succeeded && lntypes.Hash(sha256.Sum256(o.Preimage[:])) != h {
		return nil, false, fmt.Errorf("storage: %w: preimage does not hash to payment %s", ErrInvalid, h)
	}
	if o.AmountMsat < 0 || o.FeeMsat < 0 {
		return nil, false, fmt.Errorf("storage: %w: negative amount or fee", ErrInvalid)
	}
	if len(o.FailureReason) > MaxReasonLen {
		o.FailureReason = o.FailureReason[:MaxReasonLen]
	}
	var tokKey, tokVal []byte
	if tok != nil && o.Succeeded {
		tok.PaymentHash, tok.Preimage = h, o.Preimage
		if err := validateToken(tok); err != nil {
			// LND has paid: the outcome is recorded whatever the
			// token holds. A token that cannot be cached is dropped.
			s.log.Warn("storage: payment recorded without caching its token", "payment_hash", h, "err", err)
		} else {
			tokKey, tokVal = tokenKey(tok.Origin, tok.Scope), encodeToken(tok)
		}
	}
	now := s.now()
	err = s.update(ctx, true, func(txn kvTxn) error {
		changed = false
		var err error
		if p, err = getPayment(txn, h); err != nil {
			return err
		}
		if p.State.Final() {
			return nil
		}
		day := dayOf(p.BudgetDay)
		d := BudgetCounter{ReservedMsat: -satAdd(p.AmountMsat, p.FeeLimitMsat)}
		p.UpdatedAt, p.SettledAt = now, now
		if o.Succeeded {
			if o.AmountMsat > 0 {
				p.AmountMsat = o.AmountMsat
			}
			p.State, p.Preimage, p.FeeMsat = PaymentSucceeded, o.Preimage, o.FeeMsat
			d.SpentMsat = satAdd(p.AmountMsat, p.FeeMsat)
			if tokKey != nil {
				if err := txn.Set(tokKey, tokVal); err != nil {
					return err
				}
			}
		} else {
			p.State, p.FailureReason = PaymentFailed, o.FailureReason
		}
		if err := addBudget(txn, day, p.Domain, d); err != nil {
			return err
		}
		if p.UnapprovedMinute != 0 {
			if err := addUnapproved(txn, p.UnapprovedMinute, d); err != nil {
				return err
			}
		}
		changed = true
		return txn.Set(paymentKey(h), encodePayment(p))
	})
	if err != nil {
		return nil, false, err
	}
	return p, changed, nil
}

// SetPaymentReceipt records the receipt a service returned for payment h,
// cut to MaxReceiptLen. A receipt already recorded is kept: the first
// answer to the credential is the one that consumed it.
func (s *Store) SetPaymentReceipt(ctx context.Context, h lntypes.Hash, receipt string) error {
	if receipt == "" {
		return nil
	}
	if len(receipt) > MaxReceiptLen {
		receipt = receipt[:MaxReceiptLen]
	}
	now := s.now()
	return s.update(ctx, true, func(txn kvTxn) error {
		p, err := getPayment(txn, h)
		if err != nil {
			return err
		}
		if p.Receipt != "" {
			return nil
		}
		p.Receipt, p.UpdatedAt = receipt, now
		return txn.Set(paymentKey(h), encodePayment(p))
	})
}

// Payment returns the journal entry for h, or an error wrapping ErrNotFound.
func (s *Store) Payment(ctx context.Context, h lntypes.Hash) (*Payment, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var p *Payment
	err := s.db.View(ctx, func(txn kvTxn) error {
		var err error
		p, err = getPayment(txn, h)
		return err
	})
	return p, err
}

// PendingPayments returns every entry that is reserved or in flight: the
// payments to resume after a restart. It reads the whole journal.
func (s *Store) PendingPayments(ctx context.Context) ([]Payment, error) {
	var out []Payment
	prefix := []byte(prefixPayment)
	err := s.db.View(ctx, func(txn kvTxn) error {
		return scan(ctx, txn, prefix, decodePayment, func(p *Payment) error {
			if !p.State.Final() {
				out = append(out, *p)
			}
			return nil
		})
	})
	return out, err
}

// PaymentFilter selects journal entries for ListPayments. Zero fields do
// not filter.
type PaymentFilter struct {
	State  PaymentState
	Kind   PaymentKind
	Domain string    // exact match
	Since  time.Time // first reserved at or after
	Until  time.Time // first reserved before
	Limit  int       // <= 0: DefaultListLimit; at most MaxListLimit
	After  Cursor    // continue after this position
}

// PaymentTotals sum up every entry a filter matches (not just one page).
type PaymentTotals struct {
	Count, Succeeded, Failed, Pending int
	// AmountMsat and FeeMsat sum the succeeded payments.
	AmountMsat, FeeMsat int64
}

// ListPayments returns the entries matching f, newest first, a cursor for
// the next page (empty when there is none) and the totals over all
// matching entries. Totals make it read every entry in the time range.
func (s *Store) ListPayments(ctx context.Context, f PaymentFilter) ([]Payment, Cursor, PaymentTotals, error) {
	var tot PaymentTotals
	switch f.State {
	case "", PaymentReserved, PaymentInFlight, PaymentSucceeded, PaymentFailed:
	default:
		return nil, "", tot, fmt.Errorf("storage: %w: unknown payment state %q", ErrInvalid, f.State)
	}
	switch f.Kind {
	case "", KindAccess, KindChallenge, KindInvoice:
	default:
		return nil, "", tot, fmt.Errorf("storage: %w: unknown payment kind %q", ErrInvalid, f.Kind)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	prefix := []byte(prefixPaymentIdx)
	r, err := newTimeRange(prefix, f.Since, f.Until, f.After)
	if err != nil {
		return nil, "", tot, err
	}
	var out []Payment
	var last []byte
	var more bool
	err = s.db.View(ctx, func(txn kvTxn) error {
		it := txn.NewIterator(iterOptions{Prefix: prefix, Reverse: true})
		defer it.Close()
		n := 0
		for it.Seek(r.start); it.Valid(); it.Next() {
			if n++; n%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			k := it.Item().Key()
			if len(k) != len(prefix)+8+lntypes.HashSize {
				return corrupt(k, "payment index entry has a %d-byte key", len(k))
			}
			if binary.BigEndian.Uint64(k[len(prefix):]) < r.since {
				break
			}
			var h lntypes.Hash
			copy(h[:], k[len(prefix)+8:])
			p, err := getPayment(txn, h)
			if err != nil {
				return fmt.Errorf("storage: index entry %s: %w", fmtKey(k), err)
			}
			if (f.State != "" && p.State != f.State) || (f.Kind != "" && p.Kind != f.Kind) || (f.Domain != "" && p.Domain != f.Domain) {
				continue
			}
			tot.add(p)
			switch {
			case r.after != nil && bytes.Compare(k, r.after) >= 0:
				// On an earlier page: counted, not listed.
			case len(out) < limit:
				out = append(out, *p)
				last = bytes.Clone(k)
			default:
				more = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", PaymentTotals{}, err
	}
	var next Cursor
	if more {
		next = cursorAt(prefix, last)
	}
	return out, next, tot, nil
}

func (t *PaymentTotals) add(p *Payment) {
	t.Count++
	switch p.State {
	case PaymentSucceeded:
		t.Succeeded++
		t.AmountMsat = satAdd(t.AmountMsat, p.AmountMsat)
		t.FeeMsat = satAdd(t.FeeMsat, p.FeeMsat)
	case PaymentFailed:
		t.Failed++
	default:
		t.Pending++
	}
}

func validatePayment(p *Payment) error {
	switch {
	case p.PaymentHash == (lntypes.Hash{}):
		return fmt.Errorf("storage: %w: payment has no hash", ErrInvalid)
	case p.AmountMsat <= 0 || p.AmountMsat > MaxBudgetSats*1000:
		return fmt.Errorf("storage: %w: payment amount %d msat is out of range", ErrInvalid, p.AmountMsat)
	case p.FeeLimitMsat < 0 || p.FeeLimitMsat > MaxBudgetSats*1000:
		return fmt.Errorf("storage: %w: fee limit %d msat is out of range", ErrInvalid, p.FeeLimitMsat)
	case p.Kind != KindAccess && p.Kind != KindChallenge && p.Kind != KindInvoice:
		return fmt.Errorf("storage: %w: unknown payment kind %q", ErrInvalid, p.Kind)
	case p.Invoice == "" || len(p.Invoice) > MaxInvoiceLen:
		return fmt.Errorf("storage: %w: invoice must be 1 to %d bytes", ErrInvalid, MaxInvoiceLen)
	case len(p.URL) > MaxURLLen:
		return fmt.Errorf("storage: %w: payment URL longer than %d bytes", ErrInvalid, MaxURLLen)
	case len(p.Origin) > MaxOriginLen || len(p.Scope) > MaxScopeLen || len(p.Domain) > MaxDomainLen:
		return fmt.Errorf("storage: %w: payment origin, scope or domain longer than %d, %d or %d bytes", ErrInvalid, MaxOriginLen, MaxScopeLen, MaxDomainLen)
	case len(p.Macaroon) > MaxMacaroonLen:
		return fmt.Errorf("storage: %w: macaroon longer than %d bytes", ErrInvalid, MaxMacaroonLen)
	case p.Scheme != "" && p.Scheme != SchemeL402 && !SingleUse(p.Scheme):
		return fmt.Errorf("storage: %w: unknown payment scheme %q", ErrInvalid, p.Scheme)
	case len(p.Offer) > MaxOfferLen:
		return fmt.Errorf("storage: %w: offer longer than %d bytes", ErrInvalid, MaxOfferLen)
	}
	return nil
}

func getPayment(txn kvTxn, h lntypes.Hash) (*Payment, error) {
	k := paymentKey(h)
	item, err := txn.Get(k)
	if errors.Is(err, errKeyNotFound) {
		return nil, fmt.Errorf("storage: payment %s: %w", h, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: reading %s: %w", fmtKey(k), err)
	}
	var p *Payment
	err = item.Value(func(v []byte) error {
		p, err = decodePayment(k, v)
		return err
	})
	return p, err
}
