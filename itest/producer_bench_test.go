//go:build itest

package itest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
)

// benchClient is a keep-alive HTTP client sized for the load.
func benchClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
}

// postJSON posts body and decodes a 200 answer into out.
func postJSON(ctx context.Context, c *http.Client, url, key string, body []byte, out any, hdr ...string) error {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-API-Key", key)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("%d %s", resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// BenchmarkProducerREST measures the producer's REST surface on loopback
// against alice's real LND: verify throughput and latency, create latency
// beside raw LND AddInvoice in the same run, and idempotent replays.
// Run: go test -tags itest -run '^$' -bench ProducerREST -benchtime 1x ./itest/
func BenchmarkProducerREST(b *testing.B) {
	n := testNet(b)
	d := startDaemon(b, n.Node("alice"), "--log.level", "warn")
	key := d.apiKey(b)
	base := "http://" + d.listen
	ctx := testCtx(b, 10*time.Minute)
	const conns = 32

	ch := createChallenge(b, d, "/bench/verify", 10)
	pre := payInvoice(b, "bob", ch.Invoice)
	verifyBody, _ := json.Marshal(map[string]any{"macaroon": ch.Macaroon, "preimage": pre})

	b.Run("verify", func(b *testing.B) {
		c := benchClient(conns)
		r := runLoad(ctx, conns, 20000, func(ctx context.Context) error {
			var out struct{ Valid bool }
			if err := postJSON(ctx, c, base+"/api/l402/challenges/verify", key, verifyBody, &out); err != nil {
				return err
			}
			if !out.Valid {
				return fmt.Errorf("invalid")
			}
			return nil
		})
		r.report(b)
	})

	// Create vs raw AddInvoice: one at a time, so both are latency.
	alice := lnd(b, n, "alice")
	i := 0
	b.Run("lnd-addinvoice", func(b *testing.B) {
		r := runLoad(ctx, 1, 300, func(ctx context.Context) error {
			i++
			_, err := alice.Lightning.AddInvoice(ctx, &lnrpc.Invoice{Value: 10, Memo: fmt.Sprintf("raw %d", i), Expiry: 600})
			return err
		})
		r.report(b)
	})
	b.Run("create", func(b *testing.B) {
		c := benchClient(1)
		r := runLoad(ctx, 1, 300, func(ctx context.Context) error {
			i++
			body, _ := json.Marshal(map[string]any{"resource": fmt.Sprintf("/bench/%d", i), "priceSats": 10})
			return postJSON(ctx, c, base+"/api/l402/challenges", key, body, nil)
		})
		r.report(b)
	})
	b.Run("lnd-addinvoice-concurrent", func(b *testing.B) {
		var mu sync.Mutex
		r := runLoad(ctx, 8, 800, func(ctx context.Context) error {
			mu.Lock()
			i++
			memo := fmt.Sprintf("raw c %d", i)
			mu.Unlock()
			_, err := alice.Lightning.AddInvoice(ctx, &lnrpc.Invoice{Value: 10, Memo: memo, Expiry: 600})
			return err
		})
		r.report(b)
	})
	b.Run("create-concurrent", func(b *testing.B) {
		c := benchClient(8)
		var mu sync.Mutex
		r := runLoad(ctx, 8, 800, func(ctx context.Context) error {
			mu.Lock()
			i++
			res := fmt.Sprintf("/bench/c/%d", i)
			mu.Unlock()
			body, _ := json.Marshal(map[string]any{"resource": res, "priceSats": 10})
			return postJSON(ctx, c, base+"/api/l402/challenges", key, body, nil)
		})
		r.report(b)
	})
	b.Run("idempotent-replay", func(b *testing.B) {
		c := benchClient(conns)
		body, _ := json.Marshal(map[string]any{"resource": "/bench/replay", "priceSats": 10})
		if err := postJSON(ctx, c, base+"/api/l402/challenges", key, body, nil, "X-Idempotency-Key", "bench"); err != nil {
			b.Fatal(err)
		}
		r := runLoad(ctx, conns, 20000, func(ctx context.Context) error {
			return postJSON(ctx, c, base+"/api/l402/challenges", key, body, nil, "X-Idempotency-Key", "bench")
		})
		r.report(b)
	})
}
