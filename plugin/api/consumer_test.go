package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/plugin/consumer"
	"github.com/l402d/l402d/storage"
)

// downBackend is LND unreachable: the HTTP layer's mapping of it is all
// these tests need (payments against real LND are in itest/).
type downBackend struct{ invoices.Backend }

func (downBackend) Balance(context.Context) (invoices.Balance, error) {
	return invoices.Balance{}, invoices.ErrUnavailable
}

func (downBackend) DecodeInvoice(_ context.Context, inv string) (invoices.DecodedInvoice, error) {
	return invoices.DecodeInvoice(inv, "regtest")
}

func newConsumerFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	st, err := storage.Open(t.Context(), storage.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c, err := consumer.New(t.Context(), consumer.Config{Store: st, Backend: downBackend{}})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.MountConsumer(c)
	return f
}

// doFrom is fixture.do from a given client address.
func (f *fixture) doFrom(t *testing.T, remote, method, path, key string, body any) (int, map[string]any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	if s, ok := body.(string); ok {
		raw = []byte(s)
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(raw))
	req.RemoteAddr = remote
	req.Header.Set("X-API-Key", key)
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, req)
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return w.Code, out
}

func TestConsumerBudgetNeedsLocalAdmin(t *testing.T) {
	f := newConsumerFixture(t)
	const local, remote = "127.0.0.1:4000", "192.0.2.7:5555"
	body := map[string]any{"perDaySats": 500, "denyDomains": []string{"Bad.Example"}}
	tests := []struct {
		name, from, key string
		want            int
	}{
		{"api key, local", local, testAPIKey, 403},
		{"spend key, local", local, testSpendKey, 403},
		{"admin key, remote", remote, testAdminKey, 403},
		{"admin key, local", local, testAdminKey, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := f.doFrom(t, tt.from, "PUT", "/api/consumer/budget", tt.key, body)
			if code != tt.want || (code == 403 && out["fix"] == "") {
				t.Fatalf("%d %v", code, out)
			}
		})
	}
	code, out := f.doFrom(t, remote, "GET", "/api/consumer/budget", testSpendKey, nil)
	limits, _ := out["limits"].(map[string]any)
	today, _ := out["today"].(map[string]any)
	if code != 200 || limits["perDaySats"] != 500.0 || limits["perPaymentSats"] != 1000.0 || out["window"] != "UTC calendar day" ||
		today["remainingSats"] != 500.0 || limits["denyDomains"].([]any)[0] != "bad.example" {
		t.Fatalf("budget: %d %v", code, out)
	}
	code, out = f.doFrom(t, local, "PUT", "/api/consumer/budget", testAdminKey, map[string]any{"allowDomains": []string{"http://x/"}})
	if code != 400 || out["field"] != "allowDomains" {
		t.Fatalf("bad pattern: %d %v", code, out)
	}
}

func TestConsumerValidation(t *testing.T) {
	f := newConsumerFixture(t)
	tests := []struct {
		name, method, path string
		body               any
		want               int
		field              string
	}{
		{"no url", "POST", "/api/consumer/access", map[string]any{}, 400, "url"},
		{"bad scheme", "POST", "/api/consumer/access", map[string]any{"url": "file:///etc/passwd"}, 400, "url"},
		{"headers not an object", "POST", "/api/consumer/access", map[string]any{"url": "https://x.example/", "headers": []string{"a"}}, 400, "headers"},
		{"header value with CRLF", "POST", "/api/consumer/access", map[string]any{"url": "https://x.example/", "headers": map[string]any{"X": "a\r\nB: c"}}, 400, "headers"},
		{"maxSats as string", "POST", "/api/consumer/access", map[string]any{"url": "https://x.example/", "maxSats": "5"}, 400, "maxSats"},
		{"both bodies", "POST", "/api/consumer/quote", map[string]any{"url": "https://x.example/", "body": "a", "bodyBase64": "YQ=="}, 400, "bodyBase64"},
		{"private target", "POST", "/api/consumer/access", map[string]any{"url": "http://127.0.0.1:1/"}, 403, "url"},
		{"no invoice", "POST", "/api/consumer/pay/invoice", map[string]any{}, 400, "invoice"},
		{"garbage invoice", "POST", "/api/consumer/pay/invoice", map[string]any{"invoice": "lnbcrt1nonsense"}, 400, "invoice"},
		{"mainnet invoice", "POST", "/api/consumer/pay/invoice", map[string]any{"invoice": "lnbc1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6twvus8g6rfwvs8qun0dfjkxaq8rkx3yf5tcsyz3d73gafnh3cax9rn449d9p5uxz9ezhhypd0elx87sjle52x86fux2ypatgddc6k63n7erqz25le42c4u4ecky03ylcqca784w"}, 403, "invoice"},
		{"challenge without macaroon", "POST", "/api/consumer/pay/challenge", map[string]any{"invoice": "lnbcrt1x"}, 400, "invoice"},
		{"invoice without amount", "POST", "/api/consumer/invoices", map[string]any{"memo": "x"}, 400, "amountSats"},
		{"invoice too large", "POST", "/api/consumer/invoices", map[string]any{"amountSats": 1 << 40}, 400, "amountSats"},
		{"bad hash", "GET", "/api/consumer/invoices/xyz", nil, 400, "paymentHash"},
		{"bad state", "GET", "/api/consumer/payments?state=paid", nil, 400, "state"},
		{"bad cursor", "GET", "/api/consumer/payments?after=!!", nil, 400, "after"},
		{"unknown payment", "GET", "/api/consumer/payments/" + zeroHash, nil, 404, "paymentHash"},
		{"bad token id", "DELETE", "/api/consumer/tokens/zz", nil, 400, "id"},
		{"unknown token", "DELETE", "/api/consumer/tokens/" + zeroHash, nil, 404, "id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := f.doFrom(t, "192.0.2.7:5555", tt.method, tt.path, testSpendKey, tt.body)
			if code != tt.want || out["field"] != tt.field || out["error"] == "" {
				t.Fatalf("got %d %v, want %d naming %s", code, out, tt.want, tt.field)
			}
		})
	}
	code, out := f.doFrom(t, "192.0.2.7:5555", "GET", "/api/consumer/balance", testSpendKey, nil)
	if code != 503 || out["code"] != "lnd_unavailable" {
		t.Fatalf("balance with LND down: %d %v", code, out)
	}
	code, out = f.doFrom(t, "192.0.2.7:5555", "GET", "/api/consumer/payments", testSpendKey, nil)
	if code != 200 || len(out["payments"].([]any)) != 0 || out["totals"].(map[string]any)["count"] != 0.0 {
		t.Fatalf("empty history: %d %v", code, out)
	}
	code, out = f.doFrom(t, "192.0.2.7:5555", "GET", "/api/consumer/tokens", testSpendKey, nil)
	if code != 200 || len(out["tokens"].([]any)) != 0 {
		t.Fatalf("empty tokens: %d %v", code, out)
	}
}

const zeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

// The producer key sells and the spend key spends: neither does the
// other's work, the admin key does both, and without a spend key the node
// does not spend at all.
func TestConsumerNeedsSpendKey(t *testing.T) {
	f := newConsumerFixture(t)
	const remote = "192.0.2.7:5555"
	for _, tt := range []struct {
		name, method, path, key string
		want                    int
		code                    string
	}{
		{"producer key cannot pay", "POST", "/api/consumer/pay/invoice", testAPIKey, 403, "forbidden"},
		{"producer key cannot access", "POST", "/api/consumer/access", testAPIKey, 403, "forbidden"},
		{"producer key cannot read the balance", "GET", "/api/consumer/balance", testAPIKey, 403, "forbidden"},
		{"spend key cannot create challenges", "POST", "/api/l402/challenges", testSpendKey, 403, "forbidden"},
		{"spend key cannot verify", "POST", "/api/l402/challenges/verify", testSpendKey, 403, "forbidden"},
		{"spend key cannot read metrics", "GET", "/metrics", testSpendKey, 403, "forbidden"},
		{"spend key cannot revoke", "POST", "/api/l402/tokens/revoke", testSpendKey, 403, "forbidden"},
		{"spend key cannot back up", "GET", "/debug/pprof/", testSpendKey, 403, "forbidden"},
		{"spend key reads the balance", "GET", "/api/consumer/balance", testSpendKey, 503, ""},
		{"admin key reads the balance", "GET", "/api/consumer/balance", testAdminKey, 503, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out := f.doFrom(t, remote, tt.method, tt.path, tt.key, map[string]any{})
			if code != tt.want || (tt.code != "" && out["code"] != tt.code) {
				t.Fatalf("%d %v, want %d %s", code, out, tt.want, tt.code)
			}
		})
	}

	off := newFixtureSpend(t, false)
	st, err := storage.Open(t.Context(), storage.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c, err := consumer.New(t.Context(), consumer.Config{Store: st, Backend: downBackend{}})
	if err != nil {
		t.Fatal(err)
	}
	off.srv.MountConsumer(c)
	for _, key := range []string{testAPIKey, testAdminKey, testSpendKey} {
		code, out := off.doFrom(t, remote, "POST", "/api/consumer/pay/invoice", key, map[string]any{"invoice": "lnbcrt1"})
		want := "spending_disabled"
		if key == testSpendKey {
			want = "unauthorized" // no such key on this node
		}
		if out["code"] != want || (code != 403 && code != 401) || out["fix"] == "" {
			t.Fatalf("spending off, key %s: %d %v", key[:5], code, out)
		}
	}
}
