package gate

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// serviceProxy is a service's proxy handler. A plain request that
// h1Server read (its writer is an *h1Writer) to an HTTP/1.1 upstream
// takes the raw path: the request head is written to an upstream
// connection straight from the parsed request, and an answer framed by a
// Content-Length is copied back with its header lines as the upstream
// sent them, less the hop-by-hop ones. Any other answer (chunked,
// streamed, with trailers, an oversized head) goes on through
// httputil.ReverseProxy, as does every request served by the standard
// server. Both paths forward the same request: TestRawPathForwardsAsReverseProxy
// compares what the upstream receives.
type serviceProxy struct {
	g    *Gate
	svc  *service
	rt   *serviceRuntime
	rp   *httputil.ReverseProxy
	h1   *h1Transport // nil: no raw path (h2c, https)
	base string       // the upstream URL's escaped path
}

func (p *serviceProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if hw, ok := w.(*h1Writer); ok && p.h1 != nil && !hw.wroteHeader {
		p.serveRaw(hw, r)
		return
	}
	p.rp.ServeHTTP(w, r)
}

// serveRaw is the raw path.
func (p *serviceProxy) serveRaw(w *h1Writer, r *http.Request) {
	sc, t := w.c, p.h1
	ctx := r.Context()
	start := time.Now()
	sc.gone.Store(false)
	sc.watch.start(sc.upstreamGone)
	pc, err := p.roundTrip(ctx, sc, t, r)
	sc.watch.stop()
	if sc.gone.Load() {
		// The client hung up: nobody to answer.
		p.observe(start)
		sc.dropUpstream()
		w.raw, w.broken = true, true
		return
	}
	if err != nil {
		p.observe(start)
		p.rp.ErrorHandler(w, r, err)
		return
	}
	head, ok := pc.peekHead()
	if ok {
		ok = parseResponseHead(head, &sc.resp, r.Method == http.MethodHead)
	}
	if !ok {
		p.relay(w, r, pc, start)
		return
	}
	if t.headerTimeout > 0 {
		_ = pc.SetReadDeadline(time.Time{})
	}
	p.observe(start)
	p.writeAnswer(w, &sc.resp)
	_, _ = pc.br.Discard(len(head))
	n := sc.resp.length
	if r.Method == http.MethodHead || n < 0 {
		n = 0
	}
	w.raw, w.wroteHeader, w.headSent, w.status = true, true, true, sc.resp.status
	if err := p.copyBody(sc.bw, pc.br, n); err != nil {
		// The answer is cut short after its head went out: the client
		// must not read what follows as the rest of it.
		w.broken = true
		sc.dropUpstream()
		if !errors.Is(err, errClientWrite) {
			p.g.log.Warn("gate: upstream answer cut short", "service", p.svc.cfg.Name, "path", r.URL.Path, "err", err)
		}
		return
	}
	if sc.resp.close || pc.br.Buffered() > 0 {
		// Asked to close, or more than the answer arrived: never read
		// the rest as the next request's answer.
		sc.dropUpstream()
	}
	_ = w.fail()
}

// roundTrip sends r upstream and waits for the first byte of the
// answer. The methods of the raw path are idempotent, and an upstream
// that closed a kept connection saw at most a request it did not answer:
// that is tried once more on a fresh connection, as http.Transport does.
func (p *serviceProxy) roundTrip(ctx context.Context, sc *h1ServerConn, t *h1Transport, r *http.Request) (*h1Conn, error) {
	for attempt := 0; ; attempt++ {
		pc, err := sc.upstream(ctx, t)
		if err != nil {
			return nil, err
		}
		if err = p.writeRequest(pc, r); err == nil {
			if err = t.awaitAnswer(pc); err == nil {
				return pc, nil
			}
		}
		sc.dropUpstream()
		if attempt > 0 || !pc.reused || !errors.Is(err, errNothingReceived) || sc.gone.Load() || ctx.Err() != nil {
			return nil, err
		}
	}
}

func (p *serviceProxy) observe(start time.Time) {
	if p.rt.latency != nil {
		p.rt.latency.Observe(time.Since(start).Seconds())
	}
}

// skipUpstream reports whether a request field stays behind: the
// hop-by-hop fields httputil.ReverseProxy removes, the forwarding fields
// it replaces, the framing req.Write writes itself and, when strip is
// set, payment credentials (stripCredentials).
func skipUpstream(k string, strip bool) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"Host", "Content-Length":
		return true
	}
	return strip && isCredentialHeader(k)
}

// writeRequest writes r's head to pc as the service's ReverseProxy
// would send it: the upstream's path joined to the request's, the
// upstream's host, the request's end-to-end fields less the payment
// credentials, and X-Forwarded-For, -Host and -Proto.
func (p *serviceProxy) writeRequest(pc *h1Conn, r *http.Request) error {
	bw := pc.bw
	_, _ = bw.WriteString(r.Method)
	_ = bw.WriteByte(' ')
	path := r.URL.EscapedPath()
	switch a := p.base; {
	case a == "":
		_, _ = bw.WriteString(path)
	case strings.HasSuffix(a, "/") && strings.HasPrefix(path, "/"):
		_, _ = bw.WriteString(a)
		_, _ = bw.WriteString(path[1:])
	case !strings.HasSuffix(a, "/") && !strings.HasPrefix(path, "/"):
		_, _ = bw.WriteString(a)
		_ = bw.WriteByte('/')
		_, _ = bw.WriteString(path)
	default:
		_, _ = bw.WriteString(a)
		_, _ = bw.WriteString(path)
	}
	// An upstream URL has no query (ParseServices refuses one).
	if q := r.URL.RawQuery; q != "" || r.URL.ForceQuery {
		_ = bw.WriteByte('?')
		_, _ = bw.WriteString(q)
	}
	_, _ = bw.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = bw.WriteString(p.svc.upstream.Host)
	_, _ = bw.WriteString("\r\n")
	strip := !p.svc.cfg.PassCredentials
	for k, vv := range r.Header {
		if skipUpstream(k, strip) {
			continue
		}
		for _, v := range vv {
			if strip && k == "Authorization" && isPaymentAuthorization(v) {
				continue
			}
			// h1Server's parser let no CR or LF into names or values.
			_, _ = bw.WriteString(k)
			_, _ = bw.WriteString(": ")
			_, _ = bw.WriteString(v)
			_, _ = bw.WriteString("\r\n")
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		_, _ = bw.WriteString("X-Forwarded-For: ")
		if xff := r.Header["X-Forwarded-For"]; xff != nil && p.g.peerTrusted(r) {
			for _, v := range xff {
				_, _ = bw.WriteString(v)
				_, _ = bw.WriteString(", ")
			}
		}
		_, _ = bw.WriteString(host)
		_, _ = bw.WriteString("\r\n")
	}
	_, _ = bw.WriteString("X-Forwarded-Host: ")
	_, _ = bw.WriteString(r.Host)
	_, _ = bw.WriteString("\r\nX-Forwarded-Proto: http\r\n\r\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("%w: %w", errNothingReceived, err)
	}
	return nil
}

// isPaymentAuthorization reports whether an Authorization value carries
// a payment credential (L402, LSAT, Payment).
func isPaymentAuthorization(v string) bool {
	scheme, _, _ := strings.Cut(strings.TrimSpace(v), " ")
	return strings.EqualFold(scheme, "L402") || strings.EqualFold(scheme, "LSAT") || strings.EqualFold(scheme, "Payment")
}

// peekHead returns the answer's head, unconsumed, once it is all in the
// buffer; ok is false when it does not fit, or the connection failed
// before it was complete (relay then reads it, or reports the error).
func (pc *h1Conn) peekHead() ([]byte, bool) {
	for {
		buf, _ := pc.br.Peek(pc.br.Buffered())
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
			return buf[:i+4], true
		}
		if len(buf) == pc.br.Size() {
			return nil, false
		}
		if _, err := pc.br.Peek(len(buf) + 1); err != nil {
			return nil, false
		}
	}
}

// writeAnswer writes the answer's status line and header: the fields the
// gate set (a receipt, a balance), a Date if the upstream sent none, the
// upstream's end-to-end fields as it sent them, and its length.
func (p *serviceProxy) writeAnswer(w *h1Writer, h *respHead) {
	bw := w.c.bw
	writeStatusLine(bw, h.status)
	for k, vv := range w.hdr {
		if k != "Content-Length" && httpguts.ValidHeaderFieldName(k) {
			writeField(bw, k, vv)
		}
	}
	if !h.date {
		w.c.s.writeDate(bw)
	}
	for _, f := range h.fields {
		_, _ = bw.Write(f.name)
		_, _ = bw.WriteString(": ")
		_, _ = bw.Write(f.value)
		_, _ = bw.WriteString("\r\n")
	}
	if h.length >= 0 {
		var b [32]byte
		_, _ = bw.Write(strconv.AppendInt(append(b[:0], "Content-Length: "...), h.length, 10))
		_, _ = bw.WriteString("\r\n")
	}
	_, _ = bw.WriteString("\r\n")
}

// errClientWrite marks a body copy that failed writing to the client.
var errClientWrite = errors.New("gate: writing to the client failed")

// copyBody copies n bytes of body from the upstream to the client.
func (p *serviceProxy) copyBody(bw *bufio.Writer, br *bufio.Reader, n int64) error {
	if n <= int64(br.Buffered()) {
		b, _ := br.Peek(int(n))
		if _, err := bw.Write(b); err != nil {
			return errClientWrite
		}
		_, _ = br.Discard(int(n))
		return nil
	}
	buf := p.g.bufs.Get()
	defer p.g.bufs.Put(buf)
	for n > 0 {
		m, err := br.Read(buf[:min(int64(len(buf)), n)])
		if m > 0 {
			if _, werr := bw.Write(buf[:m]); werr != nil {
				return errClientWrite
			}
			n -= int64(m)
		}
		if err != nil && n > 0 {
			return fmt.Errorf("after %d bytes short: %w", n, err)
		}
	}
	return nil
}

// relay hands an answer the raw path does not pass on itself (chunked or
// streamed, informational statuses first, an oversized head) to the
// service's ReverseProxy, as though its transport had received it: the
// same header handling, flushing and trailers as the standard path.
func (p *serviceProxy) relay(w *h1Writer, r *http.Request, pc *h1Conn, start time.Time) {
	sc := w.c
	resp, err := readFinalResponse(pc.br, r)
	p.observe(start)
	if err != nil {
		sc.dropUpstream()
		p.rp.ErrorHandler(w, r, err)
		return
	}
	if p.h1.headerTimeout > 0 {
		_ = pc.SetReadDeadline(time.Time{})
	}
	// The body owns the connection now: read to its end it goes back
	// to the pool, closed early it is closed.
	sc.detachUpstream()
	// A streamed answer can last: a client that hangs up cancels it.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	r = r.WithContext(ctx)
	stop := context.AfterFunc(ctx, func() { pc.Conn.Close() })
	p.h1.attachBody(ctx, pc, resp, stop)
	rp := *p.rp
	rp.Transport = answered{resp}
	sc.watch.start(cancel)
	defer sc.watch.stop()
	rp.ServeHTTP(w, r)
}

// answered is a RoundTripper whose answer has already arrived.
type answered struct{ resp *http.Response }

func (a answered) RoundTrip(req *http.Request) (*http.Response, error) {
	a.resp.Request = req
	return a.resp, nil
}

// upstream returns the upstream connection for a request to t: the one
// this client's last request used, if it went to t, or one from t's
// pool. A kept connection is reused without the pool's check for stray
// bytes: only this client's requests have used it since that check.
func (sc *h1ServerConn) upstream(ctx context.Context, t *h1Transport) (*h1Conn, error) {
	sc.upMu.Lock()
	if sc.up != nil && sc.upT == t {
		pc := sc.up
		sc.upMu.Unlock()
		pc.reused = true
		return pc, nil
	}
	old, oldT := sc.up, sc.upT
	sc.up, sc.upT = nil, nil
	sc.upMu.Unlock()
	if old != nil {
		oldT.put(old)
	}
	pc, err := t.get(ctx)
	if err != nil {
		return nil, err
	}
	sc.upMu.Lock()
	sc.up, sc.upT = pc, t
	sc.upMu.Unlock()
	return pc, nil
}

// dropUpstream closes the current upstream connection.
func (sc *h1ServerConn) dropUpstream() {
	if pc := sc.detachUpstream(); pc != nil {
		pc.Close()
	}
}

// detachUpstream forgets the current upstream connection and returns it.
func (sc *h1ServerConn) detachUpstream() *h1Conn {
	sc.upMu.Lock()
	pc := sc.up
	sc.up, sc.upT = nil, nil
	sc.upMu.Unlock()
	return pc
}
