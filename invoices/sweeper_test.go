package invoices

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// sweepStore is a fake store of unpaid challenges by expiry.
type sweepStore struct {
	mu       sync.Mutex
	expires  map[lntypes.Hash]time.Time
	settled  map[lntypes.Hash]Settlement
	order    []lntypes.Hash // creation order
	inOrders []bool
}

func (f *sweepStore) SweepCandidates(_ context.Context, before time.Time, limit int) ([]lntypes.Hash, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []lntypes.Hash
	for _, h := range f.order {
		if e, ok := f.expires[h]; ok && e.Before(before) && len(out) < limit {
			out = append(out, h)
		}
	}
	return out, nil
}

func (f *sweepStore) DeleteUnpaid(_ context.Context, h lntypes.Hash, before time.Time) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.expires[h]; !ok || !e.Before(before) {
		return false, nil
	}
	delete(f.expires, h)
	return true, nil
}

func (f *sweepStore) ApplySettlement(_ context.Context, s Settlement, inOrder bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.expires, s.PaymentHash)
	f.settled[s.PaymentHash] = s
	f.inOrders = append(f.inOrders, inOrder)
	return nil
}

// lookupMap answers LookupInvoice from a map; missing hashes are open,
// failAt makes that hash's lookup fail.
type lookupMap struct {
	states map[lntypes.Hash]InvoiceState
	failAt lntypes.Hash
}

func (l lookupMap) LookupInvoice(_ context.Context, h lntypes.Hash) (InvoiceStatus, error) {
	if h == l.failAt {
		return InvoiceStatus{}, ErrUnavailable
	}
	st, ok := l.states[h]
	if !ok {
		st = InvoiceOpen
	}
	if st == "gone" {
		return InvoiceStatus{}, ErrNotFound
	}
	return InvoiceStatus{PaymentHash: h, State: st, AmountPaidMsat: 5000, SettleIndex: 9}, nil
}

// TestSweeper: only challenges expired more than the retention ago are
// deleted, and only when LND confirms they were not paid: a settled one is
// recorded instead, one with an accepted HTLC is kept, and a lookup error
// stops the sweep without deleting the one it could not check.
func TestSweeper(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	store := &sweepStore{expires: map[lntypes.Hash]time.Time{}, settled: map[lntypes.Hash]Settlement{}}
	var hs []lntypes.Hash
	add := func(expires time.Time) lntypes.Hash {
		h := lntypes.Hash{byte(len(hs) + 1)}
		hs = append(hs, h)
		store.order = append(store.order, h)
		store.expires[h] = expires
		return h
	}
	longAgo := now.Add(-48 * time.Hour)
	var old []lntypes.Hash
	for range 7 {
		old = append(old, add(longAgo))
	}
	paid := add(longAgo)
	held := add(longAgo)
	gone := add(longAgo)
	recent := add(now.Add(-time.Hour)) // within the retention
	failing := add(longAgo)
	node := lookupMap{states: map[lntypes.Hash]InvoiceState{paid: InvoiceSettled, held: InvoiceAccepted, gone: "gone"}, failAt: failing}
	sw := NewSweeper(SweeperConfig{Node: node, Sink: store, Batch: 3, Now: func() time.Time { return now }})

	r, err := sw.Sweep(context.Background())
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("sweep with a failing lookup: %v", err)
	}
	if r.Deleted != 8 || r.Recorded != 1 || r.Kept != 1 {
		t.Fatalf("result %+v, want 8 deleted (7 old, 1 unknown to LND), 1 recorded, 1 kept", r)
	}
	if _, ok := store.expires[failing]; !ok {
		t.Fatal("deleted a challenge whose invoice could not be looked up")
	}
	for _, h := range []lntypes.Hash{held, recent} {
		if _, ok := store.expires[h]; !ok {
			t.Fatalf("deleted %v", h)
		}
	}
	if s, ok := store.settled[paid]; !ok || s.AmountPaidMsat != 5000 || !slices.Equal(store.inOrders, []bool{false}) {
		t.Fatalf("paid invoice not recorded out of order: %+v %v", s, store.inOrders)
	}

	// With LND answering again, the next sweep finishes the job.
	sw.cfg.Node = lookupMap{states: map[lntypes.Hash]InvoiceState{held: InvoiceAccepted}}
	if r, err := sw.Sweep(context.Background()); err != nil || r.Deleted != 1 || r.Kept != 1 {
		t.Fatalf("second sweep: %+v %v", r, err)
	}
	left := make([]lntypes.Hash, 0)
	for _, h := range store.order {
		if _, ok := store.expires[h]; ok {
			left = append(left, h)
		}
	}
	if !slices.Equal(left, []lntypes.Hash{held, recent}) {
		t.Fatalf("left %v, want the held and the recent one", left)
	}
}
