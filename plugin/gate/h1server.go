package gate

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// h1Server is the gate's listener loop. It reads each connection's
// requests itself while they are plain — GET, HEAD or OPTIONS, HTTP/1.1,
// no body, no upgrade (parseRequestHead) — and serves them with the gate
// as handler and an h1Writer as response writer, on the connection's own
// goroutine; for a paid request the service's proxy then writes the
// request upstream and copies the answer back without net/http in the
// way (h1proxy.go). The first request that is not plain (a POST, an
// HTTP/2 preface, a WebSocket upgrade, a head it does not fully
// understand) hands the connection, with what it has buffered, to the
// standard library's server for the rest of its life; that server alone
// answers malformed requests.
//
// What the standard server costs per request and this loop does not: a
// background read of the connection while the handler runs (to notice a
// client that hangs up) and its cancellation, a context and a header map
// of its own per request, and ReverseProxy's copies of the request and
// response headers. The price: a client that hangs up while a plain
// request waits on the upstream is noticed only once the request has
// waited watchAfter (clientWatch).
type h1Server struct {
	g   *Gate
	std *http.Server
	// handoff feeds std the connections this loop gives up.
	handoff *handoffListener

	mu      sync.Mutex
	conns   map[*h1ServerConn]struct{}
	closing atomic.Bool
	wg      sync.WaitGroup
	date    atomic.Pointer[dateLine]
}

// h1ReadBufSize is a connection's read buffer: a request head that does
// not fit is the standard server's (which allows maxHeaderBytes).
const h1ReadBufSize = 4 << 10

// serve accepts connections on l until ctx ends, then shuts down: no new
// connections, idle ones closed, requests in flight get shutdownTimeout
// to finish.
func (s *h1Server) serve(ctx context.Context, l net.Listener) error {
	stdDone := make(chan error, 1)
	go func() { stdDone <- s.std.Serve(s.handoff) }()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	var delay time.Duration
	var acceptErr error
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				break
			}
			// Out of file descriptors, say: wait and go on, as
			// net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.g.log.Warn("gate: accept", "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
				continue
			case <-ctx.Done():
			}
			break
		}
		delay = 0
		s.track(c)
	}
	if ctx.Err() == nil {
		acceptErr = errors.New("the listener closed")
	}
	s.shutdown()
	if err := <-stdDone; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		s.g.log.Warn("gate: serving handed-off connections", "err", err)
	}
	if acceptErr != nil {
		return acceptErr
	}
	return nil
}

// track starts serving a new connection.
func (s *h1Server) track(c net.Conn) {
	sc := &h1ServerConn{s: s, c: c, remote: c.RemoteAddr().String(),
		br: bufio.NewReaderSize(c, h1ReadBufSize), bw: bufio.NewWriterSize(c, h1BufSize)}
	sc.ctx, sc.cancel = context.WithCancel(context.Background())
	sc.base = (&http.Request{}).WithContext(sc.ctx)
	sc.w.c = sc
	sc.watch.sc = sc
	sc.upstreamGone = sc.hangUp
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.conns[sc] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go sc.serve()
}

// untrack forgets a connection that has been closed or handed off.
func (s *h1Server) untrack(sc *h1ServerConn) {
	s.mu.Lock()
	delete(s.conns, sc)
	s.mu.Unlock()
	s.wg.Done()
}

// shutdown closes idle connections, lets busy ones finish their request
// (they see closing and close), and after shutdownTimeout closes the
// rest; the standard server does the same with its connections.
func (s *h1Server) shutdown() {
	s.mu.Lock()
	s.closing.Store(true)
	for sc := range s.conns {
		if sc.idle.Load() {
			// Wakes the read waiting for the next request.
			_ = sc.c.SetReadDeadline(time.Unix(1, 0))
		}
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	stdErr := make(chan error, 1)
	go func() { stdErr <- s.std.Shutdown(ctx) }()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for sc := range s.conns {
			sc.forceClose()
		}
		s.mu.Unlock()
		<-done
	}
	if err := <-stdErr; err != nil {
		s.g.log.Warn("gate: shutdown", "err", err)
		_ = s.std.Close()
	}
}

// h1ServerConn is one client connection served by h1Server.
type h1ServerConn struct {
	s      *h1Server
	c      net.Conn
	remote string
	br     *bufio.Reader
	bw     *bufio.Writer
	// idle is set while the connection waits for a request.
	idle atomic.Bool

	ctx    context.Context
	cancel context.CancelFunc
	// base carries ctx; each request is a copy of it.
	base *http.Request
	req  http.Request
	hdr  http.Header
	head reqHead
	resp respHead
	w    h1Writer

	// up is the upstream connection of this client's last plain
	// request, kept for its next one (h1proxy.go); only this
	// goroutine touches it, forceClose reads it.
	upMu sync.Mutex
	up   *h1Conn
	upT  *h1Transport

	watch clientWatch
	// gone is set when the client hung up while its request waited on
	// the upstream; upstreamGone is the watch's action for the raw path.
	gone         atomic.Bool
	upstreamGone func()
}

// watchAfter is how long a request waits on its upstream before the
// server starts watching its client for a hang-up: most answers come
// sooner, and watching costs what h1Server saves.
const watchAfter = 200 * time.Millisecond

// clientWatch notices a client that hangs up while its request waits on
// the upstream: after watchAfter it reads the connection in the
// background (its next request, or EOF), and on EOF or an error runs
// the action it was started with. Only one watch runs per connection.
type clientWatch struct {
	sc       *h1ServerConn
	timer    *time.Timer
	onGone   func()
	armed    bool // started and not stopped; only the connection's goroutine reads it
	stopping atomic.Bool
	done     chan struct{}
}

// start arms the watch; the caller must not read the connection until
// stop.
func (cw *clientWatch) start(onGone func()) {
	cw.onGone, cw.armed = onGone, true
	if cw.timer == nil {
		cw.done = make(chan struct{}, 1)
		cw.timer = time.AfterFunc(watchAfter, cw.run)
		return
	}
	cw.timer.Reset(watchAfter)
}

func (cw *clientWatch) run() {
	_, err := cw.sc.br.Peek(1)
	if err != nil && !cw.stopping.Load() {
		cw.onGone()
	}
	cw.done <- struct{}{}
}

// stop ends the watch, waiting for its read to end if it started.
func (cw *clientWatch) stop() {
	if !cw.armed {
		return
	}
	cw.armed = false
	if cw.timer.Stop() {
		return
	}
	cw.stopping.Store(true)
	_ = cw.sc.c.SetReadDeadline(time.Unix(1, 0))
	<-cw.done
	cw.stopping.Store(false)
}

// hangUp is the raw path's watch action: the client left, so the
// upstream connection its request waits on is closed.
func (sc *h1ServerConn) hangUp() {
	sc.gone.Store(true)
	sc.closeUpstream()
}

// closeUpstream closes the upstream connection a request may be waiting
// on, from another goroutine; the connection's own goroutine then fails
// its read or write and lets it go.
func (sc *h1ServerConn) closeUpstream() {
	sc.upMu.Lock()
	if sc.up != nil {
		sc.up.Close()
	}
	sc.upMu.Unlock()
}

// serve reads and answers requests until the client closes, an answer
// cannot be framed, the server shuts down, or a request is not plain.
func (sc *h1ServerConn) serve() {
	handedOff := false
	defer func() {
		if !handedOff {
			sc.c.Close()
		}
		sc.cancel()
		sc.watch.stop()
		sc.releaseUpstream()
		sc.s.untrack(sc)
	}()
	for {
		_ = sc.c.SetReadDeadline(time.Now().Add(serverIdleTimeout))
		sc.idle.Store(true)
		if sc.s.closing.Load() {
			return
		}
		head, err := sc.readHead()
		sc.idle.Store(false)
		if err != nil {
			if errors.Is(err, errNotPlain) {
				handedOff = sc.handOff()
			}
			return
		}
		if !parseRequestHead(head, &sc.head) {
			handedOff = sc.handOff()
			return
		}
		r, ok := sc.request(head)
		if !ok {
			handedOff = sc.handOff()
			return
		}
		_, _ = sc.br.Discard(len(head))
		if !sc.handle(r) {
			_ = sc.bw.Flush()
			return
		}
		if sc.s.closing.Load() {
			_ = sc.bw.Flush()
			return
		}
	}
}

// handle serves one request and reports whether the connection can take
// another. A panicking handler ends the connection, as with net/http
// (httputil.ReverseProxy panics with http.ErrAbortHandler when an answer
// breaks off after its head went out).
func (sc *h1ServerConn) handle(r *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
			if v != http.ErrAbortHandler {
				sc.s.g.log.Error("gate: panic serving a request", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			}
		}
	}()
	sc.w.reset(r)
	sc.s.g.ServeHTTP(&sc.w, r)
	return sc.w.finish()
}

// errNotPlain is readHead's word for a connection to hand off.
var errNotPlain = errors.New("gate: not a plain request")

// readHead waits for a whole request head in the read buffer and returns
// it, unconsumed. A head that cannot be a plain request, or does not fit
// the buffer, is errNotPlain; a read error ends the connection.
func (sc *h1ServerConn) readHead() ([]byte, error) {
	// Answers go out before any wait for more of the client's bytes:
	// pipelined requests are answered in one write, and a client that
	// waits for an answer before sending more is never kept waiting.
	if sc.br.Buffered() == 0 && sc.bw.Flush() != nil {
		return nil, net.ErrClosed
	}
	if _, err := sc.br.Peek(1); err != nil {
		return nil, err
	}
	for deadlineSet := false; ; {
		buf, _ := sc.br.Peek(sc.br.Buffered())
		if c := buf[0]; c != 'G' && c != 'H' && c != 'O' {
			return nil, errNotPlain // TLS, HTTP/2's preface, POST, …
		}
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
			return buf[:i+4], nil
		}
		if len(buf) == sc.br.Size() || hasBareLF(buf) {
			return nil, errNotPlain // net/http reads lines ending in LF alone
		}
		if sc.bw.Flush() != nil {
			return nil, net.ErrClosed
		}
		if !deadlineSet {
			// The head came in pieces: the header timeout from now.
			deadlineSet = true
			_ = sc.c.SetReadDeadline(time.Now().Add(readHeaderTimeout))
		}
		if _, err := sc.br.Peek(len(buf) + 1); err != nil {
			return nil, err // a partial head, then EOF or the timeout
		}
	}
}

// hasBareLF reports whether b has an LF without a CR before it.
func hasBareLF(b []byte) bool {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return false
		}
		if i+j == 0 || b[i+j-1] != '\r' {
			return true
		}
		i += j + 1
	}
}

// request builds the request of the parsed head. It reuses the
// connection's request and header map: the gate keeps neither past
// ServeHTTP (its proxy copies what it forwards).
func (sc *h1ServerConn) request(head []byte) (*http.Request, bool) {
	h := &sc.head
	// One string for the whole head; the fields are slices of it.
	s := string(head)
	sub := func(b []byte) string {
		off := cap(head) - cap(b)
		return s[off : off+len(b)]
	}
	target := sub(h.target)
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, false
	}
	if sc.hdr == nil {
		sc.hdr = make(http.Header, 8)
	} else {
		clear(sc.hdr)
	}
	for _, f := range h.fields {
		k := textproto.CanonicalMIMEHeaderKey(sub(f.name))
		sc.hdr[k] = append(sc.hdr[k], sub(f.value))
	}
	r := &sc.req
	*r = *sc.base
	r.Method = h.method
	r.URL = u
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	r.Header = sc.hdr
	r.Body = http.NoBody
	r.Host = sub(h.host)
	r.RemoteAddr = sc.remote
	r.RequestURI = target
	return r, true
}

// handOff gives the connection, with its buffered bytes, to the standard
// server. It reports whether the connection is no longer this loop's to
// close (false: an answer could not be flushed).
func (sc *h1ServerConn) handOff() bool {
	if sc.bw.Flush() != nil {
		return false
	}
	_ = sc.c.SetReadDeadline(time.Time{})
	sc.s.handoff.push(&bufferedConn{Conn: sc.c, br: sc.br})
	return true
}

// forceClose ends a connection at shutdown's deadline, and the upstream
// request it may be waiting on.
func (sc *h1ServerConn) forceClose() {
	sc.c.Close()
	sc.cancel()
	sc.closeUpstream()
}

// releaseUpstream returns the kept upstream connection to its pool.
func (sc *h1ServerConn) releaseUpstream() {
	sc.upMu.Lock()
	up, t := sc.up, sc.upT
	sc.up, sc.upT = nil, nil
	sc.upMu.Unlock()
	if up != nil {
		t.put(up)
	}
}

// bufferedConn is a handed-off connection: reads come first from what
// h1Server had buffered.
type bufferedConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.br.Read(p) }

// handoffListener is the standard server's listener: it accepts the
// connections h1Server hands off.
type handoffListener struct {
	addr  net.Addr
	ch    chan net.Conn
	done  chan struct{}
	close sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

// push hands c to the server, or closes it when the server is closed.
func (l *handoffListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.close.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// h1Writer is the http.ResponseWriter of h1Server's requests. It writes
// HTTP/1.1 to the connection's buffer: with the handler's Content-Length
// when it set one; otherwise a body that is complete when the handler
// returns and fits the buffer gets a Content-Length, a longer or flushed
// one is chunked. It flushes (http.Flusher) and sends trailers declared
// in a Trailer header or set with http.TrailerPrefix, as net/http does.
// It cannot hijack: upgrades never reach it.
type h1Writer struct {
	c   *h1ServerConn
	req *http.Request
	hdr http.Header

	status      int
	wroteHeader bool // WriteHeader was called
	headSent    bool // the status line and header are in bw
	bodyless    bool // HEAD, 204, 304: the body is not sent
	chunked     bool
	closeAfter  bool
	length      int64 // the declared Content-Length, -1 if none
	written     int64
	buf         []byte // the body until the head is sent
	// raw is set by the raw proxy path, which wrote the whole answer
	// itself; broken when it could not complete it.
	raw    bool
	broken bool
}

func (w *h1Writer) reset(r *http.Request) {
	if w.hdr == nil {
		w.hdr = make(http.Header, 8)
	} else {
		clear(w.hdr)
	}
	*w = h1Writer{c: w.c, req: r, hdr: w.hdr, buf: w.buf[:0], length: -1}
}

func (w *h1Writer) Header() http.Header { return w.hdr }

func (w *h1Writer) WriteHeader(code int) {
	if w.wroteHeader || code < 200 {
		return // informational answers are not relayed here
	}
	w.wroteHeader, w.status = true, code
	w.bodyless = w.req.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified
	if cl := w.hdr.Get("Content-Length"); cl != "" {
		if n, ok := parseLength([]byte(cl)); ok {
			w.length = n
		} else {
			w.hdr.Del("Content-Length")
		}
	}
	if _, ok := w.hdr["Trailer"]; ok {
		w.length = -1 // trailers need chunks
		w.hdr.Del("Content-Length")
	}
}

func (w *h1Writer) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.broken {
		return 0, net.ErrClosed
	}
	if w.bodyless {
		if w.status == http.StatusNoContent || w.status == http.StatusNotModified {
			return 0, http.ErrBodyNotAllowed
		}
		w.written += int64(len(p))
		return len(p), nil
	}
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if !w.headSent {
		switch {
		case w.length >= 0:
			w.sendHead(false)
		case len(w.buf)+len(p) <= h1BufSize:
			w.buf = append(w.buf, p...)
			return len(p), nil
		default:
			w.sendHead(true)
		}
	}
	if w.chunked {
		w.chunk(p)
	} else {
		_, _ = w.c.bw.Write(p)
	}
	return len(p), w.fail()
}

// Flush sends what is written so far; a body of unknown length is
// chunked from here on.
func (w *h1Writer) Flush() { _ = w.FlushError() }

func (w *h1Writer) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		w.sendHead(w.length < 0 && !w.bodyless)
	}
	if !w.broken {
		_ = w.c.bw.Flush()
	}
	return w.fail()
}

// finish completes the answer after the handler returns. It reports
// whether the connection can take another request.
func (w *h1Writer) finish() bool {
	if w.raw {
		return !w.broken && !w.closeAfter
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		if w.length < 0 && w.status != http.StatusNoContent && w.status != http.StatusNotModified {
			// The whole body is here: say its length.
			switch {
			case w.req.Method != http.MethodHead:
				w.length = int64(len(w.buf))
			case w.written > 0:
				w.length = w.written
			}
			if w.length >= 0 {
				w.hdr["Content-Length"] = []string{strconv.FormatInt(w.length, 10)}
			}
		}
		w.sendHead(false)
	}
	if w.chunked {
		bw := w.c.bw
		_, _ = bw.WriteString("0\r\n")
		w.writeTrailers()
		_, _ = bw.WriteString("\r\n")
	}
	if w.length >= 0 && !w.bodyless && w.written < w.length {
		// Short of the promised length: the client must not read the
		// next answer as the rest of this one.
		w.broken = true
	}
	return w.fail() == nil && !w.broken && !w.closeAfter
}

// sendHead writes the status line, the header and the body buffered so
// far, chunked or not.
func (w *h1Writer) sendHead(chunked bool) {
	w.headSent, w.chunked = true, chunked
	defer w.flushBuffered()
	bw := w.c.bw
	writeStatusLine(bw, w.status)
	if httpguts.HeaderValuesContainsToken(w.hdr["Connection"], "close") {
		w.closeAfter = true
	}
	delete(w.hdr, "Transfer-Encoding")
	if w.chunked {
		_, _ = bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if _, ok := w.hdr["Date"]; !ok {
		w.c.s.writeDate(bw)
	}
	for k, vv := range w.hdr {
		switch {
		case k == "Trailer":
			if w.chunked {
				writeField(bw, k, vv)
			}
		case strings.HasPrefix(k, http.TrailerPrefix) || !httpguts.ValidHeaderFieldName(k):
		default:
			writeField(bw, k, vv)
		}
	}
	_, _ = bw.WriteString("\r\n")
}

// flushBuffered writes the body buffered before the head went out.
func (w *h1Writer) flushBuffered() {
	if w.chunked {
		w.chunk(w.buf)
	} else {
		_, _ = w.c.bw.Write(w.buf)
	}
	w.buf = w.buf[:0]
}

// writeTrailers writes the trailers: the fields the Trailer header
// declared, and those set under http.TrailerPrefix.
func (w *h1Writer) writeTrailers() {
	bw := w.c.bw
	for _, decl := range w.hdr["Trailer"] {
		for k := range strings.SplitSeq(decl, ",") {
			name := textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(k))
			if vv, ok := w.hdr[name]; ok && httpguts.ValidTrailerHeader(name) {
				writeField(bw, name, vv)
			}
		}
	}
	for k, vv := range w.hdr {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && httpguts.ValidTrailerHeader(name) {
			writeField(bw, name, vv)
		}
	}
}

func (w *h1Writer) chunk(p []byte) {
	if len(p) == 0 {
		return
	}
	bw := w.c.bw
	var n [16]byte
	_, _ = bw.Write(strconv.AppendInt(n[:0], int64(len(p)), 16))
	_, _ = bw.WriteString("\r\n")
	_, _ = bw.Write(p)
	_, _ = bw.WriteString("\r\n")
}

// fail reports a write error of the connection, after which the answer
// cannot be completed. bufio.Writer keeps its first error.
func (w *h1Writer) fail() error {
	if w.broken {
		return net.ErrClosed
	}
	if _, err := w.c.bw.Write(nil); err != nil {
		w.broken = true
		return err
	}
	return nil
}

// writeStatusLine writes "HTTP/1.1 code text", text as net/http writes it.
func writeStatusLine(bw *bufio.Writer, code int) {
	var b [64]byte
	line := append(b[:0], "HTTP/1.1 "...)
	line = strconv.AppendInt(line, int64(code), 10)
	line = append(line, ' ')
	if text := http.StatusText(code); text != "" {
		line = append(line, text...)
	} else {
		line = append(line, "status code "...)
		line = strconv.AppendInt(line, int64(code), 10)
	}
	line = append(line, "\r\n"...)
	_, _ = bw.Write(line)
}

// writeField writes a header field's values, newlines in them turned to
// spaces (as net/http does).
func writeField(bw *bufio.Writer, k string, vv []string) {
	for _, v := range vv {
		_, _ = bw.WriteString(k)
		_, _ = bw.WriteString(": ")
		if strings.ContainsAny(v, "\r\n") {
			v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
		}
		_, _ = bw.WriteString(v)
		_, _ = bw.WriteString("\r\n")
	}
}

// dateLine holds the formatted Date field of one second.
type dateLine struct {
	sec  int64
	text []byte
}

// writeDate writes a Date field for now, formatted once a second.
func (s *h1Server) writeDate(bw *bufio.Writer) {
	now := time.Now()
	d := s.date.Load()
	if d == nil || d.sec != now.Unix() {
		b := make([]byte, 0, 64)
		b = append(b, "Date: "...)
		b = now.UTC().AppendFormat(b, http.TimeFormat)
		b = append(b, "\r\n"...)
		d = &dateLine{sec: now.Unix(), text: b}
		s.date.Store(d)
	}
	_, _ = bw.Write(d.text)
}
