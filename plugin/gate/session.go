package gate

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402/mpp"
	"github.com/l402d/l402d/plugin/producer"
	"github.com/l402d/l402d/storage"
)

// HeaderBalance carries, on a response bought from a prepaid session and
// on the 402 that refuses a request its balance does not cover, what the
// session has left, in msat.
const HeaderBalance = "L402-Balance-Msat"

// closeWait bounds how long a close waits for its refund before it
// answers with the refund "pending" (it goes on in the background).
const closeWait = 30 * time.Second

// SessionProducer is what the gate needs to sell prepaid MPP sessions;
// *producer.Producer implements it. Without it a service's
// session_deposit is ignored.
type SessionProducer interface {
	SessionChallenge(deposit producer.Challenge, o producer.SessionOffer) (mpp.Challenge, error)
	CheckSession(cred mpp.Credential) (mpp.Session, error)
	UseSession(ctx context.Context, v mpp.Session, service string, priceSats int64) (storage.SessionDebit, error)
	UndebitSession(ctx context.Context, id lntypes.Hash, priceSats int64) error
	CloseSession(ctx context.Context, v mpp.Session, service string, wait time.Duration) (storage.Session, error)
	meterDebits
}

// sessionBody is the answer to a close.
type sessionBody struct {
	SessionID     string `json:"sessionId"`
	Service       string `json:"service"`
	State         string `json:"state"`
	DepositedMsat int64  `json:"depositedMsat"`
	DebitedMsat   int64  `json:"debitedMsat"`
	MeteredMsat   int64  `json:"meteredMsat,omitempty"`
	Requests      int64  `json:"requests"`
	RefundMsat    int64  `json:"refundMsat"`
	RefundStatus  string `json:"refundStatus"`
}

// offersSessions reports whether svc sells sessions now.
func (g *Gate) offersSessions(svc *service) bool {
	return svc.session && g.sessions != nil && g.offered(svc).has(offerMPP)
}

// sellsSessions says why svc takes no session credential, if it does not.
func (g *Gate) sellsSessions(svc *service) error {
	if !g.offersSessions(svc) {
		return fmt.Errorf("%w: service %s sells no sessions", mpp.ErrUnsupported, svc.cfg.Name)
	}
	return nil
}

// sessionChallenge mints a deposit for svc and the session challenge
// that sells it; no says why not when the client or node is over its
// limits or the node cannot make an invoice (or the challenge).
func (g *Gate) sessionChallenge(ctx context.Context, svc *service, rl *rule, client netip.Addr) (mpp.Challenge, producer.Challenge, *refusal) {
	dep := rule{resource: producer.SessionResource, price: svc.cfg.SessionDepositSats}
	ch, no := g.issueFor(ctx, svc, &dep, client, nil, nil)
	if no != nil {
		return mpp.Challenge{}, ch, no
	}
	c, err := g.sessions.SessionChallenge(ch, producer.SessionOffer{
		Service: svc.cfg.Name, UnitPriceSats: rl.price, IdleTimeout: svc.cfg.SessionIdleTimeout, Description: svc.cfg.Description,
	})
	if err != nil {
		g.log.Warn("gate: cannot offer a session challenge", "service", svc.cfg.Name, "err", err)
		return mpp.Challenge{}, ch, &refusal{http.StatusServiceUnavailable, 0, errorBody{Error: "no session can be offered right now", Code: "internal", Service: svc.cfg.Name,
			Fix: "retry shortly"}}
	}
	return c, ch, nil
}

// checkSession checks a session credential of a request to svc. A bearer
// credential that checks is remembered (verifyCache, keyed by the exact
// credential headers and the service): a session's holder presents the
// same bearer credential on every request, and its check — decoding the
// echoed challenge's JSON, its id's HMAC, the preimage — is a pure
// function of the header, so it is done once. The debit is never
// remembered: each request still takes its own from the store.
func (g *Gate) checkSession(r *http.Request, svc *service, cred mpp.Credential) (mpp.Session, error) {
	if err := g.sellsSessions(svc); err != nil {
		return mpp.Session{}, err
	}
	v, err := g.sessions.CheckSession(cred)
	if err == nil && v.Action == mpp.ActionBearer && g.verified != nil {
		if key, ok := credentialKey(r.Header, svc.cfg.Name, ""); ok {
			g.verified.putSession(key, v)
		}
	}
	return v, err
}

// mppCredential reads r's MPP credential: a session's, checked for svc
// (or remembered, see checkSession), or another intent's, parsed.
func (g *Gate) mppCredential(r *http.Request, svc *service) (*mpp.Session, mpp.Credential, error) {
	if v, ok := g.knownBearer(r, svc); ok {
		return &v, mpp.Credential{}, nil
	}
	cred, err := mpp.CredentialFromHeader(r.Header)
	if err != nil || cred.Challenge.Intent != mpp.IntentSession {
		return nil, cred, err
	}
	v, err := g.checkSession(r, svc, cred)
	if err != nil {
		return nil, cred, err
	}
	return &v, cred, nil
}

// knownBearer returns the bearer credential of r that checkSession
// checked and remembered for svc.
func (g *Gate) knownBearer(r *http.Request, svc *service) (mpp.Session, bool) {
	if g.verified == nil {
		return mpp.Session{}, false
	}
	key, ok := credentialKey(r.Header, svc.cfg.Name, "")
	if !ok {
		return mpp.Session{}, false
	}
	e, ok := g.verified.get(r.Context(), key)
	if !ok || e.session == nil {
		return mpp.Session{}, false
	}
	return *e.session, true
}

// admitSession serves a request carrying a session credential: an open,
// a top-up or a bearer use is debited the path's price (the gate's price,
// never the one echoed in the credential) and let through to h with the
// balance left; a close is answered here with its refund. A balance that
// does not cover the request is refused (the caller answers 402 with a
// top-up challenge).
//
// v is the credential as checked by checkSession, or as remembered by
// knownBearer.
func (g *Gate) admitSession(w http.ResponseWriter, r *http.Request, svc *service, rt *serviceRuntime, rl *rule, v mpp.Session, h http.Handler) (rejected error, answered bool) {
	if err := g.sellsSessions(svc); err != nil {
		return err, false // checked again: a reload may have stopped them since the credential was remembered
	}
	ctx := r.Context()
	if v.Action == mpp.ActionClose {
		s, err := g.sessions.CloseSession(ctx, v, svc.cfg.Name, closeWait)
		if err != nil {
			return g.checkFailed(w, r, svc, rt, "session", err)
		}
		rc := mpp.NewSessionReceipt(v.ID, v.Challenge.ID, g.cfg.Now())
		rc.RefundSats, rc.RefundStatus = s.RefundMsat/1000, s.RefundStatus
		_ = mpp.SetReceipt(w.Header(), rc)
		rt.count(outPaid)
		writeJSON(w, http.StatusOK, sessionBody{
			SessionID: v.ID.String(), Service: s.Service, State: string(s.State), DepositedMsat: s.DepositedMsat, DebitedMsat: s.DebitedMsat, MeteredMsat: s.MeteredMsat,
			Requests: s.Requests, RefundMsat: s.RefundMsat, RefundStatus: s.RefundStatus,
		})
		return nil, true
	}
	res, err := g.sessions.UseSession(ctx, v, svc.cfg.Name, rl.price)
	if err != nil {
		return g.checkFailed(w, r, svc, rt, "session", err)
	}
	if !res.Debited {
		// The 402 says what is left, so a buyer whose record of the
		// balance is stale (answers of concurrent requests recorded out
		// of order, a crash between an answer and its record) sees why a
		// top-up is asked for.
		w.Header().Set(HeaderBalance, strconv.FormatInt(res.Session.BalanceMsat(), 10))
		return &storage.BalanceError{BalanceMsat: res.Session.BalanceMsat(), WantMsat: rl.price * 1000}, false
	}
	co := &chargeOutcome{giveBack: func() bool {
		if err := g.sessions.UndebitSession(context.WithoutCancel(ctx), v.ID, rl.price); err != nil {
			g.log.Error("gate: giving back a session debit whose upstream did not answer failed; it stays spent", "service", svc.cfg.Name,
				"session", v.ID, "err", err)
			return false
		}
		return true
	}}
	ctx = context.WithValue(ctx, chargeKey{}, co)
	_ = mpp.SetReceipt(w.Header(), mpp.NewSessionReceipt(v.ID, v.Challenge.ID, g.cfg.Now()))
	w.Header().Set(HeaderBalance, strconv.FormatInt(res.Session.BalanceMsat(), 10))
	rt.count(outPaid)
	if svc.meter != nil {
		var stop context.CancelFunc
		ctx, stop = context.WithCancel(ctx)
		defer stop()
		under := w
		refuse := func(err error) {
			// Nothing of the response went out: the request's price
			// goes back too, and the buyer learns how to top up.
			co.giveBack()
			under.Header().Del(mpp.HeaderReceipt)
			under.Header().Del(HeaderBalance)
			under.Header().Del(HeaderMeter)
			for k := range under.Header() {
				if k != "Link" {
					under.Header().Del(k)
				}
			}
			g.challenge(under, r, svc, rt, rl, g.clientAddr(r), err)
			_ = http.NewResponseController(under).Flush()
		}
		m := newMeter(*svc.meter, g.sessions, svc.cfg.Name, v.ID, context.WithoutCancel(ctx), stop, w, r, g.cfg.Now, g.log, refuse)
		defer m.finish()
		w = m
	}
	h.ServeHTTP(w, r.WithContext(ctx))
	return nil, true
}
