package api

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/plugin/apiclient"
	"github.com/l402d/l402d/plugin/producer"
	"github.com/l402d/l402d/storage"
)

// ChallengeResponse is the seed API's challenge shape.
type ChallengeResponse = apiclient.Challenge

// NewChallengeResponse renders a producer challenge in the seed's shape.
func NewChallengeResponse(c producer.Challenge) ChallengeResponse {
	return ChallengeResponse{
		Invoice: c.Invoice, Macaroon: c.Macaroon, PaymentHash: c.PaymentHash.String(),
		ExpiresAt: c.ExpiresAt.UTC(), Resource: c.Resource, PriceSats: c.PriceSats,
	}
}

// VerifyResponse is the seed API's verify shape; invalid tokens carry
// only valid=false, error and (ours) reason.
type VerifyResponse = apiclient.VerifyResponse

// NewVerifyResponse renders a producer verdict in the seed's shape.
func NewVerifyResponse(v producer.VerifyResult) VerifyResponse {
	return VerifyResponse{Valid: v.Valid, Resource: v.Resource, MerchantID: v.MerchantID,
		AmountSats: v.AmountSats, PaymentHash: v.PaymentHash, Error: v.Error, Reason: v.Reason}
}

func (s *Server) createChallenge(w http.ResponseWriter, r *http.Request) {
	f, e := decodeObject(w, r)
	if e != nil {
		WriteError(w, statusOf(e), *e)
		return
	}
	resource, e := f.str("resource")
	if e != nil {
		WriteError(w, http.StatusBadRequest, *e)
		return
	}
	desc, e := f.str("description")
	if e != nil {
		WriteError(w, http.StatusBadRequest, *e)
		return
	}
	price, present, e := f.int64("priceSats", "price_sats")
	if e != nil {
		WriteError(w, http.StatusBadRequest, *e)
		return
	}
	if !present {
		WriteError(w, http.StatusBadRequest, ErrorBody{Error: "priceSats is required", Code: "invalid_field", Field: "priceSats", Fix: "send the price in satoshis, e.g. \"priceSats\": 50"})
		return
	}
	ch, err := s.cfg.Producer.Create(r.Context(), producer.CreateRequest{
		Resource: resource, PriceSats: price, Description: desc,
		IdempotencyKey: r.Header.Get(apiclient.HeaderIdempotencyKey),
		ClientIP:       ClientIP(r, s.cfg.TrustedProxies),
		Caller:         "api:" + callerRole(r).String(),
		Source:         "api",
	})
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, NewChallengeResponse(ch))
}

func (s *Server) verifyChallenge(w http.ResponseWriter, r *http.Request) {
	f, e := decodeObject(w, r)
	if e != nil {
		WriteError(w, statusOf(e), *e)
		return
	}
	var req producer.VerifyRequest
	for _, p := range []struct {
		dst   *string
		names []string
	}{{&req.Macaroon, []string{"macaroon"}}, {&req.Preimage, []string{"preimage"}}, {&req.Resource, []string{"resource"}}} {
		v, e := f.str(p.names...)
		if e != nil {
			WriteError(w, http.StatusBadRequest, *e)
			return
		}
		*p.dst = v
	}
	res, err := s.cfg.Producer.VerifyToken(r.Context(), req)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, NewVerifyResponse(res))
}

// ChallengeRecord is a stored challenge as the list endpoint shows it.
type ChallengeRecord = apiclient.ChallengeRecord

func recordOf(c *storage.Challenge) ChallengeRecord {
	return ChallengeRecord{
		PaymentHash: c.PaymentHash.String(), TokenID: c.TokenID.String(), Resource: c.Resource,
		Description: c.Description, Service: c.Service, PriceSats: c.PriceSats, Invoice: c.Invoice,
		State: string(c.State), CreatedAt: c.CreatedAt.UTC(), ExpiresAt: c.ExpiresAt.UTC(),
		SettledAt: c.SettledAt.UTC(), AmountPaidSats: c.AmountPaidMsat / 1000,
	}
}

func (s *Server) listChallenges(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := storage.ChallengeFilter{Resource: q.Get("resource"), After: storage.Cursor(q.Get("after"))}
	switch st := q.Get("state"); st {
	case "", "pending", "settled", "expired", "canceled":
		f.State = storage.ChallengeState(st)
	default:
		WriteError(w, http.StatusBadRequest, ErrorBody{Error: "unknown state " + strconv.Quote(st), Code: "invalid_field", Field: "state", Fix: "use pending, settled, expired or canceled"})
		return
	}
	var e *ErrorBody
	if f.Since, f.Until, f.Limit, e = listParams(q); e != nil {
		WriteError(w, http.StatusBadRequest, *e)
		return
	}
	list, next, err := s.cfg.Producer.Challenges(r.Context(), f)
	if err != nil {
		if errors.Is(err, storage.ErrInvalid) {
			WriteError(w, http.StatusBadRequest, badCursor(err))
			return
		}
		s.writeErr(w, r, err)
		return
	}
	out := apiclient.ChallengeList{Challenges: make([]ChallengeRecord, 0, len(list)), Next: string(next)}
	for i := range list {
		out.Challenges = append(out.Challenges, recordOf(&list[i]))
	}
	WriteJSON(w, http.StatusOK, out)
}

func (s *Server) getChallenge(w http.ResponseWriter, r *http.Request) {
	h, err := lntypes.MakeHashFromStr(r.PathValue("paymentHash"))
	if err != nil {
		WriteError(w, http.StatusBadRequest, ErrorBody{Error: "payment hash is not 64 hex characters", Code: "invalid_field", Field: "paymentHash", Fix: "use the paymentHash from the challenge"})
		return
	}
	c, err := s.cfg.Producer.Challenge(r.Context(), h)
	if errors.Is(err, storage.ErrNotFound) {
		WriteError(w, http.StatusNotFound, ErrorBody{Error: "no challenge with that payment hash", Code: "not_found", Field: "paymentHash"})
		return
	}
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, recordOf(c))
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, e := timeParam(q.Get("since"), "since")
	if e != nil {
		WriteError(w, http.StatusBadRequest, *e)
		return
	}
	until, e := timeParam(q.Get("until"), "until")
	if e != nil {
		WriteError(w, http.StatusBadRequest, *e)
		return
	}
	if since.IsZero() {
		since = time.Now().UTC().AddDate(0, 0, -30)
	}
	st, err := s.cfg.Producer.Stats(r.Context(), since, until)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	type counters = apiclient.StatsCounters
	out := apiclient.Stats{
		Total: counters{Created: st.Total.Created, Settled: st.Total.Settled, RevenueSats: st.Total.RevenueMsat / 1000},
		Range: counters{Created: st.Range.Created, Settled: st.Range.Settled, RevenueSats: st.Range.RevenueMsat / 1000},
		Since: since.UTC().Format(time.RFC3339),
		Days:  []apiclient.StatsDay{},
	}
	for _, d := range st.Days {
		out.Days = append(out.Days, apiclient.StatsDay{Day: d.Day.Format("2006-01-02"),
			StatsCounters: counters{Created: d.Created, Settled: d.Settled, RevenueSats: d.RevenueMsat / 1000}})
	}
	WriteJSON(w, http.StatusOK, out)
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	f, e := decodeObject(w, r)
	if e != nil {
		WriteError(w, statusOf(e), *e)
		return
	}
	tok, e := f.str("token", "tokenId", "macaroon")
	if e != nil {
		WriteError(w, http.StatusBadRequest, *e)
		return
	}
	reason, e := f.str("reason")
	if e != nil {
		WriteError(w, http.StatusBadRequest, *e)
		return
	}
	id, err := s.cfg.Producer.Revoke(r.Context(), tok, reason)
	if errors.Is(err, storage.ErrNotFound) {
		WriteError(w, http.StatusNotFound, ErrorBody{Error: err.Error(), Code: "not_found", Field: "token"})
		return
	}
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, apiclient.RevokeResponse{Revoked: true, TokenID: id.String()})
}

// listParams reads the time range and page size every list endpoint
// takes: since and until (RFC 3339 or unix seconds) and limit.
func listParams(q url.Values) (since, until time.Time, limit int, e *ErrorBody) {
	if since, e = timeParam(q.Get("since"), "since"); e != nil {
		return
	}
	if until, e = timeParam(q.Get("until"), "until"); e != nil {
		return
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > storage.MaxListLimit {
			e = &ErrorBody{Error: "limit must be 1.." + strconv.Itoa(storage.MaxListLimit), Code: "invalid_field", Field: "limit", Fix: "send a whole number in range"}
			return
		}
		limit = n
	}
	return
}

// badCursor answers a list cursor the store could not read.
func badCursor(err error) ErrorBody {
	return ErrorBody{Error: err.Error(), Code: "invalid_field", Field: "after", Fix: "pass the next cursor from a previous page unchanged"}
}

// timeParam parses an RFC 3339 time or unix seconds.
func timeParam(v, name string) (time.Time, *ErrorBody) {
	if v == "" {
		return time.Time{}, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, &ErrorBody{Error: name + " is not a time", Code: "invalid_field", Field: name, Fix: "use RFC 3339 (2026-01-02T15:04:05Z) or unix seconds"}
	}
	return t, nil
}

func statusOf(e *ErrorBody) int {
	if e.Code == "body_too_large" {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// sessionWire is one prepaid session as GET /api/l402/sessions lists it.
type sessionWire struct {
	SessionID string `json:"sessionId"`
	// Kind is "mpp" for an MPP session, "l402" for an L402 prepaid
	// balance (its id is the payment hash of the token that bought it).
	Kind          string    `json:"kind"`
	Service       string    `json:"service"`
	State         string    `json:"state"`
	DepositedMsat int64     `json:"depositedMsat"`
	DebitedMsat   int64     `json:"debitedMsat"`
	MeteredMsat   int64     `json:"meteredMsat"`
	BalanceMsat   int64     `json:"balanceMsat"`
	RefundMsat    int64     `json:"refundMsat"`
	RefundStatus  string    `json:"refundStatus,omitempty"`
	RefundError   string    `json:"refundError,omitempty"`
	RefundFeeMsat int64     `json:"refundFeeMsat,omitempty"`
	Requests      int64     `json:"requests"`
	TopUps        int64     `json:"topUps"`
	OpenedAt      time.Time `json:"openedAt"`
	UsedAt        time.Time `json:"usedAt"`
	ClosedAt      time.Time `json:"closedAt,omitzero"`
}

// sessionBooks is the sum over the sessions listed: deposits always equal
// debits + balances + refunds.
type sessionBooks struct {
	DepositedMsat int64 `json:"depositedMsat"`
	DebitedMsat   int64 `json:"debitedMsat"`
	BalanceMsat   int64 `json:"balanceMsat"`
	RefundMsat    int64 `json:"refundMsat"`
	RefundPaid    int64 `json:"refundPaidMsat"`
}

// sessions lists the node's prepaid sessions (?state=open|closing|closed)
// and their books.
func (s *Server) sessions(w http.ResponseWriter, r *http.Request) {
	state := storage.SessionState(r.URL.Query().Get("state"))
	switch state {
	case "", storage.SessionOpen, storage.SessionClosing, storage.SessionClosed:
	default:
		WriteError(w, http.StatusBadRequest, ErrorBody{Error: "unknown state " + strconv.Quote(string(state)), Code: "invalid_request", Field: "state", Fix: "use open, closing or closed, or leave state out for all"})
		return
	}
	list, err := s.cfg.Producer.Sessions(r.Context(), state)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	out := struct {
		Sessions []sessionWire `json:"sessions"`
		Books    sessionBooks  `json:"books"`
	}{Sessions: []sessionWire{}}
	for _, ss := range list {
		kind := "mpp"
		if ss.Prepaid {
			kind = "l402"
		}
		out.Sessions = append(out.Sessions, sessionWire{
			SessionID: ss.ID.String(), Kind: kind, Service: ss.Service, State: string(ss.State), DepositedMsat: ss.DepositedMsat, DebitedMsat: ss.DebitedMsat,
			MeteredMsat: ss.MeteredMsat, BalanceMsat: ss.BalanceMsat(), RefundMsat: ss.RefundMsat, RefundStatus: ss.RefundStatus, RefundError: ss.RefundError,
			RefundFeeMsat: ss.RefundFeeMsat, Requests: ss.Requests, TopUps: ss.TopUps, OpenedAt: ss.OpenedAt, UsedAt: ss.UsedAt, ClosedAt: ss.ClosedAt,
		})
		b := &out.Books
		b.DepositedMsat += ss.DepositedMsat
		b.DebitedMsat += ss.DebitedMsat
		b.BalanceMsat += ss.BalanceMsat()
		b.RefundMsat += ss.RefundMsat
		if ss.RefundStatus == storage.RefundSucceeded {
			b.RefundPaid += ss.RefundMsat
		}
	}
	WriteJSON(w, http.StatusOK, out)
}
