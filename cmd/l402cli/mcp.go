package main

import (
	"context"
	"errors"
	"io"
	"log/slog"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/urfave/cli/v2"

	"github.com/l402d/l402d/plugin/mcp/proxy"
)

// mcpConfigExample is the desktop agent's configuration, as in the
// README.
const mcpConfigExample = `{
  "mcpServers": {
    "l402d": {
      "command": "l402cli",
      "args": ["--datadir", "/home/you/.l402d", "mcp"]
    }
  }
}`

// mcpCommand serves l402d's MCP tools over stdio, forwarding every call
// to the running daemon's /mcp (only the daemon may open its store).
func mcpCommand() *cli.Command {
	return &cli.Command{
		Name:  "mcp",
		Usage: "serve l402d's MCP tools over stdio for desktop agents (forwards to the running l402d)",
		Description: "A stdio MCP server whose tools are the running l402d's (create_l402_challenge, verify_l402_payment,\n" +
			"access_l402_resource, pay_l402_challenge, pay_invoice, …): each call goes to l402d's /mcp with one key, and\n" +
			"the tools offered are that key's: --role spend (the default) the consumer's with the spend key (--spendkey, or\n" +
			"--datadir/spend.key), --role producer create and verify with the producer key (--apikey, or --datadir/api.key). Payments above l402d's approval threshold are put to the person through\n" +
			"the desktop client (MCP elicitation). Standard output carries MCP only; logs go to standard error.\n\n" +
			"Desktop agent configuration (Claude Desktop and others):\n\n" + mcpConfigExample,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log every forwarded call to standard error"},
			&cli.StringFlag{Name: "role", Value: "spend", Usage: "which key, and so which tools: spend (pay: access_l402_resource, pay_invoice, …) or producer (sell: create_l402_challenge, verify_l402_payment)"},
		},
		Action: runMCP,
	}
}

func runMCP(c *cli.Context) error {
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	role := spendKey
	switch c.String("role") {
	case "spend":
	case "producer":
		role = producerKey
	default:
		return fail(exitUsage, "--role %q: want spend or producer", c.String("role"))
	}
	key, err := cl.key(role)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if c.Bool("verbose") {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))
	ctx := c.Context
	if ctx == nil {
		ctx = context.Background()
	}
	p, err := proxy.New(ctx, proxy.Config{Endpoint: cl.base + "/mcp", APIKey: key, Logger: log, Version: version})
	if err != nil {
		return fail(exitServer, "%v", err)
	}
	if err := p.Run(ctx, &sdk.StdioTransport{}); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, context.Canceled) && !errors.Is(err, sdk.ErrConnectionClosed) {
		return fail(exitServer, "mcp: %v", err)
	}
	return nil
}
