package mpp

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/l402d/l402d/l402"
)

func TestCredentialRoundTrip(t *testing.T) {
	c, pre := testCharge(t, 1, time.Unix(1_900_000_000, 0))
	v, err := NewChargeCredential(c, pre)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, "Payment ") || strings.ContainsAny(v, "=+/") {
		t.Fatalf("not Payment + unpadded base64url: %s", v)
	}
	token := strings.TrimPrefix(v, "Payment ")
	raw, _ := base64.RawURLEncoding.DecodeString(token)
	variants := map[string]string{
		"as sent":    v,
		"lower":      "payment " + token,
		"padded":     "Payment " + base64.URLEncoding.EncodeToString(raw),
		"std alpha":  "Payment " + base64.StdEncoding.EncodeToString(raw),
		"extra ws":   "  Payment    " + token + " ",
		"unknown js": "Payment " + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(raw), `{"challenge"`, `{"x":[1],"challenge"`, 1))),
	}
	for name, val := range variants {
		cred, err := ParseCredential(val)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cred.Challenge != c {
			t.Fatalf("%s: echo %+v", name, cred.Challenge)
		}
		p, err := cred.ChargePayload()
		if err != nil || p.Preimage != hex.EncodeToString(pre[:]) {
			t.Fatalf("%s: payload %+v %v", name, p, err)
		}
	}
}

func TestParseCredentialErrors(t *testing.T) {
	enc := func(s string) string { return "Payment " + base64.RawURLEncoding.EncodeToString([]byte(s)) }
	echo := `"challenge":{"id":"i","realm":"r","method":"lightning","intent":"charge","request":"q"}`
	tests := []struct{ value, field string }{
		{"L402 abc:def", HeaderAuthorization},
		{"Payment", HeaderAuthorization},
		{"Payment    ", HeaderAuthorization},
		{"Payment !!!", HeaderAuthorization},
		{"Payment " + strings.Repeat("A", maxEncoded+1), HeaderAuthorization},
		{enc(`[1]`), HeaderAuthorization},
		{enc(`{` + echo + `}`), "payload"},
		{enc(`{` + echo + `,"payload":null}`), "payload"},
		{enc(`{` + echo + `,"payload":"x"}`), "payload"},
		{enc(`{"challenge":{"id":"i","method":"lightning","intent":"charge","request":"q"},"payload":{}}`), "challenge.realm"},
		{enc(`{"challenge":{"id":"i","realm":"r","method":"lightning","intent":"charge"},"payload":{}}`), "challenge.request"},
	}
	for _, tc := range tests {
		_, err := ParseCredential(tc.value)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%.60q: got %v, want field %s", tc.value, err, tc.field)
		}
	}
}

func TestCredentialFromHeader(t *testing.T) {
	c, pre := testCharge(t, 1, time.Time{})
	good, _ := NewChargeCredential(c, pre)
	tests := []struct {
		name   string
		values []string
		want   error // nil: found
	}{
		{"none", nil, l402.ErrNoCredential},
		{"only L402", []string{"L402 mac:pre"}, l402.ErrNoCredential},
		{"L402 then Payment", []string{"L402 mac:pre", good}, nil},
		{"bad then good", []string{"Payment xx", good}, nil},
		{"only bad", []string{"Payment xx"}, l402.ErrMalformed},
	}
	for _, tc := range tests {
		h := http.Header{}
		for _, v := range tc.values {
			h.Add(HeaderAuthorization, v)
		}
		cred, err := CredentialFromHeader(h)
		if tc.want == nil {
			if err != nil || cred.Challenge != c {
				t.Errorf("%s: %v", tc.name, err)
			}
		} else if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestReceipt(t *testing.T) {
	_, hash := testPreimage(1)
	r := NewChargeReceipt(hash, "cid", time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)))
	if r.Timestamp != "2026-01-02T02:04:05Z" || r.Reference != hex.EncodeToString(hash[:]) {
		t.Fatalf("%+v", r)
	}
	h := http.Header{}
	if err := SetReceipt(h, r); err != nil {
		t.Fatal(err)
	}
	got, err := ParseReceipt(h.Get(HeaderReceipt))
	if err != nil || got != r {
		t.Fatalf("%+v %v", got, err)
	}
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	bad := []struct{ value, field string }{
		{"", HeaderReceipt},
		{"%%%", HeaderReceipt},
		{enc(`"x"`), HeaderReceipt},
		{enc(`{"status":"failed","method":"lightning","timestamp":"t","reference":"r"}`), "status"},
		{enc(`{"status":"success","timestamp":"t","reference":"r"}`), "method"},
		{enc(`{"status":"success","method":"lightning","reference":"r"}`), "timestamp"},
		{enc(`{"status":"success","method":"lightning","timestamp":"t"}`), "reference"},
	}
	for _, tc := range bad {
		_, err := ParseReceipt(tc.value)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%q: got %v, want %s", tc.value, err, tc.field)
		}
	}
	// A session receipt's extra members are ignored.
	if _, err := ParseReceipt(enc(`{"status":"success","method":"lightning","timestamp":"t","reference":"r","refundSats":5}`)); err != nil {
		t.Error(err)
	}
}
