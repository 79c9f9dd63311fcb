//go:build itest

package itest

import (
	"context"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/l402d/l402d/regtest"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
)

// testCtx returns a context that ends after d or with the test.
func testCtx(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// restartAfter makes sure node name runs again after the test, also when
// the test fails between stopping and starting it, so one failed fault
// test does not leave the shared network broken for the next ones. The
// restart has its own context: t.Context() is canceled before cleanups.
func restartAfter(t testing.TB, n *regtest.Network, name string) {
	t.Helper()
	t.Cleanup(func() {
		if n.Running(name) {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := n.StartNode(ctx, name); err != nil {
			t.Errorf("starting %s again after the test: %v", name, err)
		}
	})
}

// lnd dials the LND node called name; the client is closed with the test.
func lnd(t testing.TB, n *regtest.Network, name string) *regtest.Client {
	t.Helper()
	c, err := n.Client(name)
	if err != nil {
		t.Fatalf("dialing %s: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// pay has payer pay an invoice of payee's for amt sat, through via if via
// is not empty (forced: the first hop is payer's channel with via and the
// last hop is via) or else over payer's direct channel with payee. It
// checks the route taken and that payee's invoice is settled, and returns
// the payment.
func pay(t testing.TB, n *regtest.Network, payer, payee, via string, amt int64) *lnrpc.Payment {
	t.Helper()
	ctx := testCtx(t, 2*time.Minute)
	from, to := lnd(t, n, payer), lnd(t, n, payee)

	inv, err := to.Lightning.AddInvoice(ctx, &lnrpc.Invoice{Value: amt, Memo: t.Name()})
	if err != nil {
		t.Fatalf("%s: AddInvoice: %v", payee, err)
	}
	req := &routerrpc.SendPaymentRequest{PaymentRequest: inv.PaymentRequest, FeeLimitSat: 100, TimeoutSeconds: 60}
	wantHops := []string{n.Node(payee).Pubkey}
	first := payee
	if via != "" {
		first = via
		req.LastHopPubkey = mustHex(t, n.Node(via).Pubkey)
		wantHops = []string{n.Node(via).Pubkey, n.Node(payee).Pubkey}
	}
	ch, err := from.ChannelWith(ctx, n.Node(first).Pubkey)
	if err != nil {
		t.Fatalf("%s's channel with %s: %v", payer, first, err)
	}
	req.OutgoingChanIds = []uint64{ch.ChanId}

	p, err := from.Pay(ctx, req)
	if err != nil {
		t.Fatalf("%s paying %s via %q: %v\n%s", payer, payee, via, err, describeHTLCs(p))
	}
	var route *lnrpc.Route
	for _, h := range p.Htlcs {
		if h.Status == lnrpc.HTLCAttempt_SUCCEEDED {
			route = h.Route
		}
	}
	if route == nil {
		t.Fatalf("payment %s succeeded without a succeeded HTLC", p.PaymentHash)
	}
	var got []string
	for _, h := range route.Hops {
		got = append(got, h.PubKey)
	}
	if fmt.Sprint(got) != fmt.Sprint(wantHops) {
		t.Fatalf("route hops = %v, want %v", got, wantHops)
	}

	// The payee settles before the preimage reaches the payer, but poll
	// rather than rely on it.
	err = regtest.WaitFor(ctx, payee+"'s invoice to be settled", 30*time.Second, 50*time.Millisecond, func(ctx context.Context) error {
		got, err := to.Lightning.LookupInvoice(ctx, &lnrpc.PaymentHash{RHash: inv.RHash})
		if err != nil {
			return err
		}
		if got.State != lnrpc.Invoice_SETTLED {
			return fmt.Errorf("invoice is %s", got.State)
		}
		if got.AmtPaidSat != amt {
			return regtest.Unrecoverable(fmt.Errorf("invoice paid %d sat, want %d", got.AmtPaidSat, amt))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func describeHTLCs(p *lnrpc.Payment) string {
	if p == nil {
		return ""
	}
	s := ""
	for i, h := range p.Htlcs {
		s += fmt.Sprintf("  htlc %d: %s", i, h.Status)
		if h.Failure != nil {
			s += fmt.Sprintf(" failure %s at hop %d", h.Failure.Code, h.Failure.FailureSourceIndex)
		}
		s += "\n"
	}
	return s
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("decoding hex %q: %v", s, err)
	}
	return b
}
