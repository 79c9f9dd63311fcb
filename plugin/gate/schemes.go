package gate

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/l402/mpp"
	"github.com/l402d/l402d/l402/x402"
	"github.com/l402d/l402d/plugin/producer"
	"github.com/l402d/l402d/storage"
)

// ChargeProducer is what the gate needs to sell a challenge in the
// single-use schemes too (MPP's Payment charge, x402's Lightning exact);
// *producer.Producer implements it. A Producer without it offers L402
// only, whatever the services file says.
type ChargeProducer interface {
	MPPChallenge(ch producer.Challenge) (mpp.Challenge, error)
	X402Requirements(ch producer.Challenge) (x402.PaymentRequirements, error)
	CheckMPP(cred mpp.Credential, service, resource string) (producer.Charge, error)
	CheckX402(ctx context.Context, pl x402.PaymentPayload, given *x402.PaymentRequirements, service, resource string) (producer.Charge, x402.PaymentRequirements, error)
	Consume(ctx context.Context, c producer.Charge) (*storage.Challenge, error)
	// Unconsume gives back a charge whose request the upstream never
	// answered.
	Unconsume(ctx context.Context, c producer.Charge) error
}

// chargeKey keys a request's *chargeOutcome in its context.
type chargeKey struct{}

// chargeOutcome is how the proxy reaches back to admitCharge for a
// request bought with a single-use payment.
type chargeOutcome struct {
	// giveBack undoes the payment's spend; it reports whether it did.
	giveBack func() bool
}

// markUpstreamFailed, for a request bought with a single-use payment
// whose upstream gave no answer, gives the payment back — durably, before
// the error answer goes out, so that a buyer retrying at once finds it
// unspent — and takes the payment's receipt off the answer, so that the
// buyer does not think it spent.
func markUpstreamFailed(w http.ResponseWriter, r *http.Request) {
	if co, ok := r.Context().Value(chargeKey{}).(*chargeOutcome); ok && co.giveBack() {
		w.Header().Del(mpp.HeaderReceipt)
		w.Header().Del(x402.HeaderPaymentResponse)
	}
}

// schemeSet is the schemes a service offers.
type schemeSet uint8

const (
	offerL402 schemeSet = 1 << iota
	offerMPP
	offerX402
	offerAll = offerL402 | offerMPP | offerX402
)

func schemeBit(s producer.Scheme) schemeSet {
	switch s {
	case producer.SchemeL402:
		return offerL402
	case producer.SchemeMPP:
		return offerMPP
	case producer.SchemeX402:
		return offerX402
	}
	return 0
}

func (s schemeSet) has(b schemeSet) bool { return s&b != 0 }

// names lists the schemes of s in the order a 402 offers them.
func (s schemeSet) names() []string {
	var out []string
	for _, k := range producer.AllSchemes {
		if s.has(schemeBit(k)) {
			out = append(out, string(k))
		}
	}
	return out
}

// offered is what svc offers that the gate can sell.
func (g *Gate) offered(svc *service) schemeSet {
	if g.charges == nil {
		return svc.schemes & offerL402
	}
	return svc.schemes
}

// hasPaymentAuth reports whether h carries an Authorization value of the
// Payment scheme.
func hasPaymentAuth(h http.Header) bool {
	for _, v := range h[l402.HeaderAuthorization] {
		if hasScheme(v, mpp.Scheme) {
			return true
		}
	}
	return false
}

// admitCharge checks a single-use credential (an MPP charge or an x402
// payment) the service offers and, if it is good, spends it durably and
// hands the request to h with the scheme's receipt. Otherwise it reports
// why it refused (nil: there was none) and the caller challenges. A store
// that fails to check is answered 500, as for a token.
func (g *Gate) admitCharge(w http.ResponseWriter, r *http.Request, svc *service, rt *serviceRuntime, rl *rule, h http.Handler) (rejected error, answered bool) {
	offers := g.offered(svc)
	var (
		c       producer.Charge
		err     error
		receipt func(http.Header)
	)
	switch {
	case offers.has(offerMPP) && hasPaymentAuth(r.Header):
		var (
			sess *mpp.Session
			cred mpp.Credential
		)
		if sess, cred, err = g.mppCredential(r, svc); err != nil {
			return err, false
		}
		if sess != nil {
			return g.admitSession(w, r, svc, rt, rl, *sess, h)
		}
		if svc.prepaidCredit > 0 {
			// Its invoices are credit: a charge would buy one request.
			return fmt.Errorf("%w: service %s sells prepaid L402 credit, not single payments", mpp.ErrUnsupported, svc.cfg.Name), false
		}
		c, err = g.charges.CheckMPP(cred, svc.cfg.Name, rl.resource)
		receipt = func(h http.Header) {
			_ = mpp.SetReceipt(h, mpp.NewChargeReceipt(c.PaymentHash, cred.Challenge.ID, g.cfg.Now()))
		}
	case offers.has(offerX402) && r.Header.Get(x402.HeaderPaymentSignature) != "":
		var pl x402.PaymentPayload
		if pl, err = x402.DecodePaymentPayload(r.Header.Get(x402.HeaderPaymentSignature)); err != nil {
			return err, false
		}
		var req x402.PaymentRequirements
		c, req, err = g.charges.CheckX402(r.Context(), pl, nil, svc.cfg.Name, rl.resource)
		receipt = func(h http.Header) {
			if v, err := x402.EncodeHeader(x402.NewLightningSettlement(req.Network, c.PaymentHash)); err == nil {
				h.Set(x402.HeaderPaymentResponse, v)
			}
		}
	default:
		return nil, false
	}
	if err == nil {
		if svc.pricer != nil {
			c.MinPriceSats = rl.price
		}
		_, err = g.charges.Consume(r.Context(), c)
	}
	if err != nil {
		return g.checkFailed(w, r, svc, rt, string(c.Scheme), err)
	}
	// A payment whose upstream never answers is given back, so the
	// buyer can retry with the same credential instead of paying twice.
	// A client that leaves gets nothing back: the upstream may have done
	// the work. (The middleware's next handler cannot say; only the
	// proxy does.)
	co := &chargeOutcome{giveBack: func() bool {
		if err := g.charges.Unconsume(context.WithoutCancel(r.Context()), c); err != nil {
			g.log.Error("gate: giving back a payment whose upstream did not answer failed; it stays spent", "service", svc.cfg.Name,
				"scheme", c.Scheme, "payment_hash", c.PaymentHash, "err", err)
			return false
		}
		return true
	}}
	r = r.WithContext(context.WithValue(r.Context(), chargeKey{}, co))
	receipt(w.Header())
	rt.count(outPaid)
	h.ServeHTTP(w, r)
	return nil, true
}

// admitMetered is admitCredential for a metered service: only a session
// credential buys; a token or a single-use payment, which would buy an
// unmetered response, is refused.
func (g *Gate) admitMetered(w http.ResponseWriter, r *http.Request, svc *service, rt *serviceRuntime, rl *rule, h http.Handler) (rejected error, answered bool) {
	if hasPaymentAuth(r.Header) && g.offersSessions(svc) {
		sess, _, err := g.mppCredential(r, svc)
		if err != nil {
			return err, false
		}
		if sess != nil {
			return g.admitSession(w, r, svc, rt, rl, *sess, h)
		}
	}
	if _, err := l402.CredentialFromHeader(r.Header); hasPaymentAuth(r.Header) || r.Header.Get(x402.HeaderPaymentSignature) != "" || !errors.Is(err, l402.ErrNoCredential) {
		return fmt.Errorf("%w: service %s is metered and sold through prepaid sessions only, not single payments or tokens", mpp.ErrUnsupported, svc.cfg.Name), false
	}
	return nil, false
}

// checkFailed handles a payment that did not check: a verdict on it is
// returned as rejected (the caller challenges); a store or node that
// failed to check is answered 500, as for a token.
func (g *Gate) checkFailed(w http.ResponseWriter, r *http.Request, svc *service, rt *serviceRuntime, scheme string, err error) (rejected error, answered bool) {
	if producer.ReasonCode(err) != "error" {
		return err, false
	}
	rt.count(outError)
	if r.Context().Err() != nil && errors.Is(err, r.Context().Err()) {
		return nil, true // the client left
	}
	g.log.Error("gate: spending a payment failed", "service", svc.cfg.Name, "scheme", scheme, "err", err)
	writeError(w, r, http.StatusInternalServerError, errorBody{Error: "the payment could not be checked", Code: "internal", Service: svc.cfg.Name, Fix: "retry shortly with the same credential"})
	return nil, true
}

// addChargeChallenges offers challenge ch in the single-use schemes svc
// offers: a Payment challenge beside the L402 one, and x402's
// PAYMENT-REQUIRED. A scheme that cannot be offered (x402 on a chain it
// has no id for) is left out and logged; the others still are.
func (g *Gate) addChargeChallenges(h http.Header, r *http.Request, svc *service, ch producer.Challenge, session *mpp.Challenge, rejected error) {
	offers := g.offered(svc)
	if offers.has(offerMPP) {
		c, err := g.charges.MPPChallenge(ch)
		if err == nil {
			err = mpp.SetChallenge(h, c)
		}
		if err != nil {
			g.log.Warn("gate: cannot offer an MPP challenge", "service", svc.cfg.Name, "err", err)
		}
		if session != nil {
			_ = mpp.SetChallenge(h, *session) // NewSessionChallenge checked it
		}
	}
	if offers.has(offerX402) {
		req, err := g.charges.X402Requirements(ch)
		if err == nil {
			pr := x402.PaymentRequired{X402Version: x402.Version, Error: "payment required",
				Resource: &x402.ResourceInfo{URL: requestURL(r), Description: ch.Description},
				Accepts:  []x402.PaymentRequirements{req}}
			if rejected != nil {
				pr.Error = producer.ReasonCode(rejected) + ": " + truncate(rejected.Error())
			}
			var v string
			if v, err = x402.EncodeHeader(pr); err == nil {
				h.Set(x402.HeaderPaymentRequired, v)
			}
		}
		if err != nil {
			g.log.Warn("gate: cannot offer an x402 challenge", "service", svc.cfg.Name, "err", err)
		}
	}
}

// requestURL is the absolute URL the client asked for, as x402's
// resource names it.
func requestURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}
