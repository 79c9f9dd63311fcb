package api

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/plugin/apiclient"
	"github.com/l402d/l402d/plugin/consumer"
	"github.com/l402d/l402d/plugin/field"
	"github.com/l402d/l402d/storage"
)

// MaxAccessBodyBytes bounds an access or quote request, whose JSON carries
// the body to send to the target.
const MaxAccessBodyBytes = 1 << 20

// Headers of a streamed access answer (POST /api/consumer/access?stream=1):
// the target's status and headers are the response's own, and these say
// what l402d did.
const (
	HeaderUpstream      = apiclient.HeaderUpstream
	HeaderPaid          = apiclient.HeaderPaid
	HeaderFromCache     = apiclient.HeaderFromCache
	HeaderPaymentHash   = apiclient.HeaderPaymentHash
	HeaderAmountSats    = apiclient.HeaderAmountSats
	HeaderFeeMsat       = apiclient.HeaderFeeMsat
	HeaderAuthorization = apiclient.HeaderAuthorization
	HeaderNote          = apiclient.HeaderNote
)

// MountConsumer mounts the consumer's REST endpoints (docs/consumer.md).
// Every one needs the spend key (or the admin key), and answers 403
// spending_disabled while the node has no spend key; changing the budget
// needs the admin key and a loopback client.
func (s *Server) MountConsumer(c *consumer.Consumer) {
	h := &consumerAPI{s: s, c: c}
	s.Handle("POST /api/consumer/access", RoleSpend, http.HandlerFunc(h.access))
	s.Handle("POST /api/consumer/quote", RoleSpend, http.HandlerFunc(h.quote))
	s.Handle("POST /api/consumer/pay/challenge", RoleSpend, http.HandlerFunc(h.payChallenge))
	s.Handle("POST /api/consumer/pay/invoice", RoleSpend, http.HandlerFunc(h.payInvoice))
	s.Handle("POST /api/consumer/invoices", RoleSpend, http.HandlerFunc(h.createInvoice))
	s.Handle("GET /api/consumer/invoices/{paymentHash}", RoleSpend, http.HandlerFunc(h.checkInvoice))
	s.Handle("GET /api/consumer/balance", RoleSpend, http.HandlerFunc(h.balance))
	s.Handle("GET /api/consumer/budget", RoleSpend, http.HandlerFunc(h.budget))
	s.Handle("PUT /api/consumer/budget", RoleAdmin, http.HandlerFunc(h.setBudget))
	s.Handle("GET /api/consumer/payments", RoleSpend, http.HandlerFunc(h.payments))
	s.Handle("GET /api/consumer/payments/{paymentHash}", RoleSpend, http.HandlerFunc(h.payment))
	s.Handle("GET /api/consumer/tokens", RoleSpend, http.HandlerFunc(h.tokens))
	s.Handle("DELETE /api/consumer/tokens/{id}", RoleSpend, http.HandlerFunc(h.removeToken))
}

type consumerAPI struct {
	s *Server
	c *consumer.Consumer
}

// ConsumerError is a consumer error: ErrorBody, plus what is known of the
// payment concerned.
type ConsumerError struct {
	ErrorBody
	PriceSats   int64                 `json:"priceSats,omitempty"`
	PaymentHash string                `json:"paymentHash,omitempty"`
	Payment     *consumer.PaymentInfo `json:"payment,omitempty"`
	Token       *consumer.TokenInfo   `json:"token,omitempty"`
}

// writeErr maps a consumer error to a status and a body that names the
// field and the fix.
func (h *consumerAPI) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	status, out := ConsumerErrorOf(err)
	if out.Code == "internal" {
		h.s.log.Error("consumer request failed", "path", r.URL.Path, "err", err)
	}
	WriteJSON(w, status, out.Wire())
}

// Wire renders the error as the consumer endpoints answer it.
func (e ConsumerError) Wire() apiclient.ErrorResponse {
	return apiclient.ErrorResponse{ErrorBody: e.ErrorBody, PriceSats: e.PriceSats, PaymentHash: e.PaymentHash,
		Payment: e.Payment, Token: e.Token}
}

// ConsumerErrorOf maps an error of the consumer package to an HTTP status
// and a body that names the problem, the field and the fix. Every surface
// that reports consumer errors (REST, MCP) uses it, so they agree; an
// unexpected error has code "internal" (the caller logs it).
func ConsumerErrorOf(err error) (int, ConsumerError) {
	var out ConsumerError
	var ce *consumer.ChallengeError
	if errors.As(err, &ce) {
		out.PriceSats, out.PaymentHash = ce.PriceSats, ce.PaymentHash
	}
	var fe *field.Error
	var pe *consumer.PaymentError
	status := http.StatusInternalServerError
	switch ref := consumer.RefusalOf(err); {
	case errors.As(err, &fe):
		status, out.ErrorBody = http.StatusBadRequest, ErrorBody{Error: fe.Error(), Code: "invalid_field", Field: fe.Field, Fix: fe.Fix}
	case ref != nil:
		status, out.ErrorBody = http.StatusForbidden, ErrorBody{Error: ref.Problem, Code: ref.Code, Field: ref.Field, Fix: ref.Fix}
	case errors.As(err, &pe) && pe.InFlight:
		status, out.ErrorBody = http.StatusAccepted, ErrorBody{Error: pe.Error(), Code: "payment_in_flight",
			Fix: "check later with GET /api/consumer/payments/" + pe.PaymentHash.String() + "; the token is cached when it succeeds"}
		out.PaymentHash = pe.PaymentHash.String()
	case errors.As(err, &pe):
		status, out.ErrorBody = http.StatusBadGateway, ErrorBody{Error: pe.Error(), Code: "payment_failed",
			Fix: "nothing was paid and the budget is released; check the node's channels (l402cli balance) and try again"}
		out.PaymentHash = pe.PaymentHash.String()
	case errors.Is(err, consumer.ErrUpstream):
		status, out.ErrorBody = http.StatusBadGateway, ErrorBody{Error: "the target did not answer: " + err.Error(), Code: "upstream_unreachable", Field: "url",
			Fix: "check the URL and that the service is up"}
	case errors.Is(err, invoices.ErrUnavailable):
		status, out.ErrorBody = http.StatusServiceUnavailable, ErrorBody{Error: "the Lightning node (LND) is unreachable: " + err.Error(), Code: "lnd_unavailable",
			Fix: "check that LND is running and reachable"}
	case errors.Is(err, invoices.ErrNotFound), errors.Is(err, storage.ErrNotFound):
		status, out.ErrorBody = http.StatusNotFound, ErrorBody{Error: err.Error(), Code: "not_found", Field: "paymentHash"}
	case errors.Is(err, storage.ErrDiskFull):
		status, out.ErrorBody = http.StatusInsufficientStorage, ErrorBody{Error: err.Error(), Code: "disk_full",
			Fix: "free space on the disk of l402d's data dir; nothing is paid until the journal can be written"}
	case errors.Is(err, context.Canceled):
		status, out.ErrorBody = 499, ErrorBody{Error: "request canceled", Code: "canceled"}
	default:
		out.ErrorBody = ErrorBody{Error: "internal error: " + err.Error(), Code: "internal"}
	}
	return status, out
}

// accessRequest reads the JSON of access and quote.
func accessRequest(w http.ResponseWriter, r *http.Request) (consumer.AccessRequest, *ErrorBody) {
	var req consumer.AccessRequest
	f, e := decodeObjectN(w, r, MaxAccessBodyBytes)
	if e != nil {
		return req, e
	}
	if req.URL, e = f.str("url"); e != nil {
		return req, e
	}
	if req.Method, e = f.str("method"); e != nil {
		return req, e
	}
	if req.Header, e = f.headers("headers"); e != nil {
		return req, e
	}
	body, e := f.str("body")
	if e != nil {
		return req, e
	}
	b64, e := f.str("bodyBase64", "body_base64")
	if e != nil {
		return req, e
	}
	switch {
	case body != "" && b64 != "":
		return req, &ErrorBody{Error: "send body or bodyBase64, not both", Code: "invalid_field", Field: "bodyBase64", Fix: "drop one of them"}
	case b64 != "":
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return req, &ErrorBody{Error: "bodyBase64 is not base64", Code: "invalid_field", Field: "bodyBase64", Fix: "encode the body with standard base64"}
		}
		req.Body = raw
	case body != "":
		req.Body = []byte(body)
	}
	if req.MaxSats, _, e = f.int64("maxSats", "max_sats", "maxCostSats"); e != nil {
		return req, e
	}
	return req, nil
}

// AccessResponse is the JSON answer of POST /api/consumer/access.
type AccessResponse = apiclient.AccessResponse

func (h *consumerAPI) access(w http.ResponseWriter, r *http.Request) {
	req, e := accessRequest(w, r)
	if e != nil {
		WriteError(w, statusOf(e), *e)
		return
	}
	resp, err := h.c.Access(r.Context(), req)
	if err != nil {
		if resp != nil {
			// Paid, but the retry got no answer: the token is the
			// caller's all the same.
			WriteJSON(w, http.StatusBadGateway, apiclient.ErrorResponse{
				ErrorBody: apiclient.PaidNoAnswer(err, "retry: the token is cached and will be used without paying again"),
				Payment:   resp.Payment, Token: resp.Token})
			return
		}
		h.writeErr(w, r, err)
		return
	}
	defer resp.Body.Close()
	if stream, _ := strconv.ParseBool(r.URL.Query().Get("stream")); stream {
		streamAnswer(w, resp)
		return
	}
	out := AccessResponse{Status: resp.Status, Headers: resp.Header, Paid: resp.Paid, FromCache: resp.FromCache,
		Payment: resp.Payment, Token: resp.Token, Note: resp.Note}
	out.RelayedBody, out.Note = RelayBody(resp, h.c.MaxResponseBytes(), out.Note)
	WriteJSON(w, http.StatusOK, out)
}

// RelayBody reads up to limit bytes of the target's body for a JSON
// answer; a read error is added to note.
func RelayBody(resp *consumer.Response, limit int64, note string) (apiclient.RelayedBody, string) {
	body, err := resp.ReadBody(limit)
	if err != nil {
		note = strings.TrimSpace(note + " reading the body failed: " + err.Error())
	}
	return apiclient.RelayedBody(body), note
}

// streamAnswer passes the target's answer through as it comes, with
// l402d's account in X-L402d-* headers.
func streamAnswer(w http.ResponseWriter, resp *consumer.Response) {
	hdr := w.Header()
	for k, vs := range resp.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Te", "Trailer":
			continue
		}
		hdr[k] = vs
	}
	hdr.Set(HeaderUpstream, "1")
	hdr.Set(HeaderPaid, strconv.FormatBool(resp.Paid))
	hdr.Set(HeaderFromCache, strconv.FormatBool(resp.FromCache))
	if p := resp.Payment; p != nil {
		hdr.Set(HeaderPaymentHash, p.PaymentHash)
		hdr.Set(HeaderAmountSats, strconv.FormatInt(p.AmountSats, 10))
		hdr.Set(HeaderFeeMsat, strconv.FormatInt(p.FeeMsat, 10))
	}
	if t := resp.Token; t != nil {
		hdr.Set(HeaderAuthorization, t.Authorization)
	}
	if resp.Note != "" {
		hdr.Set(HeaderNote, resp.Note)
	}
	w.WriteHeader(resp.Status)
	_, _ = io.Copy(w, resp.Body)
}

func (h *consumerAPI) quote(w http.ResponseWriter, r *http.Request) {
	req, e := accessRequest(w, r)
	if e != nil {
		WriteError(w, statusOf(e), *e)
		return
	}
	q, err := h.c.Quote(r.Context(), req)
	if err != nil {
		h.writeErr(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, q)
}

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

func hashParam(w http.ResponseWriter, r *http.Request) (lntypes.Hash, bool) {
	h, err := lntypes.MakeHashFromStr(r.PathValue("paymentHash"))
	if err != nil {
		WriteError(w, http.StatusBadRequest, ErrorBody{Error: "payment hash is not 64 hex characters", Code: "invalid_field", Field: "paymentHash", Fix: "use the paymentHash as returned when paying or creating the invoice"})
		return h, false
	}
	return h, true
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

// BudgetResponse is the budget as GET and PUT /api/consumer/budget show it.
type BudgetResponse = apiclient.Budget

// BudgetWindow is what one budget window holds today. RemainingSats is
// null when the window has no limit.
type BudgetWindow = apiclient.BudgetWindow

// NewBudgetResponse renders the budget state as the budget endpoints (and
// MCP's get_budget_status) show it.
func NewBudgetResponse(b consumer.Budget) BudgetResponse {
	var out BudgetResponse
	l := b.Limits
	out.Limits.PerPaymentSats, out.Limits.PerDaySats, out.Limits.PerDomainSats = l.PerPaymentSats, l.PerDaySats, l.PerDomainSats
	out.Limits.UnapprovedPerHourSats = l.UnapprovedPerHourSats
	out.Limits.AllowDomains, out.Limits.DenyDomains, out.Limits.UpdatedAt = l.AllowDomains, l.DenyDomains, l.UpdatedAt.UTC()
	if out.Limits.AllowDomains == nil {
		out.Limits.AllowDomains = []string{}
	}
	if out.Limits.DenyDomains == nil {
		out.Limits.DenyDomains = []string{}
	}
	out.Window = "UTC calendar day"
	out.Day = b.Usage.Day.Format(time.DateOnly)
	out.ResetsAt = b.Usage.Day.Add(24 * time.Hour)
	window := func(domain string, c storage.BudgetCounter, limit int64) BudgetWindow {
		w := BudgetWindow{Domain: domain, SpentSats: c.SpentMsat / 1000, SpentMsat: c.SpentMsat, ReservedMsat: c.ReservedMsat}
		if limit > 0 {
			rem := max(0, (limit*1000-c.SpentMsat-c.ReservedMsat)/1000)
			w.RemainingSats = &rem
		}
		return w
	}
	out.Today = window("", b.Usage.Total, l.PerDaySats)
	out.Domains = []BudgetWindow{}
	for _, d := range b.Usage.Domains {
		out.Domains = append(out.Domains, window(d.Domain, d.BudgetCounter, l.PerDomainSats))
	}
	return out
}

func (h *consumerAPI) budget(w http.ResponseWriter, r *http.Request) {
	b, err := h.c.Budget(r.Context())
	if err != nil {
		h.writeErr(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, NewBudgetResponse(b))
}

func (h *consumerAPI) setBudget(w http.ResponseWriter, r *http.Request) {
	if !IsLoopback(r) {
		WriteError(w, http.StatusForbidden, ErrorBody{Error: "the budget can only be changed from the node itself", Code: "forbidden", Field: "X-API-Key",
			Fix: "run l402cli budget set on the machine l402d runs on, with the admin key"})
		return
	}
	f, e := decodeObject(w, r)
	if e != nil {
		WriteError(w, statusOf(e), *e)
		return
	}
	var u consumer.BudgetUpdate
	for _, p := range []struct {
		dst  **int64
		name string
	}{{&u.PerPaymentSats, "perPaymentSats"}, {&u.PerDaySats, "perDaySats"}, {&u.PerDomainSats, "perDomainSats"}, {&u.UnapprovedPerHourSats, "unapprovedPerHourSats"}} {
		n, present, e := f.int64(p.name)
		if e != nil {
			WriteError(w, http.StatusBadRequest, *e)
			return
		}
		if present {
			*p.dst = &n
		}
	}
	for _, p := range []struct {
		dst  **[]string
		name string
	}{{&u.AllowDomains, "allowDomains"}, {&u.DenyDomains, "denyDomains"}} {
		list, present, e := f.strList(p.name)
		if e != nil {
			WriteError(w, http.StatusBadRequest, *e)
			return
		}
		if present {
			*p.dst = &list
		}
	}
	b, err := h.c.SetBudget(r.Context(), u)
	if err != nil {
		h.writeErr(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, NewBudgetResponse(b))
}

// PaymentRecord is a journal entry as the payments endpoints show it.
type PaymentRecord = apiclient.PaymentRecord

// NewPaymentRecord renders a journal entry.
func NewPaymentRecord(p *storage.Payment) PaymentRecord {
	rec := PaymentRecord{PaymentHash: p.PaymentHash.String(), State: string(p.State), Kind: string(p.Kind), AmountSats: p.AmountMsat / 1000,
		AmountMsat: p.AmountMsat, FeeMsat: p.FeeMsat, FeeLimitMsat: p.FeeLimitMsat, Domain: p.Domain, URL: p.URL, Invoice: p.Invoice,
		BudgetDay: p.BudgetDay.Format(time.DateOnly), Attempts: p.Attempts, CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC(),
		SettledAt: p.SettledAt.UTC(), FailureReason: p.FailureReason}
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
