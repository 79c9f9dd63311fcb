package l402

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"gopkg.in/macaroon.v2"
)

// anyKey answers every token id with the same root key, so fuzzed
// macaroons reach the signature and caveat checks.
type anyKey struct{ key [RootKeySize]byte }

func (a anyKey) NewRootKey(context.Context, TokenID) ([RootKeySize]byte, error) { return a.key, nil }
func (a anyKey) RootKey(context.Context, TokenID) ([RootKeySize]byte, error)    { return a.key, nil }

// fuzzSeeds returns real tokens and their parts for seed corpora.
func fuzzSeeds(f *testing.F) (macB64 string, raw []byte, pre [32]byte, inv string) {
	keys := anyKey{key: [32]byte{7}}
	pre, hash := testPreimage(3)
	mac, _, err := Mint(context.Background(), keys, MintParams{
		PaymentHash: hash, Service: "svc", Capabilities: []string{"read"},
		Resource: "/api/x", AmountSats: 21, Node: testNode, ValidUntil: time.Unix(4_000_000_000, 0),
	})
	if err != nil {
		f.Fatal(err)
	}
	raw, _ = mac.MarshalBinary()
	return base64.StdEncoding.EncodeToString(raw), raw, pre, testInvoice(f, hash, 21)
}

func FuzzDecodeIdentifier(f *testing.F) {
	_, raw, _, _ := fuzzSeeds(f)
	mac := mustDecode(f, raw)
	f.Add(mac.Id())
	f.Add([]byte(hex.EncodeToString(mac.Id())))
	f.Add([]byte{})
	f.Add([]byte{0, 1, 2})
	f.Add(bytes.Repeat([]byte{'f'}, 2*IdentifierSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := DecodeIdentifier(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, err := id.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeIdentifier(again)
		if err != nil || back != id {
			t.Fatalf("round trip: %+v %v", back, err)
		}
	})
}

func FuzzParseChallenges(f *testing.F) {
	mac, _, _, inv := fuzzSeeds(f)
	for _, vals := range realWorldChallenges(mac, inv) {
		f.Add(vals[0], vals[len(vals)-1])
	}
	f.Add("", "")
	f.Add(`L402 macaroon="`, `invoice=`)
	f.Add(`L402 ===,,, "\`, `LSAT token=x invoice=y`)
	f.Add("\x00\xff L402", "Digest realm=\"a\", nonce=\"b\"")
	f.Fuzz(func(t *testing.T, a, b string) {
		cs, err := ParseChallenges([]string{a, b})
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		for _, c := range cs {
			if c.Macaroon == "" || c.Invoice == "" {
				t.Fatalf("challenge without parts: %+v", c)
			}
			if strings.ContainsAny(c.Macaroon+c.Invoice, "\"\\") {
				continue // cannot be re-rendered without escaping
			}
			again, err := ParseChallenges([]string{c.HeaderValue(SchemeL402)})
			if err != nil || again[0].Macaroon != c.Macaroon || again[0].Invoice != c.Invoice {
				t.Fatalf("re-render of %+v: %+v %v", c, again, err)
			}
		}
	})
}

func FuzzParseAuthorization(f *testing.F) {
	mac, raw, pre, _ := fuzzSeeds(f)
	ph := hex.EncodeToString(pre[:])
	f.Add("L402 " + mac + ":" + ph)
	f.Add("LSAT " + mac + ":" + strings.ToUpper(ph))
	f.Add("l402 " + base64.RawURLEncoding.EncodeToString(raw) + ":" + ph)
	f.Add("L402 " + mac + "," + mac + ":" + ph)
	f.Add("Bearer x")
	f.Add("L402 :")
	f.Add("L402 ====:" + ph)
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseAuthorization(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNoCredential) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		out, err := FormatCredential(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseAuthorization(out)
		if err != nil || back.Preimage != c.Preimage || !bytes.Equal(back.Macaroon.Signature(), c.Macaroon.Signature()) {
			t.Fatalf("re-render: %v", err)
		}
	})
}

func FuzzCredentialFromHeader(f *testing.F) {
	mac, raw, pre, _ := fuzzSeeds(f)
	ph := hex.EncodeToString(pre[:])
	withPre, _ := AddCaveats(mustDecode(f, raw), Caveat{CondPreimage, ph})
	hexMac := hex.EncodeToString(mustRaw(f, withPre))
	f.Add("L402 "+mac+":"+ph, "", "")
	f.Add("LSAT "+mac+":"+ph, "L402 "+mac+":"+ph, "")
	f.Add("", hexMac, "")
	f.Add("", "", strings.ToUpper(hexMac))
	f.Add("Bearer x", "zz", "0201")
	f.Fuzz(func(t *testing.T, auth, grpc, plain string) {
		h := http.Header{}
		for _, kv := range [][2]string{{HeaderAuthorization, auth}, {HeaderGrpcMacaroon, grpc}, {HeaderMacaroon, plain}} {
			if kv[1] != "" {
				h.Set(kv[0], kv[1])
			}
		}
		_, err := CredentialFromHeader(h)
		if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNoCredential) {
			t.Fatalf("untyped error %v", err)
		}
	})
}

// FuzzDecodeMacaroon drives the whole verify path with arbitrary tokens:
// decode, inspect, then verify against a key store that knows every id.
func FuzzDecodeMacaroon(f *testing.F) {
	mac, raw, pre, _ := fuzzSeeds(f)
	f.Add(mac, pre[:])
	f.Add(base64.RawURLEncoding.EncodeToString(raw), pre[:])
	f.Add(hex.EncodeToString(raw), []byte{})
	f.Add("AgEEbHNhdAJCAAA=", []byte{1})
	f.Add("", []byte{})
	v := &Verifier{Keys: anyKey{key: [32]byte{7}}, Now: func() time.Time { return time.Unix(1_800_000_000, 0) }}
	known := []error{ErrMalformed, ErrWrongPreimage, ErrUnknownToken, ErrBadSignature, ErrExpired,
		ErrWrongService, ErrWrongResource, ErrWrongAmount, ErrWrongNode, ErrCapability,
		ErrCaveatWidened, ErrUnknownCaveat, ErrRevoked}
	f.Fuzz(func(t *testing.T, s string, preimage []byte) {
		m, err := DecodeMacaroon(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		_, _ = Inspect(m)
		var p [32]byte
		copy(p[:], preimage)
		_, err = v.Verify(context.Background(), Credential{Macaroon: m, Preimage: p},
			Expect{Service: "svc", Resource: "/api/x", Node: testNode, Capability: "read"})
		if err == nil {
			return
		}
		for _, k := range known {
			if errors.Is(err, k) {
				return
			}
		}
		t.Fatalf("untyped error %v", err)
	})
}

func mustDecode(t testing.TB, raw []byte) *macaroon.Macaroon {
	t.Helper()
	m, err := unmarshalMacaroon(raw)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
