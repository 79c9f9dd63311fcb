package gate

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/l402d/l402d/l402"
)

// auth sends a forward-auth request to the gate's own handler (not the
// middleware) as nginx (X-Original-*) or Caddy (X-Forwarded-*) would.
func (f *fixture) auth(proxy, method, uri string, hdr ...string) *httptest.ResponseRecorder {
	f.t.Helper()
	r := httptest.NewRequest(http.MethodGet, AuthPath, nil)
	r.RemoteAddr = "192.0.2.1:5555"
	switch proxy {
	case "nginx":
		r.Header.Set("X-Original-Method", method)
		r.Header.Set("X-Original-URI", uri)
	case "caddy":
		r.Header.Set("X-Forwarded-Method", method)
		r.Header.Set("X-Forwarded-Uri", uri)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.g.ServeHTTP(w, r)
	return w
}

func TestForwardAuth(t *testing.T) {
	f := newFixture(t, testServices, nil)

	// Caddy and Traefik pass the gate's 402 on as it is.
	unpaid := f.auth("caddy", "GET", "/api/data?x=1")
	if unpaid.Code != http.StatusPaymentRequired || body(t, unpaid)["service"] != "api" {
		t.Fatalf("caddy unpaid: %d %s", unpaid.Code, unpaid.Body)
	}
	if wa := unpaid.Header().Values("WWW-Authenticate"); len(wa) != 2 || !strings.HasPrefix(wa[1], "Payment ") {
		t.Fatalf("caddy unpaid: every scheme's challenge, got %q", wa)
	}
	authz := f.pay(unpaid)

	// nginx gets 401 with the challenge and the 402's body in a header.
	n := f.auth("nginx", "GET", "/api/data")
	var nb map[string]any
	if n.Code != http.StatusUnauthorized || !strings.HasPrefix(n.Header().Get("WWW-Authenticate"), "L402 ") ||
		json.Unmarshal([]byte(n.Header().Get(HeaderBody)), &nb) != nil || nb["code"] != "payment_required" || nb["invoice"] == "" {
		t.Fatalf("nginx unpaid: %d %v", n.Code, n.Header())
	}
	// nginx passes one WWW-Authenticate value on, and reads the answer's
	// headers into a 4 KiB buffer: the L402 challenge only.
	if wa := n.Header().Values("WWW-Authenticate"); len(wa) != 1 || n.Header().Get("PAYMENT-REQUIRED") != "" {
		t.Fatalf("nginx unpaid: WWW-Authenticate %q, PAYMENT-REQUIRED %q", wa, n.Header().Get("PAYMENT-REQUIRED"))
	}

	mac, _ := l402.DecodeMacaroon(strings.SplitN(strings.TrimPrefix(authz, "L402 "), ":", 2)[0])
	id, _ := l402.DecodeIdentifier(mac.Id())
	for _, proxy := range []string{"nginx", "caddy"} {
		paid := f.auth(proxy, "POST", "/api/data", "Authorization", authz)
		if h := paid.Header(); paid.Code != 200 || h.Get(HeaderService) != "api" || h.Get(HeaderTokenID) != id.TokenID.String() || h.Get(HeaderAccess) != "paid" {
			t.Fatalf("%s paid: %d %v", proxy, paid.Code, paid.Header())
		}
		// A token bought for /api/* does not open /api/premium/*.
		if dear := f.auth(proxy, "GET", "/api/premium/x", "Authorization", authz); dear.Code < 400 {
			t.Fatalf("%s: cheap token on a dear path: %d", proxy, dear.Code)
		}
		free := f.auth(proxy, "GET", "/api/health", "Authorization", "L402 garbage:00")
		if h := free.Header(); free.Code != 200 || h.Get(HeaderTokenID) != "-" || h.Get(HeaderAccess) != "free" {
			t.Fatalf("%s whitelisted: %d %v", proxy, free.Code, free.Header())
		}
	}

	for _, tc := range []struct {
		name, proxy, uri string
		hdr              []string
		want             int
		code             string
	}{
		{"no service, caddy", "caddy", "/nothing", nil, 404, "not_found"},
		{"no service, nginx", "nginx", "/nothing", nil, 403, "not_found"},
		{"not canonical", "nginx", "/free/../api/x", nil, 403, "bad_path"},
		{"absolute URI", "caddy", "http://evil/api/x", nil, 400, "bad_forward_auth"},
		{"no URI", "none", "", nil, 400, "bad_forward_auth"},
		// A client behind Caddy adds nginx's header naming a free path
		// while Caddy asks about a paid one: refused, not let through.
		{"client adds X-Original-URI", "caddy", "/api/data", []string{"X-Original-URI", "/api/health"}, 403, "bad_forward_auth"},
		{"client adds X-Forwarded-Uri", "nginx", "/api/data", []string{"X-Forwarded-Uri", "/api/health"}, 403, "bad_forward_auth"},
		// gRPC's refusal is HTTP 200 with a grpc-status: forward auth
		// must still refuse.
		{"grpc unpaid", "caddy", "/api/data", []string{"Content-Type", "application/grpc"}, 402, "payment_required"},
		{"wrong preimage", "caddy", "/api/data", []string{"Authorization", authz[:len(authz)-4] + "0000"}, 402, "payment_required"},
	} {
		w := f.auth(tc.proxy, "GET", tc.uri, tc.hdr...)
		got := w.Header().Get(HeaderError)
		if w.Code != 403 {
			var b errorBody
			_ = json.Unmarshal(w.Body.Bytes(), &b)
			got = b.Code
		}
		if w.Code != tc.want || got != tc.code {
			t.Errorf("%s: %d %q, want %d %q (%s)", tc.name, w.Code, got, tc.want, tc.code, w.Body)
		}
	}
	if n := f.nextHit.Load(); n != 0 {
		t.Fatalf("forward auth reached a handler %d times", n)
	}
}

// A service priced at /auth keeps its path for requests that do not come
// from a forward-auth proxy.
func TestForwardAuthPathOfAService(t *testing.T) {
	f := newFixture(t, "services:\n  - name: root\n    path: /*\n    upstream: http://127.0.0.1:9\n    price: 3\n", nil)
	r := httptest.NewRequest(http.MethodGet, AuthPath, nil)
	w := httptest.NewRecorder()
	f.g.ServeHTTP(w, r)
	if w.Code != http.StatusPaymentRequired || body(t, w)["service"] != "root" {
		t.Fatalf("GET /auth of a service: %d %s", w.Code, w.Body)
	}
	if w := f.auth("caddy", "GET", "/x"); w.Code != http.StatusPaymentRequired || w.Header().Get("WWW-Authenticate") == "" {
		t.Fatalf("forward auth beside it: %d %s", w.Code, w.Body)
	}
}

func TestASCIIJSON(t *testing.T) {
	in := `{"resource":"/café/🍕","n":1}`
	out := asciiJSON([]byte(in))
	var a, b map[string]any
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal([]byte(in), &b)
	if a["resource"] != b["resource"] || strings.ContainsFunc(out, func(r rune) bool { return r >= 0x80 }) {
		t.Fatalf("asciiJSON(%s) = %s", in, out)
	}
}
