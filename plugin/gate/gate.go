package gate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/plugin/clientip"
	"github.com/l402d/l402d/plugin/metrics"
	"github.com/l402d/l402d/plugin/producer"
)

// Issuer issues challenges: an invoice on the node and a token bound to
// the offer. It is the only thing the gate does that calls LND.
type Issuer interface {
	Issue(ctx context.Context, o producer.Offer) (producer.Challenge, error)
}

// Verifier checks a credential against the node's keys without calling
// LND. Errors wrapping l402's sentinel errors are verdicts on the token;
// any other error is a failure to check it.
type Verifier interface {
	Verify(ctx context.Context, cred l402.Credential, want l402.Expect) (l402.Verified, error)
}

// Producer is what the gate needs from l402d's producer; a Go program
// embedding the middleware passes its *producer.Producer.
type Producer interface {
	Issuer
	Verifier
}

// Defaults for zero Config fields.
const (
	DefaultMintRate   = 2.0 // challenges per second per client address
	DefaultMintBurst  = 10
	DefaultMaxPending = 1000
	// DefaultMaxPendingPerClient is one client's share of MaxPending.
	DefaultMaxPendingPerClient = 100
	DefaultTokenRate           = 100.0 // paid requests per second per token
	DefaultTokenBurst          = 200
)

// Config configures a Gate. Rates are per second; for MintRate,
// TokenRate and MaxPending zero takes the default and a negative value
// means unlimited.
type Config struct {
	// Producer issues and verifies tokens; required.
	Producer Producer
	// Services is what the gate sells. When nil, ServicesFile is read.
	Services *Services
	// ServicesFile is the YAML services file that Reload and Watch read.
	ServicesFile string
	// MaxPriceSats bounds the prices of the services file (zero: the
	// producer's default).
	MaxPriceSats int64
	// RequireUpstream refuses services without an upstream, as the
	// reverse proxy needs one; the middleware does not.
	RequireUpstream bool
	// LegacyLSAT sends an LSAT challenge before the L402 one, for
	// clients that only know the protocol's old name.
	LegacyLSAT bool
	// TrustedProxies are peers whose X-Forwarded-For is believed when
	// telling clients apart, and kept when forwarding.
	TrustedProxies []netip.Prefix
	// FoldCase makes every service of the services file match paths
	// case-insensitively (ServiceConfig.FoldCase for all).
	FoldCase bool

	// MintRate and MintBurst limit the challenges one client address
	// (an IPv6 /64) may cause.
	MintRate  float64
	MintBurst int
	// MaxPending caps the gate's unpaid, unexpired invoices.
	MaxPending int
	// MaxPendingPerClient is one client's (IPv4 address, IPv6 /64)
	// share of MaxPending, so that a client that never pays cannot
	// fill the node's cap for everyone. Behind Tor or one NAT every
	// client shares one address: raise it, or make it negative (no
	// share: one client may take the whole cap).
	MaxPendingPerClient int
	// TokenRate and TokenBurst limit paid requests per token, unless a
	// service sets its own rate_limit.
	TokenRate  float64
	TokenBurst int
	// DefaultTokenValidity is the validity of tokens of services that
	// set none, for discovery (the producer applies its own default).
	DefaultTokenValidity time.Duration

	// Lookup, when set, lets the gate notice paid invoices before they
	// expire; *producer.Producer implements it.
	Lookup ChallengeLookup
	// Metrics, when set, receives GateRequests and GateUpstreamLatency.
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// Now is the clock of the rate limiters; nil means time.Now.
	Now func() time.Time
}

// Gate charges for requests. It is safe for concurrent use; its services
// can be replaced while it serves (Reload, Swap).
type Gate struct {
	cfg Config
	log *slog.Logger

	// charges sells challenges in the single-use schemes; nil when the
	// Producer cannot (the gate then offers L402 only).
	charges ChargeProducer
	// sessions sells prepaid MPP sessions; nil when the Producer cannot.
	sessions SessionProducer
	// prepaid is nil when the Producer cannot sell prepaid credit.
	prepaid PrepaidProducer
	// prices caches pricer answers (see Gate.priced).
	prices priceCache

	state   atomic.Pointer[state]
	mint    *limiterSet[netip.Addr]
	tokens  *limiterSet[l402.TokenID]
	free    *freeCounter
	pending *pendingSet
	bufs    bufferPool
	// verified remembers credentials that verified (nil when the
	// Producer cannot tell revocations); validHits counts its hits as
	// the valid verifications they stand for.
	verified  *verifyCache
	validHits prometheus.Counter

	mintLimit  rate.Limit
	mintBurst  int
	tokenLimit rate.Limit
	tokenBurst int

	// reloadMu serialises reloads; status is guarded by it.
	reloadMu sync.Mutex
	status   ReloadStatus
	// transports are reused across reloads by upstream settings, so an
	// unchanged service keeps its warm connections.
	transports map[transportKey]pooledTransport
}

// New builds a gate. It reads cfg.ServicesFile when cfg.Services is nil.
func New(cfg Config) (*Gate, error) {
	if cfg.Producer == nil {
		return nil, errors.New("gate: a Producer is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.MaxPendingPerClient == 0 {
		cfg.MaxPendingPerClient = DefaultMaxPendingPerClient
	}
	g := &Gate{
		cfg:        cfg,
		log:        cfg.Logger,
		mint:       newLimiterSet[netip.Addr](addrShard),
		tokens:     newLimiterSet[l402.TokenID](tokenShard),
		free:       newFreeCounter(),
		pending:    newPendingSet(cfg.MaxPending, cfg.MaxPendingPerClient, cfg.Lookup),
		transports: map[transportKey]pooledTransport{},
	}
	if sp, ok := cfg.Producer.(SessionProducer); ok {
		g.sessions = sp
	}
	if pp, ok := cfg.Producer.(PrepaidProducer); ok {
		g.prepaid = pp
	}
	if cp, ok := cfg.Producer.(ChargeProducer); ok {
		g.charges = cp
	}
	if rc, ok := cfg.Producer.(RevocationChecker); ok {
		g.verified = newVerifyCache(rc, cfg.Now)
		if cfg.Metrics != nil {
			g.validHits = cfg.Metrics.Verifications.WithLabelValues("valid")
		}
	}
	g.mintLimit, g.mintBurst = configuredLimit(cfg.MintRate, cfg.MintBurst, DefaultMintRate, DefaultMintBurst)
	g.tokenLimit, g.tokenBurst = configuredLimit(cfg.TokenRate, cfg.TokenBurst, DefaultTokenRate, DefaultTokenBurst)

	svcs := cfg.Services
	if svcs == nil {
		if cfg.ServicesFile == "" {
			return nil, errors.New("gate: give Services or a ServicesFile")
		}
		var err error
		svcs, err = LoadServices(cfg.ServicesFile, g.parseOptions())
		if errors.Is(err, fs.ErrNotExist) {
			// A fresh install (a node platform's app, say) has no services
			// yet: serve none, and pick the file up when it is written.
			g.log.Warn("gate: no services file yet; the gate answers 404 until it exists and is picked up by the next reload",
				"file", cfg.ServicesFile)
			svcs, err = ParseServices([]byte("services: []\n"), g.parseOptions())
		}
		if err != nil {
			return nil, err
		}
	}
	if err := g.install(svcs); err != nil {
		return nil, err
	}
	g.status = ReloadStatus{File: cfg.ServicesFile, LoadedAt: cfg.Now().UTC(), Hash: hashString(svcs.hash), Services: svcs.Len()}
	return g, nil
}

// configuredLimit applies the zero-means-default, negative-means-off rule.
func configuredLimit(r float64, burst int, defRate float64, defBurst int) (rate.Limit, int) {
	switch {
	case r < 0:
		return rate.Inf, 0
	case r == 0:
		r = defRate
		if burst <= 0 {
			burst = defBurst
		}
	}
	return limitOf(r, burst)
}

func (g *Gate) parseOptions() ParseOptions {
	return ParseOptions{Name: g.cfg.ServicesFile, MaxPriceSats: g.cfg.MaxPriceSats, FoldCase: g.cfg.FoldCase}
}

// Services returns the services the gate serves now.
func (g *Gate) Services() *Services { return g.state.Load().svcs }

// ServeHTTP is the reverse proxy: requests the gate lets through go to
// their service's upstream; requests no service matches get a 404.
func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == AuthPath {
		if st := g.state.Load(); g.isAuthRequest(r, st) {
			g.serveAuth(w, r, st)
			return
		}
	}
	g.serve(w, r, nil)
}

// Middleware is the gate in front of next: requests it lets through, and
// requests no service matches, go to next. The services' upstreams are
// not used.
func (g *Gate) Middleware(next http.Handler) http.Handler {
	if next == nil {
		next = http.NotFoundHandler()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.serve(w, r, next) })
}

// serve is the one core of the proxy and the middleware. next is nil for
// the proxy.
func (g *Gate) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	st := g.state.Load()
	p := r.URL.Path
	if p == RefundPath {
		g.serveRefund(w, r, st)
		return
	}
	if st.svcs.discovery {
		switch p {
		case DiscoveryPath, OpenAPIPath:
			g.serveDocument(w, r, st)
			return
		case QuotePath:
			g.serveQuote(w, r, st)
			return
		}
	}
	svc, rt, h := route(w, r, st, next)
	if svc == nil || refuseUnsafe(w, r, svc, rt) {
		return
	}
	// With fold_case the patterns are lower case, and so is the path
	// they are matched against; the upstream still gets the request's.
	mp := svc.matchPath(p)
	if svc.cfg.Auth == AuthOff || svc.whitelisted(mp) {
		rt.count(outFree)
		h.ServeHTTP(w, r)
		return
	}
	rl := g.priced(r, svc, svc.ruleFor(mp))
	rejected, answered := g.admitCredential(w, r, svc, rt, rl, mp, h)
	if answered {
		return
	}
	client := g.clientAddr(r)
	if rejected == nil && g.takeFreebie(svc, client) {
		rt.count(outFree)
		h.ServeHTTP(w, r)
		return
	}
	g.challenge(w, r, svc, rt, rl, client, rejected)
}

// route finds the service for the request's host and path, and the
// handler that serves it: next for the middleware, the service's proxy
// otherwise. When there is none it answers the request itself (or hands
// an unmatched one to next) and returns a nil service.
func route(w http.ResponseWriter, r *http.Request, st *state, next http.Handler) (*service, *serviceRuntime, http.Handler) {
	p := r.URL.Path
	svc := st.svcs.match(r.Host, p)
	if svc == nil {
		if next != nil {
			next.ServeHTTP(w, r)
			return nil, nil, nil
		}
		writeError(w, r, http.StatusNotFound, errorBody{Error: "no service is configured for " + safeHost(r.Host) + " " + truncate(p), Code: "not_found",
			Fix: "see " + DiscoveryPath + " for the services this gate serves"})
		return nil, nil, nil
	}
	rt := st.rt[svc.index]
	if next != nil {
		return svc, rt, next
	}
	if rt.proxy == nil {
		rt.count(outError)
		writeError(w, r, http.StatusBadGateway, errorBody{Error: "service " + svc.cfg.Name + " has no upstream", Code: "no_upstream", Service: svc.cfg.Name,
			Fix: "the operator must set upstream for this service in the services file"})
		return nil, nil, nil
	}
	return svc, rt, rt.proxy
}

// refuseUnsafe answers 400, and reports true, for a request the upstream
// could read differently from the gate: a non-canonical path, a ';' in
// the path, or an upgrade to anything but WebSocket.
func refuseUnsafe(w http.ResponseWriter, r *http.Request, svc *service, rt *serviceRuntime) bool {
	p := r.URL.Path
	if !isCleanPath(p) {
		// "/free/../paid" must not match "/free/*" here and reach the
		// upstream as "/paid".
		rt.count(outRejected)
		writeError(w, r, http.StatusBadRequest, errorBody{Error: "the request path is not canonical: " + truncate(p), Code: "bad_path", Service: svc.cfg.Name,
			Fix: "send the path without //, /./ or /../ segments"})
		return true
	}
	if !svc.cfg.AllowSemicolons && strings.IndexByte(p, ';') >= 0 {
		// Tomcat, Jetty and others drop ";params" from a segment, so
		// "/free/..;/paid" matches "/free/*" here and is "/paid" there.
		rt.count(outRejected)
		writeError(w, r, http.StatusBadRequest, errorBody{Error: "the request path contains ';': " + truncate(p), Code: "bad_path", Service: svc.cfg.Name,
			Fix: "send the path without ';' (path parameters); the operator may allow them with allow_semicolons: true"})
		return true
	}
	if up := r.Header.Values("Upgrade"); len(up) > 0 && !onlyWebSocket(up) {
		// An h2c (or other) upgrade would hand the client a connection
		// to the upstream that later requests use without the gate.
		rt.count(outRejected)
		writeError(w, r, http.StatusBadRequest, errorBody{Error: "only WebSocket upgrades are allowed, not " + truncate(strings.Join(up, ", ")), Code: "upgrade_refused", Service: svc.cfg.Name,
			Fix: "send the request without an Upgrade header (for HTTP/2, connect with prior knowledge or TLS)"})
		return true
	}
	return false
}

// admitCredential checks the request's credential, if it has one, in
// the schemes the service offers, for the path mp priced by rl: an L402
// token first, then a single-use MPP or x402 payment (admitCharge).
// A good credential is let through to h; a rate-limited token, or one the
// store failed to check, is answered. Either way answered is true.
// Otherwise rejected is why the credential was refused, or nil when there
// was none, and the caller challenges.
func (g *Gate) admitCredential(w http.ResponseWriter, r *http.Request, svc *service, rt *serviceRuntime, rl *rule, mp string, h http.Handler) (rejected error, answered bool) {
	if svc.meter != nil {
		return g.admitMetered(w, r, svc, rt, rl, h)
	}
	if g.offered(svc).has(offerL402) {
		if rejected, answered = g.admitToken(w, r, svc, rt, rl, mp, h); answered || rejected != nil {
			return rejected, answered
		}
	}
	return g.admitCharge(w, r, svc, rt, rl, h)
}

// admitToken is admitCredential for an L402 token.
func (g *Gate) admitToken(w http.ResponseWriter, r *http.Request, svc *service, rt *serviceRuntime, rl *rule, mp string, h http.Handler) (rejected error, answered bool) {
	var key [32]byte
	cacheable := false
	if g.verified != nil {
		key, cacheable = credentialKey(r.Header, svc.cfg.Name, mp)
	}
	if cacheable {
		// A hit for another rule's resource falls through: the full
		// check below says why it is refused. Prepaid credit covers
		// every rule: each request pays its own path's price.
		if e, ok := g.verified.get(r.Context(), key); ok && (e.prepaid || (e.resource == rl.resource && (svc.pricer == nil || e.amount >= rl.price))) {
			if g.validHits != nil {
				g.validHits.Inc()
			}
			if e.prepaid {
				return g.servePrepaid(w, r, svc, rt, rl, e.id, e.hash, h)
			}
			g.servePaid(w, r, svc, rt, e.id, h)
			return nil, true
		}
	}
	cred, err := l402.CredentialFromHeader(r.Header)
	if err != nil {
		if errors.Is(err, l402.ErrNoCredential) {
			return nil, false
		}
		return err, false // an L402 header that does not parse
	}
	v, err := g.cfg.Producer.Verify(r.Context(), cred, l402.Expect{Service: svc.cfg.Name, Resource: mp})
	switch {
	case err != nil || v.Prepaid:
	case v.Resource != rl.resource:
		// The token covers this path, but was bought under another
		// rule (say /api/* at 1 sat for /api/premium/x at 100).
		err = fmt.Errorf("%w: token was bought for %q; this path is priced by %q", l402.ErrWrongResource, truncate(v.Resource), rl.resource)
	case svc.pricer != nil && v.AmountSats < rl.price:
		// Priced per request: a token bought for a cheap request does
		// not buy a dear one.
		err = fmt.Errorf("%w: token was bought for %d sats; this request costs %d", l402.ErrWrongAmount, v.AmountSats, rl.price)
	}
	if err == nil {
		if cacheable {
			g.verified.put(key, v)
		}
		if v.Prepaid {
			return g.servePrepaid(w, r, svc, rt, rl, v.TokenID, v.PaymentHash, h)
		}
		g.servePaid(w, r, svc, rt, v.TokenID, h)
		return nil, true
	}
	if producer.ReasonCode(err) == "error" {
		// The store failed us; the token may well be good.
		rt.count(outError)
		g.log.Error("gate: verifying a credential failed", "service", svc.cfg.Name, "err", err)
		writeError(w, r, http.StatusInternalServerError, errorBody{Error: "the credential could not be checked", Code: "internal", Service: svc.cfg.Name, Fix: "retry shortly"})
		return nil, true
	}
	return err, false
}

// servePaid hands a request with a valid token to h, unless the token is
// over its service's (or the gate's) request rate.
func (g *Gate) servePaid(w http.ResponseWriter, r *http.Request, svc *service, rt *serviceRuntime, id l402.TokenID, h http.Handler) {
	if !g.withinTokenRate(w, r, svc, rt, id) {
		return
	}
	rt.count(outPaid)
	h.ServeHTTP(w, r)
}

// withinTokenRate reports whether token id may make a request now, and
// answers 429 if not.
func (g *Gate) withinTokenRate(w http.ResponseWriter, r *http.Request, svc *service, rt *serviceRuntime, id l402.TokenID) bool {
	limit, burst := g.tokenLimit, g.tokenBurst
	if svc.hasTokenLimit {
		limit, burst = svc.tokenLimit, svc.tokenBurst
	}
	if ok, wait := g.tokens.allow(id, g.cfg.Now(), limit, burst); !ok {
		rt.count(outRateLimited)
		writeRateLimited(w, r, wait, errorBody{Error: "this token's request rate is over the service's limit", Code: "token_rate_limited", Service: svc.cfg.Name,
			Fix: "slow down and retry after Retry-After seconds"})
		return false
	}
	return true
}

// takeFreebie reports whether the client may have one of a freebie
// service's free requests, and takes it.
func (g *Gate) takeFreebie(svc *service, client netip.Addr) bool {
	return svc.cfg.Auth == AuthFreebie && g.free.take(freeKey{svc.cfg.Name, clientKey(client)}, g.cfg.Now(), svc.cfg.FreeRequests, svc.cfg.FreeWindow)
}

// onlyWebSocket reports whether Upgrade header values name WebSocket and
// nothing else.
func onlyWebSocket(values []string) bool {
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			if !strings.EqualFold(strings.TrimSpace(tok), "websocket") {
				return false
			}
		}
	}
	return true
}

// clientAddr is the request's client address (see [clientip.From]).
func (g *Gate) clientAddr(r *http.Request) netip.Addr {
	return clientip.From(r, g.cfg.TrustedProxies)
}

// trusted reports whether a is a trusted proxy.
func (g *Gate) trusted(a netip.Addr) bool {
	for _, p := range g.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// safeHost bounds a Host header echoed in an error.
func safeHost(h string) string {
	if h == "" {
		return "(no host)"
	}
	return truncate(h)
}

func truncate(s string) string {
	const n = 128
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
