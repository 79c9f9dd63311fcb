// Package api is l402d's REST surface: the seed producer API
// (POST /api/l402/challenges and /verify, field for field), the admin
// reads (challenges, stats, node) and the plumbing every HTTP surface of
// l402d shares: API-key auth, JSON errors, client IPs, metrics and panic
// safety. Other surfaces (consumer, MCP, dashboard) mount on its mux.
package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/l402d/l402d/plugin/clientip"
	"github.com/l402d/l402d/plugin/field"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/plugin/apiclient"
	"github.com/l402d/l402d/plugin/metrics"
	"github.com/l402d/l402d/plugin/producer"
	"github.com/l402d/l402d/storage"
)

// Config configures a Server.
type Config struct {
	Keys     *Keys
	Producer *producer.Producer
	Metrics  *metrics.Metrics
	Logger   *slog.Logger
	// Health reports the daemon's state for /healthz and /api/node.
	Health func(ctx context.Context) Health
	// TrustedProxies are peers whose X-Forwarded-For is believed when
	// deciding a client's IP (for idempotency without a key).
	TrustedProxies []netip.Prefix
	// Backup, if set, streams a consistent backup of the store.
	Backup func(ctx context.Context, w io.Writer) error
	// PublicMetrics serves /metrics without a key (for a Prometheus
	// scraper that should hold no key at all); otherwise it needs the
	// producer or the admin key.
	PublicMetrics bool
}

// Health is the daemon's state.
type Health struct {
	Status  string                 `json:"status"` // ok | degraded
	LND     LNDHealth              `json:"lnd"`
	Watcher invoices.WatcherStatus `json:"watcher"`
	DB      *apiclient.DBHealth    `json:"db,omitempty"`
	Version string                 `json:"version,omitempty"`
}

// LNDHealth is the node's state as l402d sees it.
type LNDHealth = apiclient.LNDHealth

// Wire renders the state as /healthz and /api/node answer it.
func (h Health) Wire() apiclient.Health {
	w := h.Watcher
	return apiclient.Health{Status: h.Status, LND: h.LND, DB: h.DB, Version: h.Version, Watcher: apiclient.WatcherStatus{
		State: string(w.State), Since: w.Since, SettleIndex: w.Cursor, LastError: w.LastError, Reconnects: w.Reconnects,
		LastSettlement: w.LastSettlement, LastLag: apiclient.Seconds(time.Duration(w.LastLag).Seconds())}}
}

// Server routes l402d's HTTP API.
type Server struct {
	cfg    Config
	log    *slog.Logger
	mux    *http.ServeMux
	routes []string
}

// New builds the server and its routes.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	s.Handle("GET /healthz", RoleNone, http.HandlerFunc(s.healthz))
	if cfg.Metrics != nil {
		if cfg.PublicMetrics {
			s.Handle("GET /metrics", RoleNone, cfg.Metrics.Handler())
		} else {
			s.Handle("GET /metrics", RoleProducer, cfg.Metrics.Handler())
		}
	}
	if cfg.Producer != nil {
		s.Handle("POST /api/l402/challenges", RoleProducer, http.HandlerFunc(s.createChallenge))
		s.Handle("POST /api/l402/challenges/verify", RoleProducer, http.HandlerFunc(s.verifyChallenge))
		s.Handle("GET /api/l402/challenges", RoleProducer, http.HandlerFunc(s.listChallenges))
		s.Handle("GET /api/l402/challenges/{paymentHash}", RoleProducer, http.HandlerFunc(s.getChallenge))
		s.Handle("GET /api/l402/stats", RoleProducer, http.HandlerFunc(s.stats))
		s.Handle("GET /api/l402/sessions", RoleProducer, http.HandlerFunc(s.sessions))
		s.Handle("GET /x402/supported", RoleProducer, http.HandlerFunc(s.x402Supported))
		s.Handle("POST /x402/verify", RoleProducer, http.HandlerFunc(s.x402Verify))
		s.Handle("POST /x402/settle", RoleProducer, http.HandlerFunc(s.x402Settle))
		s.Handle("POST /api/l402/tokens/revoke", RoleAdmin, http.HandlerFunc(s.revoke))
	}
	s.Handle("GET /api/node", RoleAnyKey, http.HandlerFunc(s.node))
	// Go's profiler, for operators chasing a performance problem.
	s.Handle("GET /debug/pprof/", RoleAdmin, http.HandlerFunc(pprof.Index))
	s.Handle("GET /debug/pprof/profile", RoleAdmin, http.HandlerFunc(pprof.Profile))
	s.Handle("GET /debug/pprof/trace", RoleAdmin, http.HandlerFunc(pprof.Trace))
	if cfg.Backup != nil {
		s.Handle("GET /api/admin/backup", RoleAdmin, http.HandlerFunc(s.backup))
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, ErrorBody{Error: "no such endpoint: " + r.Method + " " + r.URL.Path, Code: "not_found", Fix: "see the README's endpoint list"})
	})
	return s
}

// Handle mounts h at pattern behind a role check, with metrics, logging
// and panic recovery. RoleNone means no key is needed.
func (s *Server) Handle(pattern string, role Role, h http.Handler) {
	route := pattern
	if _, p, ok := strings.Cut(pattern, " "); ok {
		route = p
	}
	s.mux.Handle(pattern, s.wrap(route, role, h))
	s.routes = append(s.routes, pattern)
}

// Routes lists the patterns mounted with Handle, in order, so a test can
// hold the documentation to them.
func (s *Server) Routes() []string { return slices.Clone(s.routes) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Keys returns the key checker, for surfaces that authenticate their own
// way (such as the MCP endpoint).
func (s *Server) Keys() *Keys { return s.cfg.Keys }

func (s *Server) wrap(route string, role Role, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("handler panic", "route", route, "panic", fmt.Sprint(p))
				if !sw.wrote {
					WriteError(sw, http.StatusInternalServerError, ErrorBody{Error: "internal error", Code: "internal"})
				}
			}
			if m := s.cfg.Metrics; m != nil {
				m.HTTPRequests.WithLabelValues("api", route, strconv.Itoa(sw.status)).Inc()
				metrics.Since(m.HTTPLatency.WithLabelValues("api", route), start)
			}
		}()
		got := RoleNone
		if s.cfg.Keys != nil {
			got = s.cfg.Keys.Role(KeyFromRequest(r))
		}
		if role != RoleNone {
			switch {
			case got == RoleNone:
				WriteError(sw, http.StatusUnauthorized, ErrorBody{Error: "missing or invalid API key", Code: "unauthorized", Field: "X-API-Key", Fix: "send " + keyHint(role) + " in the X-API-Key header"})
				return
			case role == RoleSpend && !s.cfg.Keys.SpendEnabled():
				WriteError(sw, http.StatusForbidden, ErrorBody{Error: "spending is off on this node", Code: "spending_disabled", Field: "X-API-Key",
					Fix: "start l402d with --consumer.enable (L402D_CONSUMER_ENABLE=true): it creates <datadir>/spend.key; send that key"})
				return
			case !got.Allows(role):
				WriteError(sw, http.StatusForbidden, ErrorBody{Error: "this endpoint needs the " + role.String() + " key, not the " + got.String() + " key", Code: "forbidden", Field: "X-API-Key", Fix: "send " + keyHint(role)})
				return
			}
		}
		r = r.WithContext(context.WithValue(r.Context(), callerKey{}, Caller{Role: got, ClientIP: ClientIP(r, s.cfg.TrustedProxies)}))
		h.ServeHTTP(sw, r)
	})
}

// keyHint says which key an endpoint wants.
func keyHint(need Role) string {
	switch need {
	case RoleAnyKey:
		return "a key from <datadir> (api.key, spend.key or admin.key)"
	case RoleProducer:
		return "the producer key from <datadir>/api.key (or the admin key)"
	}
	return "the " + need.String() + " key from <datadir>/" + need.keyFile()
}

// Caller is who made a request, as the API server authenticated it.
type Caller struct {
	// Role is the role of the key presented, RoleNone without one.
	Role Role
	// ClientIP is the client's address (X-Forwarded-For believed only
	// from trusted proxies).
	ClientIP string
}

type callerKey struct{}

// CallerOf returns the caller of a request served through Handle, and
// false outside it.
func CallerOf(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// callerRole is the role of the key a request presented.
func callerRole(r *http.Request) Role {
	c, _ := CallerOf(r.Context())
	return c.Role
}

// statusWriter records the status code for metrics. It passes Flush
// through so streaming surfaces (MCP) keep working.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ClientIP is the request's client address as text (see
// [clientip.From]): the one answer the API and the gate share.
func ClientIP(r *http.Request, trusted []netip.Prefix) string {
	return clientip.String(r, trusted)
}

// IsLoopback reports whether the request came over loopback.
func IsLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// healthz answers the daemon's state: only {"status"} without a key (the
// node's identity, LND's errors and the settlement cursor are not for
// anyone who can reach the port), the detail with any valid key.
// ?strict=1 turns "degraded" into 503 for health checks; ?lnd=required
// answers 503 while LND is down (for platforms that ask whether l402d can
// reach its node).
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	h := Health{Status: "ok"}
	if s.cfg.Health != nil {
		h = s.cfg.Health(r.Context())
	}
	status := http.StatusOK
	q := r.URL.Query()
	if (h.Status != "ok" && q.Get("strict") != "") || (q.Get("lnd") == "required" && s.cfg.Health != nil && !h.LND.Up) {
		status = http.StatusServiceUnavailable
	}
	if c, _ := CallerOf(r.Context()); c.Role == RoleNone {
		WriteJSON(w, status, struct {
			Status string `json:"status"`
		}{h.Status})
		return
	}
	WriteJSON(w, status, h.Wire())
}

// backup streams the store. Once the body has started an error can only
// cut it short, which the restore side detects.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="l402d-`+time.Now().UTC().Format("20060102T150405Z")+`.backup"`)
	w.Header().Set("Cache-Control", "no-store")
	if err := s.cfg.Backup(r.Context(), w); err != nil {
		s.log.Error("backup failed", "err", err)
		panic(http.ErrAbortHandler)
	}
}

func (s *Server) node(w http.ResponseWriter, r *http.Request) {
	h := Health{Status: "ok"}
	if s.cfg.Health != nil {
		h = s.cfg.Health(r.Context())
	}
	WriteJSON(w, http.StatusOK, h.Wire())
}

// writeErr maps an error from the producer to a response.
func (s *Server) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	status, e := ProducerErrorOf(err)
	if e.Code == "internal" {
		s.log.Error("request failed", "path", r.URL.Path, "err", err)
	}
	WriteError(w, status, e)
}

// ProducerErrorOf maps an error of the producer package to an HTTP status
// and a body that names the problem, the field and the fix, for every
// surface that reports producer errors (REST, MCP). An unexpected error
// has code "internal" (the caller logs it).
func ProducerErrorOf(err error) (int, ErrorBody) {
	var fe *field.Error
	switch {
	case errors.As(err, &fe):
		return http.StatusBadRequest, *fieldError(fe)
	case errors.Is(err, invoices.ErrUnavailable):
		return http.StatusServiceUnavailable, ErrorBody{Error: "the Lightning node (LND) is unreachable, so no invoice can be created: " + err.Error(), Code: "lnd_unavailable", Fix: "check that LND is running and reachable; verification keeps working meanwhile"}
	case errors.Is(err, storage.ErrDiskFull):
		return http.StatusInsufficientStorage, ErrorBody{Error: err.Error(), Code: "disk_full", Fix: "free space on the disk of l402d's data dir; verification keeps working meanwhile"}
	case errors.Is(err, storage.ErrUnavailable):
		return http.StatusServiceUnavailable, ErrorBody{Error: err.Error(), Code: "db_unavailable", Fix: "bring the Postgres server back (--db.postgres.dsn); verification of known tokens keeps working meanwhile"}
	case errors.Is(err, producer.ErrNodeChanged):
		return http.StatusServiceUnavailable, ErrorBody{Error: err.Error(), Code: "node_changed", Fix: "point l402d at the LND node this data dir was created with, or use a new data dir"}
	case errors.Is(err, context.Canceled):
		return 499, ErrorBody{Error: "request canceled", Code: "canceled"}
	}
	return http.StatusInternalServerError, ErrorBody{Error: "internal error: " + err.Error(), Code: "internal"}
}
