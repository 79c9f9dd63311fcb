package x402

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// HTTP headers of the v2 transport; each carries base64 of a JSON object.
const (
	HeaderPaymentRequired  = "PAYMENT-REQUIRED"  // server → client: PaymentRequired
	HeaderPaymentSignature = "PAYMENT-SIGNATURE" // client → server: PaymentPayload
	HeaderPaymentResponse  = "PAYMENT-RESPONSE"  // server → client: SettlementResponse
)

// maxHeader bounds an encoded header before decoding.
const maxHeader = 64 * 1024

// EncodeHeader returns base64 (standard alphabet, padded, as the
// transport's examples are) of v's JSON.
func EncodeHeader(v any) (string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", fail(ReasonInvalidPayload, "header", err.Error())
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// DecodePaymentRequired decodes and validates a PAYMENT-REQUIRED value.
func DecodePaymentRequired(value string) (PaymentRequired, error) {
	var p PaymentRequired
	if err := decodeHeader(HeaderPaymentRequired, value, &p); err != nil {
		return PaymentRequired{}, err
	}
	return p, p.Validate()
}

// DecodePaymentPayload decodes and validates a PAYMENT-SIGNATURE value.
func DecodePaymentPayload(value string) (PaymentPayload, error) {
	var p PaymentPayload
	if err := decodeHeader(HeaderPaymentSignature, value, &p); err != nil {
		return PaymentPayload{}, err
	}
	return p, p.Validate()
}

// DecodeSettlementResponse decodes and validates a PAYMENT-RESPONSE value.
func DecodeSettlementResponse(value string) (SettlementResponse, error) {
	var s SettlementResponse
	if err := decodeHeader(HeaderPaymentResponse, value, &s); err != nil {
		return SettlementResponse{}, err
	}
	return s, s.Validate()
}

// decodeHeader is liberal in the base64 it reads (padded or not, standard
// or URL alphabet) and strict in the JSON: a member of the wrong type is
// an error naming it; unknown members are ignored.
func decodeHeader(header, value string, v any) error {
	value = strings.TrimSpace(value)
	if value == "" {
		return fail(ReasonInvalidPayload, header, "missing")
	}
	if len(value) > maxHeader {
		return fail(ReasonInvalidPayload, header, "over 64 KiB")
	}
	raw, err := decodeB64(value)
	if err != nil {
		return fail(ReasonInvalidPayload, header, "not base64")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fail(ReasonInvalidPayload, te.Field, "wrong JSON type: "+te.Value)
		}
		return fail(ReasonInvalidPayload, header, "not JSON: "+err.Error())
	}
	return nil
}

func decodeB64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "-_") {
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}
