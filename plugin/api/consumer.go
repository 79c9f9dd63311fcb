package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/plugin/apiclient"
	"github.com/l402d/l402d/plugin/consumer"
	"github.com/l402d/l402d/plugin/field"
	"github.com/l402d/l402d/storage"
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
	s.Handle("GET /api/consumer/sessions", RoleSpend, http.HandlerFunc(h.sessions))
	s.Handle("POST /api/consumer/sessions/{id}/close", RoleSpend, http.HandlerFunc(h.closeSession))
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
	case errors.Is(err, storage.ErrUnavailable):
		status, out.ErrorBody = http.StatusServiceUnavailable, ErrorBody{Error: err.Error(), Code: "db_unavailable",
			Fix: "bring the Postgres server back (--db.postgres.dsn); nothing is paid until the journal can be written"}
	case errors.Is(err, context.Canceled):
		status, out.ErrorBody = 499, ErrorBody{Error: "request canceled", Code: "canceled"}
	default:
		out.ErrorBody = ErrorBody{Error: "internal error: " + err.Error(), Code: "internal"}
	}
	return status, out
}

func hashParam(w http.ResponseWriter, r *http.Request) (lntypes.Hash, bool) {
	h, err := lntypes.MakeHashFromStr(r.PathValue("paymentHash"))
	if err != nil {
		WriteError(w, http.StatusBadRequest, ErrorBody{Error: "payment hash is not 64 hex characters", Code: "invalid_field", Field: "paymentHash", Fix: "use the paymentHash as returned when paying or creating the invoice"})
		return h, false
	}
	return h, true
}
