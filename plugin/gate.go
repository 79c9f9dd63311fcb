package plugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/l402d/l402d/plugin/api"
	"github.com/l402d/l402d/plugin/gate"
	"github.com/l402d/l402d/plugin/producer"
)

// GateConfig configures the gate (the paid reverse proxy). For the rates,
// MaxPending and MaxPendingPerClient, zero takes the gate's default and negative means
// unlimited.
type GateConfig struct {
	// Listen is the gate's own address; empty disables the gate.
	Listen string
	// ServicesFile is the YAML file of priced services.
	ServicesFile string
	// LegacyLSAT adds an LSAT challenge before the L402 one.
	LegacyLSAT bool
	// ReloadInterval is how often the services file is checked for
	// changes; zero means DefaultGateReloadInterval, negative never (the
	// file is still reloaded on SIGHUP and POST /api/gate/reload).
	ReloadInterval time.Duration
	// MintRate and MintBurst limit challenges per client address.
	MintRate  float64
	MintBurst int
	// MaxPending caps unpaid, unexpired gate invoices.
	MaxPending int
	// MaxPendingPerClient is one client address's (IPv6: /64) share of
	// MaxPending.
	MaxPendingPerClient int
	// TokenRate and TokenBurst limit paid requests per token.
	TokenRate  float64
	TokenBurst int
	// FoldCase matches every service's paths case-insensitively.
	FoldCase bool
}

// DefaultGateReloadInterval is how often the services file is polled.
const DefaultGateReloadInterval = 5 * time.Second

// gateParts are the gate's pieces inside a Plugin.
type gateParts struct {
	gate *gate.Gate
}

// Gate returns the gate, nil when it is not enabled.
func (p *Plugin) Gate() *gate.Gate { return p.gate.gate }

// initGate builds the gate when it is configured, and mounts its admin
// routes either way (answering 404 with the fix when it is off).
func (p *Plugin) initGate(context.Context) error {
	gc := p.cfg.Gate
	if gc.Listen == "" {
		if gc.ServicesFile != "" {
			return errors.New("plugin: a gate services file was given without a gate listen address; set --gate.listen too")
		}
		off := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			api.WriteError(w, http.StatusNotFound, api.ErrorBody{Error: "the gate is not enabled", Code: "gate_disabled",
				Fix: "start l402d with --gate.listen ADDR and --gate.services FILE"})
		})
		p.API().Handle("GET /api/gate/services", api.RoleAdmin, off)
		p.API().Handle("POST /api/gate/reload", api.RoleAdmin, off)
		p.API().Handle("GET /api/admin/services", api.RoleAdmin, off)
		p.API().Handle("PUT /api/admin/services", api.RoleAdmin, off)
		return nil
	}
	if gc.ServicesFile == "" {
		return errors.New("plugin: the gate needs a services file; set --gate.services")
	}
	maxPrice := p.cfg.MaxPriceSats
	if maxPrice <= 0 {
		maxPrice = producer.DefaultMaxPriceSats
	}
	g, err := gate.New(gate.Config{
		Producer:             p.producer,
		Lookup:               p.producer,
		ServicesFile:         gc.ServicesFile,
		MaxPriceSats:         maxPrice,
		RequireUpstream:      true,
		LegacyLSAT:           gc.LegacyLSAT,
		TrustedProxies:       p.cfg.TrustedProxies,
		MintRate:             gc.MintRate,
		MintBurst:            gc.MintBurst,
		MaxPending:           gc.MaxPending,
		MaxPendingPerClient:  gc.MaxPendingPerClient,
		FoldCase:             gc.FoldCase,
		TokenRate:            gc.TokenRate,
		TokenBurst:           gc.TokenBurst,
		DefaultTokenValidity: p.cfg.TokenValidity,
		Metrics:              p.metrics,
		Logger:               p.log.With("component", "gate"),
	})
	if err != nil {
		return fmt.Errorf("plugin: gate: %w", err)
	}
	p.gate.gate = g
	p.API().Handle("GET /api/gate/services", api.RoleAdmin, g.ServicesHandler())
	p.API().Handle("POST /api/gate/reload", api.RoleAdmin, g.ReloadHandler())
	p.servicesGet, p.servicesPut = api.ServicesFileHandlers(api.ServicesFile{
		Path: gc.ServicesFile, MaxBytes: gate.MaxFileSize, Reload: g.Reload,
		Check: func(data []byte) error {
			_, err := gate.ParseServices(data, gate.ParseOptions{Name: gc.ServicesFile, MaxPriceSats: maxPrice, FoldCase: gc.FoldCase})
			return err
		},
	})
	p.API().Handle("GET /api/admin/services", api.RoleAdmin, p.servicesGet)
	p.API().Handle("PUT /api/admin/services", api.RoleAdmin, p.servicesPut)
	p.runners = append(p.runners, p.runGate, p.watchGate)
	return nil
}

// runGate serves the gate on its own listener.
func (p *Plugin) runGate(ctx context.Context) error {
	l, err := net.Listen("tcp", p.cfg.Gate.Listen)
	if err != nil {
		return fmt.Errorf("plugin: gate listening on %s: %w", p.cfg.Gate.Listen, err)
	}
	svcs := p.gate.gate.Services()
	p.log.Info("gate ready", "addr", l.Addr().String(), "services", svcs.Len(), "file", p.cfg.Gate.ServicesFile)
	return p.gate.gate.Serve(ctx, l)
}

// watchGate reloads the services file when it changes (SIGHUP is
// watchHangup's, which runs with or without the gate).
func (p *Plugin) watchGate(ctx context.Context) error {
	iv := p.cfg.Gate.ReloadInterval
	if iv < 0 {
		return nil
	}
	if iv == 0 {
		iv = DefaultGateReloadInterval
	}
	_ = p.gate.gate.Watch(ctx, iv)
	return nil
}
