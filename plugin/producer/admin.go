package producer

import (
	"context"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/plugin/field"
	"github.com/l402d/l402d/storage"
)

// Challenges lists issued challenges, newest first.
func (p *Producer) Challenges(ctx context.Context, f storage.ChallengeFilter) ([]storage.Challenge, storage.Cursor, error) {
	return p.cfg.Store.ListChallenges(ctx, f)
}

// Challenge returns one challenge by payment hash.
func (p *Producer) Challenge(ctx context.Context, hash lntypes.Hash) (*storage.Challenge, error) {
	return p.cfg.Store.Challenge(ctx, hash)
}

// Stats returns revenue and challenge counters for [since, until).
func (p *Producer) Stats(ctx context.Context, since, until time.Time) (storage.Stats, error) {
	return p.cfg.Store.Stats(ctx, since, until)
}

// Revoke makes a token unusable from now on. The token is named by its id
// (hex) or by its macaroon (base64), whichever the caller has.
func (p *Producer) Revoke(ctx context.Context, tokenIDOrMacaroon, reason string) (l402.TokenID, error) {
	id, err := l402.ParseTokenID(tokenIDOrMacaroon)
	if err != nil {
		mac, merr := l402.DecodeMacaroon(tokenIDOrMacaroon)
		if merr != nil {
			return id, &field.Error{Field: "token", Problem: "is neither a 64-character hex token id nor a base64 macaroon", Fix: "send the token id from the challenge list, or the macaroon"}
		}
		ident, ierr := l402.DecodeIdentifier(mac.Id())
		if ierr != nil {
			return id, &field.Error{Field: "token", Problem: "macaroon has no L402 identifier", Fix: "send a macaroon this node issued"}
		}
		id = ident.TokenID
	}
	if _, err := p.cfg.Store.RootKey(ctx, id); err != nil {
		return id, fmt.Errorf("%w: this node never issued token %s", storage.ErrNotFound, id)
	}
	if err := p.cfg.Store.Revoke(ctx, id, reason); err != nil {
		return id, err
	}
	p.log.Info("token revoked", "token_id", id.String(), "reason", reason)
	return id, nil
}

// IsRevoked reports whether token id was revoked. It reads only memory,
// so the gate asks it on every request it serves from its verify cache.
func (p *Producer) IsRevoked(ctx context.Context, id l402.TokenID) (bool, error) {
	return p.cfg.Store.IsRevoked(ctx, id)
}

// SettleCursor implements invoices.SettlementSink.
func (p *Producer) SettleCursor(ctx context.Context) (uint64, error) {
	return p.cfg.Store.SettleCursor(ctx)
}

// ApplySettlement implements invoices.SettlementSink: it records a
// settled invoice against its challenge (if it is one of ours) and, for a
// settlement from the ordered stream, advances the settle cursor,
// idempotently.
func (p *Producer) ApplySettlement(ctx context.Context, s invoices.Settlement, inOrder bool) error {
	changed, err := p.cfg.Store.Settle(ctx, storage.Settlement{
		PaymentHash: s.PaymentHash, AmountPaidMsat: s.AmountPaidMsat, SettledAt: s.SettledAt, SettleIndex: s.SettleIndex,
		FromLookup: !inOrder,
	})
	if err != nil {
		return err
	}
	if changed {
		p.log.Info("challenge settled", "hash", s.PaymentHash.String(), "amount_msat", s.AmountPaidMsat, "settle_index", s.SettleIndex)
		if m := p.cfg.Metrics; m != nil {
			m.Settlements.Inc()
			m.RevenueSats.Add(float64(s.AmountPaidMsat) / 1000)
		}
	}
	return nil
}

// Unsettled implements invoices.SettlementSink: the payment hashes of
// challenges not yet recorded as paid (pending, or expired unpaid) whose
// invoice was payable at or after since.
func (p *Producer) Unsettled(ctx context.Context, since time.Time) ([]lntypes.Hash, error) {
	return p.cfg.Store.Unsettled(ctx, since)
}

// Reconciled implements invoices.SettlementSink.
func (p *Producer) Reconciled(ctx context.Context) (time.Time, error) {
	return p.cfg.Store.Reconciled(ctx)
}

// SetReconciled implements invoices.SettlementSink.
func (p *Producer) SetReconciled(ctx context.Context, at time.Time) error {
	return p.cfg.Store.SetReconciled(ctx, at)
}

// SweepCandidates implements invoices.SweepSink.
func (p *Producer) SweepCandidates(ctx context.Context, before time.Time, limit int) ([]lntypes.Hash, error) {
	return p.cfg.Store.SweepCandidates(ctx, before, limit)
}

// DeleteUnpaid implements invoices.SweepSink.
func (p *Producer) DeleteUnpaid(ctx context.Context, h lntypes.Hash, before time.Time) (bool, error) {
	return p.cfg.Store.DeleteUnpaid(ctx, h, before)
}
