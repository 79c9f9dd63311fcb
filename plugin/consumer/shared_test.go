package consumer

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/storage"
	"github.com/lightningnetwork/lnd/lntypes"
)

// TestSharedNotSentYet: on a store shared by replicas, a payment another
// replica marked in flight moments ago may not have reached LND yet (its
// lock may be lost with a broken connection while it is still about to
// send), so LND not knowing it is no proof it was never sent: it stays in
// flight until the grace has passed, then fails as never sent.
func TestSharedNotSentYet(t *testing.T) {
	c, st := newTestConsumer(t, newFakeLN())
	c.shared = true
	ctx := t.Context()
	h := lntypes.Hash{42}
	e := storage.Payment{PaymentHash: h, Kind: storage.KindInvoice, Invoice: "lnbcrt1", AmountMsat: 1000, FeeLimitMsat: 10}
	if _, err := st.ReservePayment(ctx, &e); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkPaymentInFlight(ctx, h); err != nil {
		t.Fatal(err)
	}
	p, err := st.Payment(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	notFound := fmt.Errorf("track: %w", invoices.ErrNotFound)
	_, err = c.record(ctx, p, invoices.Payment{}, notFound)
	var pe *PaymentError
	if !errors.As(err, &pe) || !pe.InFlight {
		t.Fatalf("fresh in-flight entry unknown to LND: %v, want in flight", err)
	}
	if q, _ := st.Payment(ctx, h); q.State != storage.PaymentInFlight {
		t.Fatalf("journal state %s, want in_flight", q.State)
	}
	p.UpdatedAt = time.Now().Add(-notSentGrace - time.Second)
	q, err := c.record(ctx, p, invoices.Payment{}, notFound)
	if err != nil || q.State != storage.PaymentFailed {
		t.Fatalf("after the grace: %+v %v, want failed as never sent", q, err)
	}
}
