package plugin

import (
	"context"
	"net/http"

	"github.com/l402d/l402d/plugin/api"
	"github.com/l402d/l402d/plugin/mcp"
)

// MCPConfig configures the MCP server at /mcp (plugin/mcp).
type MCPConfig struct {
	// Disable turns the endpoint off.
	Disable bool
	// ApprovalThresholdSats: a payment whose price plus routing fee limit
	// is above it is put to the person through MCP elicitation first, or
	// refused when the client cannot ask. Zero asks for every payment;
	// negative never asks.
	ApprovalThresholdSats int64
}

// initMCP mounts the MCP server at /mcp behind any key: the tools offered
// are the key's (plugin/mcp). It needs the
// producer and the consumer, so it runs after both are built.
func (p *Plugin) initMCP() error {
	if p.cfg.MCP.Disable {
		p.API().Handle("/mcp", api.RoleAnyKey, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			api.WriteError(w, http.StatusNotFound, api.ErrorBody{Error: "the MCP server is disabled", Code: "mcp_disabled",
				Fix: "start l402d without --mcp.disable (L402D_MCP_DISABLE)"})
		}))
		return nil
	}
	// Without spending enabled, no key reaches the consumer's tools.
	cons := p.consumer.c
	if !p.cfg.Consumer.Enable {
		cons = nil
	}
	s, err := mcp.New(mcp.Config{
		Producer: p.producer, Consumer: cons, ApprovalThresholdSats: p.cfg.MCP.ApprovalThresholdSats,
		MaxPriceSats: p.cfg.MaxPriceSats, Logger: p.log.With("component", "mcp"), Version: p.cfg.Version,
	})
	if err != nil {
		return err
	}
	p.API().Handle("/mcp", api.RoleAnyKey, s.Handler())
	// Open sessions hold event streams; end them so shutdown is prompt.
	p.runners = append(p.runners, func(ctx context.Context) error {
		<-ctx.Done()
		s.Close()
		return nil
	})
	return nil
}
