package plugin

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/invoices/embedded"
	"github.com/l402d/l402d/plugin/api"
)

// IntegratedConfig configures the LND that l402d can run inside itself.
type IntegratedConfig struct {
	// Enabled selects integrated mode (--lnd-mode=integrated): cfg.LND's
	// address, TLS cert and macaroons are then ignored, and its Network,
	// RPCTimeout and RetryInterval apply to the embedded node.
	Enabled bool
	// Node configures the embedded LND. Empty LndDir, WalletDir and
	// Network default to <DataDir>/lnd, DataDir and cfg.LND.Network.
	Node embedded.Config
}

// integratedLndDir is the embedded LND's directory under the data dir.
const integratedLndDir = "lnd"

// integratedParts are the embedded LND's pieces inside a Plugin.
type integratedParts struct {
	node *embedded.Node
}

// nodeConfig is the embedded node's config with the plugin's defaults.
func (c IntegratedConfig) nodeConfig(dataDir, network string) embedded.Config {
	n := c.Node
	if n.LndDir == "" {
		n.LndDir = filepath.Join(dataDir, integratedLndDir)
	}
	if n.WalletDir == "" {
		n.WalletDir = dataDir
	}
	if n.Network == "" {
		n.Network = network
	}
	return n
}

// Validate checks the embedded node's config as it would start in
// dataDir on network, without starting anything.
func (c IntegratedConfig) Validate(dataDir, network string) error {
	return c.nodeConfig(dataDir, network).Validate()
}

// lndConfig returns how to reach LND: cfg.LND in remote mode; in
// integrated mode it starts LND inside l402d first (which returns once
// the wallet is unlocked and LND's RPC is active) and returns the
// embedded node's address, TLS cert and admin macaroon, so that the
// backend is the same lndclient code as in remote mode.
func (p *Plugin) lndConfig(ctx context.Context) (invoices.LNDConfig, error) {
	if !p.cfg.Integrated.Enabled {
		return p.cfg.LND, nil
	}
	ncfg := p.cfg.Integrated.nodeConfig(p.cfg.DataDir, p.cfg.LND.Network)
	ncfg.Logger = p.log.With("component", "embedded-lnd")
	start := time.Now()
	node, err := embedded.Start(ctx, ncfg)
	if err != nil {
		return invoices.LNDConfig{}, err
	}
	p.integrated.node = node
	p.log.Info("embedded lnd started", "took", time.Since(start).Round(time.Millisecond))

	lcfg := node.LNDConfig()
	lcfg.RPCTimeout, lcfg.RetryInterval = p.cfg.LND.RPCTimeout, p.cfg.LND.RetryInterval
	p.cfg.LND = lcfg // what the logs and /api/node report
	p.runners = append(p.runners, p.watchIntegrated)
	return lcfg, nil
}

// watchIntegrated ends Run with an error if the embedded LND stops while
// l402d runs (a fatal LND error, or lncli stop): LND cannot be restarted
// inside the same process, so l402d exits and its supervisor restarts
// both.
func (p *Plugin) watchIntegrated(ctx context.Context) error {
	node := p.integrated.node
	select {
	case <-ctx.Done():
		return nil
	case <-node.Done():
	}
	if err := node.Err(); err != nil {
		return fmt.Errorf("embedded lnd stopped: %w", err)
	}
	return errors.New("embedded lnd was shut down (lncli stop?); l402d stops with it")
}

// mountIntegrated adds the integrated mode's routes to the API.
func (p *Plugin) mountIntegrated() {
	var seeds *embedded.SeedStore
	if p.integrated.node != nil {
		seeds = p.integrated.node.Seeds()
	}
	p.API().Handle("POST /api/node/seed", api.RoleAdmin, seedHandler(seeds, p.log.With("component", "seed")))
}

// stopIntegrated stops an embedded LND, if one runs. Close calls it once
// the API, the watcher and the backend are done with LND.
func (p *Plugin) stopIntegrated() error {
	if p.integrated.node == nil {
		return nil
	}
	return p.integrated.node.Stop()
}
