package producer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/l402/mpp"
	"github.com/l402d/l402d/storage"
)

// SessionResource is the resource of a session deposit's challenge. No
// priced path has it, so a deposit's L402 token or charge buys nothing on
// its own (and opening a session revokes the token anyway).
const SessionResource = "mpp-session"

// SessionOffer is what a session challenge sells: a deposit, spent at
// UnitPriceSats per request of Service.
type SessionOffer struct {
	Service       string
	UnitPriceSats int64
	IdleTimeout   time.Duration
	Description   string
}

// SessionChallenge is the Payment session challenge for deposit, a
// challenge issued with resource SessionResource: its id is bound with
// the node's MPP key and it expires with the deposit's invoice.
func (p *Producer) SessionChallenge(deposit Challenge, o SessionOffer) (mpp.Challenge, error) {
	if len(p.mppKey) == 0 {
		return mpp.Challenge{}, errors.New("producer: MPP is not ready (Start was not called)")
	}
	req := mpp.SessionRequest{
		Amount:         strconv.FormatInt(o.UnitPriceSats, 10),
		Currency:       mpp.CurrencySat,
		UnitType:       "request",
		DepositInvoice: deposit.Invoice,
		PaymentHash:    deposit.PaymentHash.String(),
		DepositAmount:  strconv.FormatInt(deposit.PriceSats, 10),
	}
	if len(o.Description) <= MaxDescriptionLen {
		req.Description = o.Description
	}
	if o.IdleTimeout > 0 {
		req.IdleTimeout = strconv.FormatInt(int64(o.IdleTimeout/time.Second), 10)
	}
	return mpp.NewSessionChallenge(p.mppKey, MPPRealm, req, deposit.ExpiresAt)
}

// CheckSession verifies a Payment session credential without state
// (mpp.VerifySession) and, for an open, that its return invoice is an
// amountless, unexpired invoice of the node's chain: the refund must be
// payable.
func (p *Producer) CheckSession(cred mpp.Credential) (mpp.Session, error) {
	v, err := mpp.VerifySession(p.mppKey, cred)
	if err != nil || v.Action != mpp.ActionOpen {
		return v, err
	}
	inv, err := invoices.DecodeInvoice(v.ReturnInvoice, p.Network())
	switch {
	case err != nil:
		return v, &mpp.FieldError{Field: "payload.returnInvoice", Problem: "not an invoice of this node's chain: " + err.Error()}
	case inv.AmountMsat != 0:
		return v, &mpp.FieldError{Field: "payload.returnInvoice", Problem: "names an amount; the refund needs an amountless invoice"}
	case !inv.ExpiresAt.After(p.cfg.Now()):
		return v, &mpp.FieldError{Field: "payload.returnInvoice", Problem: "expired; make a fresh amountless invoice"}
	}
	return v, nil
}

// UseSession carries out a verified open, bearer or topUp for a request
// of service priced priceSats: the deposit is credited (once) and the
// request debited, in one durable commit. Debited false means the balance
// does not cover the request (402 with a top-up challenge). Errors wrap
// storage's session verdicts, ErrConsumed, or l402.ErrUnknownToken for a
// deposit this node did not issue.
func (p *Producer) UseSession(ctx context.Context, v mpp.Session, service string, priceSats int64) (storage.SessionDebit, error) {
	msat := priceSats * 1000
	var (
		out storage.SessionDebit
		err error
	)
	switch v.Action {
	case mpp.ActionOpen:
		// CheckSession decoded it already; its hash claims the refund.
		var rh lntypes.Hash
		if inv, derr := invoices.DecodeInvoice(v.ReturnInvoice, p.Network()); derr == nil {
			rh = inv.PaymentHash
		}
		out, err = p.cfg.Store.OpenSession(ctx, v.ID, service, SessionResource, v.ReturnInvoice, rh, msat)
		if errors.Is(err, storage.ErrExists) {
			err = &mpp.FieldError{Field: "payload.returnInvoice", Problem: "already takes the refund of another session or balance (an invoice is paid once); make a fresh amountless invoice"}
		}
	case mpp.ActionTopUp:
		out, err = p.cfg.Store.TopUpSession(ctx, v.ID, v.TopUp, service, SessionResource, msat)
	case mpp.ActionBearer:
		out.Session, err = p.cfg.Store.DebitSession(ctx, v.ID, service, msat)
		if err == nil {
			out.Debited = true
		} else if errors.Is(err, storage.ErrInsufficientBalance) {
			var s *storage.Session
			if s, err = p.cfg.Store.Session(ctx, v.ID); err == nil {
				out.Session = *s
			}
		}
	default:
		return out, fmt.Errorf("producer: %q is not a spending action", v.Action)
	}
	if errors.Is(err, storage.ErrNotFound) {
		err = fmt.Errorf("%w: no session or deposit %s on this node", l402.ErrUnknownToken, v.ID)
	}
	if m := p.cfg.Metrics; m != nil {
		m.Verifications.WithLabelValues(ReasonCode(err)).Inc()
	}
	return out, err
}

// UndebitSession gives back a debit whose request the upstream never
// answered (storage.Store.UndebitSession).
func (p *Producer) UndebitSession(ctx context.Context, id lntypes.Hash, priceSats int64) error {
	undone, err := p.cfg.Store.UndebitSession(ctx, id, priceSats*1000)
	if err != nil {
		return fmt.Errorf("producer: giving back a debit of session %s: %w", id, err)
	}
	if undone {
		p.log.Info("gave back a session debit: what it paid for was not served", "session", id)
	}
	return nil
}

// MeterSession takes up to wantMsat (at least minMsat, or nothing) from
// session id for a metered response of service (storage.Store.MeterSession).
func (p *Producer) MeterSession(ctx context.Context, id lntypes.Hash, service string, wantMsat, minMsat int64) (int64, storage.Session, error) {
	took, s, err := p.cfg.Store.MeterSession(ctx, id, service, wantMsat, minMsat)
	if err != nil && !errors.Is(err, storage.ErrInsufficientBalance) && !errors.Is(err, storage.ErrSessionClosed) && !errors.Is(err, storage.ErrSessionMismatch) {
		err = fmt.Errorf("producer: metering session %s: %w", id, err)
	}
	return took, s, err
}

// UnmeterSession gives back what a metered response took ahead and did
// not use (storage.Store.UnmeterSession).
func (p *Producer) UnmeterSession(ctx context.Context, id lntypes.Hash, msat int64) error {
	if _, err := p.cfg.Store.UnmeterSession(ctx, id, msat); err != nil {
		return fmt.Errorf("producer: giving back %d msat of metering to session %s: %w", msat, id, err)
	}
	return nil
}

// CloseSession closes session id of service (v is a verified close) and
// refunds its balance to its return invoice: the refund is journaled
// before it is paid, paid from the node, and resumed after a restart
// (ResumeRefunds). It waits up to wait for the refund's outcome, then
// returns the session as it stands (refund "pending" if not yet final).
func (p *Producer) CloseSession(ctx context.Context, v mpp.Session, service string, wait time.Duration) (storage.Session, error) {
	cur, err := p.cfg.Store.Session(ctx, v.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Session{}, fmt.Errorf("%w: no session %s on this node", l402.ErrUnknownToken, v.ID)
	}
	if err != nil {
		return storage.Session{}, err
	}
	if cur.Service != service {
		return storage.Session{}, fmt.Errorf("%w: session %s is for service %q", storage.ErrSessionMismatch, v.ID, cur.Service)
	}
	s, err := p.cfg.Store.CloseSession(ctx, v.ID)
	if err != nil {
		return s, err
	}
	return p.awaitRefund(ctx, s, wait), nil
}

// awaitRefund starts closed balance s's refund, unless it is final, and
// waits up to wait for it; it returns the balance as it then stands.
func (p *Producer) awaitRefund(ctx context.Context, s storage.Session, wait time.Duration) storage.Session {
	if s.State != storage.SessionClosing {
		return s
	}
	done := p.startRefund(s)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
	if got, err := p.cfg.Store.Session(context.WithoutCancel(ctx), s.ID); err == nil {
		s = *got
	}
	return s
}

// ResumeRefunds pays, or follows to the end, the refund of every session
// left closing (a crash or restart between journaling a refund and
// recording its outcome). LND pays one payment hash once, so a refund
// already made is found, not made again.
func (p *Producer) ResumeRefunds(ctx context.Context) error {
	closing, err := p.cfg.Store.Sessions(ctx, storage.SessionClosing)
	if err != nil {
		return fmt.Errorf("producer: listing closing sessions: %w", err)
	}
	for _, s := range closing {
		p.startRefund(s)
	}
	return nil
}

// refunds is the set of refunds in flight, so a close retried while its
// refund is being paid waits for that payment instead of starting another.
type refunds struct {
	mu      sync.Mutex
	running map[lntypes.Hash]chan struct{}
}

// startRefund pays s's refund in the background unless that is under way;
// the channel closes when it is final or given up for now.
func (p *Producer) startRefund(s storage.Session) <-chan struct{} {
	p.refunds.mu.Lock()
	defer p.refunds.mu.Unlock()
	if ch, ok := p.refunds.running[s.ID]; ok {
		return ch
	}
	if p.refunds.running == nil {
		p.refunds.running = make(map[lntypes.Hash]chan struct{})
	}
	ch := make(chan struct{})
	p.refunds.running[s.ID] = ch
	go func() {
		defer func() {
			p.refunds.mu.Lock()
			delete(p.refunds.running, s.ID)
			p.refunds.mu.Unlock()
			close(ch)
		}()
		p.refund(context.Background(), s)
	}()
	return ch
}

// refundTimeout bounds one attempt to pay a refund.
const refundTimeout = 60 * time.Second

// refund pays closing session s's RefundMsat to its return invoice and
// records the outcome. A payment the node already has for that hash is
// followed instead (a resumed refund); a node that cannot be reached
// leaves the refund pending for the next ResumeRefunds.
func (p *Producer) refund(ctx context.Context, s storage.Session) {
	ctx, cancel := context.WithTimeout(ctx, refundTimeout+10*time.Second)
	defer cancel()
	inv, err := invoices.DecodeInvoice(s.ReturnInvoice, p.Network())
	if err != nil {
		p.finishRefund(ctx, s, invoices.Payment{}, err)
		return
	}
	pay, err := p.cfg.Backend.Track(ctx, inv.PaymentHash)
	if errors.Is(err, invoices.ErrNotFound) || (err == nil && pay.State == invoices.PaymentFailed) {
		pay, err = p.cfg.Backend.Pay(ctx, invoices.PayRequest{
			Invoice:    s.ReturnInvoice,
			AmountMsat: s.RefundMsat,
			MaxFeeMsat: refundFeeLimit(s.RefundMsat),
			Timeout:    refundTimeout,
		})
		if errors.Is(err, invoices.ErrAlreadyPaid) {
			pay, err = p.cfg.Backend.Track(ctx, inv.PaymentHash)
		}
	}
	if err != nil && !errors.Is(err, invoices.ErrInvalidInvoice) && !errors.Is(err, invoices.ErrWrongNetwork) {
		p.log.Warn("producer: a session refund is not final yet; it is retried at the next start", "session", s.ID, "refund_msat", s.RefundMsat, "err", err)
		return
	}
	p.finishRefund(ctx, s, pay, err)
}

func (p *Producer) finishRefund(ctx context.Context, s storage.Session, pay invoices.Payment, err error) {
	ok := err == nil && pay.State == invoices.PaymentSucceeded
	problem := ""
	switch {
	case err != nil:
		problem = err.Error()
	case !ok:
		problem = "payment failed: " + pay.FailureReason
	}
	if _, ferr := p.cfg.Store.FinishRefund(ctx, s.ID, ok, pay.FeeMsat, problem); ferr != nil {
		p.log.Error("producer: recording a session refund failed; it is checked again at the next start", "session", s.ID, "err", ferr)
		return
	}
	if ok {
		p.log.Info("refunded a closed session", "session", s.ID, "refund_msat", s.RefundMsat, "fee_msat", pay.FeeMsat)
	} else {
		p.log.Warn("a session refund failed; the amount stays owed", "session", s.ID, "refund_msat", s.RefundMsat, "problem", problem)
	}
}

// refundFeeLimit is what the node pays at most to route a refund: 1 %
// of it, at least 1 sat. A fixed floor any higher would let a buyer who
// opens and closes sessions over and over make the node pay more in fees
// than the buyer pays to deposit.
func refundFeeLimit(msat int64) int64 { return max(msat/100, 1_000) }

// Sessions lists the node's sessions in state ("" for all).
func (p *Producer) Sessions(ctx context.Context, state storage.SessionState) ([]storage.Session, error) {
	return p.cfg.Store.Sessions(ctx, state)
}
