package main

import (
	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"

	"github.com/l402d/l402d/plugin"
)

// DefaultMCPApprovalThresholdSats is the flag's default: payments up to
// this (price plus routing fee limit) go through within the budget; above
// it the person is asked.
const DefaultMCPApprovalThresholdSats = 500

// mcpFlags are the MCP server's flags. Each is also an L402D_MCP_*
// variable and a key of the --config file.
func mcpFlags() []cli.Flag {
	return []cli.Flag{
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "mcp.disable", EnvVars: []string{"L402D_MCP_DISABLE"},
			Usage: "do not serve MCP at /mcp"}),
		altsrc.NewInt64Flag(&cli.Int64Flag{Name: "mcp.approval-threshold-sats", EnvVars: []string{"L402D_MCP_APPROVAL_THRESHOLD_SATS"},
			Value: DefaultMCPApprovalThresholdSats,
			Usage: "an MCP payment whose price plus routing fee limit is above this is put to the person (MCP elicitation) first, " +
				"and refused when the agent's client cannot ask; 0: ask for every payment; -1: never ask (budgets still apply)"}),
	}
}

// applyMCPFlags fills cfg.MCP.
func applyMCPFlags(c *cli.Context, cfg *plugin.Config) error {
	t := c.Int64("mcp.approval-threshold-sats")
	if t < 0 {
		t = -1
	}
	cfg.MCP = plugin.MCPConfig{Disable: c.Bool("mcp.disable"), ApprovalThresholdSats: t}
	return nil
}
