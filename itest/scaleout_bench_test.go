//go:build itest

package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
)

// BenchmarkScaleOut measures, in one run beside alice's real LND: REST
// verify (32 connections, warm) and create (one at a time and 8 at once)
// on a Badger l402d, on one l402d on Postgres, and on one and three
// Postgres replicas behind a round-robin balancer, with raw LND
// AddInvoice for scale.
// Run: go test -tags itest -run '^$' -bench ScaleOut -benchtime 1x ./itest/
func BenchmarkScaleOut(b *testing.B) {
	n := testNet(b)
	alice := lnd(b, n, "alice")
	ctx := testCtx(b, 20*time.Minute)
	_, dsn1 := startPostgres(b, "bench1")
	_, dsn3 := startPostgres(b, "bench3")

	badger := startDaemon(b, n.Node("alice"), "--log.level", "warn")
	one := startReplicas(b, 1, dsn1, "--log.level", "warn")
	three := startReplicas(b, 3, dsn3, "--log.level", "warn")
	targets := []struct {
		name, base, key string
	}{
		{"badger", "http://" + badger.listen, badger.apiKey(b)},
		{"postgres", "http://" + one.ds[0].listen, one.ds[0].apiKey(b)},
		// Through the balancer (a Go reverse proxy in this process, on
		// the same two cores): one replica, then three.
		{"lb-postgres-1", one.lb.URL, one.ds[0].apiKey(b)},
		{"lb-postgres-3", three.lb.URL, three.ds[0].apiKey(b)},
	}
	var seq atomic.Int64
	for _, tg := range targets {
		c := benchClient(32)
		body, _ := json.Marshal(map[string]any{"resource": "/bench/verify", "priceSats": 10})
		var ch challenge
		if err := postJSON(ctx, c, tg.base+"/api/l402/challenges", tg.key, body, &ch); err != nil {
			b.Fatal(err)
		}
		pre := payInvoice(b, "bob", ch.Invoice)
		verifyBody, _ := json.Marshal(map[string]any{"macaroon": ch.Macaroon, "preimage": pre})
		b.Run(tg.name+"/verify", func(b *testing.B) {
			runLoad(ctx, 32, 20000, func(ctx context.Context) error {
				var out struct{ Valid bool }
				if err := postJSON(ctx, c, tg.base+"/api/l402/challenges/verify", tg.key, verifyBody, &out); err != nil {
					return err
				}
				if !out.Valid {
					return fmt.Errorf("invalid")
				}
				return nil
			}).report(b)
		})
		create := func(ctx context.Context) error {
			body, _ := json.Marshal(map[string]any{"resource": fmt.Sprintf("/bench/c/%d", seq.Add(1)), "priceSats": 10})
			return postJSON(ctx, c, tg.base+"/api/l402/challenges", tg.key, body, nil)
		}
		b.Run(tg.name+"/create", func(b *testing.B) { runLoad(ctx, 1, 300, create).report(b) })
		b.Run(tg.name+"/create-8", func(b *testing.B) { runLoad(ctx, 8, 800, create).report(b) })
	}
	addInvoice := func(ctx context.Context) error {
		_, err := alice.Lightning.AddInvoice(ctx, &lnrpc.Invoice{Value: 10, Memo: fmt.Sprintf("raw %d", seq.Add(1)), Expiry: 600})
		return err
	}
	b.Run("lnd-addinvoice", func(b *testing.B) { runLoad(ctx, 1, 300, addInvoice).report(b) })
	b.Run("lnd-addinvoice-8", func(b *testing.B) { runLoad(ctx, 8, 800, addInvoice).report(b) })
}
