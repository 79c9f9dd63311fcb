package api

import (
	"context"
	"testing"
)

// ?lnd=required is the platform's question "can l402d reach its node?":
// 503 while LND is down, 200 once it is up, whatever else is degraded.
func TestHealthzLNDRequired(t *testing.T) {
	f := newFixture(t)
	up := false
	f.srv.cfg.Health = func(context.Context) Health {
		return Health{Status: "degraded", LND: LNDHealth{Up: up}}
	}
	if w, _ := f.do(t, "GET", "/healthz?lnd=required", "", nil); w.Code != 503 {
		t.Fatalf("LND down: %d", w.Code)
	}
	if w, _ := f.do(t, "GET", "/healthz", "", nil); w.Code != 200 {
		t.Fatalf("LND down, not asked: %d", w.Code)
	}
	up = true
	if w, _ := f.do(t, "GET", "/healthz?lnd=required", "", nil); w.Code != 200 {
		t.Fatalf("LND up (watcher degraded): %d", w.Code)
	}
}
