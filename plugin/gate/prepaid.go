package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/plugin/field"
	"github.com/l402d/l402d/plugin/producer"
	"github.com/l402d/l402d/storage"
)

// RefundPath is where the holder of a prepaid L402 token closes its
// balance and has the rest refunded: POST with the token in
// Authorization and {"invoice": "<amountless BOLT 11>"}.
const RefundPath = "/.well-known/l402/refund"

// PrepaidProducer is what the gate needs to sell L402 tokens as prepaid
// credit; *producer.Producer implements it. Without it a service's
// prepaid_credit is refused and prepaid tokens buy nothing.
type PrepaidProducer interface {
	UsePrepaid(ctx context.Context, h lntypes.Hash, service string, priceSats int64) (storage.SessionDebit, error)
	UndebitSession(ctx context.Context, id lntypes.Hash, priceSats int64) error
	ClosePrepaid(ctx context.Context, h lntypes.Hash, service, returnInvoice string, wait time.Duration) (storage.Session, error)
}

// prepaidShort is why a prepaid token was refused: its balance does not
// cover the request. The 402 that follows sells a top-up of balance.
type prepaidShort struct {
	balance lntypes.Hash
	err     *storage.BalanceError
}

func (e *prepaidShort) Error() string { return e.err.Error() }
func (e *prepaidShort) Unwrap() error { return e.err }

// prepaidInfo tells a buyer, in a 402, that the token sold is prepaid
// credit, and for a top-up which balance it credits.
type prepaidInfo struct {
	CreditSats int64  `json:"creditSats"`
	TopUpOf    string `json:"topUpOf,omitempty"`
	// BalanceMsat is what the balance being topped up has left.
	BalanceMsat *int64 `json:"balanceMsat,omitempty"`
	RefundPath  string `json:"refundPath"`
}

// servePrepaid serves a request with a verified prepaid token of payment
// h: within the token's rate, it debits the path's price from the token's
// balance (durably, before the upstream is asked) and lets the request
// through with the balance left; an upstream that never answers gets the
// debit back. A balance that falls short is refused with a prepaidShort.
func (g *Gate) servePrepaid(w http.ResponseWriter, r *http.Request, svc *service, rt *serviceRuntime, rl *rule, id l402.TokenID, h lntypes.Hash, next http.Handler) (rejected error, answered bool) {
	if g.prepaid == nil {
		return fmt.Errorf("%w: this gate sells no prepaid credit", l402.ErrUnknownCaveat), false
	}
	if !g.withinTokenRate(w, r, svc, rt, id) {
		return nil, true
	}
	ctx := r.Context()
	res, err := g.prepaid.UsePrepaid(ctx, h, svc.cfg.Name, rl.price)
	if err != nil {
		return g.checkFailed(w, r, svc, rt, "prepaid", err)
	}
	b := res.Session
	if !res.Debited {
		return &prepaidShort{balance: b.ID, err: &storage.BalanceError{BalanceMsat: b.BalanceMsat(), WantMsat: rl.price * 1000}}, false
	}
	co := &chargeOutcome{giveBack: func() bool {
		if err := g.prepaid.UndebitSession(context.WithoutCancel(ctx), b.ID, rl.price); err != nil {
			g.log.Error("gate: giving back a prepaid debit whose upstream did not answer failed; it stays spent", "service", svc.cfg.Name,
				"balance", b.ID, "err", err)
			return false
		}
		return true
	}}
	w.Header().Set(HeaderBalance, strconv.FormatInt(b.BalanceMsat(), 10))
	rt.count(outPaid)
	next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, chargeKey{}, co)))
	return nil, true
}

// prepaidOffer is what a 402 of a prepaid service sells: credit, for a
// new balance or (top-up set) for the balance of a token that fell short.
// The credit covers the whole service (its catch-all rule's resource):
// each request pays its own path's price from it.
func (g *Gate) prepaidOffer(svc *service, rejected error) (*rule, *credit, *prepaidInfo) {
	info := &prepaidInfo{CreditSats: svc.prepaidCredit, RefundPath: RefundPath}
	cr := &credit{}
	var short *prepaidShort
	if errors.As(rejected, &short) {
		cr.of = short.balance
		info.TopUpOf = cr.of.String()
		bal := short.err.BalanceMsat
		info.BalanceMsat = &bal
	}
	all := svc.rules[len(svc.rules)-1]
	return &rule{pat: all.pat, resource: all.resource, price: svc.prepaidCredit}, cr, info
}

// refundRequest is the body of a POST to RefundPath.
type refundRequest struct {
	Invoice string `json:"invoice"`
}

// serveRefund closes the prepaid balance of the L402 token the request
// carries and refunds its rest to the invoice in the body. Closing again
// answers with the first close's refund, so a lost answer is safe to
// retry.
func (g *Gate) serveRefund(w http.ResponseWriter, r *http.Request, st *state) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, r, http.StatusMethodNotAllowed, errorBody{Error: "method " + r.Method + " not allowed", Code: "method_not_allowed",
			Fix: "POST the prepaid token in Authorization and {\"invoice\": \"<amountless invoice>\"}"})
		return
	}
	cred, err := l402.CredentialFromHeader(r.Header)
	if err != nil {
		writeError(w, r, http.StatusUnauthorized, errorBody{Error: "no L402 token: " + err.Error(), Code: "no_credential", Field: "Authorization",
			Fix: "send Authorization: L402 <macaroon>:<preimage> of the prepaid token"})
		return
	}
	info, err := l402.Inspect(cred.Macaroon)
	if err != nil || len(info.Services) == 0 {
		writeError(w, r, http.StatusBadRequest, errorBody{Error: "the token names no service of this gate", Code: "wrong_service", Field: "Authorization",
			Fix: "send a prepaid token this gate sold"})
		return
	}
	name := info.Services[0].Name
	svc := st.svcs.byName(name)
	if svc == nil || g.prepaid == nil {
		writeError(w, r, http.StatusNotFound, errorBody{Error: "no service " + truncate(name) + " sells prepaid credit here", Code: "not_found", Service: name,
			Fix: "send a prepaid token this gate sold"})
		return
	}
	// An expired token's balance is still its holder's money.
	v, err := g.cfg.Producer.Verify(r.Context(), cred, l402.Expect{Service: name, AnyResource: true, Expired: true})
	if err == nil && !v.Prepaid {
		err = fmt.Errorf("%w: token %s is a pass, not prepaid credit: there is nothing to refund", l402.ErrWrongAmount, v.TokenID)
	}
	if err != nil {
		g.refundFailed(w, r, name, err)
		return
	}
	var req refundRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<10))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeError(w, r, http.StatusBadRequest, errorBody{Error: "the body is not JSON: " + err.Error(), Code: "bad_request", Field: "invoice",
			Fix: `send {"invoice": "<amountless BOLT 11 invoice>"}`})
		return
	}
	s, err := g.prepaid.ClosePrepaid(r.Context(), v.PaymentHash, name, req.Invoice, closeWait)
	if err != nil {
		g.refundFailed(w, r, name, err)
		return
	}
	writeJSON(w, http.StatusOK, sessionBody{
		SessionID: s.ID.String(), Service: s.Service, State: string(s.State), DepositedMsat: s.DepositedMsat, DebitedMsat: s.DebitedMsat,
		Requests: s.Requests, RefundMsat: s.RefundMsat, RefundStatus: s.RefundStatus,
	})
}

// refundFailed answers a refund the gate could not make.
func (g *Gate) refundFailed(w http.ResponseWriter, r *http.Request, service string, err error) {
	var fe *field.Error
	switch {
	case errors.As(err, &fe):
		writeError(w, r, http.StatusBadRequest, errorBody{Error: fe.Field + " " + fe.Problem, Code: "bad_request", Service: service, Field: fe.Field, Fix: fe.Fix})
	case producer.ReasonCode(err) != "error":
		writeError(w, r, http.StatusUnauthorized, errorBody{Error: verdictMessage(err), Code: producer.ReasonCode(err), Service: service,
			Fix: "send the prepaid token (or a top-up of it) this gate sold, with its preimage"})
	default:
		g.log.Error("gate: closing a prepaid balance failed", "service", service, "err", err)
		writeError(w, r, http.StatusInternalServerError, errorBody{Error: "the refund could not be made now", Code: "internal", Service: service,
			Fix: "retry shortly with the same token and invoice"})
	}
}
