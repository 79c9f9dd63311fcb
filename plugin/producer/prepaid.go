package producer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/plugin/field"
	"github.com/l402d/l402d/storage"
)

// UsePrepaid debits priceSats for a request of service from the prepaid
// balance that the verified prepaid token of payment h spends (its own,
// opened at its first use, or the one it tops up, credited once), in one
// durable commit (storage.Store.DebitPrepaid). Debited false means the
// balance does not cover the request: the caller answers 402 with a
// top-up of Session.ID.
func (p *Producer) UsePrepaid(ctx context.Context, h lntypes.Hash, service string, priceSats int64) (storage.SessionDebit, error) {
	out, err := p.cfg.Store.DebitPrepaid(ctx, h, service, priceSats*1000)
	if errors.Is(err, storage.ErrNotFound) {
		err = fmt.Errorf("%w: no prepaid credit %s on this node", l402.ErrUnknownToken, h)
	}
	if m := p.cfg.Metrics; m != nil {
		m.Verifications.WithLabelValues(ReasonCode(err)).Inc()
	}
	return out, err
}

// ClosePrepaid closes the prepaid balance that the verified prepaid token
// of payment h spends and refunds its rest to returnInvoice, the holder's
// amountless invoice: the refund is journaled before it is paid, paid from
// the node and resumed after a restart, as a session's (see CloseSession).
// A balance closed before keeps its first refund, whatever invoice a
// retried close names.
func (p *Producer) ClosePrepaid(ctx context.Context, h lntypes.Hash, service, returnInvoice string, wait time.Duration) (storage.Session, error) {
	returnHash, ierr := p.checkReturnInvoice(returnInvoice)
	if ierr != nil {
		// A retried close of a closed balance needs no (good) invoice.
		if cur, err := p.cfg.Store.Prepaid(ctx, h); err == nil && cur.State != storage.SessionOpen && cur.Service == service {
			return p.awaitRefund(ctx, *cur, wait), nil
		}
		return storage.Session{}, ierr
	}
	s, err := p.cfg.Store.ClosePrepaid(ctx, h, service, returnInvoice, returnHash)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		err = fmt.Errorf("%w: no prepaid credit %s on this node", l402.ErrUnknownToken, h)
	case errors.Is(err, storage.ErrExists):
		err = &field.Error{Field: "invoice", Problem: "already took the refund of another balance (an invoice is paid once)", Fix: "send a fresh amountless invoice"}
	}
	if err != nil {
		return s, err
	}
	return p.awaitRefund(ctx, s, wait), nil
}

// checkReturnInvoice checks that inv can take a refund from this node: an
// amountless, unexpired invoice of its chain.
func (p *Producer) checkReturnInvoice(inv string) (lntypes.Hash, error) {
	if inv == "" {
		return lntypes.Hash{}, &field.Error{Field: "invoice", Problem: "is required", Fix: "send an amountless invoice of your node for the refund"}
	}
	d, err := invoices.DecodeInvoice(inv, p.Network())
	switch {
	case err != nil:
		return lntypes.Hash{}, &field.Error{Field: "invoice", Problem: "is not an invoice of this node's chain: " + err.Error(), Fix: "send a BOLT 11 invoice of " + p.Network()}
	case d.AmountMsat != 0:
		return lntypes.Hash{}, &field.Error{Field: "invoice", Problem: "names an amount", Fix: "send an amountless invoice: the refund is whatever is left"}
	case !d.ExpiresAt.After(p.cfg.Now()):
		return lntypes.Hash{}, &field.Error{Field: "invoice", Problem: "has expired", Fix: "make a fresh amountless invoice"}
	}
	return d.PaymentHash, nil
}
