package mpp

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/l402d/l402d/l402"
)

// Every parser either fails with an error that unwraps to
// l402.ErrMalformed or yields a value that formats and parses back to
// itself.

func FuzzParseChallenges(f *testing.F) {
	c, _ := testCharge(f, 1, time.Unix(1_900_000_000, 0))
	v, _ := FormatChallenge(c)
	f.Add(v, `L402 macaroon="m", invoice="i"`)
	f.Add(`payment ID=i1, Realm="r",METHOD=lightning,intent=charge , request = "q", description="a \"b\" \\"`, "")
	f.Add(`Basic dXNlcg==, Payment id="i", id="j"`, `Payment id="x`)
	f.Add("Payment \x00=\"\xff\", ,,= ==", `Payment realm="a|b", method="lightning", intent="charge", request="q", id="i"`)
	f.Add("", "")
	f.Fuzz(func(t *testing.T, a, b string) {
		cs, err := ParseChallenges([]string{a, b})
		if err != nil {
			if !errors.Is(err, l402.ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		for _, c := range cs {
			v, err := FormatChallenge(c)
			if err != nil {
				t.Fatalf("parsed challenge does not format: %+v %v", c, err)
			}
			back, err := ParseChallenges([]string{v})
			if err != nil || len(back) != 1 || back[0] != c {
				t.Fatalf("round trip %q: %+v %v", v, back, err)
			}
			VerifyChallengeID(testKey, c) // must not panic
		}
	})
}

func FuzzParseCredential(f *testing.F) {
	c, pre := testCharge(f, 1, time.Unix(1_900_000_000, 0))
	v, _ := NewChargeCredential(c, pre)
	f.Add(v)
	enc := func(s string) string { return "Payment " + base64.RawURLEncoding.EncodeToString([]byte(s)) }
	f.Add(enc(`{"challenge":{"id":"i","realm":"r","method":"lightning","intent":"charge","request":"q"},"payload":{"preimage":"00"}}`))
	f.Add(enc(`{"challenge":{},"payload":null}`))
	f.Add("Payment ====")
	f.Add("payment e30")
	f.Add("")
	f.Fuzz(func(t *testing.T, value string) {
		cred, err := ParseCredential(value)
		if err != nil {
			if !errors.Is(err, l402.ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, err := FormatCredential(cred)
		if err != nil {
			t.Fatalf("parsed credential does not format: %v", err)
		}
		back, err := ParseCredential(again)
		if err != nil || back.Challenge != cred.Challenge || back.Source != cred.Source {
			t.Fatalf("round trip: %+v %v", back, err)
		}
		var x, y any
		if json.Unmarshal(cred.Payload, &x) != nil || json.Unmarshal(back.Payload, &y) != nil || !reflect.DeepEqual(x, y) {
			t.Fatalf("payload changed: %s vs %s", cred.Payload, back.Payload)
		}
		// Verification of arbitrary credentials fails cleanly.
		if _, err := VerifyCharge(testKey, cred, time.Unix(1_800_000_000, 0)); err == nil && cred.Challenge != c {
			t.Fatalf("forged credential verified: %+v", cred)
		}
	})
}

func FuzzParseReceipt(f *testing.F) {
	_, hash := testPreimage(1)
	v, _ := FormatReceipt(NewChargeReceipt(hash, "cid", time.Unix(1_800_000_000, 0)))
	f.Add(v)
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"status":"success","method":"x","timestamp":"t","reference":"r","refundSats":1}`)))
	f.Add("e30=")
	f.Add("")
	f.Fuzz(func(t *testing.T, value string) {
		r, err := ParseReceipt(value)
		if err != nil {
			if !errors.Is(err, l402.ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, err := FormatReceipt(r)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := ParseReceipt(again); err != nil || back != r {
			t.Fatalf("round trip: %+v %v", back, err)
		}
	})
}

func FuzzDecodeChargeRequest(f *testing.F) {
	c, _ := testCharge(f, 1, time.Time{})
	f.Add(c.Request)
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"amount":"0","currency":"sat","methodDetails":{"invoice":"x"}}`)))
	f.Add("")
	f.Fuzz(func(t *testing.T, param string) {
		r, err := DecodeChargeRequest(param)
		if err != nil {
			if !errors.Is(err, l402.ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		enc, err := EncodeRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := DecodeChargeRequest(enc); err != nil || back != r {
			t.Fatalf("round trip: %+v %v", back, err)
		}
	})
}
