package plugin

import "context"

// GateConfig configures the gate (the paid reverse proxy).
type GateConfig struct {
	// Listen is the gate's own address; empty disables the gate.
	Listen string
	// ServicesFile is the YAML file of priced services.
	ServicesFile string
}

// gateParts are the gate's pieces inside a Plugin.
type gateParts struct{}

// initGate builds the gate when it is configured.
func (p *Plugin) initGate(context.Context) error {
	return nil
}
