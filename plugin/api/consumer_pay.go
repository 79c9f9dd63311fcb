package api

import (
	"net/http"
	"time"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/plugin/apiclient"
	"github.com/l402d/l402d/plugin/consumer"
)

func (h *consumerAPI) payChallenge(w http.ResponseWriter, r *http.Request) {
	f, e := decodeObject(w, r)
	if e != nil {
		WriteError(w, statusOf(e), *e)
		return
	}
	var req consumer.PayChallengeRequest
	for _, p := range []struct {
		dst   *string
		names []string
	}{{&req.Invoice, []string{"invoice"}}, {&req.Macaroon, []string{"macaroon"}}, {&req.Challenge, []string{"challenge", "wwwAuthenticate"}}, {&req.URL, []string{"url"}}} {
		if *p.dst, e = f.str(p.names...); e != nil {
			WriteError(w, http.StatusBadRequest, *e)
			return
		}
	}
	if req.MaxSats, _, e = f.int64("maxSats", "max_sats"); e != nil {
		WriteError(w, http.StatusBadRequest, *e)
		return
	}
	res, err := h.c.PayChallenge(r.Context(), req)
	if err != nil {
		h.writeErr(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, apiclient.PayChallengeResult{Payment: res.Payment, Token: res.Token})
}

func (h *consumerAPI) payInvoice(w http.ResponseWriter, r *http.Request) {
	f, e := decodeObject(w, r)
	if e != nil {
		WriteError(w, statusOf(e), *e)
		return
	}
	inv, e := f.str("invoice", "paymentRequest", "payment_request")
	if e != nil {
		WriteError(w, http.StatusBadRequest, *e)
		return
	}
	maxSats, _, e := f.int64("maxSats", "max_sats")
	if e != nil {
		WriteError(w, http.StatusBadRequest, *e)
		return
	}
	u, e := f.str("url")
	if e != nil {
		WriteError(w, http.StatusBadRequest, *e)
		return
	}
	p, err := h.c.PayInvoice(r.Context(), consumer.PayInvoiceRequest{Invoice: inv, MaxSats: maxSats, URL: u})
	if err != nil {
		h.writeErr(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, p)
}

// InvoiceResponse describes one of the node's invoices.
type InvoiceResponse = apiclient.Invoice

func (h *consumerAPI) createInvoice(w http.ResponseWriter, r *http.Request) {
	f, e := decodeObject(w, r)
	if e != nil {
		WriteError(w, statusOf(e), *e)
		return
	}
	amt, present, e := f.int64("amountSats", "amount_sats", "amount")
	if e == nil && !present {
		e = &ErrorBody{Error: "amountSats is required", Code: "invalid_field", Field: "amountSats", Fix: "send the amount in satoshis, e.g. \"amountSats\": 1000"}
	}
	if e != nil {
		WriteError(w, http.StatusBadRequest, *e)
		return
	}
	memo, e := f.str("memo", "description")
	if e != nil {
		WriteError(w, http.StatusBadRequest, *e)
		return
	}
	exp, _, e := f.int64("expirySeconds", "expiry_seconds", "expiry")
	if e != nil {
		WriteError(w, http.StatusBadRequest, *e)
		return
	}
	if exp < 0 || exp > int64(consumer.MaxInvoiceExpiry/time.Second) {
		WriteError(w, http.StatusBadRequest, ErrorBody{Error: "expirySeconds is out of range", Code: "invalid_field", Field: "expirySeconds", Fix: "send 0 (one hour) up to one year in seconds"})
		return
	}
	inv, err := h.c.CreateInvoice(r.Context(), amt, memo, time.Duration(exp)*time.Second)
	if err != nil {
		h.writeErr(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, InvoiceResponse{PaymentHash: inv.PaymentHash.String(), Invoice: inv.PaymentRequest, Memo: memo,
		State: string(invoices.InvoiceOpen), AmountSats: amt, ExpiresAt: inv.ExpiresAt.UTC()})
}

func (h *consumerAPI) checkInvoice(w http.ResponseWriter, r *http.Request) {
	hash, ok := hashParam(w, r)
	if !ok {
		return
	}
	st, err := h.c.CheckInvoice(r.Context(), hash)
	if err != nil {
		h.writeErr(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, NewInvoiceStatusResponse(st))
}

// NewInvoiceStatusResponse renders the state of one of the node's invoices.
func NewInvoiceStatusResponse(st invoices.InvoiceStatus) InvoiceResponse {
	return InvoiceResponse{PaymentHash: st.PaymentHash.String(), Invoice: st.PaymentRequest, Memo: st.Memo,
		State: string(st.State), Settled: st.State == invoices.InvoiceSettled, AmountSats: st.AmountMsat / 1000,
		AmountPaidSats: st.AmountPaidMsat / 1000, CreatedAt: st.CreatedAt.UTC(), SettledAt: st.SettledAt.UTC()}
}

func (h *consumerAPI) balance(w http.ResponseWriter, r *http.Request) {
	b, err := h.c.Balance(r.Context())
	if err != nil {
		h.writeErr(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, NewBalanceResponse(b))
}

// BalanceResponse is the node's funds as GET /api/consumer/balance shows
// them.
type BalanceResponse = apiclient.Balance

// NewBalanceResponse renders the node's funds.
func NewBalanceResponse(b invoices.Balance) BalanceResponse {
	var out BalanceResponse
	out.Channel.LocalSats, out.Channel.RemoteSats, out.Channel.PendingOpenSats = b.ChannelLocalMsat/1000, b.ChannelRemoteMsat/1000, b.PendingOpenMsat/1000
	out.Onchain.ConfirmedSats, out.Onchain.UnconfirmedSats = b.OnchainConfirmed, b.OnchainUnconfirmed
	return out
}
