package gate

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/plugin/producer"
)

// errorBody is every gate error's JSON shape, the API's (error, code,
// field, fix) plus the service it concerns.
type errorBody struct {
	Error   string `json:"error"`
	Code    string `json:"code"`
	Service string `json:"service,omitempty"`
	Field   string `json:"field,omitempty"`
	Fix     string `json:"fix,omitempty"`
}

// challengeBody is the 402's JSON body: the challenge in the producer
// API's field names, what it is for, and why an earlier credential was
// refused.
type challengeBody struct {
	Error       string    `json:"error"`
	Code        string    `json:"code"`
	Macaroon    string    `json:"macaroon"`
	Invoice     string    `json:"invoice"`
	PaymentHash string    `json:"paymentHash"`
	AmountSats  int64     `json:"amountSats"`
	PriceSats   int64     `json:"priceSats"`
	ExpiresAt   time.Time `json:"expiresAt"`
	Resource    string    `json:"resource"`
	Service     string    `json:"service"`
	// Schemes are the ways this one invoice can be paid and presented.
	Schemes []string `json:"schemes"`
	// Meter is set for a metered service: what it charges per, beyond
	// the request's price.
	Meter *meterInfo `json:"meter,omitempty"`
	// Prepaid is set when the token sold is prepaid credit.
	Prepaid *prepaidInfo `json:"prepaid,omitempty"`
	Reason  string       `json:"reason,omitempty"`
	Message string       `json:"message,omitempty"`
	Fix     string       `json:"fix"`
}

// meterInfo describes a service's meter to buyers.
type meterInfo struct {
	Unit       string `json:"unit"`
	PriceMsat  int64  `json:"priceMsat"`
	BlockUnits int64  `json:"blockUnits"`
}

// gRPC status codes the gate answers with (google.golang.org/grpc/codes).
const (
	grpcInvalidArgument   = 3
	grpcDeadlineExceeded  = 4
	grpcResourceExhausted = 8
	grpcUnimplemented     = 12
	grpcInternal          = 13
	grpcUnavailable       = 14
)

// grpcPaymentRequired is what Aperture's gRPC client interceptor looks
// for: code Internal and a message containing "payment required".
const grpcPaymentRequired = "payment required"

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"error":"internal error","code":"internal"}`)
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers an HTTP client with status and a JSON body, a gRPC
// client with the matching gRPC status.
func writeError(w http.ResponseWriter, r *http.Request, status int, e errorBody) {
	if isGRPC(r) {
		writeGRPCStatus(w, grpcCodeFor(status), e.Error)
		return
	}
	writeJSON(w, status, e)
}

// writeRateLimited answers 429 with Retry-After (gRPC: ResourceExhausted).
func writeRateLimited(w http.ResponseWriter, r *http.Request, wait time.Duration, e errorBody) {
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	writeError(w, r, http.StatusTooManyRequests, e)
}

func grpcCodeFor(status int) int {
	switch status {
	case http.StatusBadRequest:
		return grpcInvalidArgument
	case http.StatusNotFound:
		return grpcUnimplemented
	case http.StatusTooManyRequests:
		return grpcResourceExhausted
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return grpcUnavailable
	case http.StatusGatewayTimeout:
		return grpcDeadlineExceeded
	}
	return grpcInternal
}

// writeGRPCStatus ends a gRPC call with a status and no messages: HTTP
// 200 and the status in the headers, which (with no body) go out as a
// trailers-only response, as the gRPC wire protocol requires.
func writeGRPCStatus(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(code))
	h.Set("Grpc-Message", grpcEncodeMessage(msg))
	h.Del("Content-Length")
	w.WriteHeader(http.StatusOK)
}

// grpcEncodeMessage percent-encodes a grpc-message as the gRPC spec
// asks: printable ASCII except '%' goes as is.
func grpcEncodeMessage(s string) string {
	const hex = "0123456789ABCDEF"
	if len(s) > 1024 {
		s = s[:1024]
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= ' ' && c <= '~' && c != '%' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// writeChallenge answers with a 402: WWW-Authenticate in the superset
// form every client parses, no caching, and the challenge as JSON. A
// gRPC client gets the same header with HTTP 200 and the status
// Internal/"payment required", the form Aperture's gRPC client
// interceptor pays.
//
// offerMore, called after the L402 challenge is set, adds the other
// schemes' challenges (not for gRPC, which is offered L402 only).
func writeChallenge(w http.ResponseWriter, r *http.Request, ch producer.Challenge, service string, rejected error, legacyLSAT bool, offers schemeSet, offerMore func(http.Header), more func(*challengeBody)) {
	h := w.Header()
	if offers.has(offerL402) || isGRPC(r) {
		l402.SetChallenge(h, l402.Challenge{Macaroon: ch.Macaroon, Invoice: ch.Invoice}, legacyLSAT)
	}
	if offerMore != nil && !isGRPC(r) {
		offerMore(h)
	}
	h.Set("Cache-Control", "no-store")
	body := challengeBody{
		Error: "payment required", Code: "payment_required",
		Invoice: ch.Invoice, PaymentHash: ch.PaymentHash.String(),
		AmountSats: ch.PriceSats, PriceSats: ch.PriceSats, ExpiresAt: ch.ExpiresAt.UTC(),
		Resource: ch.Resource, Service: service, Schemes: offers.names(),
		Fix: payFix(offers),
	}
	if offers.has(offerL402) {
		body.Macaroon = ch.Macaroon
	}
	if more != nil {
		more(&body)
	}
	if rejected != nil {
		body.Reason = producer.ReasonCode(rejected)
		body.Message = verdictMessage(rejected)
		body.Fix = "your credential was refused (see reason); " + body.Fix
	}
	if isGRPC(r) {
		msg := grpcPaymentRequired
		if rejected != nil {
			msg += "; credential refused: " + body.Reason + ": " + body.Message
		}
		writeGRPCStatus(w, grpcInternal, msg)
		return
	}
	writeJSON(w, http.StatusPaymentRequired, body)
}

// payFix says how to pay in the schemes offered.
func payFix(offers schemeSet) string {
	var ways []string
	if offers.has(offerL402) {
		ways = append(ways, "Authorization: L402 <macaroon>:<preimage> (reusable until it expires)")
	}
	if offers.has(offerMPP) {
		ways = append(ways, "Authorization: Payment <credential> answering the Payment challenge (one request)")
	}
	if offers.has(offerX402) {
		ways = append(ways, "PAYMENT-SIGNATURE: <x402 payment payload> answering PAYMENT-REQUIRED (one request)")
	}
	return "pay the invoice, then retry with " + strings.Join(ways, ", or ")
}

// verdictMessage is the human text of a refusal, capitalised as the
// producer API writes it.
func verdictMessage(err error) string {
	s := err.Error()
	if s == "" {
		return "invalid token"
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
