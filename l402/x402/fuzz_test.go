package x402

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzDecodeHeaders: each header decoder either fails with *Error or
// yields a value whose encoding is stable under decode and re-encode; a
// decoded payment payload run through the settle checks never panics.
func FuzzDecodeHeaders(f *testing.F) {
	for _, name := range []string{"http-payment-required.b64", "http-payment-signature.b64",
		"http-payment-response-success.b64", "http-payment-response-failure.b64"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	for _, name := range []string{"bip122-payload.json", "bip122-settlement.json"} {
		b, _ := os.ReadFile(filepath.Join("testdata", name))
		f.Add(base64.StdEncoding.EncodeToString(b))
	}
	f.Add("")
	f.Add("e30=")
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"x402Version":2,"accepts":[{"maxTimeoutSeconds":1e999}]}`)))
	f.Fuzz(fuzzHeaders)
}

// FuzzDecodeHeaderJSON is FuzzDecodeHeaders one layer down: the fuzzer
// mutates the JSON and the target wraps it in base64, so mutations reach
// the JSON decoding and validation instead of dying in base64.
func FuzzDecodeHeaderJSON(f *testing.F) {
	for _, name := range []string{"bip122-payload.json", "bip122-settlement.json", "bip122-requirements.json", "core-verify-request.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"x402Version":2,"resource":{"url":"u"},"accepts":[{"scheme":"exact","network":"bip122:x","amount":"1","asset":"BTC","payTo":"p","maxTimeoutSeconds":1,"extra":{"paymentFlow":"upfront"}}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) { fuzzHeaders(t, base64.StdEncoding.EncodeToString(raw)) })
}

// fuzzHeaders runs every decoder on value.
func fuzzHeaders(t *testing.T, value string) {
	check := func(v any, err error, decode func(string) (any, error)) {
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		enc1, err := EncodeHeader(v)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decode(enc1)
		if err != nil {
			t.Fatalf("re-encoded value does not decode: %v", err)
		}
		if enc2, _ := EncodeHeader(back); enc2 != enc1 {
			t.Fatalf("unstable encoding:\n%s\n%s", enc1, enc2)
		}
	}
	pr, err := DecodePaymentRequired(value)
	check(pr, err, func(s string) (any, error) { return DecodePaymentRequired(s) })
	pp, err := DecodePaymentPayload(value)
	check(pp, err, func(s string) (any, error) { return DecodePaymentPayload(s) })
	if err == nil {
		_, err := CheckLightningSettle(pp.Accepted, pp, zpayDecode, time.Unix(1700000000, 0), DefaultSkew)
		var e *Error
		if err != nil && !errors.As(err, &e) {
			t.Fatalf("untyped settle error %v", err)
		}
	}
	sr, err := DecodeSettlementResponse(value)
	check(sr, err, func(s string) (any, error) { return DecodeSettlementResponse(s) })
}
