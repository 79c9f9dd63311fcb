package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// HeldSession is a prepaid session the consumer holds at a seller: what it
// needs to spend from it, top it up and close it, and what it last knew of
// its balance. It is written before the deposit is paid (state opening),
// so a crash between paying and opening is resumed with the journal's
// preimage, never paid twice.
type HeldSession struct {
	// ID is the deposit's payment hash (the seller's session id).
	ID     lntypes.Hash `json:"-"`
	Origin string       `json:"-"`
	// URL is where it was opened; a close is sent there.
	URL string `json:"url"`
	// Challenge is the seller's session challenge (JSON of an MPP
	// challenge), echoed in every credential.
	Challenge json.RawMessage `json:"challenge"`
	// Service is the seller's service the session is for, as its 402
	// named it ("" if it did not).
	Service string `json:"service,omitempty"`
	// ReturnInvoice is this node's amountless invoice for the refund.
	ReturnInvoice string       `json:"returnInvoice"`
	ReturnHash    lntypes.Hash `json:"returnHash"`
	DepositedMsat int64        `json:"depositedMsat"`
	// BalanceMsat is the balance the seller last reported.
	BalanceMsat int64 `json:"balanceMsat"`
	// TopUp is the session challenge (JSON) of a top-up deposit this
	// node decided to pay and has not seen credited yet: recorded before
	// it is paid, so that a crash or a lost answer presents that deposit
	// again instead of paying another.
	TopUp json.RawMessage `json:"topUp,omitempty"`
	// Metered: the seller meters responses (per KiB or second) beyond
	// each request's price, so the balance it reported before a
	// response is not what the response left.
	Metered bool `json:"metered,omitempty"`
	// Prepaid marks an L402 prepaid balance rather than an MPP session:
	// ID is the seller's balance id, URL its refund endpoint, and
	// Macaroon the token (of payment TokenHash, whose preimage the
	// journal holds) that closes it.
	Prepaid   bool         `json:"prepaid,omitempty"`
	Macaroon  string       `json:"macaroon,omitempty"`
	TokenHash lntypes.Hash `json:"tokenHash,omitzero"`
	// PendingMacaroon and PendingHash are a top-up token this node
	// decided to pay, recorded before it is paid: if a crash comes
	// before it is recorded as the balance's token, the close still
	// presents it (the seller credits it first).
	PendingMacaroon string       `json:"pendingMacaroon,omitempty"`
	PendingHash     lntypes.Hash `json:"pendingHash,omitzero"`
	// State: "opening" (deposit reserved or being paid), "open",
	// "closed" (refund asked for), "refunded" (its invoice settled).
	State        string    `json:"state"`
	RefundMsat   int64     `json:"refundMsat"`
	RefundStatus string    `json:"refundStatus,omitempty"`
	OpenedAt     time.Time `json:"openedAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

// Held session states.
const (
	HeldOpening  = "opening"
	HeldOpen     = "open"
	HeldClosed   = "closed"
	HeldRefunded = "refunded"
)

// heldKey: v1/held/<origin>\x00<id 32>.
func heldKey(origin string, id lntypes.Hash) []byte {
	k := append([]byte(prefixHeld), origin...)
	k = append(k, 0)
	return append(k, id[:]...)
}

func decodeHeld(k, v []byte) (*HeldSession, error) {
	rest := k[len(prefixHeld):]
	i := strings.IndexByte(string(rest), 0)
	if i < 0 || len(rest)-i-1 != lntypes.HashSize {
		return nil, fmt.Errorf("storage: %s: %w: not a held session key", fmtKey(k), ErrCorrupt)
	}
	h := new(HeldSession)
	if err := json.Unmarshal(v, h); err != nil {
		return nil, fmt.Errorf("storage: %s: %w: %v", fmtKey(k), ErrCorrupt, err)
	}
	h.Origin = string(rest[:i])
	copy(h.ID[:], rest[i+1:])
	return h, nil
}

// PutHeldSession writes h durably (created or replaced).
func (s *Store) PutHeldSession(ctx context.Context, h *HeldSession) error {
	if h.Origin == "" || strings.IndexByte(h.Origin, 0) >= 0 {
		return fmt.Errorf("storage: %w: a held session needs an origin without NUL", ErrInvalid)
	}
	h.UpdatedAt = s.now()
	v, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return s.update(ctx, true, func(txn kvTxn) error { return txn.Set(heldKey(h.Origin, h.ID), v) })
}

// getHeld reads the held session at k, or an error wrapping ErrNotFound.
func getHeld(txn kvTxn, k []byte) (*HeldSession, error) {
	item, err := txn.Get(k)
	if errors.Is(err, errKeyNotFound) {
		return nil, fmt.Errorf("storage: %s: %w", fmtKey(k), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: reading %s: %w", fmtKey(k), err)
	}
	var h *HeldSession
	err = item.Value(func(v []byte) error {
		var err error
		h, err = decodeHeld(k, v)
		return err
	})
	return h, err
}

// UpdateHeldSession applies fn to held session id at origin as it is
// stored now and writes the result, in one transaction (retried on a
// conflict, fn with it): concurrent updates of different fields — a
// balance reported on one request, a top-up recorded by another — never
// undo each other, as writing a copy read earlier would.
func (s *Store) UpdateHeldSession(ctx context.Context, origin string, id lntypes.Hash, fn func(*HeldSession)) (*HeldSession, error) {
	var out *HeldSession
	err := s.update(ctx, true, func(txn kvTxn) error {
		k := heldKey(origin, id)
		var err error
		if out, err = getHeld(txn, k); err != nil {
			return err
		}
		fn(out)
		out.UpdatedAt = s.now()
		v, err := json.Marshal(out)
		if err != nil {
			return err
		}
		return txn.Set(k, v)
	})
	return out, err
}

// RefundedHeldSession records held session h as refunded — h.State must
// be HeldRefunded, h.RefundMsat what this node's invoice received — and,
// on the transition only, credits that refund back to the budgets: to
// today's counter and domain's (net spending: a refund frees today's
// budget; counters never go below zero). It reports whether this call
// made the transition, so concurrent or repeated closes credit once.
func (s *Store) RefundedHeldSession(ctx context.Context, h *HeldSession, domain string) (bool, error) {
	if h.State != HeldRefunded || h.RefundMsat < 0 {
		return false, fmt.Errorf("storage: %w: RefundedHeldSession of a session %s with refund %d", ErrInvalid, h.State, h.RefundMsat)
	}
	if h.Origin == "" || strings.IndexByte(h.Origin, 0) >= 0 {
		return false, fmt.Errorf("storage: %w: a held session needs an origin without NUL", ErrInvalid)
	}
	credited := false
	err := s.update(ctx, true, func(txn kvTxn) error {
		credited = false
		k := heldKey(h.Origin, h.ID)
		switch cur, err := getHeld(txn, k); {
		case err == nil && cur.State == HeldRefunded:
			*h = *cur
			return nil
		case err != nil && !errors.Is(err, ErrNotFound):
			return err
		}
		now := s.now()
		h.UpdatedAt = now
		v, err := json.Marshal(h)
		if err != nil {
			return err
		}
		if err := txn.Set(k, v); err != nil {
			return err
		}
		credited = true
		return addBudget(txn, dayOf(now), domain, BudgetCounter{SpentMsat: -h.RefundMsat})
	})
	return credited, err
}

// HeldSessions lists the sessions held at origin ("" for every origin).
func (s *Store) HeldSessions(ctx context.Context, origin string) ([]HeldSession, error) {
	prefix := []byte(prefixHeld)
	if origin != "" {
		prefix = append(append(prefix, origin...), 0)
	}
	var out []HeldSession
	err := s.db.View(ctx, func(txn kvTxn) error {
		return scan(ctx, txn, prefix, decodeHeld, func(h *HeldSession) error {
			out = append(out, *h)
			return nil
		})
	})
	return out, err
}

// HeldSession returns the session id held at any origin, or an error
// wrapping ErrNotFound.
func (s *Store) HeldSession(ctx context.Context, id lntypes.Hash) (*HeldSession, error) {
	all, err := s.HeldSessions(ctx, "")
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].ID == id {
			return &all[i], nil
		}
	}
	return nil, fmt.Errorf("storage: held session %s: %w", id, ErrNotFound)
}
