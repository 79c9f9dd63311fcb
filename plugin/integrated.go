package plugin

import (
	"context"

	"github.com/l402d/l402d/invoices"
)

// IntegratedConfig configures the LND that l402d can run inside itself.
type IntegratedConfig struct {
	// Enabled selects integrated mode (--lnd-mode=integrated).
	Enabled bool
}

// integratedParts are the embedded LND's pieces inside a Plugin.
type integratedParts struct{}

// lndConfig returns how to reach LND: cfg.LND in remote mode.
func (p *Plugin) lndConfig(context.Context) (invoices.LNDConfig, error) {
	return p.cfg.LND, nil
}

// stopIntegrated stops an embedded LND, if one runs.
func (p *Plugin) stopIntegrated() error { return nil }
