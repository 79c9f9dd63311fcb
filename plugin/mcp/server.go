package mcp

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/l402d/l402d/plugin/api"
	"github.com/l402d/l402d/plugin/consumer"
	"github.com/l402d/l402d/plugin/field"
	"github.com/l402d/l402d/plugin/producer"
)

// Defaults and limits.
const (
	// DefaultMaxBodyBytes caps the body access_l402_resource returns: an
	// agent's context is no place for megabytes.
	DefaultMaxBodyBytes = 1 << 20
	// approvalTTL is how long an approval request can be answered.
	approvalTTL = 15 * time.Minute
	// sessionIdleTimeout closes stateful sessions idle for this long.
	sessionIdleTimeout = time.Hour
	// statelessProtocol is the first MCP version whose requests carry
	// everything they need (SEP-2575); they are served without sessions.
	statelessProtocol = "2026-07-28"
)

// Config configures a Server. Producer and Consumer may each be nil; their
// tools are then not offered.
type Config struct {
	Producer *producer.Producer
	Consumer *consumer.Consumer
	// ApprovalThresholdSats: a payment whose price plus routing fee limit
	// is above it is put to the person first (elicitation), or refused
	// when the client cannot ask. Zero asks for every payment; negative
	// never asks.
	ApprovalThresholdSats int64
	// MaxPriceSats is the producer's highest price, for
	// create_l402_challenge's schema; 0 means producer.DefaultMaxPriceSats.
	MaxPriceSats int64
	// MaxBodyBytes caps the target's body in access_l402_resource's
	// answer; 0 means DefaultMaxBodyBytes (and never more than the
	// consumer's own cap).
	MaxBodyBytes int64
	Logger       *slog.Logger
	Version      string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is l402d's MCP server. Its methods are safe for concurrent use.
type Server struct {
	cfg Config
	log *slog.Logger
	// srv offers every tool (SDK, in-process use); byRole offers each
	// key's tools over HTTP: the producer key the producer's, the spend
	// key the consumer's, the admin key all.
	srv    *sdk.Server
	byRole map[api.Role]*sdk.Server
	tools  []*tool
	// key signs approval request states, which the client echoes back.
	key [32]byte

	mu   sync.Mutex
	used map[string]time.Time // approval nonces consumed, until they expire
}

// tool is one MCP tool: its definition, arguments and implementation.
type tool struct {
	def  sdk.Tool
	spec spec
	// producer: errors are the producer's (else the consumer's).
	producer bool
	// run does the work. It returns a value for a successful result, or
	// a *sdk.CallToolResult to return as it is (an input request).
	run func(ctx context.Context, req *sdk.CallToolRequest, v values) (any, error)
}

// New builds the server and its tools.
func New(cfg Config) (*Server, error) {
	if cfg.Producer == nil && cfg.Consumer == nil {
		return nil, errors.New("mcp: a producer or a consumer is required")
	}
	if cfg.MaxPriceSats <= 0 {
		cfg.MaxPriceSats = producer.DefaultMaxPriceSats
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Consumer != nil {
		cfg.MaxBodyBytes = min(cfg.MaxBodyBytes, cfg.Consumer.MaxResponseBytes())
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	s := &Server{cfg: cfg, log: cfg.Logger, used: map[string]time.Time{}}
	if _, err := rand.Read(s.key[:]); err != nil {
		return nil, fmt.Errorf("mcp: approval key: %w", err)
	}
	s.tools = s.toolList()
	s.srv = s.newSDK(func(*tool) bool { return true })
	s.byRole = map[api.Role]*sdk.Server{
		api.RoleAdmin:    s.srv,
		api.RoleProducer: s.newSDK(func(t *tool) bool { return t.producer }),
		api.RoleSpend:    s.newSDK(func(t *tool) bool { return !t.producer }),
	}
	return s, nil
}

// newSDK is an SDK server offering the tools keep selects.
func (s *Server) newSDK(keep func(*tool) bool) *sdk.Server {
	srv := sdk.NewServer(&sdk.Implementation{Name: "l402d", Title: "l402d: L402 payments on your own Lightning node", Version: s.cfg.Version},
		&sdk.ServerOptions{Instructions: s.instructions(), Logger: s.sdkLog()})
	for _, t := range s.tools {
		if !keep(t) {
			continue
		}
		def := t.def
		def.InputSchema = t.spec.schema()
		srv.AddTool(&def, s.handler(t))
	}
	return srv
}

// SDK returns the SDK server, to serve over other transports (stdio,
// in-memory).
func (s *Server) SDK() *sdk.Server { return s.srv }

// Handler serves MCP over streamable HTTP. Requests of the stateless
// protocol generation (2026-07-28 and later, SEP-2575) are served without
// sessions; older clients get a session, over which approvals are asked
// as server-to-client elicitation requests.
//
// The caller must authenticate requests: l402d mounts it behind
// api.Server.Handle with api.RoleAnyKey, and the tools offered are the
// presented key's (producer key: create and verify; spend key: the
// consumer's; admin key: all). A request without an authenticated caller
// is refused. A session stays bound to the key that opened it, and
// create_l402_challenge's idempotency is scoped by the session or, in the
// stateless generation, by the key and the client's address.
//
// Because every request carries the key, the SDK's DNS-rebinding
// check (loopback listener, non-loopback Host) is off: a rebinding page
// cannot know the key, and it would refuse legitimate clients reaching a
// loopback listener by another name (SSH tunnels, container port maps).
// Browser cross-origin requests are refused.
func (s *Server) Handler() http.Handler {
	get := func(r *http.Request) *sdk.Server {
		c, _ := api.CallerOf(r.Context())
		return s.byRole[c.Role]
	}
	stateful := sdk.NewStreamableHTTPHandler(get, &sdk.StreamableHTTPOptions{
		Logger: s.sdkLog(), SessionTimeout: sessionIdleTimeout, DisableLocalhostProtection: true})
	stateless := sdk.NewStreamableHTTPHandler(get, &sdk.StreamableHTTPOptions{
		Logger: s.sdkLog(), Stateless: true, DisableLocalhostProtection: true})
	// The SDK binds a session to TokenInfo.UserID and hands TokenInfo to
	// tools; its middleware reads a bearer header, so the caller l402d
	// authenticated is passed through one (replacing the client's, which
	// then never reaches a tool).
	bind := auth.RequireBearerToken(func(_ context.Context, _ string, r *http.Request) (*auth.TokenInfo, error) {
		c, ok := api.CallerOf(r.Context())
		if !ok || s.byRole[c.Role] == nil {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{UserID: c.Role.String(), Extra: map[string]any{callerClientIP: c.ClientIP}}, nil
	}, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})
	inner := bind(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Protocol-Version") >= statelessProtocol && r.Header.Get("Mcp-Session-Id") == "" {
			stateless.ServeHTTP(w, r)
			return
		}
		stateful.ServeHTTP(w, r)
	}))
	return http.NewCrossOriginProtection().Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := api.CallerOf(r.Context())
		if !ok || s.byRole[c.Role] == nil {
			api.WriteError(w, http.StatusUnauthorized, api.ErrorBody{Error: "missing or invalid API key", Code: "unauthorized", Field: "X-API-Key",
				Fix: "send the producer key (api.key) for the producer tools, the spend key (spend.key) for the consumer tools"})
			return
		}
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer l402d-caller")
		r.Header.Del("X-API-Key")
		inner.ServeHTTP(w, r)
	}))
}

// callerClientIP is the TokenInfo.Extra entry with the client's address.
const callerClientIP = "clientIP"

// callerOf is who made a tool call over HTTP: the key's role and the
// client's address; empty in-process.
func callerOf(req *sdk.CallToolRequest) (role, clientIP string) {
	if req == nil || req.Extra == nil || req.Extra.TokenInfo == nil {
		return "", ""
	}
	ip, _ := req.Extra.TokenInfo.Extra[callerClientIP].(string)
	return req.Extra.TokenInfo.UserID, ip
}

// Close ends every open session (their event streams would otherwise
// hold a graceful HTTP shutdown up).
func (s *Server) Close() {
	for _, srv := range s.byRole {
		for ss := range srv.Sessions() {
			_ = ss.Close()
		}
	}
}

func (s *Server) instructions() string {
	return "l402d runs beside the node runner's own Lightning node (LND). It both earns and spends over L402.\n" +
		"To charge another agent: create_l402_challenge(resource, priceSats) and give the payer the invoice and macaroon; " +
		"when the payer sends back its L402 token (L402 <macaroon>:<preimage>), call verify_l402_payment and grant access only if valid is true.\n" +
		"To pay: access_l402_resource fetches a URL and pays its L402 price if asked (a cached token is reused); " +
		"pay_l402_challenge pays a challenge another agent gave you and returns the L402 token to send back; pay_invoice pays a BOLT 11 invoice. " +
		"quote_l402_resource tells a URL's price (or reads a /.well-known/l402.json manifest or an OpenAPI document with x-l402 prices) without paying.\n" +
		"Spending is limited by budgets only the node runner can change. " + s.thresholdText()
}

// thresholdText says when a payment is put to the person.
func (s *Server) thresholdText() string {
	switch t := s.cfg.ApprovalThresholdSats; {
	case t < 0:
		return "Payments within the budget need no approval."
	case t == 0:
		return "Every payment is put to the person for approval first (MCP elicitation); without a client that can ask, payments are refused."
	default:
		return fmt.Sprintf("A payment above %d sats (price plus routing fee limit) is put to the person for approval first (MCP elicitation); "+
			"without a client that can ask, it is refused.", t)
	}
}

// handler runs a tool: it reads the arguments, calls the tool and turns
// its outcome into a result. Failures are tool errors (isError) whose
// JSON names the problem, the field and the fix; nothing panics out.
func (s *Server) handler(t *tool) sdk.ToolHandler {
	return func(ctx context.Context, req *sdk.CallToolRequest) (res *sdk.CallToolResult, _ error) {
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("mcp tool panic", "tool", t.def.Name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				res = failure(errorBody{Error: "internal error", Code: "internal", Fix: "report this to the node runner; l402d logged it"})
			}
			s.log.Debug("mcp tool call", "tool", t.def.Name, "error", res != nil && res.IsError, "input_required", res != nil && res.InputRequests != nil,
				"took", time.Since(start).Round(time.Microsecond))
		}()
		var raw json.RawMessage
		if req != nil && req.Params != nil {
			raw = req.Params.Arguments
		}
		v, err := t.spec.parseArgs(raw)
		if err != nil {
			return s.fail(t, err), nil
		}
		out, err := t.run(ctx, req, v)
		if err != nil {
			return s.fail(t, err), nil
		}
		if r, ok := out.(*sdk.CallToolResult); ok {
			return r, nil
		}
		return success(out), nil
	}
}

// errorBody is every tool error's JSON: success false, what went wrong,
// a stable code, the field concerned and how to fix it, and what is known
// of the payment concerned.
type errorBody struct {
	Success               bool                  `json:"success"`
	Error                 string                `json:"error"`
	Code                  string                `json:"code"`
	Field                 string                `json:"field,omitempty"`
	Fix                   string                `json:"fix,omitempty"`
	PriceSats             int64                 `json:"priceSats,omitempty"`
	FeeLimitSats          int64                 `json:"feeLimitSats,omitempty"`
	PaymentHash           string                `json:"paymentHash,omitempty"`
	ApprovalThresholdSats *int64                `json:"approvalThresholdSats,omitempty"`
	Payment               *consumer.PaymentInfo `json:"payment,omitempty"`
	L402Token             string                `json:"l402Token,omitempty"`
}

// toolError is a failure a tool words itself.
type toolError struct{ body errorBody }

func (e *toolError) Error() string { return e.body.Error }

// fail renders err as a tool error: argument errors as they are, the
// rest with the REST API's mapping, so both surfaces say the same.
func (s *Server) fail(t *tool, err error) *sdk.CallToolResult {
	var ae *field.Error
	var te *toolError
	switch {
	case errors.As(err, &ae):
		return failure(errorBody{Error: ae.Error(), Code: "invalid_argument", Field: ae.Field, Fix: ae.Fix})
	case errors.As(err, &te):
		return failure(te.body)
	case t.producer:
		_, e := api.ProducerErrorOf(err)
		if e.Code == "internal" {
			s.log.Error("mcp tool failed", "tool", t.def.Name, "err", err)
		}
		return failure(errorBody{Error: e.Error, Code: e.Code, Field: e.Field, Fix: e.Fix})
	}
	_, e := api.ConsumerErrorOf(err)
	if e.Code == "invalid_field" {
		e.Code = "invalid_argument" // what the REST API calls a field, a tool calls an argument
	}
	if e.Code == "internal" {
		s.log.Error("mcp tool failed", "tool", t.def.Name, "err", err)
	}
	if e.Code == "payment_in_flight" {
		e.Fix = "the payment is still in flight; l402d finishes it in the background and never pays it twice: check it later with get_payment_history (the token is cached when it succeeds)"
	}
	return failure(errorBody{Error: e.Error, Code: e.Code, Field: e.Field, Fix: e.Fix, PriceSats: e.PriceSats, PaymentHash: e.PaymentHash, Payment: e.Payment})
}

// success is a result: v as structured content and as JSON text.
func success(v any) *sdk.CallToolResult {
	b := marshal(v)
	return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: string(b)}}, StructuredContent: json.RawMessage(b)}
}

// failure is a tool error with its JSON body.
func failure(e errorBody) *sdk.CallToolResult {
	e.Success = false
	b := marshal(e)
	return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: string(b)}}, StructuredContent: json.RawMessage(b)}
}

func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(errorBody{Error: "internal error: rendering the result: " + err.Error(), Code: "internal"})
	}
	return b
}

// sdkLog is the logger the SDK gets: warnings and errors only, since it
// logs every stateless request's session at info.
func (s *Server) sdkLog() *slog.Logger {
	return slog.New(minLevel{s.log.Handler(), slog.LevelWarn})
}

// minLevel drops records below a level.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(g string) slog.Handler { return minLevel{h.Handler.WithGroup(g), h.min} }

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }
