package consumer

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/plugin/apiclient"
	"github.com/l402d/l402d/plugin/field"
	"github.com/l402d/l402d/storage"
)

// Quote is what fetching a URL would cost, found without paying.
type Quote = apiclient.Quote

// ManifestPath is where a service lists its prices.
const ManifestPath = "/.well-known/l402.json"

// Quote fetches a URL without a credential and reports its price, whether
// policy and budget would let Access pay it, and whether a cached token
// covers it, without paying or reserving anything. A URL whose path ends
// in ManifestPath or openapi.json is read as a price manifest.
func (c *Consumer) Quote(ctx context.Context, req AccessRequest) (*Quote, error) {
	pr, err := prepare(req)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(pr.u.Path, ManifestPath) || strings.HasSuffix(pr.u.Path, "openapi.json") {
		return c.quoteManifest(ctx, pr)
	}
	q := &Quote{URL: pr.u.String()}
	if tok, err := c.cachedToken(ctx, pr, nil, ""); err != nil {
		return nil, err
	} else if tok != nil {
		q.CachedToken = true
	}
	pr.header.Del(l402.HeaderAuthorization)
	resp, err := c.do(ctx, pr, nil)
	if err != nil {
		return nil, err
	}
	q.Status = resp.StatusCode
	if resp.StatusCode != http.StatusPaymentRequired {
		discard(resp)
		return q, nil
	}
	q.PaymentRequired = true
	of, offered, advertised, _, ok := readChallenge(resp, c.cfg.SchemePreference)
	if !ok {
		resp.Body.Close()
		q.Refusal = &Refusal{Code: "no_l402_challenge", Problem: "the target answered 402 without an L402, MPP or x402 lightning offer", Fix: "this service wants another payment scheme"}
		if len(offered) > 0 {
			q.Refusal.Problem = "the target offers only " + schemesOf(offered) + ", which the scheme preference leaves out"
			q.Refusal.Fix = "add the scheme to the consumer's scheme preference (l402d --consumer.schemes)"
		}
		return q, nil
	}
	if of.Scheme != SchemeL402 {
		return c.judgeOnce(ctx, q, of, advertised, pr.maxMsat, pr.u)
	}
	return c.judge(ctx, q, of.L402, advertised, pr.maxMsat, pr.u)
}

// judgeOnce is judge for a single-use (MPP, x402) offer.
func (c *Consumer) judgeOnce(ctx context.Context, q *Quote, of Offer, advertised, maxMsat int64, target *url.URL) (*Quote, error) {
	q.Scheme, q.Invoice = of.Scheme, of.Invoice
	if d, err := c.ln.DecodeInvoice(ctx, of.Invoice); err == nil {
		q.PriceSats, q.PriceMsat, q.PaymentHash, q.Description, q.InvoiceExpiresAt = d.AmountMsat/1000, d.AmountMsat, d.PaymentHash.String(), d.Description, d.ExpiresAt.UTC()
		q.FeeLimitMsat = c.feeLimitMsat(d.AmountMsat)
		q.FeeLimitSats = (q.FeeLimitMsat + 999) / 1000
	}
	o, err := c.evaluateOnce(ctx, of, advertised, maxMsat, target, false)
	if o != nil {
		q.AlreadyPaid = o.paid
	}
	return verdict(q, err)
}

// judge fills q with what paying ch would mean: its price and fee limit,
// and whether policy and budget allow it (WouldPay) or not (Refusal),
// without paying or reserving anything. target may be nil. Errors other
// than refusals (an invoice that does not decode, a store failure) are
// returned as they are.
func (c *Consumer) judge(ctx context.Context, q *Quote, ch l402.Challenge, advertised, maxMsat int64, target *url.URL) (*Quote, error) {
	q.Scheme, q.Macaroon, q.Invoice = SchemeL402, ch.Macaroon, ch.Invoice
	if d, err := c.ln.DecodeInvoice(ctx, ch.Invoice); err == nil {
		q.PriceSats, q.PriceMsat, q.PaymentHash, q.Description, q.InvoiceExpiresAt = d.AmountMsat/1000, d.AmountMsat, d.PaymentHash.String(), d.Description, d.ExpiresAt.UTC()
		q.FeeLimitMsat = c.feeLimitMsat(d.AmountMsat)
		q.FeeLimitSats = (q.FeeLimitMsat + 999) / 1000
	}
	o, err := c.evaluate(ctx, ch, advertised, maxMsat, target, false)
	if o != nil {
		q.Service, q.Resource, q.Scope, q.TokenExpiresAt, q.AlreadyPaid = challengeService(ch), o.info.Resource, o.scope, o.info.ValidUntil, o.paid
	}
	return verdict(q, err)
}

// verdict completes q with the outcome of the checks, err: none means
// WouldPay; a policy or budget refusal goes into Refusal; any other
// error is returned as it is.
func verdict(q *Quote, err error) (*Quote, error) {
	if err != nil {
		if q.Refusal = RefusalOf(err); q.Refusal == nil {
			return nil, err
		}
		return q, nil
	}
	q.WouldPay = true
	return q, nil
}

// Refusal explains why l402d would not pay: a code, the field concerned
// and the fix.
type Refusal = apiclient.Refusal

// RefusalOf explains a policy or budget refusal; nil for other errors.
func RefusalOf(err error) *Refusal {
	var pe *PolicyError
	var be *storage.BudgetError
	switch {
	case errors.As(err, &pe):
		return &Refusal{Code: pe.Code, Field: pe.Field, Problem: pe.Error(), Fix: pe.Fix}
	case errors.As(err, &be):
		fix := "wait for the next UTC day (" + be.Day.Add(24*time.Hour).Format(time.RFC3339) + "), or raise the limit with l402cli budget set --" + flagOf(be.Limit) + " (admin key, from the node)"
		if be.Limit == storage.LimitPerPayment {
			fix = "raise the limit with l402cli budget set --" + flagOf(be.Limit) + " (admin key, from the node)"
		}
		return &Refusal{Code: "budget_exceeded", Field: "budget." + be.Limit, Problem: be.Error(), Fix: fix}
	}
	return nil
}

// flagOf names the l402cli budget flag of a limit.
func flagOf(limit string) string {
	switch limit {
	case storage.LimitPerPayment:
		return "per-payment-sats"
	case storage.LimitPerDomain:
		return "per-domain-sats"
	}
	return "per-day-sats"
}

// parse validates a PayChallengeRequest: the challenge it carries and the
// resource it came from (nil if none).
func (req PayChallengeRequest) parse() (l402.Challenge, *url.URL, error) {
	ch := l402.Challenge{Invoice: req.Invoice, Macaroon: req.Macaroon}
	if req.Challenge != "" {
		cs, err := l402.ParseChallenges([]string{req.Challenge})
		if err != nil {
			return ch, nil, &field.Error{Field: "challenge", Problem: "holds no L402 challenge: " + err.Error(), Fix: `send the WWW-Authenticate value, e.g. L402 macaroon="…", invoice="…"`}
		}
		ch = cs[0]
	}
	if ch.Invoice == "" || ch.Macaroon == "" {
		return ch, nil, &field.Error{Field: "invoice", Problem: "and macaroon are required", Fix: "send both from the 402 challenge, or the whole WWW-Authenticate value as challenge"}
	}
	if req.MaxSats < 0 {
		return ch, nil, &field.Error{Field: "maxSats", Problem: "is negative", Fix: "send 0 (no cap beyond the budget) or a price cap in sats"}
	}
	if req.MaxMsat < 0 {
		return ch, nil, &field.Error{Field: "maxMsat", Problem: "is negative", Fix: "send 0 (no cap beyond the budget) or a price cap in msat"}
	}
	if req.URL == "" {
		return ch, nil, nil
	}
	target, err := ParseTarget(req.URL)
	return ch, target, err
}

// QuoteChallenge reports what PayChallenge would do with req, without
// paying or reserving anything: the price and fee limit, whether policy
// and budget allow it (WouldPay; otherwise Refusal says why not) and
// whether the journal already holds it as paid. Surfaces that ask a
// person before paying (MCP) use it to say what they ask about.
func (c *Consumer) QuoteChallenge(ctx context.Context, req PayChallengeRequest) (*Quote, error) {
	ch, target, err := req.parse()
	if err != nil {
		return nil, err
	}
	q := &Quote{PaymentRequired: true}
	if target != nil {
		q.URL = target.String()
	}
	return c.judge(ctx, q, ch, 0, capMsat(req.MaxSats, req.MaxMsat), target)
}

// QuoteInvoice reports what PayInvoice would do with req, without paying
// or reserving anything, as QuoteChallenge does.
func (c *Consumer) QuoteInvoice(ctx context.Context, req PayInvoiceRequest) (*Quote, error) {
	target, invoice, d, err := c.decodeInvoiceRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	q := &Quote{PaymentRequired: true, Invoice: invoice, PriceSats: d.AmountMsat / 1000, PriceMsat: d.AmountMsat, FeeLimitMsat: c.feeLimitMsat(d.AmountMsat), PaymentHash: d.PaymentHash.String(),
		Description: d.Description, InvoiceExpiresAt: d.ExpiresAt.UTC(), FeeLimitSats: c.FeeLimitSats(d.AmountMsat)}
	if q.AlreadyPaid, err = c.paidBefore(ctx, d.PaymentHash); err != nil {
		return nil, err
	}
	if !q.AlreadyPaid {
		err = checkOffer(offerTerms{invoice: d, maxMsat: capMsat(req.MaxSats, req.MaxMsat)}, c.cfg.Now())
		if err == nil {
			err = c.checkSpend(ctx, spendFor(target, d.AmountMsat, c.feeLimitMsat(d.AmountMsat), req.Approved))
		}
	}
	return verdict(q, err)
}

// FeeLimitSats is the routing fee limit of a payment of amountMsat, in
// sats rounded up: what a payment may cost beyond its amount.
func (c *Consumer) FeeLimitSats(amountMsat int64) int64 {
	return (c.feeLimitMsat(amountMsat) + 999) / 1000
}
