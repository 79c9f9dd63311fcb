// Package proxy is the stdio side of l402d's MCP surface, for desktop
// agents that start their MCP servers as processes (l402cli mcp): an MCP
// server whose tools are the running daemon's, each call forwarded to the
// daemon's /mcp over streamable HTTP with the API key. The tools are
// defined in one place, the daemon (only one process may open its store);
// approvals pass through both ways: the daemon's input requests (an
// elicitation asking the person to approve a payment) go to the desktop
// client as they are, and its answers come back with the retried call.
//
// It touches nothing but the daemon's endpoint, and imports no other part
// of l402d, so that l402cli stays a small client.
package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Config configures a Proxy.
type Config struct {
	// Endpoint is the daemon's MCP URL, e.g. http://127.0.0.1:8402/mcp.
	Endpoint string
	// APIKey is sent with every request (X-API-Key).
	APIKey string
	// Transport, if set, carries the HTTP requests.
	Transport http.RoundTripper
	Logger    *slog.Logger
	Version   string
}

// Proxy forwards an MCP client's tool calls to l402d.
type Proxy struct {
	cfg    Config
	log    *slog.Logger
	client *sdk.Client
	srv    *sdk.Server

	mu sync.Mutex
	cs *sdk.ClientSession // nil after a failure, until the next call
}

// New connects to the daemon, lists its tools and builds the server that
// offers them. It fails when the daemon is unreachable or refuses the
// key, so that a misconfiguration shows at once.
func New(ctx context.Context, cfg Config) (*Proxy, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("proxy: the daemon's endpoint is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Transport == nil {
		cfg.Transport = &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
		}
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	p := &Proxy{cfg: cfg, log: cfg.Logger}
	// The client never answers input requests itself: they go to the
	// desktop client, whose answers come back with the retried call.
	p.client = sdk.NewClient(&sdk.Implementation{Name: "l402cli-mcp", Version: cfg.Version},
		&sdk.ClientOptions{Logger: cfg.Logger, MultiRoundTrip: &sdk.MultiRoundTripOptions{Disabled: true}, Capabilities: &sdk.ClientCapabilities{}})
	cs, err := p.session(ctx)
	if err != nil {
		return nil, err
	}
	var instructions string
	if r := cs.InitializeResult(); r != nil {
		instructions = r.Instructions
	}
	p.srv = sdk.NewServer(&sdk.Implementation{Name: "l402d", Title: "l402d (via l402cli mcp)", Version: cfg.Version},
		&sdk.ServerOptions{Instructions: instructions, Logger: cfg.Logger})
	n := 0
	for t, err := range cs.Tools(ctx, nil) {
		if err != nil {
			p.Close()
			return nil, p.describe(fmt.Errorf("listing the tools: %w", err))
		}
		p.srv.AddTool(t, p.forward)
		n++
	}
	p.log.Info("forwarding l402d's MCP tools", "endpoint", cfg.Endpoint, "tools", n, "protocol", p.Protocol())
	return p, nil
}

// Protocol is the MCP version spoken with the daemon.
func (p *Proxy) Protocol() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cs == nil || p.cs.InitializeResult() == nil {
		return ""
	}
	return p.cs.InitializeResult().ProtocolVersion
}

// Server is the MCP server to run over stdio.
func (p *Proxy) Server() *sdk.Server { return p.srv }

// Run serves t (e.g. &sdk.StdioTransport{}) until the client leaves or
// ctx ends.
func (p *Proxy) Run(ctx context.Context, t sdk.Transport) error {
	defer p.Close()
	return p.srv.Run(ctx, t)
}

// Close ends the session with the daemon.
func (p *Proxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cs != nil {
		_ = p.cs.Close()
		p.cs = nil
	}
}

// session returns the session with the daemon, connecting if needed.
func (p *Proxy) session(ctx context.Context) (*sdk.ClientSession, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cs != nil {
		return p.cs, nil
	}
	t := &sdk.StreamableClientTransport{Endpoint: p.cfg.Endpoint, DisableStandaloneSSE: true,
		HTTPClient: &http.Client{Transport: keyTransport{key: p.cfg.APIKey, next: p.cfg.Transport}}}
	cs, err := p.client.Connect(ctx, t, nil)
	if err != nil {
		return nil, p.describe(err)
	}
	p.cs = cs
	return cs, nil
}

// drop forgets a failed session so the next call connects anew.
func (p *Proxy) drop(cs *sdk.ClientSession) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cs == cs {
		_ = cs.Close()
		p.cs = nil
	}
}

// describe words a connection failure with its likely fix.
func (p *Proxy) describe(err error) error {
	s := err.Error()
	switch {
	case strings.Contains(s, "401") || strings.Contains(s, "Unauthorized"):
		return fmt.Errorf("l402d at %s refused the API key: %w (fix: pass --apikey, or --datadir pointing at l402d's data dir)", p.cfg.Endpoint, err)
	case strings.Contains(s, "404") || strings.Contains(s, "Not Found"):
		return fmt.Errorf("l402d at %s serves no MCP: %w (fix: is it started with --mcp.disable? check --rpcserver)", p.cfg.Endpoint, err)
	}
	return fmt.Errorf("l402d at %s: %w (fix: is l402d running? check --rpcserver)", p.cfg.Endpoint, err)
}

// forward passes one tool call to the daemon, with the desktop client's
// elicitation capability (so the daemon knows whether the person can be
// asked), its answers to input requests and the request state; the
// daemon's result, input requests included, comes back as it is.
func (p *Proxy) forward(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
	params := &sdk.CallToolParams{Name: req.Params.Name, InputResponses: req.Params.InputResponses, RequestState: req.Params.RequestState,
		Meta: sdk.Meta{sdk.MetaKeyClientCapabilities: capabilities(req)}}
	if len(req.Params.Arguments) > 0 {
		params.Arguments = req.Params.Arguments
	}
	for attempt := 0; ; attempt++ {
		cs, err := p.session(ctx)
		if err != nil {
			return unreachable(err), nil
		}
		res, err := cs.CallTool(ctx, params)
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		p.drop(cs)
		// A closed connection sent nothing: try once more on a new one.
		if attempt > 0 || !errors.Is(err, sdk.ErrConnectionClosed) {
			return unreachable(p.describe(err)), nil
		}
	}
}

// capabilities is what the daemon is told of the desktop client: only
// whether it can ask the person (elicitation).
func capabilities(req *sdk.CallToolRequest) map[string]any {
	caps := map[string]any{}
	if c := req.ClientCapabilities(); c != nil && c.Elicitation != nil {
		caps["elicitation"] = c.Elicitation
	}
	return caps
}

// unreachable is the tool error for a daemon that did not answer, in the
// daemon's error shape.
func unreachable(err error) *sdk.CallToolResult {
	b, _ := json.Marshal(map[string]any{"success": false, "error": "l402d did not answer: " + err.Error(), "code": "daemon_unreachable",
		"fix": "check that l402d is running (l402cli status) and that l402cli's --rpcserver and API key are right; nothing was done unless l402d says so"})
	return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: string(b)}}, StructuredContent: json.RawMessage(b)}
}

// keyTransport adds the API key to every request.
type keyTransport struct {
	key  string
	next http.RoundTripper
}

func (t keyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-API-Key", t.key)
	return t.next.RoundTrip(r)
}
