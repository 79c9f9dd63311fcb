package gate

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Transport tuning. The gate keeps many warm connections per upstream:
// Go's default of 2 idle connections per host would make most requests
// under load dial anew.
const (
	maxIdleConnsPerHost = 512
	maxIdleConns        = 2048
	idleConnTimeout     = 90 * time.Second
	dialTimeout         = 10 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
	copyBufferSize      = 32 << 10
)

// transportKey identifies a transport by everything it is built from, so
// reloads reuse the transports of unchanged upstreams.
type transportKey struct {
	scheme, host string
	h2c          bool
	timeout      time.Duration
}

// pooledTransport is an upstream transport whose idle connections a
// reload can close.
type pooledTransport interface {
	http.RoundTripper
	CloseIdleConnections()
}

// transportFor returns the (possibly reused) transport for an upstream;
// the caller holds reloadMu or is New. For HTTP/1.1 to an http://
// upstream it is an h1Transport in front of the http.Transport.
func (g *Gate) transportFor(u *url.URL, h2c bool, timeout time.Duration, used map[transportKey]bool) pooledTransport {
	k := transportKey{u.Scheme, u.Host, h2c, timeout}
	used[k] = true
	if t, ok := g.transports[k]; ok {
		return t
	}
	var protos http.Protocols
	switch {
	case h2c:
		protos.SetUnencryptedHTTP2(true)
	case u.Scheme == "https":
		protos.SetHTTP1(true)
		protos.SetHTTP2(true)
	default:
		protos.SetHTTP1(true)
	}
	dial := (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	ht := &http.Transport{
		Proxy:                 nil, // never route upstream traffic via $HTTP_PROXY
		DialContext:           dial,
		Protocols:             &protos,
		ForceAttemptHTTP2:     u.Scheme == "https",
		MaxIdleConns:          maxIdleConns,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       idleConnTimeout,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		// Pass Accept-Encoding through untouched; the client decodes.
		DisableCompression: true,
	}
	var t pooledTransport = ht
	if u.Scheme == "http" && !h2c {
		t = &h1Transport{next: ht, addr: hostPort(u), dial: dial, headerTimeout: timeout,
			idleTimeout: idleConnTimeout, maxIdle: maxIdleConnsPerHost}
	}
	g.transports[k] = t
	return t
}

// hostPort is u's host with its port, 80 when it names none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// newProxy builds a service's proxy (serviceProxy).
func (g *Gate) newProxy(svc *service, rt *serviceRuntime, used map[transportKey]bool) http.Handler {
	target := svc.upstream
	var h1, h2 http.RoundTripper
	switch svc.cfg.Protocol {
	case ProtocolH2C:
		h2 = g.transportFor(target, true, svc.cfg.Timeout, used)
		h1 = h2
	case ProtocolHTTP1:
		h1 = g.transportFor(target, false, svc.cfg.Timeout, used)
		h2 = h1
	default:
		h1 = g.transportFor(target, false, svc.cfg.Timeout, used)
		h2 = h1
		if target.Scheme == "http" {
			h2 = g.transportFor(target, true, svc.cfg.Timeout, used)
		}
	}
	name := svc.cfg.Name
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// Keep the chain a trusted proxy sent us; drop any other
			// client's claims. SetXForwarded appends the peer.
			if xff := pr.In.Header["X-Forwarded-For"]; xff != nil && g.peerTrusted(pr.In) {
				pr.Out.Header["X-Forwarded-For"] = xff
			}
			pr.SetXForwarded()
			if !svc.cfg.PassCredentials {
				stripCredentials(pr.Out.Header)
			}
		},
		Transport: &upstreamTransport{h1: h1, h2: h2, latency: rt.latency},
		// Streaming responses are flushed as each write arrives:
		// ReverseProxy applies a flush interval of -1 by itself to
		// text/event-stream and to every response without a length
		// (chunked, HTTP/2 streams such as gRPC). A response of known
		// length goes out when complete: flushing it after each write
		// would cost a timer goroutine and an extra write(2) per request.
		FlushInterval:  0,
		BufferPool:     &g.bufs,
		ModifyResponse: fixGRPCTrailersOnly,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			rt.count(outUpstreamError)
			if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
				return // the client went away; nobody to answer
			}
			markUpstreamFailed(w, r)
			status, code, msg := http.StatusBadGateway, "upstream_unavailable", "the upstream of service "+name+" did not answer"
			var ne net.Error
			if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
				status, code, msg = http.StatusGatewayTimeout, "upstream_timeout", "the upstream of service "+name+" did not answer in time"
			}
			g.log.Warn("gate: upstream error", "service", name, "path", r.URL.Path, "err", err)
			// The upstream's address stays in the log, not in the answer.
			writeError(w, r, status, errorBody{Error: msg, Code: code, Service: name, Fix: "retry later; if it persists, the operator should check the upstream"})
		},
	}
	sp := &serviceProxy{g: g, svc: svc, rt: rt, rp: rp, base: target.EscapedPath()}
	if t, ok := h1.(*h1Transport); ok {
		sp.h1 = t
	}
	return sp
}

// stripCredentials removes the client's payment credentials from headers
// bound upstream: "Authorization: L402/LSAT/Payment …" values (other
// schemes stay), Macaroon, Grpc-Metadata-Macaroon and x402's
// PAYMENT-SIGNATURE.
func stripCredentials(h http.Header) {
	for k := range h {
		if isCredentialHeader(k) {
			delete(h, k)
		}
	}
	vals := h["Authorization"]
	if len(vals) == 0 {
		return
	}
	keep := vals[:0:0]
	for _, v := range vals {
		if !isPaymentAuthorization(v) {
			keep = append(keep, v)
		}
	}
	if len(keep) == 0 {
		delete(h, "Authorization")
	} else {
		h["Authorization"] = keep
	}
}

// isCredentialHeader reports whether a (canonical) field name carries
// only a payment credential: Macaroon, Grpc-Metadata-Macaroon, x402's
// PAYMENT-SIGNATURE. Authorization is sorted value by value
// (isPaymentAuthorization).
func isCredentialHeader(k string) bool {
	switch k {
	case "Macaroon", "Grpc-Metadata-Macaroon", "Payment-Signature":
		return true
	}
	return false
}

// peerTrusted reports whether the request's immediate peer is a trusted
// proxy.
func (g *Gate) peerTrusted(r *http.Request) bool {
	if len(g.cfg.TrustedProxies) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && g.trusted(a.Unmap())
}

// upstreamTransport picks HTTP/2 (h2c) for gRPC requests and HTTP/1.1
// for the rest, and times the wait for the upstream's response headers.
type upstreamTransport struct {
	h1, h2  http.RoundTripper
	latency prometheus.Observer
}

func (t *upstreamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt := t.h1
	if isGRPC(req) {
		rt = t.h2
	}
	start := time.Now()
	resp, err := rt.RoundTrip(req)
	if t.latency != nil {
		t.latency.Observe(time.Since(start).Seconds())
	}
	return resp, err
}

// isGRPC reports whether a request is gRPC (application/grpc, +proto, …).
func isGRPC(r *http.Request) bool {
	ct := r.Header["Content-Type"]
	return len(ct) > 0 && strings.HasPrefix(ct[0], "application/grpc")
}

// grpcStatusHeaders are the gRPC status fields, which belong in trailers.
var grpcStatusHeaders = []string{"Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin"}

// fixGRPCTrailersOnly turns an upstream's trailers-only gRPC response
// (the status in the headers, no body: how gRPC servers fail a call
// early) into headers plus trailers. ReverseProxy flushes headers before
// it knows the body is empty, so passed through as is, the client would
// see headers without END_STREAM, then an end of stream without the
// trailers gRPC requires, and fail the call with "server closed the
// stream without sending trailers".
func fixGRPCTrailersOnly(resp *http.Response) error {
	if resp.Request == nil || !isGRPC(resp.Request) || resp.ProtoMajor != 2 {
		return nil
	}
	if _, ok := resp.Header["Grpc-Status"]; !ok || len(resp.Trailer) > 0 {
		return nil
	}
	resp.Trailer = make(http.Header, len(grpcStatusHeaders))
	for _, k := range grpcStatusHeaders {
		if v, ok := resp.Header[k]; ok {
			resp.Trailer[k] = v
			delete(resp.Header, k)
		}
	}
	return nil
}

// bufferPool recycles ReverseProxy's copy buffers; without one it
// allocates 32 KiB per request. It pools array pointers, so that Put
// does not allocate a slice header.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[copyBufferSize]byte); ok {
		return v[:]
	}
	return new([copyBufferSize]byte)[:]
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) < copyBufferSize {
		return
	}
	b.p.Put((*[copyBufferSize]byte)(buf[:copyBufferSize]))
}
