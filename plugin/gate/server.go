package gate

import (
	"context"
	"errors"
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

// NewServer returns the gate's own HTTP server: HTTP/1.1 and unencrypted
// HTTP/2 (h2c, prior knowledge, as gRPC clients speak it) on one port.
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
// gracefully (requests in flight get shutdownTimeout to finish).
func (g *Gate) Serve(ctx context.Context, l net.Listener) error {
	srv := g.NewServer()
	stop, drained := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(drained)
		select {
		case <-stop:
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				g.log.Warn("gate: shutdown", "err", err)
				_ = srv.Close()
			}
		}
	}()
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		<-drained // requests in flight have finished
		return nil
	}
	close(stop)
	<-drained
	return fmt.Errorf("gate: serving on %s: %w", l.Addr(), err)
}
