//go:build itest

package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
)

// BenchmarkLoad10k is the load campaign: 10,000 challenges created on
// alice's l402d, paid from bob's LND and verified, then every settlement
// must be in the store. It reports creates/s, payments/s, verifies/s and
// l402d's memory and store size before and after.
// Run: make load  (go test -tags itest -run '^$' -bench Load10k -benchtime 1x -timeout 60m ./itest/)
func BenchmarkLoad10k(b *testing.B) {
	total := 10000
	if v, err := strconv.Atoi(os.Getenv("L402D_LOAD_N")); err == nil && v > 0 {
		total = v
	}
	n := testNet(b)
	d := startDaemon(b, n.Node("alice"), "--log.level", "warn")
	ctx := testCtx(b, 55*time.Minute)
	key := d.apiKey(b)
	base := "http://" + d.listen
	var marks []string
	mark := func(what string) {
		d.gc(b) // live memory, not garbage awaiting collection
		marks = append(marks, fmt.Sprintf("%-22s RSS %4d MiB, Go heap in use %4d MiB, store %4d MiB on disk",
			what, d.rss(b)>>20, d.heapInUse(b)>>20, dirSize(d.dataDir)>>20))
	}
	mark("start")

	// Create, in four quarters, marking memory after each.
	chs := make([]challenge, total)
	c := benchClient(8)
	var idx atomic.Int64
	var create loadResult
	for q := 1; q <= 4; q++ {
		n := total*q/4 - total*(q-1)/4
		r := runLoad(ctx, 8, n, func(ctx context.Context) error {
			i := idx.Add(1) - 1
			body, _ := json.Marshal(map[string]any{"resource": fmt.Sprintf("/load/%d", i), "priceSats": 3})
			return postJSON(ctx, c, base+"/api/l402/challenges", key, body, &chs[i])
		})
		create.N, create.Errors, create.Elapsed = create.N+r.N, create.Errors+r.Errors, create.Elapsed+r.Elapsed
		create.P50, create.P99 = max(create.P50, r.P50), max(create.P99, r.P99)
		mark(fmt.Sprintf("after %d creates", idx.Load()))
	}
	b.Logf("create: %d in %s = %.0f/s (worst quarter p50 %s, p99 %s, %d errors)", create.N, create.Elapsed.Round(time.Millisecond), create.PerSec(), create.P50, create.P99, create.Errors)

	// Pay from bob.
	bob := lnd(b, n, "bob")
	pres := make([]string, total)
	idx.Store(0)
	pay := runLoad(ctx, 16, total, func(ctx context.Context) error {
		i := idx.Add(1) - 1
		p, err := bob.Pay(ctx, &routerrpc.SendPaymentRequest{PaymentRequest: chs[i].Invoice, FeeLimitSat: 10, TimeoutSeconds: 60})
		if err != nil {
			return err
		}
		pres[i] = p.PaymentPreimage
		return nil
	})
	b.Logf("pay: %d in %s = %.0f/s (p50 %s, p99 %s, %d errors)", pay.N, pay.Elapsed.Round(time.Millisecond), pay.PerSec(), pay.P50, pay.P99, pay.Errors)
	mark("after the payments")

	// Verify.
	idx.Store(0)
	vc := benchClient(16)
	verify := runLoad(ctx, 16, total, func(ctx context.Context) error {
		i := idx.Add(1) - 1
		body, _ := json.Marshal(map[string]any{"macaroon": chs[i].Macaroon, "preimage": pres[i]})
		var out struct{ Valid bool }
		if err := postJSON(ctx, vc, base+"/api/l402/challenges/verify", key, body, &out); err != nil {
			return err
		}
		if !out.Valid {
			return fmt.Errorf("token %d invalid", i)
		}
		return nil
	})
	b.Logf("verify: %d in %s = %.0f/s (p50 %s, p99 %s, %d errors)", verify.N, verify.Elapsed.Round(time.Millisecond), verify.PerSec(), verify.P50, verify.P99, verify.Errors)

	// Every settlement recorded, none twice.
	var settled float64
	waitFor(b, 5*time.Minute, "all settlements recorded", func() error {
		_, out := d.call(b, "GET", "/api/l402/stats", nil)
		settled = num(out["total"].(map[string]any)["challengesSettled"])
		if int(settled) < total {
			return fmt.Errorf("%v of %d settled", settled, total)
		}
		return nil
	})
	if int(settled) != total {
		b.Fatalf("%v settlements recorded for %d paid challenges", settled, total)
	}
	ali := lnd(b, n, "alice")
	var lndSettled int
	for _, ch := range chs[:min(total, 200)] {
		inv, err := ali.Lightning.LookupInvoice(ctx, &lnrpc.PaymentHash{RHashStr: ch.PaymentHash})
		if err == nil && inv.State == lnrpc.Invoice_SETTLED {
			lndSettled++
		}
	}
	mark("after the verifies")
	b.Logf("settled %v/%d (LND agrees on %d of a 200 sample); memory:\n  %s", settled, total, lndSettled, strings.Join(marks, "\n  "))
	rss1, db1 := d.rss(b), dirSize(d.dataDir)
	b.ReportMetric(create.PerSec(), "creates/s")
	b.ReportMetric(pay.PerSec(), "payments/s")
	b.ReportMetric(verify.PerSec(), "verifies/s")
	b.ReportMetric(float64(rss1>>20), "rss-MiB")
	b.ReportMetric(float64(db1>>20), "store-MiB")
	if create.Errors+pay.Errors+verify.Errors > 0 {
		b.Fatalf("errors: create %d, pay %d, verify %d", create.Errors, pay.Errors, verify.Errors)
	}
}

// rss is the daemon's resident set size in bytes.
func (d *daemon) rss(t testing.TB) int64 {
	t.Helper()
	d.mu.Lock()
	pid := d.cmd.Process.Pid
	d.mu.Unlock()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// gc makes the daemon collect garbage (its admin pprof heap endpoint runs
// a GC first); L402D_LOAD_HEAP=DIR also keeps the heap profile there.
func (d *daemon) gc(t testing.TB) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+d.listen+"/debug/pprof/heap?gc=1", nil)
	req.Header.Set("X-API-Key", d.adminKey(t))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if dir := os.Getenv("L402D_LOAD_HEAP"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("heap.%d.pprof", time.Now().UnixNano())), raw, 0o644)
	}
}

// heapInUse is the daemon's Go heap in use, from its /metrics.
func (d *daemon) heapInUse(t testing.TB) int64 {
	t.Helper()
	return int64(d.metric(t, "go_memstats_heap_inuse_bytes"))
}

// metric reads one unlabelled metric from the daemon's /metrics (0 if
// absent).
func (d *daemon) metric(t testing.TB, name string) float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+d.listen+"/metrics", nil)
	req.Header.Set("X-API-Key", d.apiKey(t))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// dirSize is the disk space allocated under dir: Badger's files are
// sparse, so their length says little.
func dirSize(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if fi, err := e.Info(); err == nil {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok {
					total += st.Blocks * 512
				}
			}
		}
		return nil
	})
	return total
}
