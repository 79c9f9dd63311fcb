package main

import (
	"github.com/urfave/cli/v2"

	"github.com/l402d/l402d/plugin"
)

// gateFlags are the gate's flags.
func gateFlags() []cli.Flag { return nil }

// applyGateFlags fills cfg.Gate.
func applyGateFlags(_ *cli.Context, _ *plugin.Config) error { return nil }
