package gate

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402/mpp"
	"github.com/l402d/l402d/plugin/producer"
)

// challenge answers with a fresh 402, unless the client or the node is
// over its limits.
func (g *Gate) challenge(w http.ResponseWriter, r *http.Request, svc *service, rt *serviceRuntime, rl *rule, client netip.Addr, rejected error) {
	if svc.meter != nil {
		g.meteredChallenge(w, r, svc, rt, rl, client, rejected)
		return
	}
	sell, cr, info := rl, (*credit)(nil), (*prepaidInfo)(nil)
	if svc.prepaidCredit > 0 && g.prepaid != nil {
		sell, cr, info = g.prepaidOffer(svc, rejected)
	}
	ch, no := g.issueFor(r.Context(), svc, sell, client, svc.cfg.Capabilities, cr)
	if no != nil {
		g.refused(w, r, rt, no)
		return
	}
	g.countChallenge(r, svc, rt, rejected)
	offers := g.offered(svc)
	hdr := w.Header()
	if g.state.Load().svcs.discovery {
		hdr.Set("Link", "<"+DiscoveryPath+`>; rel="l402-manifest"`)
	}
	var session *mpp.Challenge
	if g.offersSessions(svc) && !isGRPC(r) {
		if c, _, no := g.sessionChallenge(r.Context(), svc, rl, client); no == nil {
			session = &c
		}
	}
	if info != nil {
		// The credit's invoice is sold as a token only; a session, if
		// offered, has its own invoice.
		writeChallenge(w, r, ch, svc.cfg.Name, rejected, g.cfg.LegacyLSAT, offerL402, func(h http.Header) {
			if session != nil {
				_ = mpp.SetChallenge(h, *session) // NewSessionChallenge checked it
			}
		}, func(b *challengeBody) {
			b.PriceSats, b.Prepaid = rl.price, info
			b.Fix = fmt.Sprintf("this service sells prepaid credit: pay the invoice (%d sats of credit; each request is debited its price, %d sats here), then retry with "+
				"Authorization: L402 <macaroon>:<preimage>; POST it to %s with an amountless invoice to get the rest back", ch.PriceSats, rl.price, RefundPath)
			if info.TopUpOf != "" {
				b.Fix = "your prepaid balance is too low (see reason): pay this top-up, then retry with its token (your old token spends the topped-up balance too); " + b.Fix
			}
		})
		return
	}
	writeChallenge(w, r, ch, svc.cfg.Name, rejected, g.cfg.LegacyLSAT, offers, func(h http.Header) {
		g.addChargeChallenges(h, r, svc, ch, session, rejected)
	}, nil)
}

// credit, passed to issueFor, sells prepaid credit instead of a pass: a
// top-up of balance of when it is set.
type credit struct {
	of lntypes.Hash
}

// meteredChallenge is challenge for a metered service: it sells prepaid
// sessions only, so the 402 offers one session challenge (its deposit
// invoice) and no single-use payment.
func (g *Gate) meteredChallenge(w http.ResponseWriter, r *http.Request, svc *service, rt *serviceRuntime, rl *rule, client netip.Addr, rejected error) {
	if isGRPC(r) {
		rt.count(outRejected)
		writeGRPCStatus(w, grpcUnimplemented, "service "+svc.cfg.Name+" is metered and sold through prepaid MPP sessions, which gRPC clients cannot open")
		return
	}
	c, dep, no := g.sessionChallenge(r.Context(), svc, rl, client)
	if no != nil {
		g.refused(w, r, rt, no)
		return
	}
	g.countChallenge(r, svc, rt, rejected)
	hdr := w.Header()
	if g.state.Load().svcs.discovery {
		hdr.Set("Link", "<"+DiscoveryPath+`>; rel="l402-manifest"`)
	}
	_ = mpp.SetChallenge(hdr, c) // NewSessionChallenge checked it
	hdr.Set("Cache-Control", "no-store")
	m := svc.meter
	body := challengeBody{
		Error: "payment required", Code: "payment_required",
		Invoice: dep.Invoice, PaymentHash: dep.PaymentHash.String(),
		AmountSats: dep.PriceSats, PriceSats: rl.price, ExpiresAt: dep.ExpiresAt.UTC(),
		Resource: rl.resource, Service: svc.cfg.Name, Schemes: []string{string(producer.SchemeMPP)},
		Meter: &meterInfo{Unit: string(m.unit), PriceMsat: m.price, BlockUnits: m.block},
		Fix: fmt.Sprintf("this service is metered (%d msat per %s, on top of %d sats per request) and sold through prepaid sessions only: pay the deposit invoice "+
			"and retry with Authorization: Payment <credential> answering the session challenge (action open, with a return invoice for the refund)", m.price, m.unit, rl.price),
	}
	if rejected != nil {
		body.Reason = producer.ReasonCode(rejected)
		body.Message = verdictMessage(rejected)
		body.Fix = "your credential was refused (see reason); " + body.Fix
	}
	writeJSON(w, http.StatusPaymentRequired, body)
}

// refused answers a request the gate mints no challenge for.
func (g *Gate) refused(w http.ResponseWriter, r *http.Request, rt *serviceRuntime, no *refusal) {
	if no.status == http.StatusTooManyRequests {
		rt.count(outRateLimited)
		writeRateLimited(w, r, no.wait, no.body)
		return
	}
	rt.count(outError)
	if r.Context().Err() == nil { // else the client left
		writeError(w, r, no.status, no.body)
	}
}

// countChallenge counts (and logs) a 402 that goes out.
func (g *Gate) countChallenge(r *http.Request, svc *service, rt *serviceRuntime, rejected error) {
	if rejected != nil {
		rt.count(outRejected)
		if g.log.Enabled(r.Context(), slog.LevelDebug) {
			g.log.Debug("gate: credential rejected", "service", svc.cfg.Name, "path", r.URL.Path, "reason", producer.ReasonCode(rejected), "err", rejected)
		}
	} else {
		rt.count(outChallenged)
	}
}

// refusal is why the gate mints no challenge now: a limit (429, with
// wait as Retry-After) or the node (503).
type refusal struct {
	status int
	wait   time.Duration
	body   errorBody
}

// issueFor mints a challenge for rule rl of svc on behalf of client,
// within the client's mint rate, its share of the unpaid invoices and the
// node's cap; a 402 and a quote spend the same allowance. caps are the
// token's capabilities (a subset of the service's).
func (g *Gate) issueFor(ctx context.Context, svc *service, rl *rule, client netip.Addr, caps []string, cr *credit) (producer.Challenge, *refusal) {
	now := g.cfg.Now()
	ck := clientKey(client)
	name := svc.cfg.Name
	if ok, wait := g.mint.allow(ck, now, g.mintLimit, g.mintBurst); !ok {
		return producer.Challenge{}, &refusal{http.StatusTooManyRequests, wait, errorBody{Error: "too many challenges requested from your address", Code: "rate_limited", Service: name,
			Fix: "pay a challenge you already have, or retry after Retry-After seconds"}}
	}
	switch why, wait := g.pending.reserve(ctx, ck, now); why {
	case pendingNodeFull:
		return producer.Challenge{}, &refusal{http.StatusTooManyRequests, wait, errorBody{Error: "the node has too many unpaid invoices outstanding", Code: "too_many_unpaid_invoices", Service: name,
			Fix: "retry after Retry-After seconds"}}
	case pendingClientFull:
		return producer.Challenge{}, &refusal{http.StatusTooManyRequests, wait, errorBody{Error: "your address has too many unpaid invoices outstanding", Code: "too_many_unpaid_invoices_client", Service: name,
			Fix: "pay an invoice you already have, or retry after Retry-After seconds"}}
	}
	desc := svc.cfg.Description
	if desc == "" {
		desc = name + " " + rl.resource
	}
	o := producer.Offer{
		Service:       name,
		PriceSats:     rl.price,
		Capabilities:  caps,
		TokenValidity: svc.cfg.TokenValidity,
		Resource:      rl.resource,
		Description:   desc,
		Source:        "gate",
		ClientID:      "ip:" + client.String(),
	}
	if cr != nil {
		o.Prepaid, o.PrepaidOf = true, cr.of
	}
	ch, err := g.cfg.Producer.Issue(ctx, o)
	if err != nil {
		g.pending.release(ck)
		if ctx.Err() == nil {
			g.log.Warn("gate: issuing a challenge failed", "service", name, "err", err)
		}
		return producer.Challenge{}, &refusal{http.StatusServiceUnavailable, 0, errorBody{Error: "no invoice can be created right now", Code: "lnd_unavailable", Service: name,
			Fix: "retry shortly; the node's Lightning backend is not answering"}}
	}
	exp := ch.ExpiresAt
	if exp.IsZero() {
		exp = now.Add(time.Hour)
	}
	g.pending.add(ck, ch.PaymentHash, exp)
	return ch, nil
}
