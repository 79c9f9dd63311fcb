package gate

import (
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// state is what one version of the services file compiles to.
type state struct {
	svcs *Services
	rt   []*serviceRuntime    // by service index
	docs atomic.Pointer[docs] // the discovery documents, rendered on first use
}

// serviceRuntime is a service's per-gate machinery: its proxy and its
// metric children, resolved once so the hot path does no label lookups.
type serviceRuntime struct {
	proxy    http.Handler // nil when the service has no upstream
	outcomes [numOutcomes]prometheus.Counter
	latency  prometheus.Observer
}

// outcome labels GateRequests.
type outcome int

const (
	outPaid outcome = iota
	outChallenged
	outRejected
	outFree
	outRateLimited
	outUpstreamError
	outError
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"paid", "challenged", "rejected", "free", "rate_limited", "upstream_error", "error"}

func (rt *serviceRuntime) count(o outcome) {
	if c := rt.outcomes[o]; c != nil {
		c.Inc()
	}
}

// install compiles svcs into a new state and swaps it in.
func (g *Gate) install(svcs *Services) error {
	if g.cfg.RequireUpstream {
		var errs ConfigErrors
		for _, svc := range svcs.list {
			if svc.upstream == nil {
				errs = append(errs, &ConfigError{File: g.cfg.ServicesFile, Field: fmt.Sprintf("services[%d].upstream", svc.index),
					Problem: fmt.Sprintf("service %q has no upstream", svc.cfg.Name), Fix: "give the URL the gate forwards paid requests to, e.g. upstream: http://127.0.0.1:8080"})
			}
		}
		if len(errs) > 0 {
			return errs
		}
	}
	st := &state{svcs: svcs, rt: make([]*serviceRuntime, len(svcs.list))}
	used := map[transportKey]bool{}
	for i, svc := range svcs.list {
		rt := &serviceRuntime{}
		if m := g.cfg.Metrics; m != nil {
			for o := range rt.outcomes {
				rt.outcomes[o] = m.GateRequests.WithLabelValues(svc.cfg.Name, outcomeNames[o])
			}
			rt.latency = m.GateUpstreamLatency.WithLabelValues(svc.cfg.Name)
		}
		if svc.upstream != nil {
			rt.proxy = g.newProxy(svc, rt, used)
		}
		st.rt[i] = rt
	}
	g.state.Store(st)
	g.prices.clear() // a reloaded pricer answers afresh
	for k, t := range g.transports {
		if !used[k] {
			t.CloseIdleConnections()
			delete(g.transports, k)
		}
	}
	return nil
}
