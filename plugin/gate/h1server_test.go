package gate

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// seen is what an upstream received: the request line's target, the
// Host, and the header fields, sorted.
type seen struct {
	method, uri, host string
	fields            []string
}

// recordingUpstream answers by path (see twinServices) and records each
// request it gets.
type recordingUpstream struct{ last atomic.Pointer[seen] }

func (u *recordingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := &seen{method: r.Method, uri: r.RequestURI, host: r.Host}
	for k, vv := range r.Header {
		for _, v := range vv {
			s.fields = append(s.fields, k+": "+v)
		}
	}
	sort.Strings(s.fields)
	u.last.Store(s)
	switch {
	case strings.HasSuffix(r.URL.Path, "/nocontent"):
		w.WriteHeader(http.StatusNoContent)
	case strings.HasSuffix(r.URL.Path, "/notmodified"):
		w.Header().Set("ETag", `"x"`)
		w.WriteHeader(http.StatusNotModified)
	case strings.HasSuffix(r.URL.Path, "/chunked"):
		_, _ = io.WriteString(w, "one,")
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, "two")
	case strings.HasSuffix(r.URL.Path, "/trailers"):
		w.Header().Set("Trailer", "X-Sum")
		_, _ = io.WriteString(w, "body")
		w.Header().Set("X-Sum", "42")
	case strings.HasSuffix(r.URL.Path, "/hints"):
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		_, _ = io.WriteString(w, "after hints")
	case strings.HasSuffix(r.URL.Path, "/bighead"):
		w.Header().Set("X-Big", strings.Repeat("b", 6000))
		_, _ = io.WriteString(w, "big head")
	case strings.HasSuffix(r.URL.Path, "/bigbody"):
		_, _ = io.WriteString(w, strings.Repeat("0123456789", 20000))
	case strings.HasSuffix(r.URL.Path, "/close"):
		w.Header().Set("Connection", "close")
		_, _ = io.WriteString(w, "closing")
	case strings.HasSuffix(r.URL.Path, "/hop"):
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		_, _ = io.WriteString(w, "hop")
	case strings.HasSuffix(r.URL.Path, "/error"):
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		http.Error(w, "teapot", http.StatusTeapot)
	default:
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "hello "+r.URL.Path)
	}
}

const twinServices = `
services:
  - name: plain
    path: /p/*
    upstream: UPSTREAM
    auth: "off"
  - name: based
    path: /b/*
    upstream: UPSTREAM/base/
    auth: "off"
  - name: passing
    path: /pass/*
    upstream: UPSTREAM/base
    auth: "off"
    pass_credentials: true
`

// twinGates runs one gate two ways in front of one recording upstream:
// its own server (Serve: plain requests take h1Server and the raw path)
// and the standard library's (every request through ReverseProxy).
func twinGates(t *testing.T, trusted ...netip.Prefix) (fast, std string, up *recordingUpstream) {
	t.Helper()
	up = &recordingUpstream{}
	fast, f := proxyFixture(t, twinServices, up)
	f.g.cfg.TrustedProxies = trusted // before the first request
	s := httptest.NewServer(f.g)
	t.Cleanup(s.Close)
	return fast, s.URL, up
}

// exchange sends raw requests on one connection and reads their answers.
func exchange(t *testing.T, addr string, raw string, n int, method string) []*http.Response {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(addr, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []*http.Response
	for range n {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("answer %d to %q: %v", len(out), raw, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("answer %d body: %v", len(out), err)
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		out = append(out, resp)
	}
	return out
}

// answerOf renders an answer for comparison, without its Date.
func answerOf(resp *http.Response) string {
	var fields []string
	for k, vv := range resp.Header {
		if k == "Date" {
			continue
		}
		for _, v := range vv {
			fields = append(fields, k+": "+v)
		}
	}
	sort.Strings(fields)
	var trailers []string
	for k, vv := range resp.Trailer {
		trailers = append(trailers, k+": "+strings.Join(vv, ","))
	}
	sort.Strings(trailers)
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %v|%s|%v|%v", resp.StatusCode, fields, b, trailers, resp.ContentLength)
}

// TestRawPathForwardsAsReverseProxy sends the same requests through the
// gate's own server and through the standard one and compares what the
// upstream received and what the client got back.
func TestRawPathForwardsAsReverseProxy(t *testing.T) {
	fast, std, up := twinGates(t)
	const creds = "Authorization: L402 mac:pre\r\nAuthorization: Basic dXNlcjpwdw==\r\nMacaroon: abc\r\nPayment-Signature: sig\r\n"
	cases := []struct {
		name, method, target, extra string
	}{
		{"plain", "GET", "/p/x", ""},
		{"query", "GET", "/p/x?a=1&b=%20", ""},
		{"force query", "GET", "/p/x?", ""},
		{"escaped path", "GET", "/p/a%2Fb/c%41", ""},
		{"sub-delims", "GET", "/p/a!b'c(d)*e", ""},
		{"joined base", "GET", "/b/x?q=1", ""},
		{"base without query", "GET", "/b/x", ""},
		{"credentials stripped", "GET", "/p/x", creds},
		{"credentials passed", "GET", "/pass/x", creds},
		{"hop-by-hop", "GET", "/p/x", "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\n"},
		{"forwarded claims", "GET", "/p/x", "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\nForwarded: for=1.2.3.4\r\n"},
		{"repeated fields", "GET", "/p/x", "Accept: a\r\naccept: b\r\nX-Odd-Case: 1\r\nx-odd-case: 2\r\n"},
		{"user agent", "GET", "/p/x", "User-Agent: agent/1\r\n"},
		{"head", "HEAD", "/p/x", ""},
		{"options", "OPTIONS", "/p/x", ""},
		{"no content", "GET", "/p/nocontent", ""},
		{"not modified", "GET", "/p/notmodified", ""},
		{"chunked answer", "GET", "/p/chunked", ""},
		{"trailers", "GET", "/p/trailers", "Te: trailers\r\n"},
		{"early hints", "GET", "/p/hints", ""},
		{"big head", "GET", "/p/bighead", ""},
		{"big body", "GET", "/p/bigbody", ""},
		{"hop-by-hop answer", "GET", "/p/hop", ""},
		{"upstream error", "GET", "/p/error", ""},
		{"head of chunked", "HEAD", "/p/chunked", ""},
		{"unknown service", "GET", "/nowhere", ""},
		{"unknown service, head", "HEAD", "/nowhere", ""},
		{"discovery", "GET", "/.well-known/l402.json", ""},
		{"unclean path", "GET", "/p/../x", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := c.method + " " + c.target + " HTTP/1.1\r\nHost: gate.example\r\n" + c.extra + "\r\n"
			var got [2]string
			var upSeen [2]*seen
			for i, addr := range []string{fast, std} {
				up.last.Store(nil)
				// Twice on one connection: the second reuses the
				// upstream connection the first kept.
				answers := exchange(t, addr, raw+raw, 2, c.method)
				got[i] = answerOf(answers[1])
				if a := answerOf(answers[0]); a != got[i] {
					t.Fatalf("the second answer differs from the first:\n%s\n%s", a, got[i])
				}
				upSeen[i] = up.last.Load()
			}
			if got[0] != got[1] {
				t.Errorf("answers differ:\nfast %s\nstd  %s", got[0], got[1])
			}
			if (upSeen[0] == nil) != (upSeen[1] == nil) {
				t.Fatalf("upstream reached: fast %v, std %v", upSeen[0] != nil, upSeen[1] != nil)
			}
			if upSeen[0] != nil && fmt.Sprint(*upSeen[0]) != fmt.Sprint(*upSeen[1]) {
				t.Errorf("upstream saw:\nfast %+v\nstd  %+v", *upSeen[0], *upSeen[1])
			}
		})
	}
}

// TestRawPathTrustedChain: from a trusted proxy, the X-Forwarded-For
// chain is kept and the peer appended, as ReverseProxy does.
func TestRawPathTrustedChain(t *testing.T) {
	fast, std, up := twinGates(t, netip.MustParsePrefix("127.0.0.0/8"))
	raw := "GET /p/x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2\r\nX-Forwarded-For: 3.3.3.3\r\n\r\n"
	var got [2]string
	for i, addr := range []string{fast, std} {
		exchange(t, addr, raw, 1, "GET")
		got[i] = fmt.Sprint(up.last.Load().fields)
	}
	if got[0] != got[1] || !strings.Contains(got[0], "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 127.0.0.1") {
		t.Fatalf("upstream saw:\nfast %s\nstd  %s", got[0], got[1])
	}
}

// TestH1ServerAnswersAsStandardServer sends requests the fast path must
// decline, or that are malformed, to both servers: the answers must be
// the standard server's.
func TestH1ServerAnswersAsStandardServer(t *testing.T) {
	fast, std, _ := twinGates(t)
	cases := []struct{ name, raw, method string }{
		{"post with body", "POST /p/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", "POST"},
		{"get with body", "GET /p/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", "GET"},
		{"smuggling CL and TE", "GET /p/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "GET"},
		{"two lengths", "GET /p/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n", "GET"},
		{"no host", "GET /p/x HTTP/1.1\r\n\r\n", "GET"},
		{"two hosts", "GET /p/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "GET"},
		{"bad host", "GET /p/x HTTP/1.1\r\nHost: a b\r\n\r\n", "GET"},
		{"space before colon", "GET /p/x HTTP/1.1\r\nHost: a\r\nX-A : 1\r\n\r\n", "GET"},
		{"folded field", "GET /p/x HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n", "GET"},
		{"bare LF", "GET /p/x HTTP/1.1\nHost: a\n\n", "GET"},
		{"bare CR", "GET /p/x HTTP/1.1\r\nHost: a\r\nX-A: 1\r2\r\n\r\n", "GET"},
		{"control in value", "GET /p/x HTTP/1.1\r\nHost: a\r\nX-A: 1\x002\r\n\r\n", "GET"},
		{"HTTP/1.0", "GET /p/x HTTP/1.0\r\nHost: a\r\n\r\n", "GET"},
		{"connection close", "GET /p/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "GET"},
		{"absolute form", "GET http://a/p/x HTTP/1.1\r\nHost: a\r\n\r\n", "GET"},
		{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "OPTIONS"},
		{"lower-case method", "get /p/x HTTP/1.1\r\nHost: a\r\n\r\n", "GET"},
		{"h2c upgrade", "GET /p/x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n", "GET"},
		{"expect", "GET /p/x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", "GET"},
		{"fragment", "GET /p/x#f HTTP/1.1\r\nHost: a\r\n\r\n", "GET"},
		{"bad escape", "GET /p/0% HTTP/1.1\r\nHost: a\r\n\r\n", "GET"},
		{"TLS hello", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", "GET"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got [2]string
			for i, addr := range []string{fast, std} {
				got[i] = firstAnswer(t, addr, c.raw, c.method)
			}
			if got[0] != got[1] {
				t.Errorf("answers differ:\nfast %s\nstd  %s", got[0], got[1])
			}
		})
	}
}

// firstAnswer sends raw and renders the first answer, or the error
// reading it.
func firstAnswer(t *testing.T, addr, raw, method string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(addr, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	return answerOf(resp)
}

// TestH1ServerPipelinedAndHandedOff sends plain requests, then a POST,
// then a plain one again, in one write: all are answered in order, the
// POST and what follows by the standard server.
func TestH1ServerPipelinedAndHandedOff(t *testing.T) {
	fast, _, _ := twinGates(t)
	get := "GET /p/one HTTP/1.1\r\nHost: a\r\n\r\n"
	post := "POST /p/two HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"
	answers := exchange(t, fast, get+get+post+"GET /p/three HTTP/1.1\r\nHost: a\r\n\r\n", 4, "GET")
	var bodies []string
	for _, a := range answers {
		b, _ := io.ReadAll(a.Body)
		bodies = append(bodies, string(b))
	}
	want := []string{"hello /p/one", "hello /p/one", "hello /p/two", "hello /p/three"}
	if !slices.Equal(bodies, want) {
		t.Fatalf("bodies %q, want %q", bodies, want)
	}
}

// TestH1ServerPartialPipelinedHead answers a request at once even when
// the start of the next one is already buffered.
func TestH1ServerPartialPipelinedHead(t *testing.T) {
	fast, _, _ := twinGates(t)
	c, err := net.Dial("tcp", strings.TrimPrefix(fast, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, "GET /p/one HTTP/1.1\r\nHost: a\r\n\r\nGET /p/two HTTP/1.1\r\nHo")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the first answer waited for the second request: %v", err)
	}
	resp.Body.Close()
	_, _ = io.WriteString(c, "st: a\r\n\r\n")
	if resp, err = http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("second answer: %v %v", resp, err)
	}
}

// rawFixture runs a gate with one free service in front of upstream
// (host:port); when the test ends it stops the gate and closes its idle
// upstream connections, which rawUpstream waits for.
func rawFixture(t *testing.T, upstream string) string {
	t.Helper()
	f := newFixture(t, "services:\n  - name: raw\n    path: /*\n    upstream: http://"+upstream+"\n    auth: \"off\"\n    timeout: 2s\n",
		func(c *Config) { c.RequireUpstream = true })
	return serveGate(t, f.g, func() {
		for _, tr := range f.g.transports {
			tr.CloseIdleConnections()
		}
	})
}

// TestRawPathUpstreamFailures: an upstream that closes a kept connection
// is retried once on a fresh one; a body cut short closes the client's
// connection; stray bytes after an answer never reach the next request.
func TestRawPathUpstreamFailures(t *testing.T) {
	t.Run("closed while kept", func(t *testing.T) {
		up, reqs := rawUpstream(t, func(c net.Conn, _ *bufio.Reader, _ int64) {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			c.Close() // without saying so
		})
		gw := rawFixture(t, up)
		answers := exchange(t, gw, "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n", 2, "GET")
		for i, a := range answers {
			if b, _ := io.ReadAll(a.Body); a.StatusCode != 200 || string(b) != "ok" {
				t.Fatalf("answer %d: %d %q", i, a.StatusCode, b)
			}
		}
		if n := reqs.Load(); n != 2 {
			t.Fatalf("the upstream answered %d requests, want 2", n)
		}
	})
	t.Run("cut short", func(t *testing.T) {
		up, _ := rawUpstream(t, func(c net.Conn, _ *bufio.Reader, _ int64) {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
			c.Close()
		})
		gw := rawFixture(t, up)
		c, err := net.Dial("tcp", strings.TrimPrefix(gw, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(c, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(resp.Body); err == nil {
			t.Fatal("a body cut short read as complete: the client connection must close")
		}
	})
	t.Run("stray bytes", func(t *testing.T) {
		answered, forged := make(chan struct{}), make(chan struct{})
		up, _ := rawUpstream(t, func(c net.Conn, _ *bufio.Reader, n int64) {
			body := fmt.Sprintf("answer %d", n)
			_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			if n == 1 {
				// Once A has its answer: a second one nobody asked for.
				<-answered
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged")
				close(forged)
			}
		})
		gw := rawFixture(t, up)
		// Client A's request; A then leaves, and its upstream
		// connection (now holding the forged answer) goes back to the
		// pool. Client B must not get the forged answer.
		first := exchange(t, gw, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n", 1, "GET")
		if b, _ := io.ReadAll(first[0].Body); string(b) != "answer 1" {
			t.Fatalf("A got %q", b)
		}
		close(answered)
		<-forged // written on loopback: in the gate's receive buffer
		second := exchange(t, gw, "GET /b HTTP/1.1\r\nHost: a\r\n\r\n", 1, "GET")
		if b, _ := io.ReadAll(second[0].Body); !strings.HasPrefix(string(b), "answer ") {
			t.Fatalf("B got %q: another client's stray bytes", b)
		}
	})
}

// TestH1ServerShutdown: a request in flight when the server stops is
// answered; Serve returns once it is.
func TestH1ServerShutdown(t *testing.T) {
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		_, _ = io.WriteString(w, "late")
	}))
	t.Cleanup(up.Close)
	f := newFixture(t, "services:\n  - name: s\n    path: /*\n    upstream: "+up.URL+"\n    auth: \"off\"\n", func(c *Config) { c.RequireUpstream = true })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.g.Serve(ctx, l) }()
	// An idle connection, and one with a request in flight.
	idle, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	busy, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, _ = io.WriteString(busy, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	<-arrived
	cancel()
	_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err == nil {
		t.Fatal("the idle connection was not closed")
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned with a request in flight: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	_ = busy.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatalf("the request in flight: %v", err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "late" {
		t.Fatalf("in flight got %q", b)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// TestH1ServerClientHangUp: a client that hangs up while its request
// waits on the upstream, or while a streamed answer is idle, has the
// upstream request canceled, as under the standard server.
func TestH1ServerClientHangUp(t *testing.T) {
	canceled, arrived := make(chan string, 2), make(chan struct{}, 2)
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/stream") {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: one\n\n")
			w.(http.Flusher).Flush()
		}
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
			canceled <- r.URL.Path
		case <-time.After(10 * time.Second):
		}
	})
	gw, _ := proxyFixture(t, "services:\n  - name: s\n    path: /*\n    upstream: UPSTREAM\n    auth: \"off\"\n", up)
	for _, path := range []string{"/wait", "/stream"} {
		c, err := net.Dial("tcp", strings.TrimPrefix(gw, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		// Gone once the upstream has the request (and, for the stream,
		// has sent its first event): the gate notices when its watch
		// starts, watchAfter into the wait; without the watch the
		// upstream would wait its full 10 s.
		<-arrived
		c.Close()
		select {
		case p := <-canceled:
			if p != path {
				t.Fatalf("canceled %s, want %s", p, path)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the upstream request outlived its client", path)
		}
	}
}

// TestH1ServerRequestsShareNothing: requests on one connection reuse the
// connection's request and header map. A paid request followed, on the
// same connection, by one without a credential, with a forged one, or
// for a dearer path must not ride on the first one's token; and headers
// the gate set on one answer must not appear on the next.
func TestH1ServerRequestsShareNothing(t *testing.T) {
	var reached atomic.Int64
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		_, _ = io.WriteString(w, "paid "+r.URL.Path+" auth="+r.Header.Get("Authorization"))
	})
	gw, f := proxyFixture(t, `services:
  - name: api
    path: /api/*
    upstream: UPSTREAM
    price: 10
    pricing:
      - path: /api/premium/*
        price: 100
`, up)
	auth := f.pay(f.do("GET", "/api/x"))
	paid := "GET /api/x HTTP/1.1\r\nHost: a\r\nAuthorization: " + auth + "\r\n\r\n"
	raw := paid +
		"GET /api/x HTTP/1.1\r\nHost: a\r\n\r\n" +
		paid +
		"GET /api/x HTTP/1.1\r\nHost: a\r\nAuthorization: " + auth[:len(auth)-4] + "0000\r\n\r\n" +
		"GET /api/premium/x HTTP/1.1\r\nHost: a\r\nAuthorization: " + auth + "\r\n\r\n" +
		paid
	answers := exchange(t, gw, raw, 6, "GET")
	want := []int{200, 402, 200, 402, 402, 200}
	for i, a := range answers {
		b, _ := io.ReadAll(a.Body)
		if a.StatusCode != want[i] {
			t.Fatalf("answer %d: %d, want %d: %s", i, a.StatusCode, want[i], b)
		}
		if a.StatusCode == 200 && string(b) != "paid /api/x auth=" {
			t.Fatalf("answer %d: %q (the credential must be stripped)", i, b)
		}
		if a.StatusCode == 200 && a.Header.Get("Www-Authenticate") != "" {
			t.Fatalf("answer %d: a paid answer carries the previous 402's challenge: %v", i, a.Header)
		}
	}
	if n := reached.Load(); n != 3 {
		t.Fatalf("the upstream was reached %d times, want 3", n)
	}
}
