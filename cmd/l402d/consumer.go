package main

import (
	"github.com/urfave/cli/v2"

	"github.com/l402d/l402d/plugin"
)

// consumerFlags are the spending side's flags.
func consumerFlags() []cli.Flag { return nil }

// applyConsumerFlags fills cfg.Consumer.
func applyConsumerFlags(_ *cli.Context, _ *plugin.Config) error { return nil }
