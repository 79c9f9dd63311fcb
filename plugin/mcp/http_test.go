package mcp

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/l402d/l402d/plugin/api"
	"github.com/l402d/l402d/plugin/mcp/proxy"
)

// Keys of the test daemon: testKey is the admin key (every tool).
const (
	testKey         = "0123456789abcdef0123456789abcdef"
	testProducerKey = "producer-0123456789abcdef"
	testSpendKey    = "spend-0123456789abcdef"
)

// daemon serves e's MCP handler at /mcp behind l402d's API server and its
// keys, with loopback as a trusted proxy (so a test can name the client's
// address in X-Forwarded-For).
func (e *env) daemon() *httptest.Server {
	keys, err := api.NewKeys(testProducerKey, testKey)
	if err == nil {
		keys, err = keys.WithSpend(testSpendKey)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	a := api.New(api.Config{Keys: keys, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	a.Handle("/mcp", api.RoleAnyKey, e.srv.Handler())
	srv := httptest.NewServer(a)
	e.t.Cleanup(func() {
		e.srv.Close()
		srv.Close()
	})
	return srv
}

type keyRT struct{ key, from string }

func (k keyRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-API-Key", k.key)
	if k.from != "" {
		r.Header.Set("X-Forwarded-For", k.from)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func connectHTTP(t testing.TB, url, key string, o clientOpts) *sdk.ClientSession {
	t.Helper()
	return connectHTTPFrom(t, url, key, "", o)
}

// connectHTTPFrom connects as a client at address from.
func connectHTTPFrom(t testing.TB, url, key, from string, o clientOpts) *sdk.ClientSession {
	t.Helper()
	cs, err := o.client().Connect(t.Context(), &sdk.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: keyRT{key, from}}}, o.session())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// TestHTTP runs the seed flow and an approval over streamable HTTP, in
// both protocol generations (stateless, and sessions with
// server-to-client elicitation).
func TestHTTP(t *testing.T) {
	e := newEnv(t, 40)
	d := e.daemon()
	seller := e.seller(50).URL
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprintf("legacy=%v", legacy), func(t *testing.T) {
			asked := 0
			cs := connectHTTP(t, d.URL+"/mcp", testKey, clientOpts{legacy: legacy, elicit: func(context.Context, *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
				asked++
				return &sdk.ElicitResult{Action: "accept", Content: map[string]any{"approve": true}}, nil
			}})
			if legacy != (cs.ID() != "") {
				t.Fatalf("session id %q with legacy=%v", cs.ID(), legacy)
			}
			ch, _ := call(t, cs, ToolCreateChallenge, map[string]any{"resource": "/http", "priceSats": 20})
			c := obj(ch["challenge"])
			paid, isErr := call(t, cs, ToolPayChallenge, map[string]any{"invoice": c["invoice"], "macaroon": c["macaroon"]})
			if isErr || paid["paid"] != true {
				t.Fatalf("pay: %v", paid)
			}
			if ok, _ := call(t, cs, ToolVerifyPayment, map[string]any{"macaroon": c["macaroon"], "preimage": paid["preimage"]}); ok["valid"] != true {
				t.Fatalf("verify: %v", ok)
			}
			out, isErr := call(t, cs, ToolAccess, map[string]any{"url": fmt.Sprintf("%s/http/%v", seller, legacy)})
			if isErr || out["paid"] != true || asked != 1 {
				t.Fatalf("approved access over HTTP: %v, asked %d", out, asked)
			}
		})
	}

	// Without the key: refused before MCP.
	if _, err := (clientOpts{}).client().Connect(t.Context(), &sdk.StreamableClientTransport{Endpoint: d.URL + "/mcp"}, nil); err == nil {
		t.Fatal("connected without the API key")
	}

	// A loopback listener reached by another name (an SSH tunnel, a port
	// map) works: the key, not the Host, guards it.
	post := func(hdr ...string) int {
		req, _ := http.NewRequest("POST", d.URL+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`))
		req.Header.Set("X-API-Key", testKey)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for i := 0; i+1 < len(hdr); i += 2 {
			if hdr[i] == "Host" {
				req.Host = hdr[i+1]
			} else {
				req.Header.Set(hdr[i], hdr[i+1])
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("Host", "l402d.internal:8402"); code != 200 {
		t.Fatalf("other Host name: %d", code)
	}
	// A browser's cross-origin request is refused.
	if code := post("Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); code != http.StatusForbidden {
		t.Fatalf("cross-origin request: %d", code)
	}

	// Close ends open sessions and their event streams, so that a
	// graceful HTTP shutdown does not wait for them.
	held := connectHTTP(t, d.URL+"/mcp", testKey, clientOpts{legacy: true})
	if held.ID() == "" {
		t.Fatal("no session")
	}
	time.Sleep(50 * time.Millisecond) // let the event stream open
	e.srv.Close()
	done := make(chan struct{})
	go func() { d.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the HTTP server still waits for an MCP session after Close")
	}
}

// TestProxy: l402cli mcp's proxy offers the daemon's tools as they are
// and passes calls, input requests and answers through, for desktop
// clients of both protocol generations.
func TestProxy(t *testing.T) {
	e := newEnv(t, 40)
	d := e.daemon()
	seller := e.seller(50).URL

	if _, err := proxy.New(t.Context(), proxy.Config{Endpoint: d.URL + "/mcp", APIKey: "wrong-key-wrong-key"}); err == nil || !strings.Contains(err.Error(), "refused the API key") {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := proxy.New(t.Context(), proxy.Config{Endpoint: "http://127.0.0.1:1/mcp", APIKey: testKey}); err == nil || !strings.Contains(err.Error(), "is l402d running") {
		t.Fatalf("no daemon: %v", err)
	}
	p, err := proxy.New(t.Context(), proxy.Config{Endpoint: d.URL + "/mcp", APIKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	if p.Protocol() != statelessProtocol {
		t.Fatalf("the proxy speaks %q with the daemon, want %s (input requests pass through only then)", p.Protocol(), statelessProtocol)
	}

	direct := connect(t, e.srv.SDK(), clientOpts{})
	want := map[string]*sdk.Tool{}
	for tl, err := range direct.Tools(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		want[tl.Name] = tl
	}
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprintf("legacy=%v", legacy), func(t *testing.T) {
			asked := 0
			cs := connect(t, p.Server(), clientOpts{legacy: legacy, elicit: func(_ context.Context, r *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
				asked++
				if !strings.Contains(r.Params.Message, "50 sats") {
					t.Errorf("asked %q", r.Params.Message)
				}
				return &sdk.ElicitResult{Action: "accept", Content: map[string]any{"approve": true}}, nil
			}})
			n := 0
			for tl, err := range cs.Tools(t.Context(), nil) {
				if err != nil {
					t.Fatal(err)
				}
				w := want[tl.Name]
				if w == nil || !reflect.DeepEqual(roundTrip(t, tl.InputSchema), roundTrip(t, w.InputSchema)) || tl.Description != w.Description ||
					!reflect.DeepEqual(tl.Annotations, w.Annotations) {
					t.Errorf("tool %s differs from the daemon's", tl.Name)
				}
				n++
			}
			if n != len(want) {
				t.Fatalf("%d tools through the proxy, the daemon has %d", n, len(want))
			}
			ch, _ := call(t, cs, ToolCreateChallenge, map[string]any{"resource": "/proxy", "priceSats": 25})
			c := obj(ch["challenge"])
			paid, _ := call(t, cs, ToolPayChallenge, map[string]any{"invoice": c["invoice"], "macaroon": c["macaroon"]})
			if ok, _ := call(t, cs, ToolVerifyPayment, map[string]any{"token": paid["l402Token"]}); ok["valid"] != true {
				t.Fatalf("seed flow through the proxy: %v / %v", paid, ok)
			}
			before := e.ln.payCount()
			out, isErr := call(t, cs, ToolAccess, map[string]any{"url": fmt.Sprintf("%s/proxy/%v", seller, legacy)})
			if isErr || out["paid"] != true || asked != 1 || e.ln.payCount() != before+1 {
				t.Fatalf("approval through the proxy: %v, asked %d", out, asked)
			}
			if out, isErr := call(t, cs, ToolCreateChallenge, map[string]any{"resource": "/r", "priceSats": 0}); !isErr || out["field"] != "priceSats" {
				t.Fatalf("tool error through the proxy: %v", out)
			}
		})
	}
	// A desktop client that cannot ask: refused, as the daemon says.
	cs := connect(t, p.Server(), clientOpts{})
	if out, isErr := call(t, cs, ToolAccess, map[string]any{"url": seller + "/proxy/no"}); !isErr || out["code"] != "approval_required" {
		t.Fatalf("no elicitation through the proxy: %v", out)
	}
	// The daemon goes away: a clear tool error, not a hang.
	d.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: ToolBalance, Arguments: map[string]any{}})
	if err != nil || !res.IsError || !strings.Contains(res.Content[0].(*sdk.TextContent).Text, "daemon_unreachable") {
		t.Fatalf("daemon gone: %v %+v", err, res)
	}
}

// TestHTTPToolsByKey: over HTTP the producer key gets the producer's
// tools and the spend key the consumer's; neither can call the other's,
// and a session stays with the key that opened it.
func TestHTTPToolsByKey(t *testing.T) {
	e := newEnv(t, -1)
	d := e.daemon()
	tools := func(cs *sdk.ClientSession) map[string]bool {
		out := map[string]bool{}
		for tl, err := range cs.Tools(t.Context(), nil) {
			if err != nil {
				t.Fatal(err)
			}
			out[tl.Name] = true
		}
		return out
	}
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprintf("legacy=%v", legacy), func(t *testing.T) {
			prod := connectHTTP(t, d.URL+"/mcp", testProducerKey, clientOpts{legacy: legacy})
			spend := connectHTTP(t, d.URL+"/mcp", testSpendKey, clientOpts{legacy: legacy})
			admin := connectHTTP(t, d.URL+"/mcp", testKey, clientOpts{legacy: legacy})
			pt, st, at := tools(prod), tools(spend), tools(admin)
			if !pt[ToolCreateChallenge] || !pt[ToolVerifyPayment] || pt[ToolPayInvoice] || pt[ToolAccess] || pt[ToolBalance] || len(pt) != 2 {
				t.Fatalf("producer key's tools: %v", pt)
			}
			if st[ToolCreateChallenge] || st[ToolVerifyPayment] || !st[ToolPayInvoice] || !st[ToolAccess] || len(st)+len(pt) != len(at) {
				t.Fatalf("spend key's tools: %v (admin: %v)", st, at)
			}
			res, err := prod.CallTool(t.Context(), &sdk.CallToolParams{Name: ToolPayInvoice, Arguments: map[string]any{"invoice": "lnbcrt1"}})
			if err == nil && !res.IsError {
				t.Fatalf("producer key called pay_invoice: %+v", res)
			}
			res, err = spend.CallTool(t.Context(), &sdk.CallToolParams{Name: ToolCreateChallenge, Arguments: map[string]any{"resource": "/x", "priceSats": 1}})
			if err == nil && !res.IsError {
				t.Fatalf("spend key called create_l402_challenge: %+v", res)
			}
		})
	}
	// A session opened with the producer key is refused to the spend key.
	prod := connectHTTP(t, d.URL+"/mcp", testProducerKey, clientOpts{legacy: true})
	req, _ := http.NewRequest("POST", d.URL+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":9,"method":"tools/list","params":{}}`))
	req.Header.Set("X-API-Key", testSpendKey)
	req.Header.Set("Mcp-Session-Id", prod.ID())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("another key on the producer's session: %d", resp.StatusCode)
	}
}

// TestHTTPIdempotencyScope: stateless MCP calls without an idempotency key
// are scoped by the caller (key and address), not shared by every client.
func TestHTTPIdempotencyScope(t *testing.T) {
	e := newEnv(t, -1)
	d := e.daemon()
	create := func(key, from string) string {
		cs := connectHTTPFrom(t, d.URL+"/mcp", key, from, clientOpts{})
		out, isErr := call(t, cs, ToolCreateChallenge, map[string]any{"resource": "/scope", "priceSats": 7})
		if isErr {
			t.Fatalf("create: %v", out)
		}
		return str(obj(out["challenge"])["paymentHash"])
	}
	a := create(testProducerKey, "198.51.100.1")
	if again := create(testProducerKey, "198.51.100.1"); again != a {
		t.Fatalf("the same caller got another challenge: %s, %s", a, again)
	}
	if b := create(testProducerKey, "198.51.100.2"); b == a {
		t.Fatal("two clients at different addresses share one challenge")
	}
	if c := create(testKey, "198.51.100.1"); c == a {
		t.Fatal("two keys share one challenge")
	}
}
