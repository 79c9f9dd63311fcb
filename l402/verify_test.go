package l402

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"gopkg.in/macaroon.v2"
)

const testNode = "02aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	keys := newMemKeys()
	v := &Verifier{Keys: keys, Revocations: keys, Now: func() time.Time { return now }}

	resourceToken := MintParams{Resource: "/api/weather", AmountSats: 50, Node: testNode, ValidUntil: now.Add(time.Hour)}
	serviceToken := MintParams{Service: "weather", Capabilities: []string{"read", "list"}, ValidUntil: now.Add(time.Hour), AmountSats: 10, Node: testNode}

	type tc struct {
		name   string
		params MintParams
		// mutate changes the minted token or preimage before verifying.
		mutate func(t *testing.T, mac *macaroon.Macaroon, pre *[32]byte) *macaroon.Macaroon
		want   Expect
		err    error
	}
	add := func(cavs ...string) func(*testing.T, *macaroon.Macaroon, *[32]byte) *macaroon.Macaroon {
		return func(t *testing.T, mac *macaroon.Macaroon, _ *[32]byte) *macaroon.Macaroon {
			for _, c := range cavs {
				if err := mac.AddFirstPartyCaveat([]byte(c)); err != nil {
					t.Fatal(err)
				}
			}
			return mac
		}
	}
	tests := []tc{
		{name: "resource token valid", params: resourceToken, want: Expect{Resource: "/api/weather", Node: testNode}},
		{name: "resource token with amount floor", params: resourceToken, want: Expect{Resource: "/api/weather", Node: testNode, AmountSats: 50}},
		{name: "service token valid", params: serviceToken, want: Expect{Service: "weather", Capability: "read", Node: testNode}},
		{name: "service token, no capability needed", params: serviceToken, want: Expect{Service: "weather", Node: testNode}},
		{name: "prefix resource covers sub path", params: MintParams{Resource: "/files/*"}, want: Expect{Resource: "/files/a/b"}},
		{name: "holder narrows resource", params: MintParams{Resource: "/files/*"}, mutate: add("resource=/files/a/*"), want: Expect{Resource: "/files/a/x"}},
		{name: "holder narrows expiry", params: resourceToken, mutate: add("valid_until=1800000100"), want: Expect{Resource: "/api/weather", Node: testNode}},
		{name: "holder narrows services", params: MintParams{Service: "a"}, mutate: add("services=a:0"), want: Expect{Service: "a"}},
		{name: "grpc-style preimage caveat that matches", params: MintParams{Service: "a"}, mutate: func(t *testing.T, mac *macaroon.Macaroon, pre *[32]byte) *macaroon.Macaroon {
			return add("preimage="+strings.ToUpper(hexOf(pre[:])))(t, mac, pre)
		}, want: Expect{Service: "a"}},

		{name: "wrong preimage", params: resourceToken, mutate: func(_ *testing.T, mac *macaroon.Macaroon, pre *[32]byte) *macaroon.Macaroon {
			pre[0] ^= 1
			return mac
		}, want: Expect{Resource: "/api/weather", Node: testNode}, err: ErrWrongPreimage},
		{name: "literal resource: a star is a name", params: MintParams{Resource: "/files/*"}, want: Expect{Resource: "/files/*", LiteralResource: true}},
		{name: "literal resource: no prefix match", params: MintParams{Resource: "/files/*"}, want: Expect{Resource: "/files/a", LiteralResource: true}, err: ErrWrongResource},
		{name: "literal resource: no narrowing by prefix", params: MintParams{Resource: "/files/*"}, mutate: add("resource=/files/a"), want: Expect{Resource: "/files/a", LiteralResource: true}, err: ErrWrongResource},
		{name: "resource A verified for B", params: resourceToken, want: Expect{Resource: "/api/other", Node: testNode}, err: ErrWrongResource},
		{name: "resource token without a resource in the request", params: resourceToken, want: Expect{Node: testNode}, err: ErrWrongResource},
		{name: "resource token, any resource", params: resourceToken, want: Expect{Node: testNode, AnyResource: true}},
		{name: "any resource still checks narrowing", params: MintParams{Resource: "/a/*"}, mutate: add("resource=/b"), want: Expect{AnyResource: true}, err: ErrCaveatWidened},
		{name: "request needs a resource the token lacks", params: MintParams{Service: "a"}, want: Expect{Service: "a", Resource: "/x"}, err: ErrWrongResource},
		{name: "expired", params: MintParams{Resource: "/r", ValidUntil: now.Add(-time.Second)}, want: Expect{Resource: "/r"}, err: ErrExpired},
		{name: "service expired", params: MintParams{Service: "a", ValidUntil: now.Add(-time.Minute)}, want: Expect{Service: "a"}, err: ErrExpired},
		{name: "other service's expiry is not ours", params: MintParams{Service: "a"}, mutate: add("b_valid_until=1"), want: Expect{Service: "a"}},
		{name: "token from another service", params: serviceToken, want: Expect{Service: "maps", Node: testNode}, err: ErrWrongService},
		{name: "service token outside any service", params: serviceToken, want: Expect{Node: testNode}, err: ErrWrongService},
		{name: "service request with unscoped token", params: MintParams{Resource: "/r"}, want: Expect{Service: "a", Resource: "/r"}, err: ErrWrongService},
		{name: "missing capability", params: serviceToken, want: Expect{Service: "weather", Capability: "write", Node: testNode}, err: ErrCapability},
		{name: "amount below floor", params: resourceToken, want: Expect{Resource: "/api/weather", Node: testNode, AmountSats: 51}, err: ErrWrongAmount},
		{name: "other node", params: resourceToken, want: Expect{Resource: "/api/weather", Node: "03bb"}, err: ErrWrongNode},
		{name: "node caveat unchecked", params: resourceToken, want: Expect{Resource: "/api/weather"}, err: ErrWrongNode},
		{name: "tampered caveat", params: resourceToken, mutate: func(t *testing.T, mac *macaroon.Macaroon, _ *[32]byte) *macaroon.Macaroon {
			return retamper(t, mac, "resource=/api/weather", "resource=/api/weathe*")
		}, want: Expect{Resource: "/api/weather", Node: testNode}, err: ErrBadSignature},
		{name: "widened resource", params: MintParams{Resource: "/files/a/*"}, mutate: add("resource=/files/*"), want: Expect{Resource: "/files/a/x"}, err: ErrCaveatWidened},
		{name: "widened expiry", params: resourceToken, mutate: add("valid_until=1900000000"), want: Expect{Resource: "/api/weather", Node: testNode}, err: ErrCaveatWidened},
		{name: "widened services", params: MintParams{Service: "a"}, mutate: add("services=a:0,b:0"), want: Expect{Service: "b"}, err: ErrCaveatWidened},
		{name: "widened capabilities", params: serviceToken, mutate: add("weather_capabilities=read,write"), want: Expect{Service: "weather", Capability: "write", Node: testNode}, err: ErrCaveatWidened},
		{name: "changed amount", params: resourceToken, mutate: add("amount_sats=5000"), want: Expect{Resource: "/api/weather", Node: testNode}, err: ErrCaveatWidened},
		{name: "unknown caveat", params: resourceToken, mutate: add("ip=1.2.3.4"), want: Expect{Resource: "/api/weather", Node: testNode}, err: ErrUnknownCaveat},
		{name: "malformed caveat", params: resourceToken, mutate: add("no equals sign"), want: Expect{Resource: "/api/weather", Node: testNode}, err: ErrMalformed},
		{name: "malformed expiry", params: resourceToken, mutate: add("valid_until=soon"), want: Expect{Resource: "/api/weather", Node: testNode}, err: ErrMalformed},
		{name: "preimage caveat that differs", params: MintParams{Service: "a"}, mutate: add("preimage=" + strings.Repeat("00", 32)), want: Expect{Service: "a"}, err: ErrWrongPreimage},
		{name: "third-party caveat", params: MintParams{Service: "a"}, mutate: func(t *testing.T, mac *macaroon.Macaroon, _ *[32]byte) *macaroon.Macaroon {
			if err := mac.AddThirdPartyCaveat([]byte("k"), []byte("id"), "there"); err != nil {
				t.Fatal(err)
			}
			return mac
		}, want: Expect{Service: "a"}, err: ErrBadSignature},
		{name: "unknown token", params: resourceToken, mutate: func(t *testing.T, mac *macaroon.Macaroon, _ *[32]byte) *macaroon.Macaroon {
			id, _ := DecodeIdentifier(mac.Id())
			id.TokenID[0] ^= 0xff
			raw, _ := id.MarshalBinary()
			m, err := NewMacaroon([32]byte{}, raw, nil)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}, want: Expect{Resource: "/api/weather", Node: testNode}, err: ErrUnknownToken},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mac, pre := mintTest(t, keys, byte(i), tt.params)
			if tt.mutate != nil {
				mac = tt.mutate(t, mac, &pre)
			}
			got, err := v.Verify(context.Background(), Credential{Macaroon: mac, Preimage: pre}, tt.want)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Resource != tt.params.Resource || got.AmountSats != tt.params.AmountSats || got.Node != tt.params.Node {
				t.Fatalf("verified %+v does not report the minted binding %+v", got, tt.params)
			}
		})
	}
}

func TestVerifyRevokedAndSkip(t *testing.T) {
	keys := newMemKeys()
	ctx := context.Background()
	mac, pre := mintTest(t, keys, 1, MintParams{Service: "a"})
	v := &Verifier{Keys: keys, Revocations: keys}
	if _, err := v.Verify(ctx, Credential{Macaroon: mac, Preimage: pre}, Expect{Service: "a"}); err != nil {
		t.Fatal(err)
	}
	id, _ := DecodeIdentifier(mac.Id())
	keys.revoked[id.TokenID] = true
	if _, err := v.Verify(ctx, Credential{Macaroon: mac, Preimage: pre}, Expect{Service: "a"}); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked: %v", err)
	}

	mac2, pre2 := mintTest(t, keys, 2, MintParams{Service: "a"})
	mac2, _ = AddCaveats(mac2, Caveat{"client_note", "x"})
	if _, err := v.Verify(ctx, Credential{Macaroon: mac2, Preimage: pre2}, Expect{Service: "a"}); !errors.Is(err, ErrUnknownCaveat) {
		t.Fatalf("unknown caveat: %v", err)
	}
	v.SkipCaveats = []string{"client_note"}
	if _, err := v.Verify(ctx, Credential{Macaroon: mac2, Preimage: pre2}, Expect{Service: "a"}); err != nil {
		t.Fatalf("skipped caveat: %v", err)
	}
}

func TestVerifyHexIdentifier(t *testing.T) {
	// Old lsat-js clients minted identifiers as hex ASCII.
	keys := newMemKeys()
	pre, hash := testPreimage(9)
	tid, _ := NewTokenID()
	key, _ := keys.NewRootKey(context.Background(), tid)
	raw, _ := Identifier{PaymentHash: hash, TokenID: tid}.MarshalBinary()
	mac, err := NewMacaroon(key, []byte(hexOf(raw)), []Caveat{{CondServices, "a:0"}})
	if err != nil {
		t.Fatal(err)
	}
	v := &Verifier{Keys: keys}
	if _, err := v.Verify(context.Background(), Credential{Macaroon: mac, Preimage: pre}, Expect{Service: "a"}); err != nil {
		t.Fatal(err)
	}
}

func TestMintParamsRejects(t *testing.T) {
	for name, p := range map[string]MintParams{
		"capabilities without service": {Capabilities: []string{"a"}},
		"service with comma":           {Service: "a,b"},
		"service with colon":           {Service: "a:b"},
		"capability with comma":        {Service: "a", Capabilities: []string{"x,y"}},
		"negative amount":              {AmountSats: -1},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := Mint(context.Background(), newMemKeys(), p); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestInspect(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	mac, _ := mintTest(t, newMemKeys(), 1, MintParams{Service: "s", Resource: "/r", AmountSats: 7, Node: testNode, ValidUntil: now})
	info, err := Inspect(mac)
	if err != nil {
		t.Fatal(err)
	}
	if info.Resource != "/r" || info.AmountSats != 7 || info.Node != testNode || !info.ValidUntil.Equal(now) ||
		len(info.Services) != 1 || info.Services[0].Name != "s" {
		t.Fatalf("Inspect: %+v", info)
	}
	if info.Expired(now) || !info.Expired(now.Add(time.Second)) {
		t.Fatal("Expired boundary wrong")
	}
}

// retamper rebuilds mac with one caveat text replaced, keeping the old
// signature: what an attacker editing a token can produce.
func retamper(t *testing.T, mac *macaroon.Macaroon, from, to string) *macaroon.Macaroon {
	t.Helper()
	b, err := mac.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), from, to, 1)
	if s == string(b) {
		t.Fatalf("caveat %q not found", from)
	}
	var out macaroon.Macaroon
	if err := out.UnmarshalBinary([]byte(s)); err != nil {
		t.Fatal(err)
	}
	return &out
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

func TestMintWithKey(t *testing.T) {
	pre, hash := testPreimage(4)
	tid, _ := NewTokenID()
	key, err := NewRootKey()
	if err != nil {
		t.Fatal(err)
	}
	mac, id, err := MintWithKey(key, MintParams{PaymentHash: hash, TokenID: tid, Resource: "/r"})
	if err != nil || id.TokenID != tid {
		t.Fatal(err)
	}
	keys := newMemKeys()
	keys.keys[tid] = key
	if _, err := (&Verifier{Keys: keys}).Verify(context.Background(), Credential{Macaroon: mac, Preimage: pre}, Expect{Resource: "/r"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := MintWithKey(key, MintParams{PaymentHash: hash}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("no token id: %v", err)
	}
}

// TestVerifyPrepaid: the prepaid caveat marks credit, whoever added it,
// and takes only "1"; Expect.Expired lets an expired token through (for a
// refund) and nothing else.
func TestVerifyPrepaid(t *testing.T) {
	keys := newMemKeys()
	ctx := context.Background()
	v := &Verifier{Keys: keys, Now: func() time.Time { return time.Unix(2_000_000_000, 0) }}
	check := func(name string, mac *macaroon.Macaroon, pre [32]byte, want Expect, prepaid bool, wantErr error) {
		t.Helper()
		got, err := v.Verify(ctx, Credential{Macaroon: mac, Preimage: pre}, want)
		if !errors.Is(err, wantErr) || (err == nil && got.Prepaid != prepaid) {
			t.Errorf("%s: Prepaid %v, err %v; want %v, %v", name, got.Prepaid, err, prepaid, wantErr)
		}
	}
	credit, pre := mintTest(t, keys, 1, MintParams{Service: "a", Prepaid: true})
	check("minted credit", credit, pre, Expect{Service: "a"}, true, nil)
	if info, _ := Inspect(credit); !info.Prepaid {
		t.Error("Inspect does not see the prepaid caveat")
	}
	pass, pre2 := mintTest(t, keys, 2, MintParams{Service: "a"})
	check("pass", pass, pre2, Expect{Service: "a"}, false, nil)
	added, _ := AddCaveats(pass, Caveat{CondPrepaid, "1"})
	check("credit added by the holder", added, pre2, Expect{Service: "a"}, true, nil)
	bad, _ := AddCaveats(pass, Caveat{CondPrepaid, "0"})
	check("prepaid=0", bad, pre2, Expect{Service: "a"}, false, ErrMalformed)

	old, pre3 := mintTest(t, keys, 3, MintParams{Service: "a", Prepaid: true, ValidUntil: time.Unix(1_000_000_000, 0)})
	check("expired", old, pre3, Expect{Service: "a"}, true, ErrExpired)
	check("expired, for a refund", old, pre3, Expect{Service: "a", Expired: true}, true, nil)
	check("expired, for a refund, wrong preimage", old, pre2, Expect{Service: "a", Expired: true}, true, ErrWrongPreimage)
}
