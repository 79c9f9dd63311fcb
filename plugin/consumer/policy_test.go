package consumer

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/plugin/field"
	"github.com/l402d/l402d/storage"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in, origin, domain, path string
		bad                      bool
	}{
		{in: "https://API.Example.com/v1/x?q=1#frag", origin: "https://api.example.com", domain: "api.example.com", path: "/v1/x"},
		{in: "http://example.com:80", origin: "http://example.com", domain: "example.com", path: "/"},
		{in: "https://example.com:443/a", origin: "https://example.com", domain: "example.com", path: "/a"},
		{in: "https://example.com:8443/a", origin: "https://example.com:8443", domain: "example.com", path: "/a"},
		{in: "HTTP://[::1]:8080/a", origin: "http://[::1]:8080", domain: "::1", path: "/a"},
		{in: "http://example.com./a", origin: "http://example.com.", domain: "example.com", path: "/a"},
		{in: "", bad: true},
		{in: "/relative", bad: true},
		{in: "ftp://example.com/x", bad: true},
		{in: "https://user:pw@example.com/", bad: true},
		{in: "https://example.com:99999/", bad: true},
		{in: "https://:80/", bad: true},
		{in: "https://exa mple.com/", bad: true},
		{in: "http://.", bad: true}, // found by FuzzParseTarget: an empty domain
		{in: "http://a..b/", bad: true},
		{in: "http://.example.com/", bad: true},
		{in: "https://example.com/" + strings.Repeat("a", MaxURLLen), bad: true},
	}
	for _, tt := range tests {
		u, err := ParseTarget(tt.in)
		if tt.bad {
			var fe *field.Error
			if !errors.As(err, &fe) || fe.Field != "url" || fe.Fix == "" {
				t.Errorf("%q: %v, want a url *field.Error", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if Origin(u) != tt.origin || Domain(u) != tt.domain || u.Path != tt.path || u.Fragment != "" {
			t.Errorf("%q: origin %q domain %q path %q", tt.in, Origin(u), Domain(u), u.Path)
		}
	}
}

func TestIsPublicAddr(t *testing.T) {
	for s, want := range map[string]bool{
		"8.8.8.8": true, "1.1.1.1": true, "2606:4700::1111": true, "::ffff:8.8.8.8": true,
		"127.0.0.1": false, "127.9.9.9": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "fe80::1": false, "fc00::1": false, "fd12::1": false, "100.64.0.1": false,
		"0.0.0.0": false, "::": false, "224.0.0.1": false, "ff02::1": false, "::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false,
		"192.0.2.1": false, "198.18.0.1": false, "240.0.0.1": false, "255.255.255.255": false, "2001:db8::1": false,
		"2002:7f00:1::": false, "0.1.2.3": false,
	} {
		if got := IsPublicAddr(netip.MustParseAddr(s)); got != want {
			t.Errorf("IsPublicAddr(%s) = %v, want %v", s, got, want)
		}
	}
	if IsPublicAddr(netip.Addr{}) {
		t.Error("the zero address is public")
	}
}

func TestDialControl(t *testing.T) {
	if err := dialControl("tcp", "8.8.8.8:443", nil); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"127.0.0.1:80", "[::1]:80", "10.0.0.1:443", "[::ffff:192.168.0.1]:80", "nonsense"} {
		if err := dialControl("tcp", a, nil); err == nil {
			t.Errorf("%s: dialled", a)
		}
	}
	err := dialControl("tcp", "127.0.0.1:80", nil)
	if !errors.Is(err, ErrPrivateTarget) || !errors.Is(err, ErrPolicy) {
		t.Fatalf("%v", err)
	}
}

func TestScope(t *testing.T) {
	svc := []l402.Service{{Name: "weather"}}
	tests := []struct {
		name  string
		info  l402.Info
		path  string
		scope string
		match map[string]bool
	}{
		{"resource path", l402.Info{Resource: "/a/b"}, "/a/b", "/a/b", map[string]bool{"/a/b": true, "/a/b/c": false, "/a": false}},
		{"resource prefix", l402.Info{Resource: "/a/*"}, "/a/b", "/a/*", map[string]bool{"/a/": true, "/a/b/c": true, "/ab": false}},
		{"resource URL", l402.Info{Resource: "https://x.example/v1/q"}, "/v1/q", "/v1/q", map[string]bool{"/v1/q": true, "/v1/q2": false}},
		{"resource URL prefix", l402.Info{Resource: "https://x.example/v1/*"}, "/v1/q", "/v1/*", map[string]bool{"/v1/q2": true}},
		{"resource not a path: service", l402.Info{Resource: "forecast", Services: svc}, "/w", "service:weather", map[string]bool{"/anything": true}},
		{"service only", l402.Info{Services: svc}, "/w", "service:weather", map[string]bool{"/": true}},
		{"no caveats: the path", l402.Info{}, "/p", "/p", map[string]bool{"/p": true, "/p/": false}},
		{"no caveats, no path", l402.Info{}, "", "/", map[string]bool{"/": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ScopeFor(tt.info, tt.path); got != tt.scope {
				t.Fatalf("scope %q, want %q", got, tt.scope)
			}
			for p, want := range tt.match {
				if ScopeMatches(tt.scope, p) != want {
					t.Errorf("ScopeMatches(%q, %q) != %v", tt.scope, p, want)
				}
			}
		})
	}
}

func TestBestToken(t *testing.T) {
	now := time.Unix(1_000, 0)
	tok := func(scope string, expires int64) storage.Token {
		t := storage.Token{Scope: scope}
		if expires != 0 {
			t.ExpiresAt = time.Unix(expires, 0)
		}
		t.PaymentHash[0] = byte(len(scope))
		return t
	}
	toks := []storage.Token{tok("service:s", 0), tok("/a/*", 0), tok("/a/b/*", 0), tok("/a/b/c", 0), tok("/a/b/d", 999)}
	for path, want := range map[string]string{"/a/b/c": "/a/b/c", "/a/b/x": "/a/b/*", "/a/x": "/a/*", "/z": "service:s", "/a/b/d": "/a/b/*"} {
		best, expired := bestToken(toks, path, now, nil)
		if best == nil || best.Scope != want {
			t.Errorf("%s: got %+v, want %s", path, best, want)
		}
		if len(expired) != 1 || expired[0].Scope != "/a/b/d" {
			t.Errorf("%s: expired %+v", path, expired)
		}
	}
	best, _ := bestToken(toks, "/a/b/c", now, func(t *storage.Token) bool { return t.Scope == "/a/b/c" })
	if best == nil || best.Scope != "/a/b/*" {
		t.Errorf("skip: %+v", best)
	}
	if best, _ := bestToken(nil, "/", now, nil); best != nil {
		t.Error("a token from nothing")
	}
}

func TestDomainPatterns(t *testing.T) {
	for in, want := range map[string]string{"Example.COM": "example.com", "*.example.com.": "*.example.com", " api.x.io ": "api.x.io", "127.0.0.1": "127.0.0.1"} {
		got, err := ParseDomainPattern(in)
		if err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "*.", "https://example.com", "example.com/x", "a b", "a..b", ".a", "*.*.a", strings.Repeat("a", 254)} {
		if _, err := ParseDomainPattern(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	tests := []struct {
		allow, deny []string
		domain      string
		code        string
	}{
		{nil, nil, "a.com", ""},
		{nil, []string{"a.com"}, "a.com", "domain_denied"},
		{nil, []string{"*.a.com"}, "x.a.com", "domain_denied"},
		{nil, []string{"*.a.com"}, "a.com", ""},
		{[]string{"*.a.com"}, nil, "a.com", "domain_not_allowed"},
		{[]string{"*.a.com", "a.com"}, nil, "a.com", ""},
		{[]string{"a.com"}, []string{"a.com"}, "a.com", "domain_denied"},
		{[]string{"a.com"}, nil, "evila.com", "domain_not_allowed"},
	}
	for _, tt := range tests {
		err := checkDomain(tt.allow, tt.deny, tt.domain)
		got := ""
		if ref := RefusalOf(err); ref != nil {
			got = ref.Code
		}
		if got != tt.code {
			t.Errorf("allow %v deny %v %s: %q, want %q", tt.allow, tt.deny, tt.domain, got, tt.code)
		}
	}
}

func TestCheckOffer(t *testing.T) {
	now := time.Unix(10_000, 0)
	inv := func(msat int64, expires int64) invoices.DecodedInvoice {
		return invoices.DecodedInvoice{AmountMsat: msat, ExpiresAt: time.Unix(expires, 0)}
	}
	tests := []struct {
		name string
		o    offerTerms
		code string
	}{
		{"fine", offerTerms{invoice: inv(50_000, 10_001), advertisedSats: []int64{50, 0}, maxMsat: 50_000}, ""},
		{"amountless", offerTerms{invoice: inv(0, 10_001)}, "amountless_invoice"},
		{"expired at the second", offerTerms{invoice: inv(1000, 10_000)}, "invoice_expired"},
		{"advertised differs", offerTerms{invoice: inv(50_000, 20_000), advertisedSats: []int64{49}}, "price_mismatch"},
		{"token amount differs", offerTerms{invoice: inv(50_000, 20_000), advertisedSats: []int64{0, 51}}, "price_mismatch"},
		{"sub-sat amount vs advertised", offerTerms{invoice: inv(50_500, 20_000), advertisedSats: []int64{50}}, "price_mismatch"},
		{"above max", offerTerms{invoice: inv(50_001, 20_000), maxMsat: 50_000}, "price_above_max"},
		{"at an exact msat max", offerTerms{invoice: inv(600_500, 20_000), maxMsat: capMsat(0, 600_500)}, ""},
		{"sats cap below msat cap", offerTerms{invoice: inv(600_500, 20_000), maxMsat: capMsat(600, 600_500)}, "price_above_max"},
		{"no max", offerTerms{invoice: inv(1<<40, 20_000)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkOffer(tt.o, now)
			got := ""
			if ref := RefusalOf(err); ref != nil {
				got = ref.Code
			}
			if got != tt.code {
				t.Fatalf("%v, want %q", err, tt.code)
			}
			if err != nil && !errors.Is(err, ErrPolicy) {
				t.Fatal("not an ErrPolicy")
			}
		})
	}
}

func TestFeeLimit(t *testing.T) {
	c := &Consumer{cfg: Config{MinFeeLimitSats: 10, MaxFeePercent: 1}}
	for amt, want := range map[int64]int64{1_000: 10_000, 1_000_000: 10_000, 5_000_000: 50_000} {
		if got := c.feeLimitMsat(amt); got != want {
			t.Errorf("fee limit of %d msat = %d, want %d", amt, got, want)
		}
	}
}

func TestParseChallengeBody(t *testing.T) {
	ch, price := ParseChallengeBody([]byte(`{"macaroon":"m","invoice":"i","amountSats":50}`))
	if ch.Macaroon != "m" || ch.Invoice != "i" || price != 50 {
		t.Fatalf("%+v %d", ch, price)
	}
	if _, price := ParseChallengeBody([]byte(`{"price_sats":7,"amount":9}`)); price != 7 {
		t.Fatalf("price %d", price)
	}
	if ch, price := ParseChallengeBody([]byte(`{"token":"t","priceSats":"50"}`)); ch.Macaroon != "t" || price != 0 {
		t.Fatalf("%+v %d", ch, price)
	}
	for _, b := range []string{"", "[]", "null", "nonsense", `{"amountSats":-5}`} {
		if ch, price := ParseChallengeBody([]byte(b)); ch.Macaroon != "" || price != 0 {
			t.Fatalf("%q: %+v %d", b, ch, price)
		}
	}
}

func TestParseManifest(t *testing.T) {
	m, err := ParseManifest([]byte(`{"name":"Weather","services":[
		{"name":"forecast","path":"/api/forecast","priceSats":25,"method":"get","description":"7 days"},
		{"service":"radar","pattern":"^/radar/.*","price":{"amount_msat":1500}},
		{"id":"free","endpoint":"/free"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []ManifestEntry{
		{Name: "forecast", Path: "/api/forecast", Method: "GET", Description: "7 days", PriceSats: 25},
		{Name: "radar", Path: "^/radar/.*", PriceSats: 2, PriceMsat: 1500},
		{Name: "free", Path: "/free"},
	}
	if m.Name != "Weather" || len(m.Entries) != len(want) {
		t.Fatalf("%+v", m)
	}
	for i := range want {
		if m.Entries[i] != want[i] {
			t.Errorf("entry %d: %+v, want %+v", i, m.Entries[i], want[i])
		}
	}
	m, err = ParseManifest([]byte(`{"service":{"name":"S"},"routes":[{"path":"/p","price":{"type":"static","amount_msat":10000}}]}`))
	if err != nil || m.Name != "S" || m.Entries[0].PriceSats != 10 {
		t.Fatalf("%v %+v", err, m)
	}
	for _, b := range []string{"", "[]", `{"x":1}`, `{"routes":{}}`, `{"openapi":"3.1.0","paths":[]}`} {
		if _, err := ParseManifest([]byte(b)); err == nil {
			t.Errorf("%q parsed", b)
		}
	}
}

// The L402 discovery draft's two profiles, as its worked examples write
// them (lightninglabs/L402 discovery-spec.md, sections 5.6 and 8.3).
func TestParseManifestDraft(t *testing.T) {
	m, err := ParseManifest([]byte(`{"version":"1.0","provider":{"name":"Acme Weather","node_pubkey":"021c97"},
		"currencies":["msat"],"quote_endpoint":"/l402/quote","openapi":"/openapi.json","future_member":{"x":1},
		"services":[{"name":"weather","description":"Forecasts.","resources":[
			{"path":"/v1/forecast","method":"GET","pricing":{"model":"formula","base_msat":1000,"components":[{"constraint":"n","price_msat_per_unit":10}]}},
			{"path":"/v1/now","pricing":{"model":"fixed","price_msat":1500}},
			{"path":"/v1/surge","pricing":{"model":"dynamic"}}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []ManifestEntry{
		{Name: "weather", Path: "/v1/forecast", Method: "GET", Description: "Forecasts.", PriceSats: 1, PriceMsat: 1000, PricingModel: "formula"},
		{Name: "weather", Path: "/v1/now", Description: "Forecasts.", PriceSats: 2, PriceMsat: 1500, PricingModel: "fixed"},
		{Name: "weather", Path: "/v1/surge", Description: "Forecasts.", PricingModel: "dynamic"},
	}
	if m.Format != "l402-discovery" || m.Name != "Acme Weather" || m.NodePubkey != "021c97" || m.QuoteEndpoint != "/l402/quote" || m.OpenAPI != "/openapi.json" || len(m.Entries) != len(want) {
		t.Fatalf("%+v", m)
	}
	for i := range want {
		if m.Entries[i] != want[i] {
			t.Errorf("entry %d: %+v, want %+v", i, m.Entries[i], want[i])
		}
	}

	m, err = ParseManifest([]byte(`{"openapi":"3.1.0","info":{"title":"Acme","version":"1.0","x-l402-version":"1.0","x-l402-provider":{"node_pubkey":"021c97"}},
		"x-l402-quote-endpoint":"/l402/quote",
		"paths":{
			"/v1/forecast":{"get":{"summary":"Forecast","x-l402-service":"weather","x-l402-pricing":{"model":"fixed","price_msat":21000}},
				"post":{"x-l402-service":"weather","x-l402-pricing":{"model":"formula","base_msat":1000}}},
			"/health":{"get":{"summary":"free"}},
			"/l402/quote":{"post":{"operationId":"l402Quote"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want = []ManifestEntry{
		{Name: "weather", Path: "/v1/forecast", Method: "GET", Description: "Forecast", PriceSats: 21, PriceMsat: 21000, PricingModel: "fixed"},
		{Name: "weather", Path: "/v1/forecast", Method: "POST", PriceSats: 1, PriceMsat: 1000, PricingModel: "formula"},
	}
	if m.Format != "openapi" || m.Name != "Acme" || m.NodePubkey != "021c97" || m.QuoteEndpoint != "/l402/quote" || len(m.Entries) != len(want) {
		t.Fatalf("%+v", m)
	}
	for i := range want {
		if m.Entries[i] != want[i] {
			t.Errorf("openapi entry %d: %+v, want %+v", i, m.Entries[i], want[i])
		}
	}
}
