package storage

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"gopkg.in/macaroon.v2"

	"github.com/l402d/l402d/l402"
)

// verifyFixture mints the producer's token shape (four caveats: expiry,
// resource, amount, node) with its root key in an on-disk store, warm.
func verifyFixture(b *testing.B) (*Store, string, [32]byte, []byte) {
	b.Helper()
	s, err := Open(context.Background(), DefaultOptions(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	pre := sha256.Sum256([]byte("preimage"))
	mac, id, err := l402.Mint(context.Background(), s, l402.MintParams{
		PaymentHash: sha256.Sum256(pre[:]), Resource: "/api/weather/forecast", AmountSats: 50,
		Node:       "02aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899",
		ValidUntil: time.Now().Add(time.Hour),
	})
	if err != nil {
		b.Fatal(err)
	}
	key, err := s.RootKey(context.Background(), id.TokenID)
	if err != nil {
		b.Fatal(err)
	}
	cred, _ := l402.FormatCredential(l402.Credential{Macaroon: mac, Preimage: pre})
	return s, cred, pre, key[:]
}

// BenchmarkVerifyRawMacaroonV2 is the reference: macaroon.v2 parsing and
// verifying the same 4-caveat token with the key in hand.
func BenchmarkVerifyRawMacaroonV2(b *testing.B) {
	_, cred, _, key := verifyFixture(b)
	c, _ := l402.ParseAuthorization(cred)
	raw, _ := c.Macaroon.MarshalBinary()
	check := func(string) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		var m macaroon.Macaroon
		if err := m.UnmarshalBinary(raw); err != nil {
			b.Fatal(err)
		}
		if err := m.Verify(key, check, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyFullWithStore is l402d's whole verify path from the
// Authorization value: parse, decode, preimage, root key from this store
// (warm), signature, caveats, revocation.
func BenchmarkVerifyFullWithStore(b *testing.B) {
	s, cred, _, _ := verifyFixture(b)
	v := &l402.Verifier{Keys: s, Revocations: s}
	want := l402.Expect{Resource: "/api/weather/forecast", Node: "02aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c, err := l402.ParseAuthorization(cred)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.Verify(ctx, c, want); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyFullWithStoreParallel is the same on every core.
func BenchmarkVerifyFullWithStoreParallel(b *testing.B) {
	s, cred, _, _ := verifyFixture(b)
	v := &l402.Verifier{Keys: s, Revocations: s}
	want := l402.Expect{Resource: "/api/weather/forecast", Node: "02aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899"}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c, err := l402.ParseAuthorization(cred)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := v.Verify(ctx, c, want); err != nil {
				b.Fatal(err)
			}
		}
	})
}
