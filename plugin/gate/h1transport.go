package gate

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// h1Transport round-trips the common request — GET, HEAD or OPTIONS, no
// body, no upgrade, HTTP/1.1 to an http:// upstream — on the calling
// goroutine, over connections it pools itself; every other request goes
// to next, the service's http.Transport.
//
// http.Transport runs a reader and a writer goroutine per connection and
// hands each request and response between them and the caller over
// channels. For a small request on a warm connection those hand-offs, and
// the wake-ups they cost on a machine with two cores, weigh more than
// writing the request and parsing the response. Here the caller writes the
// request, reads the response headers, and the connection returns to the
// pool when the body has been read to its end. Bodies, 100-continue,
// upgrades (WebSocket), TLS and HTTP/2 stay with the standard library.
type h1Transport struct {
	next http.RoundTripper
	addr string // the upstream's host:port
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// headerTimeout bounds the wait for the response headers (the
	// service's timeout); zero waits as long as the request's context.
	headerTimeout time.Duration
	idleTimeout   time.Duration
	maxIdle       int

	mu     sync.Mutex
	idle   []*h1Conn // the most recently used last
	closed bool
}

// h1Conn is one upstream connection with its buffers.
type h1Conn struct {
	net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
	reused    bool
}

// h1BufSize is each connection's read and write buffer: a request line
// with headers, or a response's headers, fits.
const h1BufSize = 4 << 10

// errNothingReceived marks a failure before any byte of the response
// arrived: on a reused connection the upstream most likely closed it
// while idle, and an idempotent request may be sent again.
var errNothingReceived = errors.New("gate: the upstream closed the connection before answering")

func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !plainRequest(req) {
		return t.next.RoundTrip(req)
	}
	for attempt := 0; ; attempt++ {
		pc, err := t.get(req.Context())
		if err != nil {
			return nil, err
		}
		resp, err := t.roundTrip(pc, req)
		if err == nil {
			return resp, nil
		}
		pc.Close()
		// The methods taken here are idempotent, and the upstream saw
		// at most a request it did not answer: one retry on a fresh
		// connection, as http.Transport does.
		if attempt == 0 && pc.reused && errors.Is(err, errNothingReceived) && req.Context().Err() == nil {
			continue
		}
		return nil, err
	}
}

// plainRequest reports whether req is one h1Transport takes.
func plainRequest(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		return false
	}
	return req.URL.Scheme == "http" && req.ContentLength == 0 &&
		(req.Body == nil || req.Body == http.NoBody) && len(req.Trailer) == 0 && !req.Close &&
		req.Header["Upgrade"] == nil && req.Header["Expect"] == nil && !isGRPC(req)
}

// roundTrip sends req on pc and reads the response headers. On error the
// caller closes pc.
func (t *h1Transport) roundTrip(pc *h1Conn, req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	// A canceled request (the client went away, the server shuts down)
	// closes the connection, which ends a blocked read or write.
	stop := context.AfterFunc(ctx, func() { pc.Conn.Close() })
	fail := func(err error) (*http.Response, error) {
		stop()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if err := req.Write(pc.bw); err != nil {
		return fail(fmt.Errorf("%w: %w", errNothingReceived, err))
	}
	if err := pc.bw.Flush(); err != nil {
		return fail(fmt.Errorf("%w: %w", errNothingReceived, err))
	}
	if err := t.awaitAnswer(pc); err != nil {
		return fail(err)
	}
	resp, err := readFinalResponse(pc.br, req)
	if err != nil {
		return fail(err)
	}
	if t.headerTimeout > 0 {
		_ = pc.SetReadDeadline(time.Time{})
	}
	t.attachBody(ctx, pc, resp, stop)
	return resp, nil
}

// attachBody makes resp's body the owner of pc: read to its end, the
// connection goes back to the pool; closed before, it is closed. stop
// unhooks the request's cancellation from pc.
func (t *h1Transport) attachBody(ctx context.Context, pc *h1Conn, resp *http.Response, stop func() bool) {
	b := &h1Body{t: t, pc: pc, rc: resp.Body, ctx: ctx, stop: stop, reusable: !resp.Close}
	if resp.Body == http.NoBody {
		b.err = io.EOF
		b.finish(true)
		return
	}
	resp.Body = b
}

// readFinalResponse reads the response to req, skipping informational
// (1xx) responses. A 101 is an error: the request asked for no upgrade.
func readFinalResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode == http.StatusSwitchingProtocols:
			return nil, errors.New("gate: the upstream switched protocols unasked")
		case resp.StatusCode >= 100 && resp.StatusCode < 200:
			continue
		}
		return resp, nil
	}
}

// awaitAnswer waits for the first byte of the answer, within the
// service's timeout.
func (t *h1Transport) awaitAnswer(pc *h1Conn) error {
	if t.headerTimeout > 0 {
		_ = pc.SetReadDeadline(time.Now().Add(t.headerTimeout))
	}
	if _, err := pc.br.Peek(1); err != nil {
		if closedUnanswered(err) {
			return fmt.Errorf("%w: %w", errNothingReceived, err)
		}
		return err
	}
	return nil
}

// closedUnanswered reports whether a read that got no byte failed because
// the connection was closed or reset, not because it timed out.
func closedUnanswered(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "read" && !op.Timeout()
}

// get returns an idle connection, or dials one.
func (t *h1Transport) get(ctx context.Context) (*h1Conn, error) {
	now := time.Now()
	var stale []*h1Conn
	t.mu.Lock()
	for n := len(t.idle); n > 0; n = len(t.idle) {
		pc := t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		if now.Sub(pc.idleSince) < t.idleTimeout {
			t.mu.Unlock()
			// Outside the lock: one non-blocking recv. A connection
			// holding unsolicited bytes, or closed by the upstream,
			// is dropped instead of misreading them as the answer.
			if idleConnState(pc.Conn) {
				closeAll(stale)
				pc.reused = true
				return pc, nil
			}
			stale = append(stale, pc)
			t.mu.Lock()
			continue
		}
		stale = append(stale, pc)
	}
	t.mu.Unlock()
	closeAll(stale)
	c, err := t.dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	return &h1Conn{Conn: c, br: bufio.NewReaderSize(c, h1BufSize), bw: bufio.NewWriterSize(c, h1BufSize)}, nil
}

// put returns a connection whose response was read to its end to the
// pool, dropping the oldest idle connection if it has idled too long.
func (t *h1Transport) put(pc *h1Conn) {
	if pc.br.Buffered() > 0 {
		// The upstream sent more than the response (a body after a
		// HEAD or 204, a second response): never read it as the
		// next request's answer.
		pc.Close()
		return
	}
	pc.idleSince = time.Now()
	var drop *h1Conn
	t.mu.Lock()
	switch {
	case t.closed || len(t.idle) >= t.maxIdle:
		drop = pc
	default:
		if len(t.idle) > 0 && pc.idleSince.Sub(t.idle[0].idleSince) >= t.idleTimeout {
			drop = t.idle[0]
			copy(t.idle, t.idle[1:])
			t.idle[len(t.idle)-1] = nil
			t.idle = t.idle[:len(t.idle)-1]
		}
		t.idle = append(t.idle, pc)
	}
	t.mu.Unlock()
	if drop != nil {
		drop.Close()
	}
}

// CloseIdleConnections closes the idle connections of both transports.
func (t *h1Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	// Only a transport a reload dropped is closed: connections still
	// out (a request in flight, a client's kept connection) are closed
	// when they come back.
	t.closed = true
	t.mu.Unlock()
	closeAll(idle)
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func closeAll(conns []*h1Conn) {
	for _, pc := range conns {
		pc.Close()
	}
}

// h1Body is a response body on a pooled connection: read to its end, it
// returns the connection to the pool; closed before, it closes it (what
// is left unread could be endless).
type h1Body struct {
	t        *h1Transport
	pc       *h1Conn
	rc       io.ReadCloser
	ctx      context.Context
	stop     func() bool
	reusable bool
	err      error // what ended the body; io.EOF when read to its end
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.rc.Read(p)
	if err != nil {
		if !errors.Is(err, io.EOF) && b.ctx.Err() != nil {
			// The request was canceled, which closed the connection:
			// say so, as http.Transport does (ReverseProxy does not log
			// a canceled copy).
			err = b.ctx.Err()
		}
		b.err = err
		b.finish(errors.Is(err, io.EOF))
	}
	return n, err
}

func (b *h1Body) Close() error {
	if b.err == nil {
		b.err = net.ErrClosed
		b.finish(false)
	}
	return nil
}

// finish releases the connection: to the pool after a complete response
// the upstream did not ask to close, if the cancellation hook had not
// fired; closed otherwise.
func (b *h1Body) finish(complete bool) {
	if b.stop() && complete && b.reusable {
		b.t.put(b.pc)
		return
	}
	b.pc.Close()
}
