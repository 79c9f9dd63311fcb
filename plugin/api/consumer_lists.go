package api

import (
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/plugin/apiclient"
	"github.com/l402d/l402d/plugin/consumer"
	"github.com/l402d/l402d/storage"
)

// PaymentRecord is a journal entry as the payments endpoints show it.
type PaymentRecord = apiclient.PaymentRecord

// NewPaymentRecord renders a journal entry.
func NewPaymentRecord(p *storage.Payment) PaymentRecord {
	rec := PaymentRecord{PaymentHash: p.PaymentHash.String(), State: string(p.State), Kind: string(p.Kind), AmountSats: p.AmountMsat / 1000,
		AmountMsat: p.AmountMsat, FeeMsat: p.FeeMsat, FeeLimitMsat: p.FeeLimitMsat, Domain: p.Domain, URL: p.URL, Invoice: p.Invoice,
		BudgetDay: p.BudgetDay.Format(time.DateOnly), Attempts: p.Attempts, CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC(),
		SettledAt: p.SettledAt.UTC(), FailureReason: p.FailureReason, Scheme: p.Scheme, Receipt: p.Receipt}
	if p.State == storage.PaymentSucceeded {
		rec.Preimage = hex.EncodeToString(p.Preimage[:])
	}
	return rec
}

func (h *consumerAPI) payments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := storage.PaymentFilter{State: storage.PaymentState(q.Get("state")), Kind: storage.PaymentKind(q.Get("kind")),
		Domain: strings.ToLower(q.Get("domain")), After: storage.Cursor(q.Get("after"))}
	switch f.State {
	case "", storage.PaymentReserved, storage.PaymentInFlight, storage.PaymentSucceeded, storage.PaymentFailed:
	default:
		WriteError(w, http.StatusBadRequest, ErrorBody{Error: "unknown state " + strconv.Quote(q.Get("state")), Code: "invalid_field", Field: "state", Fix: "use reserved, in_flight, succeeded or failed"})
		return
	}
	switch f.Kind {
	case "", storage.KindAccess, storage.KindChallenge, storage.KindInvoice:
	default:
		WriteError(w, http.StatusBadRequest, ErrorBody{Error: "unknown kind " + strconv.Quote(q.Get("kind")), Code: "invalid_field", Field: "kind", Fix: "use access, challenge or invoice"})
		return
	}
	var e *ErrorBody
	if f.Since, f.Until, f.Limit, e = listParams(q); e != nil {
		WriteError(w, http.StatusBadRequest, *e)
		return
	}
	list, next, tot, err := h.c.Payments(r.Context(), f)
	if errors.Is(err, storage.ErrInvalid) {
		WriteError(w, http.StatusBadRequest, badCursor(err))
		return
	}
	if err != nil {
		h.writeErr(w, r, err)
		return
	}
	out := apiclient.PaymentList{Payments: make([]PaymentRecord, 0, len(list)), Next: string(next),
		Totals: apiclient.PaymentTotals{Count: tot.Count, Succeeded: tot.Succeeded, Failed: tot.Failed, Pending: tot.Pending,
			AmountSats: tot.AmountMsat / 1000, AmountMsat: tot.AmountMsat, FeeMsat: tot.FeeMsat}}
	for i := range list {
		out.Payments = append(out.Payments, NewPaymentRecord(&list[i]))
	}
	WriteJSON(w, http.StatusOK, out)
}

func (h *consumerAPI) payment(w http.ResponseWriter, r *http.Request) {
	hash, ok := hashParam(w, r)
	if !ok {
		return
	}
	p, err := h.c.Payment(r.Context(), hash)
	if err != nil {
		h.writeErr(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, NewPaymentRecord(p))
}

// TokenRecord is a cached token as the tokens endpoint lists it. ID is
// its payment hash.
type TokenRecord = apiclient.TokenRecord

// NewTokenRecord renders a cached token; now decides whether it expired.
func NewTokenRecord(t *storage.Token, now time.Time) TokenRecord {
	return TokenRecord{ID: t.PaymentHash.String(), TokenInfo: *consumer.TokenInfoOf(t), CreatedAt: t.CreatedAt.UTC(), Expired: t.Expired(now)}
}

func (h *consumerAPI) tokens(w http.ResponseWriter, r *http.Request) {
	list, err := h.c.Tokens(r.Context(), r.URL.Query().Get("origin"))
	if err != nil {
		h.writeErr(w, r, err)
		return
	}
	now := time.Now()
	out := apiclient.TokenList{Tokens: make([]TokenRecord, 0, len(list))}
	for i := range list {
		out.Tokens = append(out.Tokens, NewTokenRecord(&list[i], now))
	}
	WriteJSON(w, http.StatusOK, out)
}

func (h *consumerAPI) removeToken(w http.ResponseWriter, r *http.Request) {
	hash, err := lntypes.MakeHashFromStr(r.PathValue("id"))
	if err != nil {
		WriteError(w, http.StatusBadRequest, ErrorBody{Error: "token id is not 64 hex characters", Code: "invalid_field", Field: "id", Fix: "use the id from GET /api/consumer/tokens"})
		return
	}
	n, err := h.c.RemoveToken(r.Context(), hash)
	if errors.Is(err, storage.ErrNotFound) {
		WriteError(w, http.StatusNotFound, ErrorBody{Error: err.Error(), Code: "not_found", Field: "id", Fix: "list the cached tokens with GET /api/consumer/tokens"})
		return
	}
	if err != nil {
		h.writeErr(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, apiclient.TokenRemoved{ID: hash.String(), Removed: n})
}

// sessions lists the prepaid sessions this node holds at sellers.
func (h *consumerAPI) sessions(w http.ResponseWriter, r *http.Request) {
	list, err := h.c.Sessions(r.Context())
	if err != nil {
		h.writeErr(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, apiclient.Sessions{Sessions: list})
}

// closeSession closes a held session at its seller and collects the
// refund.
func (h *consumerAPI) closeSession(w http.ResponseWriter, r *http.Request) {
	info, err := h.c.CloseSession(r.Context(), r.PathValue("id"))
	if err != nil {
		h.writeErr(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, info)
}
