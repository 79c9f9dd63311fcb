package main

import (
	"github.com/urfave/cli/v2"

	"github.com/l402d/l402d/plugin"
)

// integratedFlags are the flags of the embedded LND.
func integratedFlags() []cli.Flag { return nil }

// applyIntegratedFlags fills cfg.Integrated.
func applyIntegratedFlags(_ *cli.Context, _ *plugin.Config) error { return nil }
