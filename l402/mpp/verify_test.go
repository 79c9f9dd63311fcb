package mpp

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/l402d/l402d/l402"
)

func TestVerifyCharge(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c, pre := testCharge(t, 1, now.Add(15*time.Minute))
	_, otherHash := testPreimage(9)
	payload := func(p string) json.RawMessage { b, _ := json.Marshal(ChargePayload{Preimage: p}); return b }
	good := Credential{Challenge: c, Payload: payload(hex.EncodeToString(pre[:]))}

	ch, err := VerifyCharge(testKey, good, now)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Preimage != pre || !ch.Preimage.Matches(ch.PaymentHash) || ch.Request.Amount != "21" {
		t.Fatalf("%+v", ch)
	}

	// A challenge with another request re-signed under our key: its hash
	// is not the preimage's.
	other := c
	otherReq, _ := c.ChargeRequest()
	otherReq.MethodDetails.PaymentHash = hex.EncodeToString(otherHash[:])
	other.Request, _ = EncodeRequest(otherReq)
	other.ID, _ = NewChallengeID(testKey, other)
	noHash := c
	nhReq, _ := c.ChargeRequest()
	nhReq.MethodDetails.PaymentHash = ""
	noHash.Request, _ = EncodeRequest(nhReq)
	noHash.ID, _ = NewChallengeID(testKey, noHash)

	tests := []struct {
		name string
		key  []byte
		cred func(Credential) Credential
		at   time.Time
		want error
	}{
		{"expired", testKey, func(c Credential) Credential { return c }, now.Add(16 * time.Minute), l402.ErrExpired},
		{"other key", []byte("k"), func(c Credential) Credential { return c }, now, ErrChallengeID},
		{"altered realm", testKey, func(c Credential) Credential { c.Challenge.Realm = "x"; return c }, now, ErrChallengeID},
		{"later expiry", testKey, func(c Credential) Credential { c.Challenge.Expires = "2099-01-01T00:00:00Z"; return c }, now, ErrChallengeID},
		{"session", testKey, func(c Credential) Credential { c.Challenge.Intent = IntentSession; return c }, now, ErrUnsupported},
		{"bad preimage hex", testKey, func(c Credential) Credential { c.Payload = payload("zz"); return c }, now, l402.ErrMalformed},
		{"no preimage", testKey, func(c Credential) Credential { c.Payload = json.RawMessage(`{}`); return c }, now, l402.ErrMalformed},
		{"wrong preimage", testKey, func(c Credential) Credential { c.Challenge = other; return c }, now, l402.ErrWrongPreimage},
		{"no payment hash", testKey, func(c Credential) Credential { c.Challenge = noHash; return c }, now, l402.ErrMalformed},
		{"missing request", testKey, func(c Credential) Credential { c.Challenge.Request = ""; return c }, now, l402.ErrMalformed},
	}
	for _, tc := range tests {
		if _, err := VerifyCharge(tc.key, tc.cred(good), tc.at); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestChargeRequestValidate(t *testing.T) {
	ok := ChargeRequest{Amount: "21", Currency: "sat", MethodDetails: ChargeMethodDetails{Invoice: "lnbc"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		field string
		mut   func(*ChargeRequest)
	}{
		{"amount", func(r *ChargeRequest) { r.Amount = "" }},
		{"amount", func(r *ChargeRequest) { r.Amount = "-1" }},
		{"amount", func(r *ChargeRequest) { r.Amount = "021" }},
		{"amount", func(r *ChargeRequest) { r.Amount = "1.5" }},
		{"amount", func(r *ChargeRequest) { r.Amount = "99999999999999999999" }},
		{"currency", func(r *ChargeRequest) { r.Currency = "msat" }},
		{"methodDetails.invoice", func(r *ChargeRequest) { r.MethodDetails.Invoice = "" }},
		{"methodDetails.paymentHash", func(r *ChargeRequest) { r.MethodDetails.PaymentHash = "abcd" }},
	}
	for _, tc := range tests {
		r := ok
		tc.mut(&r)
		var fe *FieldError
		if err := r.Validate(); !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: got %v, want %s", r, err, tc.field)
		}
	}
}

// TestEncodeRequestJCS: the request parameter is base64url of the JCS
// bytes, members sorted, empty optionals omitted.
func TestEncodeRequestJCS(t *testing.T) {
	enc, err := EncodeRequest(ChargeRequest{Amount: "21", Currency: "sat", Description: "<café>",
		MethodDetails: ChargeMethodDetails{Invoice: "lnbcrt1", PaymentHash: "ab", Network: "regtest"}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(enc)
	want := `{"amount":"21","currency":"sat","description":"<café>","methodDetails":{"invoice":"lnbcrt1","network":"regtest","paymentHash":"ab"}}`
	if string(raw) != want {
		t.Fatalf("got  %s\nwant %s", raw, want)
	}
}
