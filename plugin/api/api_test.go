package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/plugin/metrics"
	"github.com/l402d/l402d/plugin/producer"
	"github.com/l402d/l402d/storage"
)

const (
	testAPIKey   = "api-key-0123456789abcdef"
	testAdminKey = "admin-key-0123456789abcdef"
	testSpendKey = "spend-key-0123456789abcdef"
	testNode     = "02c0ffee00000000000000000000000000000000000000000000000000000000aa"
)

// stubBackend stands in for LND in tests of the HTTP layer only: it mints
// fake invoices and remembers their preimages. Real LND is in itest/.
type stubBackend struct {
	invoices.Backend
	mu        sync.Mutex
	adds      int
	down      bool
	preimages map[lntypes.Hash]lntypes.Preimage
}

func (b *stubBackend) AddInvoice(_ context.Context, r invoices.AddInvoiceRequest) (invoices.Invoice, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		return invoices.Invoice{}, invoices.ErrUnavailable
	}
	b.adds++
	var p lntypes.Preimage
	_, _ = rand.Read(p[:])
	b.preimages[p.Hash()] = p
	return invoices.Invoice{PaymentHash: p.Hash(), PaymentRequest: "lnbcrt" + p.Hash().String()[:20], ExpiresAt: time.Now().Add(r.Expiry)}, nil
}

func (b *stubBackend) NodeInfo(context.Context) (invoices.NodeInfo, error) {
	return invoices.NodeInfo{Pubkey: testNode}, nil
}

type fixture struct {
	srv     *Server
	backend *stubBackend
}

// newFixture is a server whose node spends (it has a spend key).
func newFixture(t *testing.T) *fixture { t.Helper(); return newFixtureSpend(t, true) }

func newFixtureSpend(t *testing.T, spend bool) *fixture {
	t.Helper()
	ctx := context.Background()
	store, err := storage.Open(ctx, storage.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	b := &stubBackend{preimages: map[lntypes.Hash]lntypes.Preimage{}}
	m := metrics.New()
	p, err := producer.New(producer.Config{Store: store, Backend: b, Metrics: m, MaxPriceSats: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	keys, err := NewKeys(testAPIKey, testAdminKey)
	if err != nil {
		t.Fatal(err)
	}
	if spend {
		if keys, err = keys.WithSpend(testSpendKey); err != nil {
			t.Fatal(err)
		}
	}
	return &fixture{srv: New(Config{Keys: keys, Producer: p, Metrics: m}), backend: b}
}

func (f *fixture) do(t *testing.T, method, path, key string, body any, hdr ...string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	req.RemoteAddr = "192.0.2.7:5555"
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, req)
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return w, out
}

func TestAuth(t *testing.T) {
	f := newFixture(t)
	body := map[string]any{"resource": "/r", "priceSats": 5}
	tests := []struct {
		name, method, path, key string
		hdr                     []string
		want                    int
	}{
		{"no key", "POST", "/api/l402/challenges", "", nil, 401},
		{"wrong key", "POST", "/api/l402/challenges", "nope-nope-nope-nope", nil, 401},
		{"api key", "POST", "/api/l402/challenges", testAPIKey, nil, 200},
		{"admin key works for api", "POST", "/api/l402/challenges", testAdminKey, nil, 200},
		{"bearer", "POST", "/api/l402/challenges", "", []string{"Authorization", "Bearer " + testAPIKey}, 200},
		{"admin endpoint with api key", "POST", "/api/l402/tokens/revoke", testAPIKey, nil, 403},
		{"healthz is open", "GET", "/healthz", "", nil, 200},
		{"spend key cannot create", "POST", "/api/l402/challenges", testSpendKey, nil, 403},
		{"metrics needs a key", "GET", "/metrics", "", nil, 401},
		{"metrics with key", "GET", "/metrics", testAPIKey, nil, 200},
		{"unknown path", "GET", "/nope", testAPIKey, nil, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, out := f.do(t, tt.method, tt.path, tt.key, body, tt.hdr...)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if w.Code == 401 && out["field"] != "X-API-Key" {
				t.Fatalf("401 does not name the header: %s", w.Body)
			}
		})
	}
}

func TestCreateValidation(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name  string
		body  any
		hdr   []string
		code  int
		field string
	}{
		{"missing resource", map[string]any{"priceSats": 5}, nil, 400, "resource"},
		{"blank resource", map[string]any{"resource": "   ", "priceSats": 5}, nil, 400, "resource"},
		{"resource not a string", map[string]any{"resource": 7, "priceSats": 5}, nil, 400, "resource"},
		{"resource too long", map[string]any{"resource": strings.Repeat("r", 2000), "priceSats": 5}, nil, 400, "resource"},
		{"control characters", map[string]any{"resource": "/a\x00b", "priceSats": 5}, nil, 400, "resource"},
		{"missing price", map[string]any{"resource": "/r"}, nil, 400, "priceSats"},
		{"zero price", map[string]any{"resource": "/r", "priceSats": 0}, nil, 400, "priceSats"},
		{"negative price", map[string]any{"resource": "/r", "priceSats": -5}, nil, 400, "priceSats"},
		{"price above max", map[string]any{"resource": "/r", "priceSats": 100_001}, nil, 400, "priceSats"},
		{"enormous price", `{"resource":"/r","priceSats":99999999999999999999999}`, nil, 400, "priceSats"},
		{"fractional price", `{"resource":"/r","priceSats":1.5}`, nil, 400, "priceSats"},
		{"string price", `{"resource":"/r","priceSats":"50"}`, nil, 400, "priceSats"},
		{"snake case price, bad", `{"resource":"/r","price_sats":"x"}`, nil, 400, "price_sats"},
		{"description too long", map[string]any{"resource": "/r", "priceSats": 5, "description": strings.Repeat("d", 700)}, nil, 400, "description"},
		{"idempotency key too long", map[string]any{"resource": "/r", "priceSats": 5}, []string{"X-Idempotency-Key", strings.Repeat("k", 257)}, 400, "X-Idempotency-Key"},
		{"not json", "resource=/r", nil, 400, ""},
		{"empty body", "", nil, 400, ""},
		{"json array", "[1,2]", nil, 400, ""},
		{"too large", `{"resource":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, nil, 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, out := f.do(t, "POST", "/api/l402/challenges", testAPIKey, tt.body, tt.hdr...)
			if w.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			if out["field"] != nil && out["field"] != tt.field || (tt.field != "" && out["field"] != tt.field) {
				t.Fatalf("field %v, want %q: %s", out["field"], tt.field, w.Body)
			}
			if out["error"] == "" || out["error"] == nil {
				t.Fatalf("no error message: %s", w.Body)
			}
			if tt.field != "" && out["fix"] == nil {
				t.Fatalf("no fix: %s", w.Body)
			}
		})
	}
	if f.backend.adds != 0 {
		t.Fatalf("invalid requests created %d invoices", f.backend.adds)
	}
}

func TestCreateShapeAndIdempotency(t *testing.T) {
	f := newFixture(t)
	body := map[string]any{"resource": "/api/weather/forecast", "priceSats": 50, "description": "7-day forecast"}
	w, first := f.do(t, "POST", "/api/l402/challenges", testAPIKey, body)
	if w.Code != 200 {
		t.Fatal(w.Body)
	}
	for _, k := range []string{"invoice", "macaroon", "paymentHash", "expiresAt", "resource", "priceSats"} {
		if _, ok := first[k]; !ok {
			t.Fatalf("seed field %q missing: %s", k, w.Body)
		}
	}
	if len(first) != 6 {
		t.Fatalf("extra fields beyond the seed's: %s", w.Body)
	}
	if first["priceSats"] != 50.0 || first["resource"] != "/api/weather/forecast" {
		t.Fatalf("echo: %s", w.Body)
	}
	if _, err := time.Parse(time.RFC3339, first["expiresAt"].(string)); err != nil {
		t.Fatalf("expiresAt: %v", err)
	}

	_, again := f.do(t, "POST", "/api/l402/challenges", testAPIKey, body)
	if again["invoice"] != first["invoice"] || again["macaroon"] != first["macaroon"] {
		t.Fatal("same client, resource and price within the window got a new challenge")
	}
	_, other := f.do(t, "POST", "/api/l402/challenges", testAPIKey, map[string]any{"resource": "/api/weather/forecast", "priceSats": 51})
	if other["invoice"] == first["invoice"] {
		t.Fatal("another price got the same challenge")
	}
	_, keyed := f.do(t, "POST", "/api/l402/challenges", testAPIKey, body, "X-Idempotency-Key", "k1")
	if keyed["invoice"] == first["invoice"] {
		t.Fatal("an idempotency key did not get a fresh challenge")
	}
	_, keyed2 := f.do(t, "POST", "/api/l402/challenges", testAPIKey, body, "X-Idempotency-Key", "k1")
	if keyed2["invoice"] != keyed["invoice"] {
		t.Fatal("same idempotency key got a new challenge")
	}
	if f.backend.adds != 3 {
		t.Fatalf("%d invoices created, want 3", f.backend.adds)
	}

	// Concurrent identical requests share one invoice.
	var wg sync.WaitGroup
	got := make([]any, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, out := f.do(t, "POST", "/api/l402/challenges", testAPIKey, body, "X-Idempotency-Key", "burst")
			got[i] = out["invoice"]
		}()
	}
	wg.Wait()
	for _, g := range got {
		if g != got[0] || g == nil {
			t.Fatalf("concurrent identical creates disagree: %v", got)
		}
	}
}

func TestCreateLNDDown(t *testing.T) {
	f := newFixture(t)
	f.backend.down = true
	w, out := f.do(t, "POST", "/api/l402/challenges", testAPIKey, map[string]any{"resource": "/r", "priceSats": 5})
	if w.Code != 503 || out["code"] != "lnd_unavailable" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	_, ch := f.do(t, "POST", "/api/l402/challenges", testAPIKey, map[string]any{"resource": "/api/a", "priceSats": 21})
	hash, _ := lntypes.MakeHashFromStr(ch["paymentHash"].(string))
	pre := f.backend.preimages[hash]
	mac := ch["macaroon"].(string)

	w, out := f.do(t, "POST", "/api/l402/challenges/verify", testAPIKey, map[string]any{"macaroon": mac, "preimage": pre.String()})
	if w.Code != 200 || out["valid"] != true || out["resource"] != "/api/a" || out["amountSats"] != 21.0 ||
		out["merchantId"] != testNode || out["paymentHash"] != hash.String() {
		t.Fatalf("valid token: %s", w.Body)
	}
	if _, out := f.do(t, "POST", "/api/l402/challenges/verify", testAPIKey, map[string]any{"macaroon": mac, "preimage": pre.String(), "resource": "/api/b"}); out["valid"] != false || out["reason"] != "wrong_resource" {
		t.Fatalf("token for A verified for B: %v", out)
	}
	bad := sha256.Sum256([]byte("x"))
	w, out = f.do(t, "POST", "/api/l402/challenges/verify", testAPIKey, map[string]any{"macaroon": mac, "preimage": hex.EncodeToString(bad[:])})
	if w.Code != 200 || out["valid"] != false || !strings.Contains(out["error"].(string), "does not match payment hash") || len(out) != 3 {
		t.Fatalf("wrong preimage: %s", w.Body)
	}
	for name, tc := range map[string]struct {
		body  any
		field string
	}{
		"no macaroon":        {map[string]any{"preimage": pre.String()}, "macaroon"},
		"no preimage":        {map[string]any{"macaroon": mac}, "preimage"},
		"garbage macaroon":   {map[string]any{"macaroon": "!!!", "preimage": pre.String()}, "macaroon"},
		"non-hex preimage":   {map[string]any{"macaroon": mac, "preimage": strings.Repeat("z", 64)}, "preimage"},
		"short preimage":     {map[string]any{"macaroon": mac, "preimage": "abcd"}, "preimage"},
		"numeric macaroon":   {map[string]any{"macaroon": 5, "preimage": pre.String()}, "macaroon"},
		"base64 not a token": {map[string]any{"macaroon": "aGVsbG8=", "preimage": pre.String()}, "macaroon"},
	} {
		t.Run(name, func(t *testing.T) {
			w, out := f.do(t, "POST", "/api/l402/challenges/verify", testAPIKey, tc.body)
			if w.Code != 400 || out["field"] != tc.field {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
		})
	}
}

func TestAdminEndpoints(t *testing.T) {
	f := newFixture(t)
	for i := range 3 {
		f.do(t, "POST", "/api/l402/challenges", testAPIKey, map[string]any{"resource": "/r", "priceSats": 10 + i})
	}
	w, out := f.do(t, "GET", "/api/l402/challenges?state=pending&limit=2", testAPIKey, nil)
	if w.Code != 200 || len(out["challenges"].([]any)) != 2 || out["next"] == nil {
		t.Fatalf("list: %s", w.Body)
	}
	first := out["challenges"].([]any)[0].(map[string]any)
	if w, _ := f.do(t, "GET", "/api/l402/challenges/"+first["paymentHash"].(string), testAPIKey, nil); w.Code != 200 {
		t.Fatalf("get: %s", w.Body)
	}
	for _, q := range []string{"state=paid", "limit=0", "since=yesterday", "after=zzz"} {
		if w, out := f.do(t, "GET", "/api/l402/challenges?"+q, testAPIKey, nil); w.Code != 400 || out["field"] == nil {
			t.Fatalf("%s: %d %s", q, w.Code, w.Body)
		}
	}
	if w, _ := f.do(t, "GET", "/api/l402/challenges/abc", testAPIKey, nil); w.Code != 400 {
		t.Fatal(w.Body)
	}
	if w, out := f.do(t, "GET", "/api/l402/stats", testAPIKey, nil); w.Code != 200 || out["total"].(map[string]any)["challengesCreated"] != 3.0 {
		t.Fatalf("stats: %s", w.Body)
	}
	if w, out := f.do(t, "POST", "/api/l402/tokens/revoke", testAdminKey, map[string]any{"token": first["tokenId"], "reason": "abuse"}); w.Code != 200 || out["revoked"] != true {
		t.Fatalf("revoke: %s", w.Body)
	}
	if w, _ := f.do(t, "POST", "/api/l402/tokens/revoke", testAdminKey, map[string]any{"token": strings.Repeat("ab", 32)}); w.Code != 404 {
		t.Fatalf("revoke unknown: %s", w.Body)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "api.key")
	k1, err := LoadOrCreateKey(p)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 || len(k1) != 64 {
		t.Fatalf("mode %v len %d", fi.Mode().Perm(), len(k1))
	}
	if k2, err := LoadOrCreateKey(p); err != nil || k2 != k1 {
		t.Fatalf("reload: %v", err)
	}
	os.Chmod(p, 0o644)
	if _, err := LoadOrCreateKey(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key accepted: %v", err)
	}
}

func TestClientIP(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.5:1"
	r.Header.Set("X-Forwarded-For", "203.0.113.9, 10.0.0.4")
	if got := ClientIP(r, nil); got != "10.0.0.5" {
		t.Fatalf("untrusted proxy believed: %s", got)
	}
	if got := ClientIP(r, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}); got != "203.0.113.9" {
		t.Fatalf("trusted chain: %s", got)
	}
}

// A new key file must survive a power cut: its directory entry is synced
// after the file is written and renamed into place, and no temporary file
// is left behind.
func TestLoadOrCreateKeySyncsDir(t *testing.T) {
	dir := t.TempDir()
	var synced []string
	old := syncDir
	syncDir = func(d string) error { synced = append(synced, d); return old(d) }
	t.Cleanup(func() { syncDir = old })
	p := filepath.Join(dir, "admin.key")
	if _, err := LoadOrCreateKey(p); err != nil {
		t.Fatal(err)
	}
	if len(synced) == 0 || synced[len(synced)-1] != dir {
		t.Fatalf("directory %s not synced after creating the key file (synced: %v)", dir, synced)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "admin.key" {
		t.Fatalf("left in the dir: %v", ents)
	}
	synced = nil
	if _, err := LoadOrCreateKey(p); err != nil || len(synced) != 0 {
		t.Fatalf("loading an existing key: err %v, synced %v", err, synced)
	}
}

// A resource given through the API is a literal: "/api/*" bought for 1 sat
// is a token for the resource named "/api/*", never for everything under
// /api/ (wildcards come only from the gate's configured services).
func TestVerifyAPIResourceIsLiteral(t *testing.T) {
	f := newFixture(t)
	_, ch := f.do(t, "POST", "/api/l402/challenges", testAPIKey, map[string]any{"resource": "/api/*", "priceSats": 1})
	hash, _ := lntypes.MakeHashFromStr(ch["paymentHash"].(string))
	pre := f.backend.preimages[hash]
	mac := ch["macaroon"].(string)
	for _, res := range []string{"/api/premium/report", "/api/", "/api/x*"} {
		if _, out := f.do(t, "POST", "/api/l402/challenges/verify", testAPIKey, map[string]any{"macaroon": mac, "preimage": pre.String(), "resource": res}); out["valid"] != false || out["reason"] != "wrong_resource" {
			t.Fatalf("token for the literal resource /api/* verified for %s: %v", res, out)
		}
	}
	if _, out := f.do(t, "POST", "/api/l402/challenges/verify", testAPIKey, map[string]any{"macaroon": mac, "preimage": pre.String(), "resource": "/api/*"}); out["valid"] != true {
		t.Fatalf("token not valid for its own resource: %v", out)
	}
}

// /healthz without a key says only ok or degraded: the node's identity,
// LND's raw errors and the settlement cursor are for key holders.
func TestHealthzDetailNeedsKey(t *testing.T) {
	f := newFixture(t)
	f.srv.cfg.Health = func(context.Context) Health {
		return Health{Status: "degraded", LND: LNDHealth{Error: "rpc error: dial tcp 10.0.0.3:10009", Pubkey: testNode, Alias: "alice"},
			Watcher: invoices.WatcherStatus{Cursor: 42}}
	}
	w, out := f.do(t, "GET", "/healthz", "", nil)
	if w.Code != 200 || len(out) != 1 || out["status"] != "degraded" {
		t.Fatalf("without a key: %d %s", w.Code, w.Body)
	}
	if w, _ := f.do(t, "GET", "/healthz?strict=1", "", nil); w.Code != 503 {
		t.Fatalf("strict: %d", w.Code)
	}
	for _, k := range []string{testAPIKey, testSpendKey, testAdminKey} {
		if w, out := f.do(t, "GET", "/healthz", k, nil); w.Code != 200 || out["lnd"] == nil || !strings.Contains(w.Body.String(), testNode) {
			t.Fatalf("with a key: %d %s", w.Code, w.Body)
		}
	}
	if w, _ := f.do(t, "GET", "/healthz", "wrong-key-0123456789", nil); strings.Contains(w.Body.String(), testNode) {
		t.Fatalf("a wrong key got the detail: %s", w.Body)
	}
}
