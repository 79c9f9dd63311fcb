package consumer

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/l402/x402"
	"github.com/l402d/l402d/plugin/apiclient"
	"github.com/l402d/l402d/plugin/field"
	"github.com/l402d/l402d/storage"
)

// Errors of a payment that was attempted. Both are *PaymentError.
var (
	// ErrPaymentFailed: LND reports the payment failed; nothing was paid
	// and its reservation is released.
	ErrPaymentFailed = errors.New("payment failed")
	// ErrPaymentInFlight: the outcome is not known yet (LND is still
	// trying, or could not be asked). The journal keeps the payment in
	// flight and the resumer records its outcome, and caches its token,
	// as soon as LND knows it.
	ErrPaymentInFlight = errors.New("payment still in flight")
)

// PaymentError is a payment that failed or whose outcome is pending.
type PaymentError struct {
	PaymentHash lntypes.Hash
	InFlight    bool
	// Reason is LND's failure reason, or why the outcome is unknown.
	Reason string
}

func (e *PaymentError) Error() string {
	if e.InFlight {
		return fmt.Sprintf("payment %s is still in flight (%s); l402d keeps tracking it and records the outcome", e.PaymentHash, e.Reason)
	}
	return fmt.Sprintf("payment %s failed: %s", e.PaymentHash, e.Reason)
}

// Is matches ErrPaymentInFlight or ErrPaymentFailed.
func (e *PaymentError) Is(target error) bool {
	if e.InFlight {
		return target == ErrPaymentInFlight
	}
	return target == ErrPaymentFailed
}

// PaymentInfo describes a payment made (or found made) for a request.
type PaymentInfo = apiclient.PaymentInfo

func paymentInfo(p *storage.Payment, already bool) *PaymentInfo {
	pi := &PaymentInfo{PaymentHash: p.PaymentHash.String(), State: string(p.State), AmountSats: p.AmountMsat / 1000,
		AmountMsat: p.AmountMsat, FeeMsat: p.FeeMsat, AlreadyPaid: already, Scheme: p.Scheme, Receipt: p.Receipt}
	if p.State == storage.PaymentSucceeded {
		pi.Preimage = hex.EncodeToString(p.Preimage[:])
	}
	return pi
}

// TokenInfo is an L402 token and the credential that presents it.
type TokenInfo = apiclient.TokenInfo

// TokenInfoOf renders a cached token, or a paid single-use credential.
func TokenInfoOf(t *storage.Token) *TokenInfo {
	ti := &TokenInfo{
		Macaroon: t.Macaroon, Preimage: hex.EncodeToString(t.Preimage[:]), PaymentHash: t.PaymentHash.String(),
		Origin: t.Origin, Scope: t.Scope, Service: t.Service, AmountSats: t.AmountSats, ExpiresAt: t.ExpiresAt,
		Scheme: t.Scheme, SingleUse: t.SingleUse(),
	}
	if ti.Scheme == "" {
		ti.Scheme = SchemeL402
	}
	switch name, v := credentialHeader(t); name {
	case x402.HeaderPaymentSignature:
		ti.PaymentSignature = v
	default:
		ti.Authorization = v
	}
	return ti
}

// offer is a challenge that passed policy: what paying it means.
type offer struct {
	// scheme is how the service is answered; material, for a single-use
	// scheme, what its credential is made of (see Offer.material).
	scheme   string
	material string
	macaroon string
	info     l402.Info
	invoice  string
	decoded  invoices.DecodedInvoice
	// origin, domain (the budget domain) and scope are empty when no URL
	// is known.
	url, origin, domain, scope string
	feeLimitMsat               int64
	// approved: a person approved paying it.
	approved bool
	// paid: the journal holds the hash as paid; paying it returns that.
	paid bool
}

// paidBefore reports whether the journal holds h as paid.
func (c *Consumer) paidBefore(ctx context.Context, h lntypes.Hash) (bool, error) {
	p, err := c.store.Payment(ctx, h)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	return err == nil && p.State == storage.PaymentSucceeded, err
}

// evaluate checks a challenge against policy: the macaroon decodes and is
// bound to the invoice's payment hash and not expired, the invoice is for
// this network, has an amount, has not expired and asks what the seller
// advertised (advertisedSats, 0 if unknown, and the token's amount
// caveat), no more than maxMsat (0: no cap); and the spend policy
// (checkSpend) allows it. target may be nil. A refusal with
// ErrApprovalRequired comes with the offer, for the caller to put to a
// person.
func (c *Consumer) evaluate(ctx context.Context, ch l402.Challenge, advertisedSats, maxMsat int64, target *url.URL, approved bool) (*offer, error) {
	if n := len(strings.TrimSpace(ch.Macaroon)); n > storage.MaxMacaroonLen {
		return nil, &PolicyError{Code: "invalid_macaroon", Field: "macaroon", Problem: fmt.Sprintf("is %d bytes, more than %d", n, storage.MaxMacaroonLen),
			Fix: "do not pay for this token: l402d cannot keep it"}
	}
	mac, err := l402.DecodeMacaroon(ch.Macaroon)
	if err != nil {
		return nil, &PolicyError{Code: "invalid_macaroon", Field: "macaroon", Problem: "does not decode: " + err.Error(), Fix: "send the macaroon exactly as the challenge carried it"}
	}
	info, err := l402.Inspect(mac)
	if err != nil {
		return nil, &PolicyError{Code: "invalid_macaroon", Field: "macaroon", Problem: "has no L402 identifier: " + err.Error(), Fix: "this is not an L402 token; do not pay for it"}
	}
	d, err := c.ln.DecodeInvoice(ctx, ch.Invoice)
	if err != nil {
		return nil, invoiceError("invoice", err)
	}
	now := c.cfg.Now()
	if info.Identifier.PaymentHash != d.PaymentHash {
		return nil, &PolicyError{Code: "hash_mismatch", Field: "macaroon",
			Problem: fmt.Sprintf("is bound to payment hash %s but the invoice pays %s", info.Identifier.PaymentHash, d.PaymentHash),
			Fix:     "do not pay this challenge: paying the invoice would not make the token valid"}
	}
	if info.Expired(now) {
		return nil, &PolicyError{Code: "token_expired", Field: "macaroon", Problem: "expired at " + info.ValidUntil.UTC().Format(time.RFC3339),
			Fix: "request the resource again for a fresh challenge"}
	}
	o := &offer{scheme: SchemeL402, macaroon: strings.TrimSpace(ch.Macaroon), info: info, invoice: strings.TrimSpace(ch.Invoice), decoded: d,
		feeLimitMsat: c.feeLimitMsat(d.AmountMsat), approved: approved}
	sp := spendFor(target, d.AmountMsat, o.feeLimitMsat, approved)
	o.domain = sp.domain
	if target != nil {
		o.url, o.origin, o.scope = target.String(), Origin(target), ScopeFor(info, target.Path)
	}
	if o.paid, err = c.paidBefore(ctx, d.PaymentHash); err != nil || o.paid {
		// Paid before: nothing will be paid, so the price rules (an
		// invoice that has expired since, say) do not apply.
		return o, err
	}
	if err := checkOffer(offerTerms{invoice: d, advertisedSats: []int64{advertisedSats, info.AmountSats}, maxMsat: maxMsat}, now); err != nil {
		return nil, err
	}
	return c.allowSpend(ctx, o, sp)
}

// evaluateOnce checks a single-use (MPP or x402) offer against policy:
// the invoice decodes, is for this network, has not expired, asks exactly
// what the offer and the body state (never more than offered) and no
// more than maxMsat, the charge request names the invoice's payment hash
// and has not expired; and the spend policy allows it. Like evaluate, a
// refusal with ErrApprovalRequired comes with the offer.
func (c *Consumer) evaluateOnce(ctx context.Context, of Offer, advertisedSats, maxMsat int64, target *url.URL, approved bool) (*offer, error) {
	material, err := of.material()
	if err != nil {
		return nil, err
	}
	invoiceField := "request.methodDetails.invoice"
	if of.Scheme == SchemeX402 {
		invoiceField = "accepts.extra.invoice"
	}
	d, err := c.ln.DecodeInvoice(ctx, of.Invoice)
	if err != nil {
		return nil, invoiceError(invoiceField, err)
	}
	if of.MPPHash != "" && !strings.EqualFold(of.MPPHash, d.PaymentHash.String()) {
		return nil, &PolicyError{Code: "hash_mismatch", Field: "request.methodDetails.paymentHash",
			Problem: fmt.Sprintf("is %s but the invoice pays %s", of.MPPHash, d.PaymentHash),
			Fix:     "do not pay this challenge: the service would not accept the payment as proof"}
	}
	now := c.cfg.Now()
	if of.Scheme == SchemeMPP {
		if at, ok, err := of.MPP.ExpiresAt(); err == nil && ok && !now.Before(at) {
			return nil, &PolicyError{Code: "challenge_expired", Field: "expires", Problem: "passed at " + at.UTC().Format(time.RFC3339),
				Fix: "request the resource again for a fresh challenge"}
		}
	}
	o := &offer{scheme: of.Scheme, material: material, invoice: strings.TrimSpace(of.Invoice), decoded: d,
		feeLimitMsat: c.feeLimitMsat(d.AmountMsat), approved: approved}
	sp := spendFor(target, d.AmountMsat, o.feeLimitMsat, approved)
	o.domain = sp.domain
	if target != nil {
		o.url, o.origin, o.scope = target.String(), Origin(target), onceScope(target.Path)
	}
	if o.paid, err = c.paidBefore(ctx, d.PaymentHash); err != nil || o.paid {
		return o, err
	}
	if d.AmountMsat > 0 && of.ClaimMsat != d.AmountMsat {
		return nil, &PolicyError{Code: "price_mismatch", Field: of.ClaimField,
			Problem: fmt.Sprintf("states %s sat but the invoice asks %s sat", fmtMsat(of.ClaimMsat), fmtMsat(d.AmountMsat)),
			Fix:     "do not pay this challenge: the invoice does not match the stated price"}
	}
	if of.Scheme == SchemeX402 {
		if err := checkX402Invoice(of.X402, o.invoice, d); err != nil {
			return nil, err
		}
	}
	if err := checkOffer(offerTerms{invoice: d, advertisedSats: []int64{advertisedSats}, maxMsat: maxMsat}, now); err != nil {
		return nil, err
	}
	return c.allowSpend(ctx, o, sp)
}

// allowSpend checks an offer that passed its own checks against the spend
// policy: a refusal with ErrApprovalRequired comes with the offer, so the
// caller may ask a person.
func (c *Consumer) allowSpend(ctx context.Context, o *offer, sp spend) (*offer, error) {
	if err := c.checkSpend(ctx, sp); err != nil {
		if errors.Is(err, ErrApprovalRequired) {
			return o, err
		}
		return nil, err
	}
	return o, nil
}

// checkX402Invoice makes, before paying, the invoice checks an x402
// server makes when it settles (its network, payee and expiry match the
// requirement): a payment it would refuse afterwards is money lost.
func checkX402Invoice(r x402.PaymentRequirements, invoice string, d invoices.DecodedInvoice) error {
	cur, _ := x402.InvoiceCurrency(r.Network)
	rest, ok := strings.CutPrefix(strings.ToLower(invoice), "ln"+cur)
	switch {
	case !ok || rest == "" || rest[0] < '0' || rest[0] > '9':
		return &PolicyError{Code: "offer_mismatch", Field: "accepts.network", Problem: fmt.Sprintf("is %s but the invoice is not for it", r.Network),
			Fix: "do not pay this offer: the service would refuse the payment as proof"}
	case d.Destination != r.PayTo:
		return &PolicyError{Code: "offer_mismatch", Field: "accepts.payTo", Problem: fmt.Sprintf("is %s but the invoice pays %s", r.PayTo, d.Destination),
			Fix: "do not pay this offer: the service would refuse the payment as proof"}
	case d.ExpiresAt.Sub(d.CreatedAt) != time.Duration(r.MaxTimeoutSeconds)*time.Second:
		return &PolicyError{Code: "offer_mismatch", Field: "accepts.maxTimeoutSeconds", Problem: fmt.Sprintf("is %d but the invoice expires after %s", r.MaxTimeoutSeconds, d.ExpiresAt.Sub(d.CreatedAt)),
			Fix: "do not pay this offer: the service would refuse the payment as proof"}
	}
	return nil
}

func (o *offer) entry(kind storage.PaymentKind) storage.Payment {
	return storage.Payment{
		PaymentHash: o.decoded.PaymentHash, Kind: kind, Invoice: o.invoice, AmountMsat: o.decoded.AmountMsat,
		FeeLimitMsat: o.feeLimitMsat, Domain: o.domain, URL: o.url, Macaroon: o.macaroon, Origin: o.origin, Scope: o.scope,
		Approved: o.approved, Scheme: o.scheme, Offer: o.material,
	}
}

// bought is what a paid offer presents: the L402 token, or the
// single-use credential.
func (o *offer) bought(pre lntypes.Preimage) (*storage.Token, error) {
	if storage.SingleUse(o.scheme) {
		return onceToken(o.scheme, o.material, o.origin, o.scope, o.decoded.AmountMsat, pre)
	}
	return tokenOf(o, pre), nil
}

// PayChallengeRequest asks to pay an L402 challenge.
type PayChallengeRequest struct {
	// Invoice and Macaroon are the challenge's, or Challenge is its whole
	// WWW-Authenticate value.
	Invoice, Macaroon string
	Challenge         string
	// MaxSats refuses a price above it; 0 leaves only the budget.
	MaxSats int64
	// MaxMsat, if set, refuses a price above it too: the exact price a
	// person approved.
	MaxMsat int64
	// URL, if set, is the resource the challenge came from: the payment
	// counts against its domain's budget and the token is cached for it.
	// Without it the domain is unknown (refused under an allow list).
	URL string
	// Approved: a person approved paying it (the rolling unapproved-spend
	// cap does not apply).
	Approved bool
}

// PayChallengeResult is a paid challenge.
type PayChallengeResult struct {
	Payment *PaymentInfo `json:"payment"`
	Token   *TokenInfo   `json:"token"`
}

// PayChallenge pays an L402 challenge and returns the token with its ready
// Authorization value. A challenge whose hash the journal holds as paid
// is not paid again: its token is returned with AlreadyPaid set.
func (c *Consumer) PayChallenge(ctx context.Context, req PayChallengeRequest) (*PayChallengeResult, error) {
	ch, target, err := req.parse()
	if err != nil {
		return nil, err
	}
	o, err := c.evaluate(ctx, ch, 0, capMsat(req.MaxSats, req.MaxMsat), target, req.Approved)
	if err != nil {
		c.count("refused", nil)
		return nil, err
	}
	p, already, err := c.pay(ctx, o.entry(storage.KindChallenge))
	if err != nil {
		return nil, err
	}
	tok := TokenInfoOf(tokenOf(o, p.Preimage))
	return &PayChallengeResult{Payment: paymentInfo(p, already), Token: tok}, nil
}

// PayInvoiceRequest asks to pay a bare BOLT 11 invoice.
type PayInvoiceRequest struct {
	Invoice string
	// MaxSats refuses a price above it; 0 leaves only the budget.
	MaxSats int64
	// MaxMsat, if set, refuses a price above it too: the exact price a
	// person approved.
	MaxMsat int64
	// URL, if set, is the resource the invoice pays for: the payment
	// counts against its domain's budget. Without it the domain is
	// unknown (refused under an allow list).
	URL string
	// Approved: a person approved paying it.
	Approved bool
}

// parse checks the request and returns its target (nil for none).
func (req PayInvoiceRequest) parse() (*url.URL, error) {
	if err := req.check(); err != nil {
		return nil, err
	}
	if req.URL == "" {
		return nil, nil
	}
	return ParseTarget(req.URL)
}

// decodeInvoiceRequest checks req and decodes its invoice: the target
// it is for (nil if none), the invoice trimmed, and what it says.
func (c *Consumer) decodeInvoiceRequest(ctx context.Context, req PayInvoiceRequest) (*url.URL, string, invoices.DecodedInvoice, error) {
	target, err := req.parse()
	if err != nil {
		return nil, "", invoices.DecodedInvoice{}, err
	}
	invoice := strings.TrimSpace(req.Invoice)
	d, err := c.ln.DecodeInvoice(ctx, invoice)
	if err != nil {
		return nil, "", invoices.DecodedInvoice{}, invoiceError("invoice", err)
	}
	return target, invoice, d, nil
}

func (req PayInvoiceRequest) check() error {
	switch {
	case strings.TrimSpace(req.Invoice) == "":
		return &field.Error{Field: "invoice", Problem: "is required", Fix: "send a BOLT 11 payment request (lnbc…)"}
	case req.MaxSats < 0:
		return &field.Error{Field: "maxSats", Problem: "is negative", Fix: "send 0 (no cap beyond the budget) or a price cap in sats"}
	case req.MaxMsat < 0:
		return &field.Error{Field: "maxMsat", Problem: "is negative", Fix: "send 0 (no cap beyond the budget) or a price cap in msat"}
	}
	return nil
}

// PayInvoice pays a BOLT 11 invoice and returns the payment, with the
// preimage. The same rules apply as to challenges (an amount, not
// expired, this network, at most the caller's cap, the budget).
func (c *Consumer) PayInvoice(ctx context.Context, req PayInvoiceRequest) (*PaymentInfo, error) {
	target, invoice, d, err := c.decodeInvoiceRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	paid, err := c.paidBefore(ctx, d.PaymentHash)
	if err != nil {
		return nil, err
	}
	sp := spendFor(target, d.AmountMsat, c.feeLimitMsat(d.AmountMsat), req.Approved)
	if !paid {
		err := checkOffer(offerTerms{invoice: d, maxMsat: capMsat(req.MaxSats, req.MaxMsat)}, c.cfg.Now())
		if err == nil {
			err = c.checkSpend(ctx, sp)
		}
		if err != nil {
			c.count("refused", nil)
			return nil, err
		}
	}
	e := storage.Payment{PaymentHash: d.PaymentHash, Kind: storage.KindInvoice, Invoice: invoice, AmountMsat: d.AmountMsat,
		FeeLimitMsat: sp.feeLimitMsat, Domain: sp.domain, Approved: req.Approved}
	if target != nil {
		e.URL = target.String()
	}
	p, already, err := c.pay(ctx, e)
	if err != nil {
		return nil, err
	}
	return paymentInfo(p, already), nil
}

// pay runs one payment through the journal: reserve (entry + budget,
// durably), mark in flight, pay with LND, record the outcome (and the
// token) — all under the hash's lock, so a hash is never paid twice. A
// hash the journal holds as succeeded is not paid: its entry is returned
// with already true. An entry some earlier run left unfinished is first
// resolved with LND.
func (c *Consumer) pay(ctx context.Context, e storage.Payment) (p *storage.Payment, already bool, err error) {
	unlock, err := c.locks.lock(ctx, e.PaymentHash)
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	for range 3 {
		entry := e
		existing, err := c.store.ReservePayment(ctx, &entry)
		switch {
		case err == nil:
			return c.send(ctx, &entry)
		case !errors.Is(err, storage.ErrExists):
			if errors.Is(err, storage.ErrBudgetExceeded) {
				c.count("refused", nil)
			}
			return nil, false, spendError(err)
		case existing.State == storage.PaymentSucceeded:
			return existing, true, nil
		}
		// Reserved or in flight, and nobody in this process is on it:
		// ask LND what became of it before paying anything.
		tctx, cancel := context.WithTimeout(ctx, c.cfg.PaymentTimeout)
		res, terr := c.ln.Track(tctx, e.PaymentHash)
		resolved, rerr := c.record(tctx, existing, res, terr)
		cancel()
		switch {
		case rerr != nil:
			return nil, false, rerr
		case resolved.State == storage.PaymentSucceeded:
			return resolved, false, nil
		}
		// Failed: reserve again and pay.
	}
	return nil, false, fmt.Errorf("consumer: payment %s: the journal entry keeps changing", e.PaymentHash)
}

// send pays a reserved entry. The caller holds its lock.
func (c *Consumer) send(ctx context.Context, e *storage.Payment) (*storage.Payment, bool, error) {
	if err := c.store.MarkPaymentInFlight(ctx, e.PaymentHash); err != nil {
		// Nothing was sent; the resumer finds LND knows nothing of it
		// and releases the reservation.
		c.orphan(e.PaymentHash)
		return nil, false, err
	}
	// The payment outlives the caller: LND goes on paying if the caller
	// leaves, so wait for its answer (and record it) regardless.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.PaymentTimeout+payGrace)
	defer cancel()
	start := time.Now()
	res, err := c.ln.Pay(pctx, invoices.PayRequest{Invoice: e.Invoice, MaxFeeMsat: e.FeeLimitMsat, Timeout: c.cfg.PaymentTimeout})
	if errors.Is(err, invoices.ErrAlreadyPaid) {
		c.log.Info("LND already has a payment for this hash; tracking it instead", "payment_hash", e.PaymentHash)
		res, err = c.ln.Track(pctx, e.PaymentHash)
	}
	p, err := c.record(pctx, e, res, err)
	if err != nil {
		return nil, false, err
	}
	c.log.Info("payment final", "payment_hash", p.PaymentHash, "state", p.State, "amount_msat", p.AmountMsat,
		"fee_msat", p.FeeMsat, "domain", p.Domain, "took", time.Since(start).Round(time.Millisecond), "reason", p.FailureReason)
	if p.State == storage.PaymentFailed {
		return nil, false, &PaymentError{PaymentHash: p.PaymentHash, Reason: p.FailureReason}
	}
	return p, false, nil
}

// notSentGrace is how long, on a shared store, a payment marked in flight
// that LND does not know is still taken for one about to be sent.
const notSentGrace = 30 * time.Second

// record writes what LND said about a payment (res, err from Pay or
// Track) to the journal. A final outcome completes the entry (and caches
// its token); LND knowing nothing of the hash means it was never sent, so
// it failed; anything else leaves it in flight for the resumer and yields
// a *PaymentError with InFlight set. A failed payment is returned, not an
// error: callers decide.
func (c *Consumer) record(ctx context.Context, e *storage.Payment, res invoices.Payment, err error) (*storage.Payment, error) {
	var o storage.PaymentOutcome
	switch {
	case err == nil && res.State == invoices.PaymentSucceeded:
		o = storage.PaymentOutcome{Succeeded: true, Preimage: res.Preimage, AmountMsat: res.AmountMsat, FeeMsat: res.FeeMsat}
	case err == nil && res.State == invoices.PaymentFailed:
		o = storage.PaymentOutcome{FailureReason: res.FailureReason}
	case errors.Is(err, invoices.ErrNotFound) && c.shared && e.State == storage.PaymentInFlight && time.Since(e.UpdatedAt) < notSentGrace:
		// Another replica marked it in flight moments ago and may still
		// be about to send it (its lock gone with a broken connection):
		// not knowing it yet is no proof LND never will.
		c.orphan(e.PaymentHash)
		return nil, &PaymentError{PaymentHash: e.PaymentHash, InFlight: true,
			Reason: "marked in flight moments ago on another replica; LND does not know it yet"}
	case errors.Is(err, invoices.ErrNotFound):
		o = storage.PaymentOutcome{FailureReason: "never sent: LND has no payment for this hash"}
	default:
		c.orphan(e.PaymentHash)
		reason := "LND has not reported a final state"
		if err != nil {
			reason = err.Error()
		}
		return nil, &PaymentError{PaymentHash: e.PaymentHash, InFlight: true, Reason: reason}
	}
	var tok *storage.Token
	switch {
	case !o.Succeeded || e.Origin == "":
	case storage.SingleUse(e.Scheme):
		// Kept until presented: if this process dies before the service
		// answers, the next access of the resource presents it.
		var err error
		if tok, err = onceToken(e.Scheme, e.Offer, e.Origin, e.Scope, e.AmountMsat, o.Preimage); err != nil {
			c.log.Warn("paid single-use credential cannot be made", "payment_hash", e.PaymentHash, "err", err)
		}
	case e.Macaroon != "":
		if mac, err := l402.DecodeMacaroon(e.Macaroon); err == nil {
			if info, err := l402.Inspect(mac); err == nil {
				tok = tokenOf(&offer{macaroon: e.Macaroon, info: info, origin: e.Origin, scope: e.Scope, decoded: invoices.DecodedInvoice{AmountMsat: e.AmountMsat}}, o.Preimage)
			}
		}
	}
	// The outcome is LND's; recording it must not depend on the caller
	// still waiting.
	p, changed, err := c.store.CompletePayment(context.WithoutCancel(ctx), e.PaymentHash, o, tok)
	if err != nil {
		c.orphan(e.PaymentHash)
		return nil, fmt.Errorf("consumer: recording payment %s: %w", e.PaymentHash, err)
	}
	if changed {
		if p.State == storage.PaymentSucceeded {
			c.count("succeeded", p)
		} else {
			c.count("failed", p)
		}
	}
	return p, nil
}

// tokenOf builds the cache entry of a paid offer. What the seller chose
// is fitted to the store's limits: an expiry beyond what it represents is
// clamped (to centuries ahead), a service name too long to keep is left
// out (its scope is then the path, see ScopeFor).
func tokenOf(o *offer, pre lntypes.Preimage) *storage.Token {
	t := &storage.Token{Origin: o.origin, Scope: o.scope, PaymentHash: lntypes.Hash(o.info.Identifier.PaymentHash), Preimage: pre,
		Macaroon: o.macaroon, AmountSats: o.decoded.AmountMsat / 1000, ExpiresAt: storage.ClampTime(o.info.ValidUntil), Scheme: SchemeL402}
	if len(o.info.Services) > 0 && len(o.info.Services[0].Name) <= storage.MaxServiceLen {
		t.Service = o.info.Services[0].Name
	}
	return t
}

func (c *Consumer) count(outcome string, p *storage.Payment) {
	m := c.cfg.Metrics
	if m == nil {
		return
	}
	m.PaymentsSent.WithLabelValues(outcome).Inc()
	if outcome == "succeeded" && p != nil {
		m.SpentSats.Add(float64(p.AmountMsat) / 1000)
		m.FeesSats.Add(float64(p.FeeMsat) / 1000)
	}
}
