package gate

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server timeouts. There is no write timeout: streams (SSE, gRPC,
// WebSocket) last as long as the upstream keeps them open; each
// service's timeout bounds the wait for its response headers instead.
const (
	readHeaderTimeout = 10 * time.Second
	serverIdleTimeout = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	shutdownTimeout   = 10 * time.Second
)

// NewServer returns a standard-library server for the gate: HTTP/1.1 and
// unencrypted HTTP/2 (h2c, prior knowledge, as gRPC clients speak it) on
// one port. Serve hands it every connection its own loop does not keep;
// a program may also serve the gate with it alone, every request then
// taking httputil.ReverseProxy.
func (g *Gate) NewServer() *http.Server {
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           g,
		Protocols:         &protos,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       serverIdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
}

// Serve runs the reverse proxy on l until ctx ends, then shuts down
// gracefully (requests in flight get shutdownTimeout to finish). Plain
// HTTP/1.1 requests are read by the gate's own loop (h1Server), the rest
// by NewServer's.
func (g *Gate) Serve(ctx context.Context, l net.Listener) error {
	s := &h1Server{g: g, std: g.NewServer(), handoff: newHandoffListener(l.Addr()), conns: map[*h1ServerConn]struct{}{}}
	if err := s.serve(ctx, l); err != nil {
		return fmt.Errorf("gate: serving on %s: %w", l.Addr(), err)
	}
	return nil
}
