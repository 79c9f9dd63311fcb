//go:build itest

package itest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/l402d/l402d/l402"
)

// gateUpstreams are the services behind alice's gate in these tests: an
// HTTP server (plain, streaming and WebSocket endpoints) and a gRPC
// server (the standard health service: unary Check, server-streaming
// Watch) reached over h2c.
type gateUpstreams struct {
	http, grpc string // host:port
	dead       string // a port nobody listens on
	health     *health.Server
	// flaky, while set, makes paths under /flaky/ read the request and
	// close the connection without an answer.
	flaky atomic.Bool
}

func startGateUpstreams(t testing.TB) *gateUpstreams {
	t.Helper()
	u := &gateUpstreams{dead: freeAddr(t)}

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"path": r.URL.Path, "xff": r.Header.Get("X-Forwarded-For"), "proto": r.Header.Get("X-Forwarded-Proto"),
			"authorization": r.Header.Get("Authorization"),
			"l402Service":   r.Header.Get("X-L402-Service"), "l402TokenId": r.Header.Get("X-L402-Token-Id"),
		})
	})
	mux.HandleFunc("/flaky/", func(w http.ResponseWriter, r *http.Request) {
		if u.flaky.Load() {
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"path": r.URL.Path})
	})
	// Server-sent events: three events 300 ms apart.
	mux.HandleFunc("/api/stream/sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			w.(http.Flusher).Flush()
			if i < 3 {
				select {
				case <-time.After(300 * time.Millisecond):
				case <-r.Context().Done():
					return
				}
			}
		}
	})
	// Chunked: two chunks 300 ms apart, no Content-Length.
	mux.HandleFunc("/api/stream/chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "chunk 1\n")
		w.(http.Flusher).Flush()
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "chunk 2\n")
	})
	mux.HandleFunc("/meter/", meteredUpstream)
	mux.Handle("/api/ws", websocket.Handler(func(ws *websocket.Conn) {
		var msg string
		for websocket.Message.Receive(ws, &msg) == nil {
			if websocket.Message.Send(ws, "echo: "+msg) != nil {
				return
			}
		}
	}))
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hsrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hsrv.Serve(hl)
	t.Cleanup(func() { hsrv.Close() })
	u.http = hl.Addr().String()

	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gsrv := grpc.NewServer()
	u.health = health.NewServer()
	u.health.SetServingStatus("paid", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gsrv, u.health)
	go gsrv.Serve(gl)
	t.Cleanup(gsrv.Stop)
	u.grpc = gl.Addr().String()
	return u
}

// gateServices renders the services file; apiPrice is what reloads change.
func gateServices(u *gateUpstreams, apiPrice int) string {
	return fmt.Sprintf(`# itest services
services:
  - name: mirror
    host: mirror.test
    path: /api/*
    upstream: http://%[1]s
    price: 4
  - name: api
    path: /api/*
    upstream: http://%[1]s
    price: %[3]d
    pricing:
      - path: /api/premium/*
        price: 50
    whitelist: [/api/health]
    capabilities: [read]
  - name: short
    path: /short/*
    upstream: http://%[1]s
    price: 3
    token_validity: 12s
  - name: health
    path: /grpc.health.v1.Health/*
    upstream: h2c://%[2]s
    price: 7
  - name: down
    path: /down/*
    upstream: http://%[4]s
    auth: "off"
`, u.http, u.grpc, apiPrice, u.dead)
}

// gateDaemon is alice's l402d with its gate.
type gateDaemon struct {
	*daemon
	gate     string // host:port
	services string // the services file
}

func startGateDaemon(t testing.TB, services string, extra ...string) *gateDaemon {
	t.Helper()
	file := filepath.Join(t.TempDir(), "services.yaml")
	if err := os.WriteFile(file, []byte(services), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &gateDaemon{gate: freeAddr(t), services: file}
	args := append([]string{"--gate.listen", g.gate, "--gate.services", file}, extra...)
	g.daemon = startDaemon(t, testNet(t).Node("alice"), args...)
	waitFor(t, 30*time.Second, "the gate to listen", func() error {
		resp, err := http.Get("http://" + g.gate + "/.well-known/l402.json")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	return g
}

// gateResp is an answer from the gate.
type gateResp struct {
	code   int
	header http.Header
	raw    string
	json   map[string]any
}

// get sends a GET to the gate; hdr are name, value pairs ("Host" sets
// the Host).
func (g *gateDaemon) get(t testing.TB, path string, hdr ...string) gateResp {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t, time.Minute), "GET", "http://"+g.gate+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := gateResp{code: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.json)
	return r
}

// buy gets a 402 for path, checks its form, has bob pay it and returns
// the Authorization value and the challenge's body.
func (g *gateDaemon) buy(t testing.TB, path string, price int64, hdr ...string) (string, map[string]any) {
	t.Helper()
	r := g.get(t, path, hdr...)
	if r.code != http.StatusPaymentRequired {
		t.Fatalf("GET %s unpaid: %d %s", path, r.code, r.raw)
	}
	checkChallenge(t, r, price)
	pre := payInvoice(t, "bob", str(r.json["invoice"]))
	return "L402 " + str(r.json["macaroon"]) + ":" + pre, r.json
}

// checkChallenge checks a 402 in the DESIGN.md form.
func checkChallenge(t testing.TB, r gateResp, price int64) {
	t.Helper()
	// The L402 value (after an LSAT twin with --gate.legacy-lsat, before
	// the same invoice as an MPP charge).
	wa := r.header.Values("WWW-Authenticate")
	i := slices.IndexFunc(wa, func(v string) bool { return strings.HasPrefix(v, `L402 macaroon="`) })
	if i < 0 || !strings.Contains(wa[i], `", invoice="lnbcrt`) || !strings.Contains(wa[i], `version="0", token="`) {
		t.Fatalf("WWW-Authenticate %q", wa)
	}
	ch, err := l402.ParseChallenge(r.header)
	if err != nil {
		t.Fatal(err)
	}
	b := r.json
	if r.header.Get("Cache-Control") != "no-store" || b["code"] != "payment_required" || str(b["macaroon"]) != ch.Macaroon || str(b["invoice"]) != ch.Invoice ||
		int64(num(b["amountSats"])) != price || len(str(b["paymentHash"])) != 64 || str(b["expiresAt"]) == "" || str(b["resource"]) == "" || str(b["service"]) == "" {
		t.Fatalf("402 body %v", b)
	}
}

func TestGate(t *testing.T) {
	u := startGateUpstreams(t)
	g := startGateDaemon(t, gateServices(u, 20), "--gate.reload-interval", "200ms", "--gate.mint-rate", "100", "--gate.mint-burst", "1000")

	apiAuth, apiChallenge := g.buy(t, "/api/hello", 20)

	t.Run("paid retry reaches the upstream", func(t *testing.T) {
		r := g.get(t, "/api/hello", "Authorization", apiAuth)
		// The L402 credential is the gate's; the upstream never sees it.
		if r.code != 200 || r.json["path"] != "/api/hello" || r.json["xff"] != "127.0.0.1" || r.json["proto"] != "http" || r.json["authorization"] != "" {
			t.Fatalf("%d %s", r.code, r.raw)
		}
		waitSettled(t, g.daemon, str(apiChallenge["paymentHash"]), 20)
	})

	t.Run("token reused without another payment", func(t *testing.T) {
		code, before := g.call(t, "GET", "/api/l402/challenges?limit=100", nil)
		if code != 200 {
			t.Fatal(code)
		}
		for i := range 5 {
			if r := g.get(t, fmt.Sprintf("/api/items/%d", i), "Authorization", apiAuth); r.code != 200 {
				t.Fatalf("reuse %d: %d %s", i, r.code, r.raw)
			}
		}
		_, after := g.call(t, "GET", "/api/l402/challenges?limit=100", nil)
		if len(after["challenges"].([]any)) != len(before["challenges"].([]any)) {
			t.Fatal("reusing a token created challenges")
		}
	})

	t.Run("token of another service refused", func(t *testing.T) {
		r := g.get(t, "/api/hello", "Host", "mirror.test", "Authorization", apiAuth)
		if r.code != 402 || r.json["reason"] != "wrong_service" || r.json["service"] != "mirror" || !strings.Contains(str(r.json["message"]), "not valid for this service") {
			t.Fatalf("%d %v", r.code, r.json)
		}
		checkChallenge(t, r, 4)
	})

	t.Run("cheap token refused on a pricier path", func(t *testing.T) {
		r := g.get(t, "/api/premium/report", "Authorization", apiAuth)
		if r.code != 402 || r.json["reason"] != "wrong_resource" || int64(num(r.json["priceSats"])) != 50 {
			t.Fatalf("%d %v", r.code, r.json)
		}
		premium, _ := g.buy(t, "/api/premium/report", 50)
		if r := g.get(t, "/api/premium/report", "Authorization", premium); r.code != 200 {
			t.Fatalf("premium token: %d %s", r.code, r.raw)
		}
		if r := g.get(t, "/api/hello", "Authorization", premium); r.code != 402 || r.json["reason"] != "wrong_resource" {
			t.Fatalf("premium token on the base rule: %d %v", r.code, r.json)
		}
	})

	t.Run("rejected credentials get a fresh 402 and the reason", func(t *testing.T) {
		mac, _, _ := strings.Cut(strings.TrimPrefix(apiAuth, "L402 "), ":")
		r := g.get(t, "/api/hello", "Authorization", "L402 "+mac+":"+strings.Repeat("00", 32))
		if r.code != 402 || r.json["reason"] != "wrong_preimage" || str(r.json["macaroon"]) == mac {
			t.Fatalf("%d %v", r.code, r.json)
		}
		checkChallenge(t, r, 20)
	})

	t.Run("expired token refused", func(t *testing.T) {
		auth, _ := g.buy(t, "/short/x", 3)
		if r := g.get(t, "/short/x", "Authorization", auth); r.code != 200 {
			t.Fatalf("fresh: %d %s", r.code, r.raw)
		}
		waitFor(t, 40*time.Second, "the token to expire", func() error {
			r := g.get(t, "/short/x", "Authorization", auth)
			if r.code != 402 || r.json["reason"] != "expired" {
				return fmt.Errorf("%d %v", r.code, r.json)
			}
			return nil
		})
	})

	t.Run("whitelisted path is free", func(t *testing.T) {
		if r := g.get(t, "/api/health"); r.code != 200 || r.json["path"] != "/api/health" {
			t.Fatalf("%d %s", r.code, r.raw)
		}
	})

	t.Run("streaming responses are flushed at once", func(t *testing.T) {
		for _, tc := range []struct{ path, first, last string }{
			{"/api/stream/sse", "data: event 1", "data: event 3"},
			{"/api/stream/chunked", "chunk 1", "chunk 2"},
		} {
			req, _ := http.NewRequestWithContext(testCtx(t, time.Minute), "GET", "http://"+g.gate+tc.path, nil)
			req.Header.Set("Authorization", apiAuth)
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			rd := bufio.NewReader(resp.Body)
			line, err := rd.ReadString('\n')
			firstAt := time.Since(start)
			if err != nil || strings.TrimSpace(line) != tc.first {
				t.Fatalf("%s first line %q %v", tc.path, line, err)
			}
			rest, _ := io.ReadAll(rd)
			total := time.Since(start)
			resp.Body.Close()
			if !strings.Contains(string(rest), tc.last) || firstAt > 250*time.Millisecond || total < 290*time.Millisecond {
				t.Fatalf("%s: first data after %v, all after %v (%q); want the first at once", tc.path, firstAt, total, rest)
			}
			if tc.path == "/api/stream/chunked" && (len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked") {
				t.Fatalf("chunked endpoint: transfer encoding %v", resp.TransferEncoding)
			}
		}
	})

	t.Run("websocket", func(t *testing.T) {
		cfg, err := websocket.NewConfig("ws://"+g.gate+"/api/ws", "http://"+g.gate)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := websocket.DialConfig(cfg); err == nil {
			t.Fatal("unpaid WebSocket upgrade succeeded")
		}
		cfg.Header = http.Header{"Authorization": {apiAuth}}
		ws, err := websocket.DialConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		for _, m := range []string{"hello", "again"} {
			if err := websocket.Message.Send(ws, m); err != nil {
				t.Fatal(err)
			}
			var got string
			ws.SetDeadline(time.Now().Add(10 * time.Second))
			if err := websocket.Message.Receive(ws, &got); err != nil || got != "echo: "+m {
				t.Fatalf("echo %q %v", got, err)
			}
		}
	})

	t.Run("http/2 client (h2c)", func(t *testing.T) {
		var protos http.Protocols
		protos.SetUnencryptedHTTP2(true)
		c := &http.Client{Transport: &http.Transport{Protocols: &protos}}
		req, _ := http.NewRequestWithContext(testCtx(t, time.Minute), "GET", "http://"+g.gate+"/api/h2", nil)
		req.Header.Set("Authorization", apiAuth)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 || out["path"] != "/api/h2" {
			t.Fatalf("%s %d %v", resp.Proto, resp.StatusCode, out)
		}
	})

	t.Run("grpc", func(t *testing.T) { testGateGRPC(t, g, u) })

	t.Run("upstream down is a 502 with a JSON body", func(t *testing.T) {
		r := g.get(t, "/down/x")
		if r.code != 502 || r.json["code"] != "upstream_unavailable" || r.json["service"] != "down" || str(r.json["fix"]) == "" ||
			r.header.Get("Content-Type") != "application/json" || strings.Contains(r.raw, u.dead) {
			t.Fatalf("%d %s", r.code, r.raw)
		}
	})

	t.Run("discovery", func(t *testing.T) {
		r := g.get(t, "/.well-known/l402.json")
		svcs, _ := r.json["services"].([]any)
		if r.code != 200 || len(svcs) != 5 || strings.Contains(r.raw, u.http) {
			t.Fatalf("%d %s", r.code, r.raw)
		}
		api := svcs[1].(map[string]any)
		prices := api["prices"].([]any)
		if api["name"] != "api" || num(api["priceSats"]) != 20 || len(prices) != 2 || num(prices[0].(map[string]any)["priceSats"]) != 50 {
			t.Fatalf("api in discovery: %v", api)
		}
	})

	t.Run("discovery draft: manifest, OpenAPI, quote", func(t *testing.T) { testDiscovery(t, g) })

	t.Run("reload changes a price live", func(t *testing.T) {
		if err := os.WriteFile(g.services, []byte(gateServices(u, 33)), 0o600); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the new price", func() error {
			if r := g.get(t, "/api/new"); int64(num(r.json["priceSats"])) != 33 {
				return fmt.Errorf("price %v", r.json["priceSats"])
			}
			return nil
		})
		// A token bought at the old price keeps working for its rule.
		if r := g.get(t, "/api/hello", "Authorization", apiAuth); r.code != 200 {
			t.Fatalf("old token after a reload: %d %s", r.code, r.raw)
		}
		// An invalid file is refused with its line; the old one runs on.
		bad := strings.Replace(gateServices(u, 40), "price: 40", "price: forty", 1)
		if err := os.WriteFile(g.services, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out := g.callKey(t, g.adminKey(t), "POST", "/api/gate/reload", nil)
		if code != 422 || out["code"] != "invalid_services" || out["field"] != "services[1].price" || !strings.Contains(str(out["error"]), "services.yaml:11:") {
			t.Fatalf("reload of a bad file: %d %v", code, out)
		}
		if r := g.get(t, "/api/new"); int64(num(r.json["priceSats"])) != 33 {
			t.Fatalf("price after a refused reload: %v", r.json["priceSats"])
		}
		code, out = g.callKey(t, g.adminKey(t), "GET", "/api/gate/services", nil)
		st, _ := out["status"].(map[string]any)
		if code != 200 || len(out["services"].([]any)) != 5 || str(st["lastError"]) == "" {
			t.Fatalf("services: %d %v", code, out)
		}
		if code, _ := g.call(t, "GET", "/api/gate/services", nil); code != 403 {
			t.Fatalf("services with the API key: %d, want 403", code)
		}
		// SIGHUP reloads too.
		if err := os.WriteFile(g.services, []byte(gateServices(u, 44)), 0o600); err != nil {
			t.Fatal(err)
		}
		g.mu.Lock()
		g.cmd.Process.Signal(syscall.SIGHUP)
		g.mu.Unlock()
		waitFor(t, 10*time.Second, "the price after SIGHUP", func() error {
			if r := g.get(t, "/api/new"); int64(num(r.json["priceSats"])) != 44 {
				return fmt.Errorf("price %v", r.json["priceSats"])
			}
			return nil
		})
	})

	t.Run("metrics", func(t *testing.T) {
		code, out := g.call(t, "GET", "/metrics", nil)
		raw := str(out["_raw"])
		for _, want := range []string{`l402d_gate_requests_total{outcome="paid",service="api"}`, `l402d_gate_requests_total{outcome="challenged",service="api"}`,
			`l402d_gate_requests_total{outcome="rejected",service="mirror"}`, `l402d_gate_requests_total{outcome="upstream_error",service="down"}`,
			`l402d_gate_upstream_seconds_count{service="api"}`} {
			if code != 200 || !strings.Contains(raw, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}

// testGateGRPC: a gRPC client gets the challenge the way gRPC clients
// (Aperture's interceptor) understand, pays, and calls unary and
// server-streaming methods through the gate with their trailers intact.
func testGateGRPC(t *testing.T, g *gateDaemon, u *gateUpstreams) {
	conn, err := grpc.NewClient("passthrough:///"+g.gate, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	ctx := testCtx(t, 2*time.Minute)

	var trailer metadata.MD
	_, err = client.Check(ctx, &healthpb.HealthCheckRequest{Service: "paid"}, grpc.Trailer(&trailer))
	st, _ := status.FromError(err)
	if st.Code() != codes.Internal || !strings.Contains(st.Message(), "payment required") {
		t.Fatalf("unpaid call: %v", err)
	}
	// Aperture's client reads the challenge from the trailer metadata
	// with `(LSAT|L402) macaroon="(.*?)", invoice="(.*?)"`.
	chs, err := l402.ParseChallenges(trailer.Get("www-authenticate"))
	if err != nil || !strings.Contains(trailer.Get("www-authenticate")[0], `L402 macaroon="`) {
		t.Fatalf("challenge in the trailers %v: %v", trailer, err)
	}
	pre := payInvoice(t, "bob", chs[0].Invoice)
	auth := metadata.AppendToOutgoingContext(ctx, "authorization", "L402 "+chs[0].Macaroon+":"+pre)

	resp, err := client.Check(auth, &healthpb.HealthCheckRequest{Service: "paid"})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("paid Check: %v %v", resp, err)
	}
	// The upstream's own error status (sent trailers-only) comes through.
	_, err = client.Check(auth, &healthpb.HealthCheckRequest{Service: "nope"})
	if st, _ := status.FromError(err); st.Code() != codes.NotFound {
		t.Fatalf("Check of an unknown service: %v, want NotFound from the upstream", err)
	}
	// Server streaming: an update arrives as soon as the upstream sends it.
	wctx, cancel := context.WithCancel(auth)
	defer cancel()
	stream, err := client.Watch(wctx, &healthpb.HealthCheckRequest{Service: "paid"})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := stream.Recv(); err != nil || m.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first Watch update: %v %v", m, err)
	}
	u.health.SetServingStatus("paid", healthpb.HealthCheckResponse_NOT_SERVING)
	if m, err := stream.Recv(); err != nil || m.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("second Watch update: %v %v", m, err)
	}
	u.health.SetServingStatus("paid", healthpb.HealthCheckResponse_SERVING)
	if m, err := stream.Recv(); err != nil || m.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("third Watch update: %v %v", m, err)
	}
	cancel()
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("after cancel: %v", err)
	}
	// The same token over the gRPC clients' other header: a hex macaroon
	// with a preimage caveat.
	mac, _ := l402.DecodeMacaroon(chs[0].Macaroon)
	withPre, _ := l402.AddCaveats(mac, l402.Caveat{Condition: l402.CondPreimage, Value: pre})
	raw, _ := withPre.MarshalBinary()
	mctx := metadata.AppendToOutgoingContext(ctx, "macaroon", fmt.Sprintf("%x", raw))
	if resp, err := client.Check(mctx, &healthpb.HealthCheckRequest{Service: "paid"}); err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check with a macaroon header: %v %v", resp, err)
	}
}

// TestGateRateLimits runs a gate with tight limits: challenges per
// client address, and paid requests per token.
func TestGateRateLimits(t *testing.T) {
	u := startGateUpstreams(t)
	services := fmt.Sprintf(`services:
  - name: metered
    upstream: http://%s
    price: 2
    rate_limit: {rate: 0.2, burst: 2}
`, u.http)
	g := startGateDaemon(t, services, "--gate.mint-rate", "0.1", "--gate.mint-burst", "3", "--gate.legacy-lsat")

	first := g.get(t, "/x")
	checkChallenge(t, first, 2)
	// --gate.legacy-lsat: an LSAT twin before the L402 challenge.
	if wa := first.header.Values("WWW-Authenticate"); len(wa) != 3 || !strings.HasPrefix(wa[0], "LSAT macaroon=") || !strings.HasPrefix(wa[1], "L402 macaroon=") ||
		!strings.HasPrefix(wa[2], "Payment id=") {
		t.Fatalf("WWW-Authenticate %q", wa)
	}
	auth := "L402 " + str(first.json["macaroon"]) + ":" + payInvoice(t, "bob", str(first.json["invoice"]))
	for range 2 {
		g.get(t, "/y")
	}
	r := g.get(t, "/z")
	if r.code != 429 || r.json["code"] != "rate_limited" || r.header.Get("Retry-After") == "" {
		t.Fatalf("4th challenge: %d %v %v", r.code, r.json, r.header)
	}
	for i := range 2 {
		if r := g.get(t, "/x", "Authorization", auth); r.code != 200 {
			t.Fatalf("paid %d: %d %s", i, r.code, r.raw)
		}
	}
	r = g.get(t, "/x", "Authorization", auth)
	if r.code != 429 || r.json["code"] != "token_rate_limited" || r.header.Get("Retry-After") == "" {
		t.Fatalf("3rd paid request: %d %v", r.code, r.json)
	}
}

// BenchmarkGateLoad measures the gate of a real l402d with a token bob
// really paid for on regtest: requests/s and p50/p99 through the gate
// against the same loopback upstream called directly, in one run, with
// the Go load program (itest/loadgate) and, when it is installed, with
// wrk (-t1 -c32, the reference load shape). wrk also loads a bare
// httputil.ReverseProxy in front of the same upstream, so the figures
// show what any Go proxy costs here apart from what the gate adds.
// L402D_ITEST_LOAD_ARGS adds loadgate flags (e.g. "-c 1").
// Run: make load  (go test -tags itest -run '^$' -bench GateLoad -benchtime 1x ./itest/)
func BenchmarkGateLoad(b *testing.B) {
	body := strings.Repeat("x", 256)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body)
	}), ReadHeaderTimeout: 10 * time.Second}
	go up.Serve(l)
	b.Cleanup(func() { up.Close() })

	g := startGateDaemon(b, fmt.Sprintf("services:\n  - name: bench\n    upstream: http://%s\n    price: 10\n", l.Addr()),
		"--gate.token-rate", "0", "--log.level", "warn")
	auth, _ := g.buy(b, "/bench", 10)
	gateURL, directURL := "http://"+g.gate+"/bench", "http://"+l.Addr().String()+"/bench"

	root, err := filepath.Abs("..")
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(b.TempDir(), "loadgate")
	build := exec.Command("go", "build", "-o", bin, "./itest/loadgate")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building loadgate: %v\n%s", err, out)
	}
	args := []string{"-gate", gateURL, "-direct", directURL, "-auth", auth}
	args = append(args, strings.Fields(os.Getenv("L402D_ITEST_LOAD_ARGS"))...)
	out, err := exec.CommandContext(testCtx(b, 10*time.Minute), bin, args...).CombinedOutput()
	b.Logf("loadgate %s\n%s", strings.Join(args[:4], " "), out)
	if err != nil {
		b.Fatal(err)
	}

	if _, err := exec.LookPath("wrk"); err != nil {
		b.Logf("wrk is not installed (apt-get install wrk): skipping the wrk figures")
		return
	}
	wrk := func(url string, hdr ...string) float64 {
		args := []string{"-t1", "-c32", "-d10s", "--latency"}
		for _, h := range hdr {
			args = append(args, "-H", h)
		}
		out, err := exec.CommandContext(testCtx(b, time.Minute), "wrk", append(args, url)...).CombinedOutput()
		if err != nil {
			b.Fatalf("wrk: %v\n%s", err, out)
		}
		b.Logf("wrk -t1 -c32 %s\n%s", url, out)
		for line := range strings.Lines(string(out)) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Requests/sec:"); ok {
				f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
				return f
			}
		}
		b.Fatalf("no Requests/sec in wrk's output")
		return 0
	}
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	target := &url.URL{Scheme: "http", Host: l.Addr().String()}
	bare := &http.Server{Handler: &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() },
		Transport: &http.Transport{Proxy: nil, MaxIdleConns: 2048, MaxIdleConnsPerHost: 512,
			IdleConnTimeout: 90 * time.Second, DisableCompression: true},
		ErrorLog: log.New(io.Discard, "", 0), // wrk stops mid-request: not news
	}, ReadHeaderTimeout: 10 * time.Second}
	go bare.Serve(pl)
	b.Cleanup(func() { bare.Close() })

	direct := wrk(directURL)
	proxied := wrk("http://" + pl.Addr().String() + "/bench")
	paid := wrk(gateURL, "Authorization: "+auth)
	b.Logf("wrk: direct %.0f req/s, bare httputil.ReverseProxy %.0f req/s (%.1f%%), gate %.0f req/s (%.1f%% of direct, %.1f%% of the bare proxy)",
		direct, proxied, 100*proxied/direct, paid, 100*paid/direct, 100*paid/proxied)
	b.ReportMetric(direct, "direct-req/s")
	b.ReportMetric(proxied, "proxy-req/s")
	b.ReportMetric(paid, "gate-req/s")
	b.ReportMetric(100*paid/direct, "gate-%")
}
