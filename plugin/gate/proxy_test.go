package gate

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// proxyFixture runs the gate as a reverse proxy on loopback in front of
// a loopback upstream.
func proxyFixture(t *testing.T, services string, upstream http.Handler) (gateURL string, f *fixture) {
	t.Helper()
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	services = strings.NewReplacer("UPSTREAM", up.URL, "DEAD", "http://"+deadAddr).Replace(services)
	f = newFixture(t, services, func(c *Config) { c.RequireUpstream = true })
	return serveGate(t, f.g, nil), f
}

// serveGate serves g on a loopback port until the test ends; then, once
// Serve has returned, it runs after (if any).
func serveGate(t *testing.T, g *Gate, after func()) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if after != nil {
			after()
		}
	})
	return "http://" + l.Addr().String()
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestProxyForwarding(t *testing.T) {
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/base/slow/x":
			time.Sleep(300 * time.Millisecond)
		case "/base/sse/x":
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: one\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done() // hold the stream open until the client leaves
			return
		}
		w.Header().Set("Connection", "X-Hop") // a hop-by-hop header the gate must drop
		w.Header().Set("X-Hop", "1")
		_, _ = io.WriteString(w, r.URL.Path+"|"+r.Header.Get("X-Forwarded-For")+"|"+r.Header.Get("X-Forwarded-Proto")+"|"+r.Header.Get("X-Forwarded-Host"))
	})
	gw, f := proxyFixture(t, `
services:
  - name: up
    path: /up/*
    upstream: UPSTREAM/base
    auth: "off"
  - name: slow
    path: /slow/*
    upstream: UPSTREAM/base
    auth: "off"
    timeout: 100ms
  - name: sse
    path: /sse/*
    upstream: UPSTREAM/base
    auth: "off"
  - name: dead
    path: /dead/*
    upstream: DEAD
    auth: "off"
`, upstream)

	resp, b := get(t, gw+"/up/x?q=1", "X-Forwarded-For", "6.6.6.6")
	if resp.StatusCode != 200 || !strings.HasPrefix(b, "/base/up/x|127.0.0.1|http|127.0.0.1:") || resp.Header.Get("X-Hop") != "" {
		t.Fatalf("forwarded: %d %q %v", resp.StatusCode, b, resp.Header)
	}

	resp, b = get(t, gw+"/dead/x")
	if resp.StatusCode != 502 || !strings.Contains(b, `"code":"upstream_unavailable"`) || strings.Contains(b, "127.0.0.1") ||
		resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("dead upstream: %d %s", resp.StatusCode, b)
	}
	if f.outcome("dead", "upstream_error") != 1 {
		t.Fatal("upstream_error not counted")
	}

	resp, b = get(t, gw+"/slow/x")
	if resp.StatusCode != 504 || !strings.Contains(b, `"code":"upstream_timeout"`) {
		t.Fatalf("slow upstream: %d %s", resp.StatusCode, b)
	}

	// SSE: the first event arrives while the upstream still holds the
	// stream open.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", gw+"/sse/x", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event: %q %v", line, err)
	}
}

func TestProxyUnpaidNeverReachesUpstream(t *testing.T) {
	hits := 0
	gw, f := proxyFixture(t, "services:\n  - name: paid\n    upstream: UPSTREAM\n    price: 3\n", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		_, _ = io.WriteString(w, "secret")
	}))
	resp, b := get(t, gw+"/x")
	if resp.StatusCode != 402 || strings.Contains(b, "secret") || hits != 0 {
		t.Fatalf("unpaid: %d %s (upstream hit %d times)", resp.StatusCode, b, hits)
	}
	rec := httptest.NewRecorder()
	for k, v := range resp.Header {
		rec.Header()[k] = v
	}
	rec.Code = resp.StatusCode
	auth := f.pay(rec)
	if resp, b := get(t, gw+"/x", "Authorization", auth); resp.StatusCode != 200 || b != "secret" || hits != 1 {
		t.Fatalf("paid: %d %s", resp.StatusCode, b)
	}
}

// TestProxyStripsCredentials: the client's L402 credential (in any of its
// headers) is the gate's business and never reaches the upstream, unless
// the service passes credentials on; other Authorization schemes pass.
func TestProxyStripsCredentials(t *testing.T) {
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Join(r.Header.Values("Authorization"), ";")+"|"+r.Header.Get("Macaroon")+"|"+r.Header.Get("Grpc-Metadata-Macaroon"))
	})
	gw, _ := proxyFixture(t, `
services:
  - name: strip
    path: /strip/*
    upstream: UPSTREAM
    auth: "off"
  - name: pass
    path: /pass/*
    upstream: UPSTREAM
    auth: "off"
    pass_credentials: true
`, upstream)
	hdr := []string{"Authorization", "L402 mac:pre", "Authorization", "lsat mac:pre", "Authorization", "Bearer upstream-token",
		"Macaroon", "abcd", "Grpc-Metadata-Macaroon", "abcd"}
	if resp, b := get(t, gw+"/strip/x", hdr...); resp.StatusCode != 200 || b != "Bearer upstream-token||" {
		t.Fatalf("credentials reached the upstream: %d %q", resp.StatusCode, b)
	}
	if resp, b := get(t, gw+"/pass/x", hdr...); resp.StatusCode != 200 || b != "L402 mac:pre;lsat mac:pre;Bearer upstream-token|abcd|abcd" {
		t.Fatalf("pass_credentials: %d %q", resp.StatusCode, b)
	}
}

// TestProxyUpgrades: only WebSocket upgrades go through; an h2c upgrade
// would turn one free request into an unpaid HTTP/2 tunnel to the
// upstream.
func TestProxyUpgrades(t *testing.T) {
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "upgrade="+r.Header.Get("Upgrade"))
	})
	gw, _ := proxyFixture(t, "services:\n  - name: free\n    upstream: UPSTREAM\n    auth: \"off\"\n", upstream)
	for _, up := range []string{"h2c", "H2C", "foo, h2c", "tls/1.2"} {
		resp, b := get(t, gw+"/x", "Connection", "Upgrade, HTTP2-Settings", "Upgrade", up, "HTTP2-Settings", "AAMAAABkAAQCAAAAAAIAAAAA")
		if resp.StatusCode != 400 || !strings.Contains(b, `"code":"upgrade_refused"`) {
			t.Fatalf("Upgrade: %s: %d %q", up, resp.StatusCode, b)
		}
	}
	if resp, b := get(t, gw+"/x", "Connection", "Upgrade", "Upgrade", "websocket"); resp.StatusCode != 200 || b != "upgrade=websocket" {
		t.Fatalf("websocket upgrade: %d %q", resp.StatusCode, b)
	}
}
