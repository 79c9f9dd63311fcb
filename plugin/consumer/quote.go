package consumer

import (
	"context"
	"net/url"
	"strings"

	"github.com/l402d/l402d/l402"
)

// parse validates a PayChallengeRequest: the challenge it carries and the
// resource it came from (nil if none).
func (req PayChallengeRequest) parse() (l402.Challenge, *url.URL, error) {
	ch := l402.Challenge{Invoice: req.Invoice, Macaroon: req.Macaroon}
	if req.Challenge != "" {
		cs, err := l402.ParseChallenges([]string{req.Challenge})
		if err != nil {
			return ch, nil, &FieldError{"challenge", "holds no L402 challenge: " + err.Error(), `send the WWW-Authenticate value, e.g. L402 macaroon="…", invoice="…"`}
		}
		ch = cs[0]
	}
	if ch.Invoice == "" || ch.Macaroon == "" {
		return ch, nil, &FieldError{"invoice", "and macaroon are required", "send both from the 402 challenge, or the whole WWW-Authenticate value as challenge"}
	}
	if req.MaxSats < 0 {
		return ch, nil, &FieldError{"maxSats", "is negative", "send 0 (no cap beyond the budget) or a price cap in sats"}
	}
	if req.MaxMsat < 0 {
		return ch, nil, &FieldError{"maxMsat", "is negative", "send 0 (no cap beyond the budget) or a price cap in msat"}
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
	target, err := req.parse()
	if err != nil {
		return nil, err
	}
	invoice := strings.TrimSpace(req.Invoice)
	d, err := c.ln.DecodeInvoice(ctx, invoice)
	if err != nil {
		return nil, invoiceError("invoice", err)
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
	if err != nil {
		if q.Refusal = RefusalOf(err); q.Refusal == nil {
			return nil, err
		}
		return q, nil
	}
	q.WouldPay = true
	return q, nil
}

// FeeLimitSats is the routing fee limit of a payment of amountMsat, in
// sats rounded up: what a payment may cost beyond its amount.
func (c *Consumer) FeeLimitSats(amountMsat int64) int64 {
	return (c.feeLimitMsat(amountMsat) + 999) / 1000
}
