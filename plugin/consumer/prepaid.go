package consumer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/storage"
)

// defaultRefundPath is where an l402d gate refunds prepaid credit.
const defaultRefundPath = "/.well-known/l402/refund"

// prepaidTerms is what a 402 says of the prepaid credit it sells (its
// body's "prepaid" object): the balance a top-up credits, and where the
// rest is refunded.
type prepaidTerms struct {
	TopUpOf    string `json:"topUpOf"`
	RefundPath string `json:"refundPath"`
}

// parsePrepaid reads the prepaid terms of a 402's body, nil if it sells
// no credit.
func parsePrepaid(body []byte) *prepaidTerms {
	var b struct {
		Prepaid *prepaidTerms `json:"prepaid"`
	}
	if json.Unmarshal(body, &b) != nil {
		return nil
	}
	return b.Prepaid
}

// refundPathOf is the seller's refund path from its terms: a path on
// the seller's own origin, never another host's ("//host/…" is one).
func refundPathOf(terms *prepaidTerms) string {
	p := terms.RefundPath
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\?#") {
		return defaultRefundPath
	}
	return p
}

// holdPrepaid records, before the credit of o is paid, the prepaid
// balance it opens (or tops up) as a held session, with this node's
// amountless invoice for the refund: whatever happens after the payment,
// the balance can be closed and its rest collected (CloseSession), and
// its refund is credited to the budgets once. It returns the balance id.
// A top-up of a balance this node holds open adds to that record; one of
// a balance closed since opens a balance of its own at the seller, and so
// here.
func (c *Consumer) holdPrepaid(ctx context.Context, pr *prepared, o *offer, macaroon string, terms *prepaidTerms) (lntypes.Hash, error) {
	own := o.decoded.PaymentHash
	id := own
	if h, err := lntypes.MakeHashFromStr(terms.TopUpOf); err == nil {
		id = h
	}
	for {
		cur, err := c.store.HeldSession(ctx, id)
		switch {
		case err == nil && cur.Prepaid && cur.Origin == pr.origin && cur.State == storage.HeldOpen:
			if cur.TokenHash == own {
				return id, nil
			}
			_, err := c.store.UpdateHeldSession(ctx, pr.origin, id, func(h *storage.HeldSession) { h.PendingMacaroon, h.PendingHash = macaroon, own })
			return id, err
		case err == nil && id != own:
			id = own
			continue
		case err == nil:
			return id, nil // paid before: recorded then
		}
		break
	}
	path := refundPathOf(terms)
	inv, err := c.ln.AddInvoice(ctx, invoices.AddInvoiceRequest{Memo: "l402d prepaid refund from " + pr.origin, Expiry: returnInvoiceExpiry})
	if err != nil {
		return id, fmt.Errorf("consumer: making the refund invoice of a prepaid credit: %w", err)
	}
	now := c.cfg.Now()
	held := &storage.HeldSession{Origin: pr.origin, ID: id, URL: pr.origin + path, ReturnInvoice: inv.PaymentRequest, ReturnHash: inv.PaymentHash,
		Prepaid: true, Macaroon: macaroon, TokenHash: own, State: storage.HeldOpen, OpenedAt: now}
	return id, c.store.PutHeldSession(ctx, held)
}

// creditPaid adds a paid credit (token macaroon, payment hash) to the
// prepaid balance held as id, and makes it the token that closes the
// balance: the newest token is the only one that may not have been
// presented yet (a top-up is bought only after the token before it was
// refused for a short balance, which credited it), and the seller credits
// a top-up presented at the close before it closes.
func (c *Consumer) creditPaid(ctx context.Context, origin string, id lntypes.Hash, msat int64, macaroon string, hash lntypes.Hash) {
	if _, err := c.store.UpdateHeldSession(ctx, origin, id, func(h *storage.HeldSession) {
		h.DepositedMsat += msat
		if h.State == storage.HeldOpen {
			h.Macaroon, h.TokenHash = macaroon, hash
		}
		if h.PendingHash == hash {
			h.PendingMacaroon, h.PendingHash = "", lntypes.Hash{}
		}
	}); err != nil {
		c.log.Warn("consumer: recording a prepaid credit", "balance", id, "err", err)
	}
}

// closePrepaid asks the seller to close held, a prepaid balance, and
// refund its rest to held's return invoice, presenting the token that
// bought it; held records the answer (the caller then checks what the
// invoice received). A retried close gets the first close's answer.
func (c *Consumer) closePrepaid(ctx context.Context, held *storage.HeldSession) error {
	if held.PendingHash != (lntypes.Hash{}) {
		// A top-up paid before a crash that never recorded it: the
		// newest token, and maybe never presented.
		if pp, err := c.store.Payment(ctx, held.PendingHash); err == nil && pp.State == storage.PaymentSucceeded {
			held.Macaroon, held.TokenHash = held.PendingMacaroon, held.PendingHash
		}
	}
	p, err := c.store.Payment(ctx, held.TokenHash)
	switch {
	case (err == nil && p.State == storage.PaymentFailed) || errors.Is(err, storage.ErrNotFound):
		// Recorded before paying, and never paid: nothing to refund.
		held.State, held.RefundMsat, held.RefundStatus, held.BalanceMsat = storage.HeldClosed, 0, "never paid", 0
		return nil
	case err != nil || p.State != storage.PaymentSucceeded:
		return fmt.Errorf("consumer: the credit of prepaid balance %s is not paid yet: %v", held.ID, err)
	}
	body, _ := json.Marshal(map[string]string{"invoice": held.ReturnInvoice})
	pr, err := prepare(AccessRequest{URL: held.URL, Method: http.MethodPost, Body: body, Header: http.Header{
		"Authorization": {"L402 " + held.Macaroon + ":" + p.Preimage.String()},
		"Content-Type":  {"application/json"},
	}})
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, pr, nil)
	if err != nil {
		return err
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &UpstreamError{Method: http.MethodPost, URL: held.URL, Err: fmt.Errorf("the seller answered the refund request %d: %s", resp.StatusCode, bytes.TrimSpace(raw))}
	}
	var out struct {
		RefundMsat   int64  `json:"refundMsat"`
		RefundStatus string `json:"refundStatus"`
	}
	_ = json.Unmarshal(raw, &out)
	held.State, held.RefundMsat, held.RefundStatus, held.BalanceMsat = storage.HeldClosed, out.RefundMsat, out.RefundStatus, 0
	return nil
}
