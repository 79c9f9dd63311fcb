//go:build itest

package itest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
)

// TestSettlementCatchUpKilled: challenges are paid while l402d is down;
// l402d is then SIGKILLed at several points of its catch-up and started
// again. In the end every paid invoice is recorded exactly once (the
// stats count each once, with its amount) and matches what LND says.
// A store that never saw a settlement catches up by looking invoices up
// (LND replays nothing after settle index 0), which is where a catch-up
// cut short used to leave older settlements behind for good.
func TestSettlementCatchUpKilled(t *testing.T) {
	const (
		n     = 240
		price = 7
	)
	net := testNet(t)
	d := startDaemon(t, net.Node("alice"))

	chs := make([]challenge, n)
	for i := range chs {
		chs[i] = createChallenge(t, d, fmt.Sprintf("/catchup/%d", i), price)
	}
	d.stop(t)

	bob := lnd(t, net, "bob")
	parallel(t, n, 8, func(i int) error {
		p, err := bob.Pay(testCtx(t, 2*time.Minute), &routerrpc.SendPaymentRequest{PaymentRequest: chs[i].Invoice, FeeLimitSat: 100, TimeoutSeconds: 60})
		if err != nil {
			return fmt.Errorf("bob paying %d: %w", i, err)
		}
		if p.Status != lnrpc.Payment_SUCCEEDED {
			return fmt.Errorf("payment %d: %v", i, p.Status)
		}
		return nil
	})

	// Kill the catch-up as soon as the API answers, then after some and
	// after most of the settlements were recorded.
	for _, atLeast := range []int{0, n / 5, n / 2, 4 * n / 5} {
		d.start(t)
		if atLeast > 0 {
			waitFor(t, time.Minute, fmt.Sprintf("%d settlements recorded", atLeast), func() error {
				if got := settledCount(t, d); got < atLeast {
					return fmt.Errorf("%d settled", got)
				}
				return nil
			})
		}
		t.Logf("SIGKILL with %d of %d settlements recorded", settledCount(t, d), n)
		d.kill9(t)
	}

	d.start(t)
	waitFor(t, 2*time.Minute, "every settlement recorded", func() error {
		if got := settledCount(t, d); got != n {
			return fmt.Errorf("%d of %d settled", got, n)
		}
		return nil
	})
	_, stats := d.call(t, "GET", "/api/l402/stats", nil)
	tot := stats["total"].(map[string]any)
	if num(tot["challengesSettled"]) != n || num(tot["revenueSats"]) != n*price || num(tot["challengesCreated"]) != n {
		t.Fatalf("stats %v, want %d created and settled and %d sats: each settlement counted once", tot, n, n*price)
	}
	alice := lnd(t, net, "alice")
	ctx := testCtx(t, 2*time.Minute)
	for i, c := range chs {
		code, out := d.call(t, "GET", "/api/l402/challenges/"+c.PaymentHash, nil)
		if code != 200 || out["state"] != "settled" || int64(num(out["amountPaidSats"])) != price {
			t.Fatalf("challenge %d: %d %v", i, code, out)
		}
		inv, err := alice.Lightning.LookupInvoice(ctx, &lnrpc.PaymentHash{RHash: mustHex(t, c.PaymentHash)})
		if err != nil {
			t.Fatal(err)
		}
		if inv.State != lnrpc.Invoice_SETTLED || inv.AmtPaidSat != price || hex.EncodeToString(inv.RHash) != c.PaymentHash {
			t.Fatalf("LND's invoice %d: %v paid %d", i, inv.State, inv.AmtPaidSat)
		}
	}
}

// settledCount is the daemon's all-time settled counter.
func settledCount(t testing.TB, d *daemon) int {
	t.Helper()
	code, stats := d.call(t, "GET", "/api/l402/stats", nil)
	if code != 200 {
		t.Fatalf("stats: %d %v", code, stats)
	}
	return int(num(stats["total"].(map[string]any)["challengesSettled"]))
}

// parallel runs fn(0..n-1) on workers goroutines and fails the test with
// the first error.
func parallel(t testing.TB, n, workers int, fn func(i int) error) {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
		next  int
		ready = make(chan int)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ready {
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for next = 0; next < n; next++ {
		ready <- next
	}
	close(ready)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}
