package storage

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func testToken(t testing.TB, origin, scope string) *Token {
	t.Helper()
	pre, h := newPreimage(t)
	return &Token{Origin: origin, Scope: scope, PaymentHash: h, Preimage: pre, Macaroon: "AgEEbDQwMg", Service: "svc",
		AmountSats: 5, ExpiresAt: time.Unix(2_000_000_000, 0).UTC()}
}

func TestTokenCache(t *testing.T) {
	s := openStore(t, Options{})
	ctx := t.Context()
	a1 := testToken(t, "https://a.example", "/x")
	a2 := testToken(t, "https://a.example", "/api/*")
	port := testToken(t, "https://a.example:8443", "/x")
	b := testToken(t, "https://b.example", "service:svc")
	for _, tok := range []*Token{a1, a2, port, b} {
		if err := s.PutToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.TokensForOrigin(ctx, "https://a.example")
	if err != nil || len(got) != 2 || got[0].Scope != "/api/*" || got[1].Scope != "/x" || got[1].PaymentHash != a1.PaymentHash || got[1].CreatedAt.IsZero() {
		t.Fatalf("a.example: %v %+v", err, got)
	}
	if got, _ := s.TokensForOrigin(ctx, "https://a.example:8443"); len(got) != 1 || got[0].PaymentHash != port.PaymentHash {
		t.Fatalf("origins with ports are distinct: %+v", got)
	}
	if got, _ := s.TokensForOrigin(ctx, "https://a.exampl"); len(got) != 0 {
		t.Fatalf("origin prefix matched: %+v", got)
	}

	// A newer token at the same place replaces the old one, and a drop
	// of the old one leaves the newer alone.
	newer := testToken(t, "https://a.example", "/x")
	if err := s.PutToken(ctx, newer); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.DeleteToken(ctx, "https://a.example", "/x", a1.PaymentHash); err != nil || ok {
		t.Fatalf("dropping the replaced token: %v %v", ok, err)
	}
	if ok, err := s.DeleteToken(ctx, "https://a.example", "/x", newer.PaymentHash); err != nil || !ok {
		t.Fatalf("dropping the current token: %v %v", ok, err)
	}
	if n, err := s.DeleteTokensByHash(ctx, b.PaymentHash); err != nil || n != 1 {
		t.Fatalf("delete by hash: %d %v", n, err)
	}
	all, err := s.ListTokens(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("left: %v %+v", err, all)
	}
	if all[0].Expired(time.Unix(1_999_999_999, 0)) || !all[0].Expired(time.Unix(2_000_000_000, 0)) {
		t.Fatal("expiry boundary")
	}
}

func TestPutTokenValidates(t *testing.T) {
	s := openStore(t, Options{})
	tests := []struct {
		name string
		edit func(*Token)
	}{
		{"no origin", func(t *Token) { t.Origin = "" }},
		{"NUL in origin", func(t *Token) { t.Origin = "https://a\x00b" }},
		{"no scope", func(t *Token) { t.Scope = "" }},
		{"no macaroon", func(t *Token) { t.Macaroon = "" }},
		{"wrong preimage", func(t *Token) { t.Preimage[0] ^= 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := testToken(t, "https://a.example", "/x")
			tt.edit(tok)
			if err := s.PutToken(t.Context(), tok); !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
}

func FuzzDecodeToken(f *testing.F) {
	tok := testToken(f, "https://a.example", "/x*")
	f.Add([]byte("https://a.example\x00/x*"), encodeToken(tok))
	f.Add([]byte("o\x00s"), []byte{tokenFormat})
	f.Fuzz(func(t *testing.T, keyRest, v []byte) {
		k := append([]byte(prefixToken), keyRest...)
		got, err := decodeToken(k, v)
		if err != nil {
			return
		}
		again, err := decodeToken(tokenKey(got.Origin, got.Scope), encodeToken(got))
		if err != nil || fmt.Sprintf("%+v", *again) != fmt.Sprintf("%+v", *got) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
