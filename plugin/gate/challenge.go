package gate

import (
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/l402d/l402d/plugin/producer"
)

// challenge answers with a fresh 402, unless the client or the node is
// over its limits.
func (g *Gate) challenge(w http.ResponseWriter, r *http.Request, svc *service, rt *serviceRuntime, rl *rule, client netip.Addr, rejected error) {
	now := g.cfg.Now()
	ck := clientKey(client)
	if ok, wait := g.mint.allow(ck, now, g.mintLimit, g.mintBurst); !ok {
		rt.count(outRateLimited)
		writeRateLimited(w, r, wait, errorBody{Error: "too many challenges requested from your address", Code: "rate_limited", Service: svc.cfg.Name,
			Fix: "pay a challenge you already have, or retry after Retry-After seconds"})
		return
	}
	switch why, wait := g.pending.reserve(r.Context(), ck, now); why {
	case pendingNodeFull:
		rt.count(outRateLimited)
		writeRateLimited(w, r, wait, errorBody{Error: "the node has too many unpaid invoices outstanding", Code: "too_many_unpaid_invoices", Service: svc.cfg.Name,
			Fix: "retry after Retry-After seconds"})
		return
	case pendingClientFull:
		rt.count(outRateLimited)
		writeRateLimited(w, r, wait, errorBody{Error: "your address has too many unpaid invoices outstanding", Code: "too_many_unpaid_invoices_client", Service: svc.cfg.Name,
			Fix: "pay an invoice you already have, or retry after Retry-After seconds"})
		return
	}
	desc := svc.cfg.Description
	if desc == "" {
		desc = svc.cfg.Name + " " + rl.resource
	}
	ch, err := g.cfg.Producer.Issue(r.Context(), producer.Offer{
		Service:       svc.cfg.Name,
		PriceSats:     rl.price,
		Capabilities:  svc.cfg.Capabilities,
		TokenValidity: svc.cfg.TokenValidity,
		Resource:      rl.resource,
		Description:   desc,
		Source:        "gate",
		ClientID:      "ip:" + client.String(),
	})
	if err != nil {
		g.pending.release(ck)
		rt.count(outError)
		if r.Context().Err() != nil {
			return // the client left
		}
		g.log.Warn("gate: issuing a challenge failed", "service", svc.cfg.Name, "err", err)
		writeError(w, r, http.StatusServiceUnavailable, errorBody{Error: "no invoice can be created right now", Code: "lnd_unavailable", Service: svc.cfg.Name,
			Fix: "retry shortly; the node's Lightning backend is not answering"})
		return
	}
	exp := ch.ExpiresAt
	if exp.IsZero() {
		exp = now.Add(time.Hour)
	}
	g.pending.add(ck, ch.PaymentHash, exp)
	if rejected != nil {
		rt.count(outRejected)
		if g.log.Enabled(r.Context(), slog.LevelDebug) {
			g.log.Debug("gate: credential rejected", "service", svc.cfg.Name, "path", r.URL.Path, "reason", producer.ReasonCode(rejected), "err", rejected)
		}
	} else {
		rt.count(outChallenged)
	}
	offers := g.offered(svc)
	hdr := w.Header()
	if g.state.Load().discovery != nil {
		hdr.Set("Link", "<"+DiscoveryPath+`>; rel="l402-manifest"`)
	}
	writeChallenge(w, r, ch, svc.cfg.Name, rejected, g.cfg.LegacyLSAT, offers, func(h http.Header) {
		g.addChargeChallenges(h, r, svc, ch, rejected)
	})
}
