package gate

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// newH1 is an h1Transport to addr whose fallback is a plain
// http.Transport, and which counts the connections it dials.
func newH1(t *testing.T, addr string, headerTimeout time.Duration) (*h1Transport, *atomic.Int64) {
	t.Helper()
	var dials atomic.Int64
	d := &net.Dialer{Timeout: time.Second}
	dial := func(ctx context.Context, network, a string) (net.Conn, error) {
		dials.Add(1)
		return d.DialContext(ctx, network, a)
	}
	next := &http.Transport{DialContext: dial, DisableCompression: true}
	h := &h1Transport{next: next, addr: addr, dial: dial, headerTimeout: headerTimeout, idleTimeout: time.Minute, maxIdle: 4}
	t.Cleanup(h.CloseIdleConnections)
	return h, &dials
}

// roundTrip sends method path over h and returns the status and body.
func roundTrip(t *testing.T, h http.RoundTripper, method, url string, body io.Reader) (int, string, http.Header, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body = nil
	}
	resp, err := h.RoundTrip(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Trailer, err
}

func TestH1TransportReusesConnections(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Method, r.URL.RequestURI())
	}))
	t.Cleanup(up.Close)
	h, dials := newH1(t, up.Listener.Addr().String(), 0)
	for i := range 5 {
		code, body, _, err := roundTrip(t, h, "GET", up.URL+fmt.Sprintf("/x?i=%d", i), nil)
		if err != nil || code != 200 || body != fmt.Sprintf("GET /x?i=%d", i) {
			t.Fatalf("request %d: %d %q %v", i, code, body, err)
		}
	}
	if code, _, _, err := roundTrip(t, h, "HEAD", up.URL+"/h", nil); err != nil || code != 200 {
		t.Fatalf("HEAD: %d %v", code, err)
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d dials for 6 sequential requests, want 1", n)
	}
}

func TestH1TransportFallsBack(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.Method, b)
	}))
	t.Cleanup(up.Close)
	h, _ := newH1(t, up.Listener.Addr().String(), 0)
	for _, tc := range []struct {
		method string
		body   io.Reader
		want   string
	}{
		{"POST", strings.NewReader("hello"), "POST hello"},
		{"PUT", strings.NewReader("x"), "PUT x"},
		{"DELETE", nil, "DELETE "},
	} {
		req, _ := http.NewRequest(tc.method, up.URL+"/", tc.body)
		if plainRequest(req) {
			t.Errorf("%s with a body counts as plain", tc.method)
		}
		code, body, _, err := roundTrip(t, h, tc.method, up.URL+"/", tc.body)
		if err != nil || code != 200 || body != tc.want {
			t.Errorf("%s: %d %q %v", tc.method, code, body, err)
		}
	}
	for _, hdr := range []string{"Upgrade", "Expect"} {
		req, _ := http.NewRequest("GET", up.URL+"/", nil)
		req.Header.Set(hdr, "x")
		if plainRequest(req) {
			t.Errorf("GET with %s counts as plain", hdr)
		}
	}
	req, _ := http.NewRequest("GET", up.URL+"/", nil)
	req.Header.Set("Content-Type", "application/grpc")
	if plainRequest(req) {
		t.Error("gRPC counts as plain")
	}
}

// rawUpstream serves each connection with serve, counting requests.
func rawUpstream(t *testing.T, serve func(c net.Conn, br *bufio.Reader, n int64)) (string, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var reqs atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					serve(c, br, reqs.Add(1))
				}
			})
		}
	})
	return l.Addr().String(), &reqs
}

func TestH1TransportRetriesAConnectionClosedWhileIdle(t *testing.T) {
	// The upstream answers one request per connection, then closes it
	// without saying so: the pooled connection is dead when reused.
	addr, reqs := rawUpstream(t, func(c net.Conn, _ *bufio.Reader, n int64) {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%d", n%10)
		c.Close()
	})
	h, dials := newH1(t, addr, 0)
	for i := range 3 {
		code, _, _, err := roundTrip(t, h, "GET", "http://"+addr+"/", nil)
		if err != nil || code != 200 {
			t.Fatalf("request %d: %d %v", i, code, err)
		}
	}
	if reqs.Load() != 3 || dials.Load() < 3 {
		t.Fatalf("%d requests answered over %d dials, want 3 over at least 3", reqs.Load(), dials.Load())
	}
}

func TestH1TransportDoesNotRetryATimeout(t *testing.T) {
	addr, reqs := rawUpstream(t, func(c net.Conn, _ *bufio.Reader, n int64) {
		if n == 1 {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
			return
		}
		time.Sleep(300 * time.Millisecond) // the second request outlasts the timeout
	})
	h, _ := newH1(t, addr, 50*time.Millisecond)
	if code, _, _, err := roundTrip(t, h, "GET", "http://"+addr+"/", nil); err != nil || code != 200 {
		t.Fatalf("first: %d %v", code, err)
	}
	_, _, _, err := roundTrip(t, h, "GET", "http://"+addr+"/", nil)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("slow upstream: %v, want a timeout", err)
	}
	if n := reqs.Load(); n != 2 {
		t.Fatalf("the upstream saw %d requests, want 2 (no retry after a timeout)", n)
	}
}

func TestH1TransportConnectionHandling(t *testing.T) {
	for _, tc := range []struct {
		name     string
		response string
		wantBody string
		wantTrl  string
		reuse    bool
	}{
		{"content length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", "", true},
		{"chunked with trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 7\r\n\r\n", "ok", "7", true},
		{"early hints first", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", "", true},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "ok", "", false},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", "", false},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := rawUpstream(t, func(c net.Conn, _ *bufio.Reader, _ int64) { io.WriteString(c, tc.response) })
			h, dials := newH1(t, addr, time.Second)
			for i := range 2 {
				code, body, trl, err := roundTrip(t, h, "GET", "http://"+addr+"/", nil)
				if err != nil || code/100 != 2 || body != tc.wantBody || trl.Get("X-Sum") != tc.wantTrl {
					t.Fatalf("request %d: %d %q trailer %v %v", i, code, body, trl, err)
				}
			}
			if want := map[bool]int64{true: 1, false: 2}[tc.reuse]; dials.Load() != want {
				t.Fatalf("%d dials for 2 requests, want %d", dials.Load(), want)
			}
		})
	}
}

func TestH1TransportUnreadBodyClosesTheConnection(t *testing.T) {
	addr, _ := rawUpstream(t, func(c net.Conn, _ *bufio.Reader, _ int64) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")
	})
	h, dials := newH1(t, addr, 0)
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	resp, err := h.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := resp.Body.Read(buf); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("read after an early close: %v, want an error that is not EOF", err)
	}
	// The rest of the body must not be taken for the next response.
	code, body, _, err := roundTrip(t, h, "GET", "http://"+addr+"/", nil)
	if err != nil || code != 200 || body != "0123456789" {
		t.Fatalf("next request: %d %q %v", code, body, err)
	}
	if dials.Load() != 2 {
		t.Fatalf("%d dials, want 2 (the half-read connection is not reused)", dials.Load())
	}
}

func TestH1TransportTruncatedBodyIsAnError(t *testing.T) {
	addr, _ := rawUpstream(t, func(c net.Conn, _ *bufio.Reader, _ int64) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234")
		c.Close()
	})
	h, _ := newH1(t, addr, 0)
	_, body, _, err := roundTrip(t, h, "GET", "http://"+addr+"/", nil)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated body %q: %v, want ErrUnexpectedEOF", body, err)
	}
}

func TestH1TransportCancel(t *testing.T) {
	addr, _ := rawUpstream(t, func(c net.Conn, br *bufio.Reader, _ int64) {
		br.ReadByte() // never answers; returns when the gate closes
	})
	h, _ := newH1(t, addr, 0)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
	errc := make(chan error, 1)
	go func() {
		_, err := h.RoundTrip(req)
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled request: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a canceled request is still waiting for the upstream")
	}
}

func TestH1TransportPoolBound(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "x") }))
	t.Cleanup(up.Close)
	h, _ := newH1(t, up.Listener.Addr().String(), 0)
	var resps []*http.Response
	for range 6 {
		req, _ := http.NewRequest("GET", up.URL+"/", nil)
		resp, err := h.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resps = append(resps, resp)
	}
	for _, r := range resps {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	h.mu.Lock()
	n := len(h.idle)
	h.mu.Unlock()
	if n != h.maxIdle {
		t.Fatalf("%d idle connections after 6 concurrent requests, want the bound %d", n, h.maxIdle)
	}
}

// An upstream that sends more than the response — a body after a HEAD, a
// second response nobody asked for, bytes while the connection idles —
// must not have those bytes read as the next request's answer (another
// client's, through the gate).
func TestH1TransportUnsolicitedBytes(t *testing.T) {
	// For "later": the test says when the stray goes out (once the gate
	// has pooled the connection), and waits until it has.
	send, sent := make(chan struct{}), make(chan struct{})
	for _, tc := range []struct {
		name   string
		method string
		later  bool
		serve  func(c net.Conn, n int64)
	}{
		{"body after a HEAD", "HEAD", false, func(c net.Conn, n int64) {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nLEAK%d", n%10)
		}},
		{"a second response at once", "GET", false, func(c net.Conn, n int64) {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%dHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nLEAK", n%10)
		}},
		{"a second response later", "GET", true, func(c net.Conn, n int64) {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%d", n%10)
			select {
			case <-send:
			case <-time.After(10 * time.Second): // the test failed before asking
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nLEAK")
			sent <- struct{}{}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := rawUpstream(t, func(c net.Conn, _ *bufio.Reader, n int64) { tc.serve(c, n) })
			h, dials := newH1(t, addr, time.Second)
			for i := range 3 {
				code, body, _, err := roundTrip(t, h, tc.method, "http://"+addr+"/", nil)
				if err != nil || code != 200 || strings.Contains(body, "LEAK") {
					t.Fatalf("request %d: %d %q %v", i, code, body, err)
				}
				if tc.later {
					send <- struct{}{}
					<-sent
					waitPeekable(t, h)
				}
			}
			if dials.Load() != 3 {
				t.Fatalf("%d dials for 3 requests, want 3 (no connection with stray bytes reused)", dials.Load())
			}
		})
	}
}

// waitPeekable waits until the stray bytes written to the pooled
// connection can be seen on it (they cross loopback asynchronously).
func waitPeekable(t *testing.T, h *h1Transport) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.mu.Lock()
		var pc *h1Conn
		if len(h.idle) > 0 {
			pc = h.idle[len(h.idle)-1]
		}
		h.mu.Unlock()
		if pc == nil || !idleConnState(pc.Conn) || time.Now().After(deadline) {
			return
		}
		runtime.Gosched()
	}
}
