//go:build itest

package itest

import (
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/l402d/l402d/invoices"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lntypes"
)

// TestLNDBackendPaymentErrors checks, against bob's real LND through
// lndclient, the two answers the consumer's journal depends on after a
// crash: tracking a payment LND never started is ErrNotFound (the resumer
// then releases its reservation), and paying a hash LND already paid is
// ErrAlreadyPaid (the payer then tracks it). lndclient delivers both
// without their gRPC code, and a payment killed between reservation and
// sending was once tracked for ever.
func TestLNDBackendPaymentErrors(t *testing.T) {
	n := testNet(t)
	bob := n.Node("bob")
	ln, err := invoices.NewLND(invoices.LNDConfig{Address: bob.RPCAddr, TLSCertPath: bob.TLSCertPath, MacaroonDir: bob.MacaroonDir, Network: "regtest"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ln.Close)
	ctx := testCtx(t, 2*time.Minute)

	var never lntypes.Hash
	rand.Read(never[:])
	if _, err := ln.Track(ctx, never); !errors.Is(err, invoices.ErrNotFound) {
		t.Fatalf("tracking a payment LND never started: %v, want ErrNotFound", err)
	}

	inv, err := lnd(t, n, "alice").Lightning.AddInvoice(ctx, &lnrpc.Invoice{Value: 321, Memo: "itest already paid"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ln.Pay(ctx, invoices.PayRequest{Invoice: inv.PaymentRequest, MaxFeeMsat: 100_000, Timeout: time.Minute})
	if err != nil || p.State != invoices.PaymentSucceeded {
		t.Fatalf("first payment: %+v, %v", p, err)
	}
	if _, err := ln.Pay(ctx, invoices.PayRequest{Invoice: inv.PaymentRequest, MaxFeeMsat: 100_000, Timeout: time.Minute}); !errors.Is(err, invoices.ErrAlreadyPaid) {
		t.Fatalf("paying a paid hash again: %v, want ErrAlreadyPaid", err)
	}
	got, err := ln.Track(ctx, p.PaymentHash)
	if err != nil || got.State != invoices.PaymentSucceeded || got.Preimage != p.Preimage {
		t.Fatalf("tracking the paid payment: %+v, %v", got, err)
	}
}
