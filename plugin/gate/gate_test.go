package gate

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/plugin/metrics"
	"github.com/l402d/l402d/plugin/producer"
	"github.com/l402d/l402d/storage"
)

const testNode = "02c0ffee00000000000000000000000000000000000000000000000000000000aa"

// stubLND stands in for LND: it makes invoices and remembers their
// preimages, so a test can "pay" by looking one up. The producer, the
// store and the verifier around it are the real ones.
type stubLND struct {
	invoices.Backend
	mu        sync.Mutex
	down      bool
	adds      int
	preimages map[lntypes.Hash]lntypes.Preimage
}

func (b *stubLND) AddInvoice(_ context.Context, r invoices.AddInvoiceRequest) (invoices.Invoice, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		return invoices.Invoice{}, invoices.ErrUnavailable
	}
	b.adds++
	var p lntypes.Preimage
	_, _ = rand.Read(p[:])
	b.preimages[p.Hash()] = p
	return invoices.Invoice{PaymentHash: p.Hash(), PaymentRequest: "lnbcrt" + strconv.FormatInt(r.AmountSats, 10) + "n1" + p.Hash().String()[:20], ExpiresAt: time.Now().Add(r.Expiry)}, nil
}

func (b *stubLND) NodeInfo(context.Context) (invoices.NodeInfo, error) {
	return invoices.NodeInfo{Pubkey: testNode}, nil
}

func (b *stubLND) preimage(h lntypes.Hash) (lntypes.Preimage, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.preimages[h]
	return p, ok
}

// clock is a settable time shared by the producer and the gate.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

type fixture struct {
	t       *testing.T
	g       *Gate
	h       http.Handler
	lnd     *stubLND
	clock   *clock
	metrics *metrics.Metrics
	nextHit atomic.Int64
}

const testServices = `
services:
  - name: api
    path: /api/*
    price: 10
    pricing:
      - path: /api/premium/*
        price: 100
    whitelist: [/api/health]
    capabilities: [read]
  - name: other
    path: /other/*
    price: 5
  - name: free
    path: /free/*
    auth: "off"
  - name: trial
    path: /trial/*
    price: 7
    auth: freebie 2
`

func newFixture(t *testing.T, services string, mod func(*Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	store, err := storage.Open(ctx, storage.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fixture{t: t, lnd: &stubLND{preimages: map[lntypes.Hash]lntypes.Preimage{}}, clock: &clock{}, metrics: metrics.New()}
	f.clock.ns.Store(time.Now().UnixNano())
	p, err := producer.New(producer.Config{Store: store, Backend: f.lnd, Metrics: f.metrics, Now: f.clock.now, TokenValidity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Producer: p, Lookup: p, Services: mustServices(t, services), Metrics: f.metrics, Now: f.clock.now}
	if mod != nil {
		mod(&cfg)
	}
	if f.g, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	f.h = f.g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.nextHit.Add(1)
		w.Header().Set("X-Next", "1")
		_, _ = w.Write([]byte("next " + r.URL.Path))
	}))
	return f
}

// do sends a request from 192.0.2.1 unless a "RemoteAddr" pseudo-header
// says otherwise.
func (f *fixture) do(method, path string, hdr ...string) *httptest.ResponseRecorder {
	f.t.Helper()
	r := httptest.NewRequest(method, path, nil)
	r.RemoteAddr = "192.0.2.1:5555"
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "RemoteAddr" {
			r.RemoteAddr = hdr[i+1]
			continue
		}
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

// body decodes a JSON answer.
func body(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", w.Body.String(), err)
	}
	return m
}

// pay reads the 402, pays it (looks up the preimage) and returns the
// Authorization value.
func (f *fixture) pay(w *httptest.ResponseRecorder) string {
	f.t.Helper()
	if w.Code != http.StatusPaymentRequired {
		f.t.Fatalf("status %d, want 402: %s", w.Code, w.Body)
	}
	ch, err := l402.ParseChallenge(w.Header())
	if err != nil {
		f.t.Fatal(err)
	}
	mac, err := l402.DecodeMacaroon(ch.Macaroon)
	if err != nil {
		f.t.Fatal(err)
	}
	id, err := l402.DecodeIdentifier(mac.Id())
	if err != nil {
		f.t.Fatal(err)
	}
	pre, ok := f.lnd.preimage(id.PaymentHash)
	if !ok {
		f.t.Fatal("no invoice for the challenge")
	}
	return l402.AuthorizationValue(ch.Macaroon, pre)
}

func (f *fixture) outcome(service, outcome string) float64 {
	f.t.Helper()
	mfs, err := f.metrics.Registry.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "l402d_gate_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var s, o string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "service":
					s = l.GetValue()
				case "outcome":
					o = l.GetValue()
				}
			}
			if s == service && o == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestChallengeAndPaidRetry(t *testing.T) {
	f := newFixture(t, testServices, nil)
	w := f.do("GET", "/api/data")
	if w.Code != http.StatusPaymentRequired || f.nextHit.Load() != 0 {
		t.Fatalf("unpaid: %d, next called %d times", w.Code, f.nextHit.Load())
	}
	// The L402 challenge, then the same invoice as an MPP charge.
	if got := w.Header().Values("WWW-Authenticate"); len(got) != 2 || !strings.HasPrefix(got[0], `L402 macaroon="`) || !strings.Contains(got[0], `invoice="lnbcrt`) ||
		!strings.HasPrefix(got[1], `Payment id="`) {
		t.Fatalf("WWW-Authenticate %q", got)
	}
	if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", w.Header())
	}
	b := body(t, w)
	if b["code"] != "payment_required" || b["amountSats"] != 10.0 || b["priceSats"] != 10.0 || b["resource"] != "/api/*" || b["service"] != "api" ||
		len(b["paymentHash"].(string)) != 64 || b["macaroon"] == "" || b["invoice"] == "" || b["expiresAt"] == "" || b["reason"] != nil {
		t.Fatalf("402 body %v", b)
	}
	auth := f.pay(w)
	for i := range 3 { // reusable until it expires
		w = f.do("GET", "/api/data/"+strconv.Itoa(i), "Authorization", auth)
		if w.Code != 200 || w.Body.String() != "next /api/data/"+strconv.Itoa(i) {
			t.Fatalf("paid retry %d: %d %s", i, w.Code, w.Body)
		}
	}
	if f.lnd.adds != 1 {
		t.Fatalf("%d invoices, want 1", f.lnd.adds)
	}
	if f.outcome("api", "paid") != 3 || f.outcome("api", "challenged") != 1 {
		t.Fatalf("metrics paid %v challenged %v", f.outcome("api", "paid"), f.outcome("api", "challenged"))
	}
	// The credential is accepted in its other spellings too.
	_, rest, _ := strings.Cut(auth, " ")
	if w := f.do("GET", "/api/x", "Authorization", "lsat "+rest); w.Code != 200 {
		t.Fatalf("LSAT scheme: %d", w.Code)
	}
	if w := f.do("GET", "/api/x", "Authorization", "Bearer xyz", "Authorization", auth); w.Code != 200 {
		t.Fatalf("second Authorization value: %d", w.Code)
	}
}

func TestRejectedCredentials(t *testing.T) {
	f := newFixture(t, testServices, func(c *Config) { c.MintRate = -1 })
	apiAuth := f.pay(f.do("GET", "/api/x"))
	premiumAuth := f.pay(f.do("GET", "/api/premium/x"))
	otherAuth := f.pay(f.do("GET", "/other/x"))
	macB64, _, _ := strings.Cut(strings.TrimPrefix(apiAuth, "L402 "), ":")

	tests := []struct {
		name, path, auth, reason string
	}{
		// The verifier checks caveats in order: the resource comes first.
		{"token of another service", "/other/x", apiAuth, "wrong_resource"},
		{"other service's token here", "/api/x", otherAuth, "wrong_resource"},
		{"cheap rule's token on a pricier path", "/api/premium/x", apiAuth, "wrong_resource"},
		{"pricier rule's token on another rule's path", "/api/x", premiumAuth, "wrong_resource"},
		{"wrong preimage", "/api/x", "L402 " + macB64 + ":" + strings.Repeat("ab", 32), "wrong_preimage"},
		{"malformed", "/api/x", "L402 notbase64!!:00", "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.nextHit.Load()
			w := f.do("GET", tt.path, "Authorization", tt.auth)
			b := body(t, w)
			if w.Code != http.StatusPaymentRequired || b["reason"] != tt.reason || b["message"] == "" || w.Header().Get("WWW-Authenticate") == "" {
				t.Fatalf("%d %v, want a fresh 402 with reason %s", w.Code, b, tt.reason)
			}
			if f.nextHit.Load() != before {
				t.Fatal("a rejected credential reached the handler")
			}
		})
	}
	if f.outcome("api", "rejected") < 4 {
		t.Fatalf("rejected metric %v", f.outcome("api", "rejected"))
	}
	// A non-L402 Authorization is the upstream's business: a plain 402.
	if b := body(t, f.do("GET", "/api/x", "Authorization", "Bearer abc")); b["reason"] != nil {
		t.Fatalf("Bearer got a reason: %v", b)
	}
}

func TestTokenOfAnotherHost(t *testing.T) {
	// Same path, two hosts: only the services caveat tells them apart.
	f := newFixture(t, `
services:
  - name: a
    host: a.example.com
    price: 1
  - name: b
    host: b.example.com
    price: 1
`, nil)
	r := httptest.NewRequest("GET", "http://a.example.com/x", nil)
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	auth := f.pay(w)
	r = httptest.NewRequest("GET", "http://b.example.com/x", nil)
	r.Header.Set("Authorization", auth)
	w = httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	if b := body(t, w); w.Code != 402 || b["reason"] != "wrong_service" || b["service"] != "b" {
		t.Fatalf("a's token on b: %d %v", w.Code, b)
	}
}

func TestExpiredToken(t *testing.T) {
	f := newFixture(t, strings.Replace(testServices, "    capabilities: [read]\n", "    capabilities: [read]\n    token_validity: 10m\n", 1), nil)
	auth := f.pay(f.do("GET", "/api/x"))
	if w := f.do("GET", "/api/x", "Authorization", auth); w.Code != 200 {
		t.Fatalf("fresh token: %d", w.Code)
	}
	f.clock.advance(11 * time.Minute)
	w := f.do("GET", "/api/x", "Authorization", auth)
	if b := body(t, w); w.Code != 402 || b["reason"] != "expired" {
		t.Fatalf("expired token: %d %v", w.Code, b)
	}
}

func TestFreeAndUnmatched(t *testing.T) {
	f := newFixture(t, testServices, nil)
	for _, p := range []string{"/api/health", "/free/x", "/unmatched"} {
		if w := f.do("GET", p); w.Code != 200 || w.Header().Get("X-Next") != "1" {
			t.Fatalf("%s: %d", p, w.Code)
		}
	}
	// Freebies: two unpaid requests per client, then a 402.
	for i := range 2 {
		if w := f.do("GET", "/trial/x"); w.Code != 200 {
			t.Fatalf("free request %d: %d", i, w.Code)
		}
	}
	if w := f.do("GET", "/trial/x"); w.Code != 402 {
		t.Fatalf("3rd trial request: %d", w.Code)
	}
	if w := f.do("GET", "/trial/x", "RemoteAddr", "192.0.2.2:1"); w.Code != 200 {
		t.Fatalf("another client's first request: %d", w.Code)
	}
	if f.outcome("trial", "free") != 3 || f.outcome("free", "free") != 1 || f.outcome("api", "free") != 1 {
		t.Fatal("free outcomes not counted")
	}
	// The proxy answers 404 where the middleware passes through.
	r := httptest.NewRequest("GET", "/unmatched", nil)
	w := httptest.NewRecorder()
	f.g.ServeHTTP(w, r)
	if b := body(t, w); w.Code != 404 || b["code"] != "not_found" || !strings.Contains(b["fix"].(string), DiscoveryPath) {
		t.Fatalf("proxy unmatched: %d %v", w.Code, b)
	}
}

func TestNonCanonicalPath(t *testing.T) {
	f := newFixture(t, testServices, nil)
	for _, p := range []string{"/api/health/../data", "/api//data", "/api/./x", "/api/health/..\\data"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path = p
		r.RemoteAddr = "192.0.2.1:1"
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		if w.Code != 400 || body(t, w)["code"] != "bad_path" {
			t.Fatalf("%s: %d %s", p, w.Code, w.Body)
		}
	}
}

// TestSemicolonPath: Tomcat and Jetty read "/free/..;/api/x" as "/api/x";
// the gate refuses ';' in a path unless a service allows it.
func TestSemicolonPath(t *testing.T) {
	f := newFixture(t, testServices+`  - name: matrix
    path: /matrix/*
    price: 3
    allow_semicolons: true
`, nil)
	for _, p := range []string{"/free/..;/api/x", "/free/x;jsessionid=1", "/api/health;/../premium"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path = p
		r.RemoteAddr = "192.0.2.1:1"
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		if b := body(t, w); w.Code != 400 || b["code"] != "bad_path" || f.nextHit.Load() != 0 {
			t.Fatalf("%s: %d %v", p, w.Code, b)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.URL.Path = "/matrix/a;b=1"
	r.RemoteAddr = "192.0.2.1:1"
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	if w.Code != 402 {
		t.Fatalf("allow_semicolons: %d", w.Code)
	}
}

// TestFoldCase: in front of an upstream that ignores case, /API/PREMIUM/x
// must cost what /api/premium/x costs, not slip past the pricing rule.
func TestFoldCase(t *testing.T) {
	folded := strings.Replace(testServices, "    capabilities: [read]\n", "    capabilities: [read]\n    fold_case: true\n", 1)
	for name, f := range map[string]*fixture{
		"per service": newFixture(t, folded, nil),
		"global": newFixture(t, testServices, func(c *Config) {
			c.FoldCase = true
			c.Services = mustServicesOpt(t, testServices, ParseOptions{FoldCase: true})
		}),
	} {
		t.Run(name, func(t *testing.T) {
			w := f.do("GET", "/API/Premium/report")
			if b := body(t, w); w.Code != 402 || b["priceSats"] != 100.0 {
				t.Fatalf("/API/Premium/report: %d %v", w.Code, b)
			}
			auth := f.pay(w)
			if w := f.do("GET", "/api/PREMIUM/other", "Authorization", auth); w.Code != 200 {
				t.Fatalf("a premium token on another spelling: %d", w.Code)
			}
			if w := f.do("GET", "/Api/Health"); w.Code != 200 || f.nextHit.Load() == 0 {
				t.Fatalf("whitelist, folded: %d", w.Code)
			}
		})
	}
	// Without folding the spelling is another path (here: no service).
	f := newFixture(t, testServices, nil)
	if w := f.do("GET", "/API/Premium/report"); w.Code != 200 || w.Header().Get("X-Next") != "1" {
		t.Fatalf("unfolded: %d", w.Code)
	}
}

func mustServicesOpt(t testing.TB, y string, opt ParseOptions) *Services {
	t.Helper()
	s, err := ParseServices([]byte(y), opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMintRateLimit(t *testing.T) {
	f := newFixture(t, testServices, func(c *Config) { c.MintRate, c.MintBurst = 1, 2 })
	for i := range 2 {
		if w := f.do("GET", "/api/x"); w.Code != 402 {
			t.Fatalf("challenge %d: %d", i, w.Code)
		}
	}
	w := f.do("GET", "/api/x")
	if b := body(t, w); w.Code != 429 || b["code"] != "rate_limited" || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("over the mint limit: %d %v %v", w.Code, b, w.Header())
	}
	// Per address: another client still gets a challenge; an IPv6
	// neighbour in the same /64 does not get a bucket of its own.
	if w := f.do("GET", "/api/x", "RemoteAddr", "192.0.2.9:1"); w.Code != 402 {
		t.Fatalf("other client: %d", w.Code)
	}
	f.do("GET", "/api/x", "RemoteAddr", "[2001:db8::1]:1")
	f.do("GET", "/api/x", "RemoteAddr", "[2001:db8::2]:1")
	if w := f.do("GET", "/api/x", "RemoteAddr", "[2001:db8::3]:1"); w.Code != 429 {
		t.Fatalf("same /64: %d", w.Code)
	}
	f.clock.advance(time.Second)
	if w := f.do("GET", "/api/x"); w.Code != 402 {
		t.Fatalf("after refill: %d", w.Code)
	}
	if f.outcome("api", "rate_limited") != 2 {
		t.Fatalf("rate_limited metric %v", f.outcome("api", "rate_limited"))
	}
}

func TestMintLimitBehindTrustedProxy(t *testing.T) {
	f := newFixture(t, testServices, func(c *Config) {
		c.MintRate, c.MintBurst = 1, 1
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	via := func(xff string) int {
		return f.do("GET", "/api/x", "RemoteAddr", "10.0.0.5:1", "X-Forwarded-For", xff).Code
	}
	if via("198.51.100.1") != 402 || via("198.51.100.2") != 402 || via("198.51.100.1, 10.0.0.7") != 429 {
		t.Fatal("clients behind a trusted proxy are not told apart by X-Forwarded-For")
	}
	// An untrusted peer's X-Forwarded-For is ignored.
	if f.do("GET", "/api/x", "X-Forwarded-For", "198.51.100.3").Code != 402 || f.do("GET", "/api/x", "X-Forwarded-For", "198.51.100.4").Code != 429 {
		t.Fatal("an untrusted X-Forwarded-For was believed")
	}
}

func TestPendingCap(t *testing.T) {
	f := newFixture(t, testServices, func(c *Config) { c.MintRate, c.MaxPending, c.MaxPendingPerClient = -1, 2, -1 })
	f.do("GET", "/api/x")
	paid := f.pay(f.do("GET", "/api/y"))
	w := f.do("GET", "/api/z")
	if b := body(t, w); w.Code != 429 || b["code"] != "too_many_unpaid_invoices" || w.Header().Get("Retry-After") == "" {
		t.Fatalf("over the cap: %d %v", w.Code, b)
	}
	_ = paid
}

// TestPendingShare: a client that stays within its mint rate but never
// pays cannot hold the node's whole unpaid-invoice cap: it gets its share
// (IPv4 address, IPv6 /64), and everyone else still gets challenges.
func TestPendingShare(t *testing.T) {
	f := newFixture(t, testServices, func(c *Config) { c.MintRate, c.MaxPending, c.MaxPendingPerClient = -1, 10, 3 })
	for i := range 3 {
		if w := f.do("GET", "/api/x"); w.Code != 402 {
			t.Fatalf("challenge %d: %d", i, w.Code)
		}
	}
	w := f.do("GET", "/api/x")
	if b := body(t, w); w.Code != 429 || b["code"] != "too_many_unpaid_invoices_client" || w.Header().Get("Retry-After") == "" {
		t.Fatalf("over the client's share: %d %v", w.Code, b)
	}
	if w := f.do("GET", "/api/x", "RemoteAddr", "192.0.2.9:1"); w.Code != 402 {
		t.Fatalf("another client: %d", w.Code)
	}
	// One IPv6 /64 is one client.
	for i := range 3 {
		if w := f.do("GET", "/api/x", "RemoteAddr", fmt.Sprintf("[2001:db8::%d]:1", i+1)); w.Code != 402 {
			t.Fatalf("IPv6 challenge %d: %d", i, w.Code)
		}
	}
	if w := f.do("GET", "/api/x", "RemoteAddr", "[2001:db8::99]:1"); w.Code != 429 {
		t.Fatalf("a 4th from the same /64: %d", w.Code)
	}
	// Paying one frees a slot of that client's share.
	f.pay(f.do("GET", "/api/x", "RemoteAddr", "192.0.2.9:1"))
	f.clock.advance(2 * time.Second)
	if w := f.do("GET", "/api/x", "RemoteAddr", "192.0.2.9:1"); w.Code != 402 {
		t.Fatalf("after paying: %d", w.Code)
	}
}

// TestFreebiesPerSlash64: an IPv6 client cannot get fresh freebies by
// changing the low bits of its address.
func TestFreebiesPerSlash64(t *testing.T) {
	f := newFixture(t, testServices, nil)
	for i := range 2 {
		if w := f.do("GET", "/trial/x", "RemoteAddr", fmt.Sprintf("[2001:db8::%d]:1", i+1)); w.Code != 200 {
			t.Fatalf("free request %d: %d", i, w.Code)
		}
	}
	if w := f.do("GET", "/trial/x", "RemoteAddr", "[2001:db8::77]:1"); w.Code != 402 {
		t.Fatalf("a 3rd free request from the same /64: %d", w.Code)
	}
}

func TestTokenRateLimit(t *testing.T) {
	f := newFixture(t, testServices+`  - name: metered
    path: /metered/*
    price: 1
    rate_limit: {rate: 1, burst: 2}
`, func(c *Config) { c.TokenRate, c.TokenBurst = 1000, 1000 })
	auth := f.pay(f.do("GET", "/metered/x"))
	for i := range 2 {
		if w := f.do("GET", "/metered/x", "Authorization", auth); w.Code != 200 {
			t.Fatalf("paid %d: %d", i, w.Code)
		}
	}
	w := f.do("GET", "/metered/x", "Authorization", auth)
	if b := body(t, w); w.Code != 429 || b["code"] != "token_rate_limited" || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("over the token limit: %d %v", w.Code, b)
	}
	// The gate-wide default applies where a service sets none.
	other := f.pay(f.do("GET", "/api/x"))
	for i := range 10 {
		if w := f.do("GET", "/api/x", "Authorization", other); w.Code != 200 {
			t.Fatalf("default-limited token %d: %d", i, w.Code)
		}
	}
}

func TestLNDDown(t *testing.T) {
	f := newFixture(t, testServices, nil)
	auth := f.pay(f.do("GET", "/api/x"))
	f.lnd.mu.Lock()
	f.lnd.down = true
	f.lnd.mu.Unlock()
	if w := f.do("GET", "/api/x"); w.Code != 503 || body(t, w)["code"] != "lnd_unavailable" {
		t.Fatalf("challenge with LND down: %d %s", w.Code, w.Body)
	}
	if w := f.do("GET", "/api/x", "Authorization", auth); w.Code != 200 {
		t.Fatalf("paid request with LND down: %d (verify must not need LND)", w.Code)
	}
	if f.g.pending.outstanding() != 1 {
		t.Fatalf("a failed issue kept its pending slot: %d", f.g.pending.outstanding())
	}
}

func TestGRPCChallenge(t *testing.T) {
	f := newFixture(t, testServices, func(c *Config) { c.LegacyLSAT = true })
	w := f.do("POST", "/api/pkg.Svc/Method", "Content-Type", "application/grpc")
	h := w.Header()
	if w.Code != 200 || h.Get("Grpc-Status") != "13" || !strings.HasPrefix(h.Get("Grpc-Message"), "payment required") ||
		h.Get("Content-Type") != "application/grpc" || w.Body.Len() != 0 {
		t.Fatalf("gRPC 402: %d %v %q", w.Code, h, w.Body)
	}
	wa := h.Values("WWW-Authenticate")
	if len(wa) != 2 || !strings.HasPrefix(wa[0], "LSAT ") || !strings.HasPrefix(wa[1], "L402 ") {
		t.Fatalf("WWW-Authenticate %q", wa)
	}
	// Aperture's client finds the challenge with this expression.
	if !strings.Contains(wa[0], `macaroon="`) || !strings.Contains(wa[0], `", invoice="`) {
		t.Fatalf("challenge form %q", wa[0])
	}
	// gRPC clients send the token as a hex macaroon with a preimage
	// caveat, in the Macaroon metadata.
	ch, _ := l402.ParseChallenge(h)
	mac, _ := l402.DecodeMacaroon(ch.Macaroon)
	id, _ := l402.DecodeIdentifier(mac.Id())
	pre, _ := f.lnd.preimage(id.PaymentHash)
	withPre, err := l402.AddCaveats(mac, l402.Caveat{Condition: l402.CondPreimage, Value: pre.String()})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := withPre.MarshalBinary()
	if w := f.do("POST", "/api/pkg.Svc/Method", "Content-Type", "application/grpc", "Macaroon", hexString(raw)); w.Code != 200 || w.Header().Get("X-Next") != "1" {
		t.Fatalf("gRPC paid: %d %v", w.Code, w.Header())
	}
	// Rate limits are ResourceExhausted to a gRPC client.
	g := newFixture(t, testServices, func(c *Config) { c.MintRate, c.MintBurst = 1, 1 })
	g.do("POST", "/api/x", "Content-Type", "application/grpc")
	w = g.do("POST", "/api/x", "Content-Type", "application/grpc+proto")
	if w.Header().Get("Grpc-Status") != "8" || w.Header().Get("Retry-After") == "" {
		t.Fatalf("gRPC rate limit: %v", w.Header())
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

func TestDiscovery(t *testing.T) {
	f := newFixture(t, "provider: Acme\n"+testServices, nil)
	w := f.do("GET", DiscoveryPath)
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" || w.Header().Get("Link") != "<"+OpenAPIPath+`>; rel="service-desc"` {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	var doc manifestDoc
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != ManifestVersion || doc.Scheme != "L402" || len(doc.Services) != 4 || doc.Provider != (providerDoc{"Acme", testNode}) ||
		doc.QuoteEndpoint != QuotePath || doc.OpenAPI != OpenAPIPath || doc.Currencies[0] != "msat" || doc.PaymentMethods[0] != "bolt11" {
		t.Fatalf("doc %+v", doc)
	}
	for _, c := range []string{"services", "resource", "api_capabilities", "api_valid_until", "trial_valid_until"} {
		if doc.Caveats[c].Type == "" {
			t.Errorf("caveat %s not in the vocabulary: %v", c, doc.Caveats)
		}
	}
	api := doc.Services[0]
	if api.Name != "api" || api.Path != "/api/*" || api.Auth != "on" || api.PriceSats != 10 || len(api.Prices) != 2 ||
		api.Prices[0] != (discoveryPrice{"/api/premium/*", 100}) || api.Prices[1] != (discoveryPrice{"/api/*", 10}) ||
		len(api.Resources) != 2 || api.Resources[0] != (resourceDoc{"/api/premium/*", pricingDoc{"fixed", 100000}}) || api.Resources[1] != (resourceDoc{"/api/*", pricingDoc{"fixed", 10000}}) ||
		api.TokenValiditySeconds != int64(producer.DefaultTokenValidity/time.Second) || len(api.FreePaths) != 1 || api.Capabilities[0] != "read" {
		t.Fatalf("api %+v", api)
	}
	if free := doc.Services[2]; free.Auth != "off" || free.PriceSats != 0 || free.Prices != nil || free.Resources == nil || len(free.Resources) != 0 {
		t.Fatalf("free %+v", free)
	}
	if trial := doc.Services[3]; trial.FreeRequests != 2 || trial.FreeWindowSeconds != 86400 {
		t.Fatalf("trial %+v", trial)
	}
	if strings.Contains(w.Body.String(), "upstream") {
		t.Fatal("discovery leaks upstreams")
	}

	w = f.do("GET", OpenAPIPath)
	oa := body(t, w)
	info, _ := oa["info"].(map[string]any)
	prov, _ := info["x-l402-provider"].(map[string]any)
	paths, _ := oa["paths"].(map[string]any)
	if w.Code != 200 || oa["openapi"] != "3.1.0" || info["x-l402-version"] != ManifestVersion || prov["node_pubkey"] != testNode || oa["x-l402-quote-endpoint"] != QuotePath ||
		len(paths) != 5 || paths[QuotePath] == nil {
		t.Fatalf("openapi %d %v", w.Code, oa)
	}
	get, _ := paths["/api/premium/*"].(map[string]any)["get"].(map[string]any)
	pricing, _ := get["x-l402-pricing"].(map[string]any)
	if get["x-l402-service"] != "api" || pricing["model"] != "fixed" || pricing["price_msat"] != 100000.0 || get["x-l402-capability"] != "read" {
		t.Fatalf("premium operation %v", get)
	}
	if _, free := paths["/free/*"]; free {
		t.Fatal("a free service has a priced operation")
	}

	for _, p := range []string{DiscoveryPath, OpenAPIPath} {
		if w := f.do("POST", p); w.Code != 405 {
			t.Fatalf("POST %s: %d", p, w.Code)
		}
	}
	off := newFixture(t, "discovery: false\n"+testServices, nil)
	for _, p := range []string{DiscoveryPath, OpenAPIPath, QuotePath} {
		if w := off.do("GET", p); w.Header().Get("X-Next") != "1" {
			t.Fatalf("%s served although discovery is off", p)
		}
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "services.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(testServices)
	f := newFixture(t, testServices, func(c *Config) { c.Services, c.ServicesFile, c.MintRate = nil, file, -1 })
	auth := f.pay(f.do("GET", "/api/x"))
	if changed, err := f.g.Reload(context.Background()); err != nil || changed {
		t.Fatalf("reload of the same file: %v %v", changed, err)
	}
	write(strings.Replace(testServices, "price: 10", "price: 25", 1))
	if changed, err := f.g.Reload(context.Background()); err != nil || !changed {
		t.Fatalf("reload: %v %v", changed, err)
	}
	if b := body(t, f.do("GET", "/api/x")); b["priceSats"] != 25.0 {
		t.Fatalf("price after reload %v", b["priceSats"])
	}
	// Tokens bought before the change keep working for their rule.
	if w := f.do("GET", "/api/x", "Authorization", auth); w.Code != 200 {
		t.Fatalf("old token after reload: %d", w.Code)
	}
	write(strings.Replace(testServices, "price: 10", "price: -1", 1))
	_, err := f.g.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "services.yaml:5: services[0].price") {
		t.Fatalf("invalid reload: %v", err)
	}
	if b := body(t, f.do("GET", "/api/x")); b["priceSats"] != 25.0 {
		t.Fatalf("an invalid file replaced the running services: price %v", b["priceSats"])
	}
	st := f.g.Status()
	if st.Reloads != 1 || len(st.Errors) != 1 || st.Errors[0].Line != 5 || st.LastError == "" {
		t.Fatalf("status %+v", st)
	}
	// Admin handlers.
	rec := httptest.NewRecorder()
	f.g.ReloadHandler().ServeHTTP(rec, httptest.NewRequest("POST", "/api/gate/reload", nil))
	if b := body(t, rec); rec.Code != 422 || b["code"] != "invalid_services" || b["field"] != "services[0].price" || len(b["errors"].([]any)) != 1 {
		t.Fatalf("reload handler: %d %v", rec.Code, b)
	}
	rec = httptest.NewRecorder()
	f.g.ServicesHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/gate/services", nil))
	b := body(t, rec)
	svcs := b["services"].([]any)
	if rec.Code != 200 || len(svcs) != 4 || svcs[0].(map[string]any)["priceSats"] != 25.0 || b["status"].(map[string]any)["lastError"] == "" {
		t.Fatalf("services handler: %d %v", rec.Code, b)
	}
	// Watch picks up a fixed file.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.g.Watch(ctx, 10*time.Millisecond) }()
	defer func() { cancel(); <-done }()
	write(strings.Replace(testServices, "price: 10", "price: 30", 1))
	deadline := time.Now().Add(5 * time.Second)
	for body(t, f.do("GET", "/api/x"))["priceSats"] != 30.0 {
		if time.Now().After(deadline) {
			t.Fatal("Watch did not reload the changed file")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := f.g.Status(); st.LastError != "" || st.Reloads != 2 {
		t.Fatalf("status after a good reload %+v", st)
	}
}

func TestRequireUpstream(t *testing.T) {
	_, err := New(Config{Producer: nopProducer{}, Services: mustServices(t, testServices), RequireUpstream: true})
	if err == nil || !strings.Contains(err.Error(), "services[0].upstream") {
		t.Fatalf("err = %v", err)
	}
}

type nopProducer struct{}

func (nopProducer) Issue(context.Context, producer.Offer) (producer.Challenge, error) {
	return producer.Challenge{}, nil
}

func (nopProducer) Verify(context.Context, l402.Credential, l402.Expect) (l402.Verified, error) {
	return l402.Verified{}, l402.ErrMalformed
}

// TestConcurrentTrafficAndReloads serves paid, unpaid and free requests
// from many goroutines while the services are swapped (run with -race).
func TestConcurrentTrafficAndReloads(t *testing.T) {
	f := newFixture(t, testServices, func(c *Config) { c.MintRate, c.TokenRate, c.MaxPending, c.MaxPendingPerClient = -1, -1, -1, -1 })
	auth := f.pay(f.do("GET", "/api/x"))
	alt := mustServices(t, strings.Replace(testServices, "price: 10", "price: 11", 1))
	orig := f.g.Services()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range 8 {
		wg.Go(func() {
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				var w *httptest.ResponseRecorder
				switch (i + j) % 3 {
				case 0:
					w = f.do("GET", "/api/x", "Authorization", auth)
					if w.Code != 200 {
						t.Errorf("paid: %d", w.Code)
						return
					}
				case 1:
					if w = f.do("GET", "/api/y"); w.Code != 402 {
						t.Errorf("unpaid: %d", w.Code)
						return
					}
				default:
					if w = f.do("GET", "/free/z"); w.Code != 200 {
						t.Errorf("free: %d", w.Code)
						return
					}
				}
			}
		})
	}
	for i := range 50 {
		s := orig
		if i%2 == 0 {
			s = alt
		}
		if err := f.g.Swap(s); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
}

// TestMissingServicesFile: a gate pointed at a services file that does
// not exist yet starts with no services and serves the file once written.
func TestMissingServicesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "services.yaml")
	g, err := New(Config{Producer: nopProducer{}, ServicesFile: path})
	if err != nil {
		t.Fatalf("missing services file: %v", err)
	}
	if n := g.Services().Len(); n != 0 {
		t.Fatalf("%d services", n)
	}
	if err := os.WriteFile(path, []byte("services:\n  - name: api\n    path: /api/*\n    upstream: http://127.0.0.1:1\n    price: 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := g.Services().Len(); n != 1 {
		t.Fatalf("after writing the file: %d services", n)
	}
}
