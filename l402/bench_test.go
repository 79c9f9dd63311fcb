package l402

import (
	"context"
	"net/http"
	"testing"
	"time"

	"gopkg.in/macaroon.v2"
)

// benchToken mints the token shape the producer hands out: four caveats
// (expiry, resource, amount, node).
func benchToken(b *testing.B, keys RootKeyStore) (mac *macaroon.Macaroon, pre [32]byte, key [32]byte) {
	b.Helper()
	pre, hash := testPreimage(1)
	mac, id, err := Mint(context.Background(), keys, MintParams{
		PaymentHash: hash, Resource: "/api/weather/forecast", AmountSats: 50,
		Node: testNode, ValidUntil: time.Now().Add(time.Hour),
	})
	if err != nil {
		b.Fatal(err)
	}
	key, _ = keys.RootKey(context.Background(), id.TokenID)
	return mac, pre, key
}

// BenchmarkRawMacaroonVerify is the reference: macaroon.v2 parsing and
// verifying the same 4-caveat token, with no L402 logic at all.
func BenchmarkRawMacaroonVerify(b *testing.B) {
	mac, _, key := benchToken(b, newMemKeys())
	raw, _ := mac.MarshalBinary()
	check := func(string) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		var m macaroon.Macaroon
		if err := m.UnmarshalBinary(raw); err != nil {
			b.Fatal(err)
		}
		if err := m.Verify(key[:], check, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyHeader is the full path from an Authorization value:
// parse, decode, preimage, root key, signature, caveats, revocation.
func BenchmarkVerifyHeader(b *testing.B) {
	keys := newMemKeys()
	mac, pre, _ := benchToken(b, keys)
	auth, _ := FormatCredential(Credential{Macaroon: mac, Preimage: pre})
	v := &Verifier{Keys: keys, Revocations: keys}
	want := Expect{Resource: "/api/weather/forecast", Node: testNode}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c, err := ParseAuthorization(auth)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.Verify(ctx, c, want); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMint(b *testing.B) {
	keys := newMemKeys()
	_, hash := testPreimage(1)
	p := MintParams{PaymentHash: hash, Resource: "/api/weather/forecast", AmountSats: 50, Node: testNode, ValidUntil: time.Now().Add(time.Hour)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		mac, _, err := Mint(ctx, keys, p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := EncodeMacaroon(mac); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseAuthorization(b *testing.B) {
	mac, pre, _ := benchToken(b, newMemKeys())
	auth, _ := FormatCredential(Credential{Macaroon: mac, Preimage: pre})
	h := http.Header{"Authorization": {auth}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CredentialFromHeader(h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseChallenge(b *testing.B) {
	mac, _, _ := benchToken(b, newMemKeys())
	_, hash := testPreimage(1)
	c := Challenge{Macaroon: mustEncode(b, mac), Invoice: testInvoice(b, hash, 50)}
	h := http.Header{}
	SetChallenge(h, c, true)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseChallenge(h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSetChallenge(b *testing.B) {
	mac, _, _ := benchToken(b, newMemKeys())
	_, hash := testPreimage(1)
	c := Challenge{Macaroon: mustEncode(b, mac), Invoice: testInvoice(b, hash, 50)}
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		SetChallenge(h, c, false)
	}
}
