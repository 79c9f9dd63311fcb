package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// encodePaymentV2 is encodePayment as format 2 wrote it, before schemes:
// entries on disk from that code must still decode.
func encodePaymentV2(p *Payment) []byte {
	b := []byte{2}
	b = append(b, p.PaymentHash[:]...)
	b = append(b, p.Preimage[:]...)
	b = append(b, codeOf(paymentStates[:], p.State), codeOf(paymentKinds[:], p.Kind))
	for _, n := range []int64{p.AmountMsat, p.FeeLimitMsat, p.FeeMsat, dayOf(p.BudgetDay)} {
		b = binary.AppendVarint(b, n)
	}
	b = binary.AppendUvarint(b, uint64(p.Attempts))
	for _, t := range []time.Time{p.CreatedAt, p.UpdatedAt, p.SettledAt} {
		b = binary.AppendVarint(b, unixNanos(t))
	}
	for _, s := range [...]string{p.Invoice, p.Domain, p.URL, p.Macaroon, p.Origin, p.Scope, p.FailureReason} {
		b = appendString(b, s)
	}
	approved := byte(0)
	if p.Approved {
		approved = 1
	}
	return binary.AppendVarint(append(b, approved), p.UnapprovedMinute)
}

// encodeTokenV1 is encodeToken as format 1 wrote it.
func encodeTokenV1(t *Token) []byte {
	b := []byte{1}
	b = append(b, t.PaymentHash[:]...)
	b = append(b, t.Preimage[:]...)
	b = binary.AppendVarint(b, t.AmountSats)
	b = binary.AppendVarint(b, unixNanos(t.CreatedAt))
	b = binary.AppendVarint(b, unixNanos(t.ExpiresAt))
	b = appendString(b, t.Macaroon)
	return appendString(b, t.Service)
}

func TestDecodeOldFormatPayment(t *testing.T) {
	tests := []struct {
		kind       PaymentKind
		wantScheme string
	}{
		{KindAccess, SchemeL402},
		{KindChallenge, SchemeL402},
		{KindInvoice, ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			pre, h := newPreimage(t)
			p := testPayment(h, 7, "d")
			p.Kind, p.State, p.Preimage, p.Attempts, p.Approved = tt.kind, PaymentSucceeded, pre, 1, true
			p.CreatedAt, p.BudgetDay = time.Unix(1_700_000_000, 5).UTC(), dayStart(19_000)
			got, err := decodePayment(paymentKey(h), encodePaymentV2(p))
			if err != nil {
				t.Fatal(err)
			}
			want := *p
			want.Scheme = tt.wantScheme
			if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", want) {
				t.Fatalf("\n got %+v\nwant %+v", *got, want)
			}
			// Written again, it takes the new format and keeps its scheme.
			again, err := decodePayment(paymentKey(h), encodePayment(got))
			if err != nil || fmt.Sprintf("%+v", *again) != fmt.Sprintf("%+v", want) {
				t.Fatalf("re-encoded: %v %+v", err, again)
			}
		})
	}
}

func TestPaymentSchemeRoundTrip(t *testing.T) {
	for _, scheme := range []string{"", SchemeL402, SchemeMPP, SchemeX402} {
		pre, h := newPreimage(t)
		p := testPayment(h, 7, "d")
		p.State, p.Preimage, p.Scheme, p.Offer, p.Receipt = PaymentSucceeded, pre, scheme, "offer", "receipt"
		p.CreatedAt, p.BudgetDay = time.Unix(1_700_000_000, 5).UTC(), dayStart(19_000)
		v := encodePayment(p)
		got, err := decodePayment(paymentKey(h), v)
		if err != nil || fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", *p) {
			t.Fatalf("%q: %v\n got %+v\nwant %+v", scheme, err, got, p)
		}
		for n := range len(v) {
			if _, err := decodePayment(paymentKey(h), v[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%q: decoding %d of %d bytes: %v", scheme, n, len(v), err)
			}
		}
	}
}

func TestReservePaymentScheme(t *testing.T) {
	s := openStore(t, Options{})
	ctx := t.Context()
	_, h := newPreimage(t)
	p := testPayment(h, 7, "d")
	p.Scheme = "lsat"
	if _, err := s.ReservePayment(ctx, p); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown scheme: %v", err)
	}
	p.Scheme, p.Offer = SchemeMPP, strings.Repeat("o", MaxOfferLen+1)
	if _, err := s.ReservePayment(ctx, p); !errors.Is(err, ErrInvalid) {
		t.Fatalf("long offer: %v", err)
	}
	p.Offer = "o"
	if _, err := s.ReservePayment(ctx, p); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("r", MaxReceiptLen+10)
	if err := s.SetPaymentReceipt(ctx, h, long); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPaymentReceipt(ctx, h, "second"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Payment(ctx, h)
	if err != nil || got.Scheme != SchemeMPP || got.Offer != "o" || got.Receipt != long[:MaxReceiptLen] {
		t.Fatalf("%v scheme %q offer %q receipt %d bytes", err, got.Scheme, got.Offer, len(got.Receipt))
	}
}

func TestDecodeOldFormatToken(t *testing.T) {
	tok := testToken(t, "https://a.example", "/x")
	tok.CreatedAt = time.Unix(1_700_000_000, 0).UTC()
	got, err := decodeToken(tokenKey(tok.Origin, tok.Scope), encodeTokenV1(tok))
	if err != nil {
		t.Fatal(err)
	}
	want := *tok
	want.Scheme = SchemeL402
	if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("\n got %+v\nwant %+v", *got, want)
	}
}

func TestSingleUseToken(t *testing.T) {
	s := openStore(t, Options{})
	ctx := t.Context()
	base := testToken(t, "https://a.example", "once:/x")
	tests := []struct {
		name string
		edit func(*Token)
		ok   bool
	}{
		{"mpp", func(t *Token) { t.Scheme, t.Credential, t.Macaroon = SchemeMPP, "Payment abc", "" }, true},
		{"x402", func(t *Token) { t.Scheme, t.Credential, t.Macaroon = SchemeX402, "eyJ4", "" }, true},
		{"l402 explicit", func(t *Token) { t.Scheme = SchemeL402 }, true},
		{"single-use without credential", func(t *Token) { t.Scheme, t.Macaroon = SchemeMPP, "" }, false},
		{"single-use with macaroon", func(t *Token) { t.Scheme, t.Credential = SchemeMPP, "Payment abc" }, false},
		{"l402 with credential", func(t *Token) { t.Credential = "x" }, false},
		{"unknown scheme", func(t *Token) { t.Scheme = "lsat" }, false},
		{"credential too long", func(t *Token) {
			t.Scheme, t.Credential, t.Macaroon = SchemeX402, strings.Repeat("c", MaxCredentialLen+1), ""
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := *base
			tt.edit(&tok)
			err := s.PutToken(ctx, &tok)
			if (err == nil) != tt.ok {
				t.Fatalf("PutToken: %v, want ok %v", err, tt.ok)
			}
			if !tt.ok {
				return
			}
			got, err := s.TokensForOrigin(ctx, tok.Origin)
			if err != nil || len(got) != 1 || got[0].Scheme != tok.Scheme || got[0].Credential != tok.Credential || got[0].Macaroon != tok.Macaroon {
				t.Fatalf("%v %+v", err, got)
			}
		})
	}
}
