package consumer

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/l402/x402"
)

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"https://api.example.com/v1/x?q=1", "http://[::1]:8080/a", "https://u:p@x/", "ftp://x", "http://x:0", "http://%41/", "https://xn--bcher-kva.example/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseTarget(s)
		if err != nil {
			return
		}
		o, d := Origin(u), Domain(u)
		if !strings.HasPrefix(o, u.Scheme+"://") || d == "" || u.Path == "" || u.User != nil {
			t.Fatalf("%q: origin %q domain %q path %q", s, o, d, u.Path)
		}
		// The origin of a URL is stable: parsing it again gives it back.
		if again, err := ParseTarget(o); err == nil && Origin(again) != o {
			t.Fatalf("origin %q re-parses to %q", o, Origin(again))
		}
	})
}

func FuzzParseDomainPattern(f *testing.F) {
	for _, s := range []string{"example.com", "*.example.com", "A.B.", "", "*.", "a..b", "[::1]"} {
		f.Add(s, "x.example.com")
	}
	f.Fuzz(func(t *testing.T, s, domain string) {
		p, err := ParseDomainPattern(s)
		if err != nil {
			return
		}
		if again, err := ParseDomainPattern(p); err != nil || again != p {
			t.Fatalf("%q normalizes to %q, then %q %v", s, p, again, err)
		}
		if DomainMatches(p, domain) && !strings.HasPrefix(p, "*.") && p != domain {
			t.Fatalf("%q matches %q", p, domain)
		}
	})
}

func FuzzScope(f *testing.F) {
	f.Add("/a/*", "weather", "/a/b")
	f.Add("https://x/y*", "", "/y/z")
	f.Add("forecast", "svc", "/")
	f.Fuzz(func(t *testing.T, resource, service, path string) {
		info := l402.Info{Resource: resource}
		if service != "" {
			info.Services = []l402.Service{{Name: service}}
		}
		scope := ScopeFor(info, path)
		if scope == "" {
			t.Fatal("empty scope")
		}
		// A token always covers the path it was bought for, unless its
		// resource caveat says otherwise.
		if resource == "" && path != "" && !ScopeMatches(scope, path) {
			t.Fatalf("scope %q does not cover %q", scope, path)
		}
		_ = scopeRank(scope)
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"services":[{"name":"a","path":"/a","priceSats":5}]}`))
	f.Add([]byte(`{"routes":[{"path":"/p","price":{"amount_msat":"1000"}}]}`))
	f.Add([]byte(`{"prices":[{"price":{"price":{"price":1}}}]}`))
	f.Add([]byte(`{"version":"1.0","provider":{"name":"p","node_pubkey":"02"},"services":[{"name":"s","resources":[{"path":"/a","pricing":{"model":"fixed","price_msat":1000}}]}]}`))
	f.Add([]byte(`{"openapi":"3.1.0","info":{"title":"t"},"paths":{"/a":{"get":{"x-l402-service":"s","x-l402-pricing":{"model":"formula","base_msat":5}}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		if len(m.Entries) > maxManifestEntries {
			t.Fatalf("%d entries", len(m.Entries))
		}
		for _, e := range m.Entries {
			if e.PriceSats < 0 || e.PriceMsat < 0 {
				t.Fatalf("negative price %+v", e)
			}
		}
	})
}

func FuzzParseChallengeBody(f *testing.F) {
	f.Add([]byte(`{"macaroon":"m","invoice":"i","amountSats":50}`))
	f.Add([]byte(`{"amount":1e30}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, price := ParseChallengeBody(b); price < 0 {
			t.Fatalf("negative price %d", price)
		}
	})
}

func FuzzIsPublicAddr(f *testing.F) {
	f.Add([]byte{127, 0, 0, 1})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		// An IPv4-mapped address is judged as its IPv4 address.
		if IsPublicAddr(a) != IsPublicAddr(a.Unmap()) {
			t.Fatalf("%s and %s disagree", a, a.Unmap())
		}
	})
}

func FuzzParseOffers(f *testing.F) {
	h := http.Header{}
	(&schemeSeller{t: f, ln: newFakeLN(), price: 3, key: mustKey(f), mppKey: []byte("k"), keys: &memKeys{m: map[l402.TokenID][l402.RootKeySize]byte{}},
		issued: map[string]x402.PaymentRequirements{}, srv: &httptest.Server{URL: "http://x"}}).challenge(h, "/x", []string{SchemeL402, SchemeMPP, SchemeX402})
	www := h.Values("WWW-Authenticate")
	f.Add(www[0], www[1], h.Get(x402.HeaderPaymentRequired), `{"amountSats":3}`)
	f.Add(`Payment id="a", realm="b", method="lightning", intent="charge", request="e30"`, "L402 macaroon=x", "e30=", `{"macaroon":"m","invoice":"i"}`)
	f.Fuzz(func(t *testing.T, w1, w2, required, body string) {
		h := http.Header{}
		h.Add("WWW-Authenticate", w1)
		h.Add("WWW-Authenticate", w2)
		h.Set(x402.HeaderPaymentRequired, required)
		offers, advertised := ParseOffers(h, []byte(body))
		if advertised < 0 {
			t.Fatalf("advertised %d", advertised)
		}
		for _, o := range offers {
			if o.Invoice == "" || (o.Scheme != SchemeL402 && o.ClaimMsat <= 0) {
				t.Fatalf("offer %+v", o)
			}
			if m, err := o.material(); err == nil && o.Scheme != SchemeL402 {
				var pre lntypes.Preimage
				if _, err := onceCredential(o.Scheme, m, pre); err != nil {
					t.Fatalf("%s offer: no credential: %v", o.Scheme, err)
				}
			}
		}
		if got, ok := chooseOffer(offers, DefaultSchemePreference()); ok != (len(offers) > 0) || (ok && got.Scheme != offers[0].Scheme) {
			t.Fatalf("chose %+v of %d", got, len(offers))
		}
	})
}

// FuzzParsePrepaid: any 402 body yields credit terms or none, and a
// refund path that is not a local path of the seller is never used.
func FuzzParsePrepaid(f *testing.F) {
	for _, s := range []string{`{"prepaid":{"creditSats":1000,"refundPath":"/.well-known/l402/refund"}}`, `{"prepaid":{"topUpOf":"00","refundPath":"//evil.example/x"}}`,
		`{"prepaid":null}`, `[]`, ``, `{"prepaid":{"refundPath":7}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := parsePrepaid(b)
		if p == nil {
			return
		}
		if path := refundPathOf(p); !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") {
			t.Fatalf("refund path %q from %q", path, b)
		}
	})
}
