package api

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/l402d/l402d/plugin/apiclient"
	"github.com/l402d/l402d/plugin/consumer"
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
	HeaderScheme        = apiclient.HeaderScheme
)

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
	if req.Session, e = f.boolean("session"); e != nil {
		return req, e
	}
	calls, _, e := f.int64("expectedCalls", "expected_calls")
	if e != nil {
		return req, e
	}
	if calls < 0 || calls > 1_000_000 {
		return req, &ErrorBody{Error: fmt.Sprintf("expectedCalls is %d", calls), Code: "invalid_field", Field: "expectedCalls",
			Fix: "send 0 (pay per request) or the number of calls you expect soon, at most 1000000"}
	}
	req.ExpectedCalls = int(calls)
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
		Payment: resp.Payment, Token: resp.Token, Note: resp.Note, Session: resp.Session}
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
		hdr.Set(HeaderScheme, t.Scheme)
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
