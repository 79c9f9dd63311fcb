package x402

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/l402d/l402d/l402"
)

func TestDecodeHeaderErrors(t *testing.T) {
	b := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	req := `{"scheme":"exact","network":"bip122:000000000019d6689c085ae165831e93","amount":"1","asset":"BTC","payTo":"x","maxTimeoutSeconds":60}`
	tests := []struct {
		name, value, field, reason string
		decode                     func(string) error
	}{
		{"empty", "", HeaderPaymentRequired, ReasonInvalidPayload, required},
		{"not base64", "%%%", HeaderPaymentRequired, ReasonInvalidPayload, required},
		{"not JSON", b("nope"), HeaderPaymentRequired, ReasonInvalidPayload, required},
		{"version 1", b(`{"x402Version":1,"resource":{"url":"u"},"accepts":[` + req + `]}`), "x402Version", ReasonInvalidVersion, required},
		{"no resource", b(`{"x402Version":2,"accepts":[` + req + `]}`), "resource.url", ReasonInvalidRequirements, required},
		{"no accepts", b(`{"x402Version":2,"resource":{"url":"u"},"accepts":[]}`), "accepts", ReasonInvalidRequirements, required},
		{"bad network", b(`{"x402Version":2,"resource":{"url":"u"},"accepts":[{"scheme":"exact","network":"bitcoin","amount":"1","asset":"BTC","payTo":"x","maxTimeoutSeconds":60}]}`),
			"accepts[0].network", ReasonInvalidRequirements, required},
		{"timeout type", b(`{"x402Version":2,"resource":{"url":"u"},"accepts":[{"maxTimeoutSeconds":"60"}]}`),
			"accepts.maxTimeoutSeconds", ReasonInvalidPayload, required},
		{"timeout fraction", b(`{"x402Version":2,"resource":{"url":"u"},"accepts":[{"maxTimeoutSeconds":1.5}]}`),
			"accepts.maxTimeoutSeconds", ReasonInvalidPayload, required},
		{"payload not object", b(`{"x402Version":2,"accepted":` + req + `,"payload":"x"}`), "payload", ReasonInvalidPayload, signature},
		{"accepted amount", b(`{"x402Version":2,"accepted":{"scheme":"exact","network":"abc:b","amount":"-1"},"payload":{}}`), "accepted.amount", ReasonInvalidRequirements, signature},
		{"response network", b(`{"success":true,"transaction":"t"}`), "network", ReasonInvalidPayload, response},
		{"response no reason", b(`{"success":false,"network":"n"}`), "errorReason", ReasonInvalidPayload, response},
		{"response no tx", b(`{"success":true,"network":"n"}`), "transaction", ReasonInvalidPayload, response},
	}
	for _, tc := range tests {
		err := tc.decode(tc.value)
		var e *Error
		if !errors.As(err, &e) || e.Field != tc.field || e.Reason != tc.reason || !errors.Is(err, l402.ErrMalformed) {
			t.Errorf("%s: got %v, want %s (%s)", tc.name, err, tc.field, tc.reason)
		}
	}
}

func required(s string) error  { _, err := DecodePaymentRequired(s); return err }
func signature(s string) error { _, err := DecodePaymentPayload(s); return err }
func response(s string) error  { _, err := DecodeSettlementResponse(s); return err }

// TestHeaderBase64Liberal: padded or not, standard or URL alphabet.
func TestHeaderBase64Liberal(t *testing.T) {
	raw := []byte(`{"success":false,"errorReason":"x??>","network":"n"}`)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if s, err := DecodeSettlementResponse(enc.EncodeToString(raw)); err != nil || s.ErrorReason != "x??>" {
			t.Errorf("%v %v", s, err)
		}
	}
}
