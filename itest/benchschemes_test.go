//go:build itest

package itest

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/l402d/l402d/l402/x402"
)

// BenchmarkSchemes measures, in one run on one gate, what it costs the
// gate to let through a request whose payment is already made, in each
// scheme: an L402 token presented for the first time (a full verify), the
// same token again (the verify cache), an MPP charge and an x402 payment
// (each checked and then spent with one durable store commit). Every
// credential is bought beforehand (bob pays alice's invoices over
// regtest), so the figures are the gate's work, not Lightning's. It
// prints p50, p90 and mean latency per scheme and the ratio to a first
// L402 use, as Markdown, for requests sent one at a time over one
// keep-alive connection; then the throughput of each scheme with 16
// clients at once (other credentials: each is spent once), where the
// store commits concurrent spends together. A prepaid MPP session (one
// deposit, each request debited 1 sat durably before it is let through)
// is measured beside them.
//
// Knob: L402D_BENCH_REQUESTS (200 per scheme and phase; each needs its
// own payment).
//
// Run: make bench-schemes
func BenchmarkSchemes(b *testing.B) {
	n := envInt(b, "L402D_BENCH_REQUESTS", 200)
	upstream := startBenchUpstream(b)
	services := fmt.Sprintf("services:\n  - name: bench\n    path: /bench/*\n    upstream: http://%[1]s\n    price: 1\n    session_deposit: %[2]d\n"+
		"  - name: credit\n    path: /credit/*\n    upstream: http://%[1]s\n    price: 1\n    prepaid_credit: %[2]d\n", upstream, 2*n+100)
	flags := []string{"--gate.token-rate", "-1", "--gate.mint-rate", "-1", "--gate.max-pending", "-1", "--gate.max-pending-per-client", "-1", "--log.level", "warn"}
	g := startGateDaemon(b, services, flags...)
	// A second gate beside alice whose debits are taken in memory.
	lazy := startGateDaemon(b, services, append(flags, "--db.debit-allowance-msat", strconv.Itoa(benchDebitAllowanceMsat))...)

	// path is where a credential is presented ("" for /bench/x), host the
	// gate it is presented to ("" for g).
	type cred struct{ name, value, path, host string }
	creds := map[string][]cred{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	jobs := make(chan int)
	for range 4 {
		wg.Go(func() {
			for i := range jobs {
				o := g.offerFor(b, fmt.Sprintf("/bench/%d", i))
				pre := payInvoice(b, "bob", o.invoice)
				var c cred
				scheme := []string{"l402", "mpp", "x402"}[i%3]
				switch scheme {
				case "l402":
					c = cred{"Authorization", "L402 " + o.l402.Macaroon + ":" + pre, "", ""}
				case "mpp":
					c = cred{"Authorization", o.mppAuth(b, pre), "", ""}
				case "x402":
					c = cred{x402.HeaderPaymentSignature, o.x402Sig(b, pre), "", ""}
				}
				mu.Lock()
				creds[scheme] = append(creds[scheme], c)
				mu.Unlock()
			}
		})
	}
	for i := range 6 * n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	b.Logf("bought %d credentials in %s", 6*n, time.Since(start).Round(time.Millisecond))
	// One prepaid session, debited 1 sat per request, for both phases.
	sess, r := openSession(b, g, "/bench/open")
	if r.code != 200 {
		b.Fatalf("opening a session: %d %s", r.code, r.raw)
	}
	sessCred := cred{"Authorization", sessionAuth(b, sess), "", ""}
	// One L402 prepaid credit, debited 1 sat per request, for both phases.
	cr := g.get(b, "/credit/x")
	if cr.code != 402 {
		b.Fatalf("buying credit: %d %s", cr.code, cr.raw)
	}
	creditCred := cred{"Authorization", "L402 " + str(cr.json["macaroon"]) + ":" + payInvoice(b, "bob", str(cr.json["invoice"])), "/credit/x", ""}
	// The same two on the gate with the debit allowance.
	lsess, r := openSession(b, lazy, "/bench/open")
	if r.code != 200 {
		b.Fatalf("opening a session: %d %s", r.code, r.raw)
	}
	lazySessCred := cred{"Authorization", sessionAuth(b, lsess), "", lazy.gate}
	cr = lazy.get(b, "/credit/x")
	if cr.code != 402 {
		b.Fatalf("buying credit: %d %s", cr.code, cr.raw)
	}
	lazyCreditCred := cred{"Authorization", "L402 " + str(cr.json["macaroon"]) + ":" + payInvoice(b, "bob", str(cr.json["invoice"])), "/credit/x", lazy.gate}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	present := func(c cred) time.Duration {
		req, _ := http.NewRequest("GET", "http://"+cmp.Or(c.host, g.gate)+cmp.Or(c.path, "/bench/x"), nil)
		req.Header.Set(c.name, c.value)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		if resp.StatusCode != 200 {
			b.Fatalf("%s: %d", c.name, resp.StatusCode)
		}
		return d
	}
	// Warm the connection and the code paths.
	for range 20 {
		present(creds["l402"][0])
	}
	rows := []struct {
		name  string
		creds []cred
	}{
		{"L402, first use of each token", creds["l402"][:n]},
		{"L402, a token used before (cached)", slices.Repeat(creds["l402"][:1], n)},
		{"MPP charge (spent once)", creds["mpp"][:n]},
		{"x402 payment (spent once)", creds["x402"][:n]},
		{"MPP session, one prepaid balance (debited durably)", slices.Repeat([]cred{sessCred}, n)},
		{"L402 prepaid credit, one balance (debited durably)", slices.Repeat([]cred{creditCred}, n)},
		{fmt.Sprintf("MPP session, one prepaid balance (debited in memory, allowance %d msat)", benchDebitAllowanceMsat), slices.Repeat([]cred{lazySessCred}, n)},
		{fmt.Sprintf("L402 prepaid credit, one balance (debited in memory, allowance %d msat)", benchDebitAllowanceMsat), slices.Repeat([]cred{lazyCreditCred}, n)},
	}
	type stat struct{ p50, p90, mean time.Duration }
	stats := make([]stat, len(rows))
	// Interleave the schemes so that drift in the machine's load is shared.
	lat := make([][]time.Duration, len(rows))
	for i := range n {
		for r := range rows {
			lat[r] = append(lat[r], present(rows[r].creds[i]))
		}
	}
	for r := range rows {
		l := slices.Clone(lat[r])
		slices.Sort(l)
		var sum time.Duration
		for _, d := range l {
			sum += d
		}
		stats[r] = stat{l[len(l)/2], l[len(l)*9/10], sum / time.Duration(len(l))}
	}
	out := fmt.Sprintf("| scheme (%d requests each, sequential, one connection) | p50 | p90 | mean | mean vs L402 first use |\n|---|---|---|---|---|\n", n)
	for r, row := range rows {
		out += fmt.Sprintf("| %s | %s | %s | %s | %.2f× |\n", row.name, us(stats[r].p50), us(stats[r].p90), us(stats[r].mean),
			float64(stats[r].mean)/float64(stats[0].mean))
	}

	// 16 clients at once, each credential used once, schemes in turn.
	const clients = 16
	conc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	presentOn := func(c cred) {
		req, _ := http.NewRequest("GET", "http://"+cmp.Or(c.host, g.gate)+cmp.Or(c.path, "/bench/x"), nil)
		req.Header.Set(c.name, c.value)
		resp, err := conc.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Errorf("%s: %d", c.name, resp.StatusCode)
		}
	}
	crows := []struct {
		name  string
		creds []cred
	}{
		{"L402, first use of each token", creds["l402"][n:]},
		{"MPP charge (spent once)", creds["mpp"][n:]},
		{"x402 payment (spent once)", creds["x402"][n:]},
		{"MPP session, one prepaid balance shared by all 16", slices.Repeat([]cred{sessCred}, n)},
		{"L402 prepaid credit, one balance shared by all 16", slices.Repeat([]cred{creditCred}, n)},
		{"MPP session, one balance shared by all 16, debited in memory", slices.Repeat([]cred{lazySessCred}, n)},
		{"L402 prepaid credit, one balance shared by all 16, debited in memory", slices.Repeat([]cred{lazyCreditCred}, n)},
	}
	rates := make([]float64, len(crows))
	for r, row := range crows {
		work := make(chan cred)
		var cw sync.WaitGroup
		for range clients {
			cw.Go(func() {
				for c := range work {
					presentOn(c)
				}
			})
		}
		t0 := time.Now()
		for _, c := range row.creds {
			work <- c
		}
		close(work)
		cw.Wait()
		rates[r] = float64(len(row.creds)) / time.Since(t0).Seconds()
	}
	out += fmt.Sprintf("\n| scheme (%d requests each, %d clients at once) | requests/s | vs L402 first use |\n|---|---|---|\n", n, clients)
	for r, row := range crows {
		out += fmt.Sprintf("| %s | %.0f | %.2f× |\n", row.name, rates[r], rates[0]/rates[r])
	}
	b.Logf("load average at the end: %s\n%s", readLoadavg(), out)
}

// benchDebitAllowanceMsat is the second gate's --db.debit-allowance-msat:
// 100 requests of 1 sat (under 16 clients a balance takes about one
// allowance per fsync, so a smaller one bounds throughput).
const benchDebitAllowanceMsat = 100_000

func us(d time.Duration) string { return fmt.Sprintf("%d µs", d.Microseconds()) }
