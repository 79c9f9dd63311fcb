package plugin

import (
	"context"
	"time"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/plugin/api"
	"github.com/l402d/l402d/plugin/apiclient"
)

// healthLoop refreshes the node's state every few seconds so /healthz
// never waits on LND.
func (p *Plugin) healthLoop(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		p.refreshLND(ctx)
		p.refreshDB(ctx)
		st := p.watcher.Status()
		if st.State == invoices.WatcherStreaming {
			p.metrics.WatcherUp.Set(1)
		} else {
			p.metrics.WatcherUp.Set(0)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refreshDB checks a shared store's database.
func (p *Plugin) refreshDB(ctx context.Context) {
	if !p.store.Shared() {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	h := &apiclient.DBHealth{Backend: BackendPostgres, Up: true}
	p.metrics.DBUp.Set(1)
	if err := p.store.Ping(cctx); err != nil {
		h.Up, h.Error = false, err.Error()
		p.metrics.DBUp.Set(0)
	}
	p.healthMu.Lock()
	p.dbState = h
	p.healthMu.Unlock()
}

func (p *Plugin) refreshLND(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	info, err := p.backend.NodeInfo(cctx)
	h := api.LNDHealth{Up: err == nil}
	if err != nil {
		h.Error = err.Error()
		p.metrics.LNDUp.Set(0)
	} else {
		h.Pubkey, h.Alias, h.Network, h.BlockHeight, h.SyncedToChain = info.Pubkey, info.Alias, info.Network, info.BlockHeight, info.SyncedToChain
		if info.ChainUnresponsive {
			h.ChainBackend = "unresponsive"
		}
		p.metrics.LNDUp.Set(1)
	}
	p.healthMu.Lock()
	p.lndState = h
	p.healthMu.Unlock()
}

func (p *Plugin) health(context.Context) api.Health {
	p.healthMu.RLock()
	lnd, db := p.lndState, p.dbState
	p.healthMu.RUnlock()
	w := p.watcher.Status()
	h := api.Health{Status: "ok", LND: lnd, Watcher: w, DB: db, Version: p.cfg.Version}
	watching := w.State == invoices.WatcherStreaming || w.State == invoices.WatcherStandby
	if !lnd.Up || lnd.ChainBackend != "" || !watching || (db != nil && !db.Up) {
		h.Status = "degraded"
	}
	if lnd.Pubkey == "" {
		h.LND.Pubkey = p.producer.Node()
	}
	return h
}
