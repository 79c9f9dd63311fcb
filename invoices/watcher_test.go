package invoices

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// fakeNode is a settlement log that streams like LND: a subscription
// first replays every settlement after the given index, then goes live.
// breakAfter makes the next subscription fail after n sends.
type fakeNode struct {
	mu         sync.Mutex
	log        []Settlement
	subs       []uint64 // the afterSettleIndex of every subscription
	breakAfter int
	live       chan Settlement
}

func (f *fakeNode) settle(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		idx := uint64(len(f.log) + 1)
		f.log = append(f.log, Settlement{PaymentHash: lntypes.Hash{byte(idx)}, SettleIndex: idx, AmountPaidMsat: 1000 * int64(idx), SettledAt: time.Now()})
	}
}

func (f *fakeNode) LookupInvoice(_ context.Context, h lntypes.Hash) (InvoiceStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.log {
		if s.PaymentHash == h {
			return InvoiceStatus{PaymentHash: h, State: InvoiceSettled, AmountPaidMsat: s.AmountPaidMsat, SettledAt: s.SettledAt, SettleIndex: s.SettleIndex}, nil
		}
	}
	return InvoiceStatus{}, ErrNotFound
}

func (f *fakeNode) SubscribeSettlements(ctx context.Context, after uint64) (<-chan Settlement, <-chan error, error) {
	f.mu.Lock()
	f.subs = append(f.subs, after)
	backlog := append([]Settlement(nil), f.log[min(int(after), len(f.log)):]...)
	brk := f.breakAfter
	f.breakAfter = 0
	f.mu.Unlock()
	out, errs := make(chan Settlement), make(chan error, 1)
	go func() {
		defer close(out)
		for i, s := range backlog {
			if brk > 0 && i == brk {
				errs <- errors.New("stream broke")
				return
			}
			select {
			case out <- s:
			case <-ctx.Done():
				errs <- ctx.Err()
				return
			}
		}
		<-ctx.Done()
		errs <- ctx.Err()
	}()
	return out, errs, nil
}

// memSink records settlements idempotently; failOnce fails one apply.
type memSink struct {
	mu       sync.Mutex
	cursor   uint64
	seen     map[lntypes.Hash]int
	failOnce bool
	// failAfter, if > 0, fails the apply after that many succeeded, once.
	failAfter int
	applied   int
	waiting   []lntypes.Hash
	// reconciled is the SetReconciled mark; unsettledCalls the since of
	// every Unsettled call.
	reconciled     time.Time
	unsettledCalls []time.Time
}

func (m *memSink) SettleCursor(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cursor, nil
}

func (m *memSink) ApplySettlement(_ context.Context, s Settlement, inOrder bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failOnce {
		m.failOnce = false
		return errors.New("disk full")
	}
	if m.failAfter > 0 && m.applied == m.failAfter {
		m.failAfter = 0
		return errors.New("lnd hiccup")
	}
	m.applied++
	m.seen[s.PaymentHash]++
	if inOrder {
		m.cursor = max(m.cursor, s.SettleIndex)
	}
	return nil
}

func (m *memSink) Unsettled(_ context.Context, since time.Time) ([]lntypes.Hash, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unsettledCalls = append(m.unsettledCalls, since)
	return append([]lntypes.Hash(nil), m.waiting...), nil
}

func (m *memSink) Reconciled(context.Context) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reconciled, nil
}

func (m *memSink) SetReconciled(_ context.Context, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reconciled = at
	return nil
}

func (m *memSink) state() (reconciled time.Time, calls []time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reconciled, append([]time.Time(nil), m.unsettledCalls...)
}

func (m *memSink) count() (int, uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.seen), m.cursor
}

func TestWatcherReplaysAndReconnects(t *testing.T) {
	tests := []struct {
		name       string
		breakAfter int
		failOnce   bool
		wantSubs   int
	}{
		{name: "clean stream", wantSubs: 1},
		{name: "stream breaks mid backlog", breakAfter: 4, wantSubs: 2},
		{name: "store fails once", failOnce: true, wantSubs: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := &fakeNode{breakAfter: tt.breakAfter}
			node.settle(10)
			sink := &memSink{seen: map[lntypes.Hash]int{}, cursor: 2, failOnce: tt.failOnce, reconciled: time.Now()}
			var mu sync.Mutex
			var hooks int
			w := NewWatcher(WatcherConfig{Subscriber: node, Sink: sink, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
				OnSettlement: func(Settlement, time.Duration) { mu.Lock(); hooks++; mu.Unlock() }})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { w.Run(ctx); close(done) }()
			t.Cleanup(func() { cancel(); <-done })

			waitUntil(t, func() bool { n, c := sink.count(); return n == 8 && c == 10 })
			node.mu.Lock()
			subs := append([]uint64(nil), node.subs...)
			node.mu.Unlock()
			if len(subs) != tt.wantSubs || subs[0] != 2 {
				t.Fatalf("subscriptions from %v, want %d starting at the stored cursor 2", subs, tt.wantSubs)
			}
			for h, n := range sink.seen {
				if n != 1 {
					t.Fatalf("%v applied %d times", h, n)
				}
			}
			if st := w.Status(); st.State != WatcherStreaming || st.Cursor != 10 {
				t.Fatalf("status %+v", st)
			}
			mu.Lock()
			defer mu.Unlock()
			if hooks != 8 {
				t.Fatalf("OnSettlement called %d times", hooks)
			}
		})
	}
}

func TestWatcherStopsOnCancel(t *testing.T) {
	w := NewWatcher(WatcherConfig{Subscriber: &fakeNode{}, Sink: &memSink{seen: map[lntypes.Hash]int{}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	waitUntil(t, func() bool { return w.Status().State == WatcherStreaming })
	cancel()
	<-done
	if w.Status().State != WatcherStopped {
		t.Fatal(w.Status())
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWatcherReconcilesFromZero: LND replays nothing for settle index 0,
// so a store that never saw a settlement looks its invoices up.
func TestWatcherReconcilesFromZero(t *testing.T) {
	node := &fakeNode{}
	node.settle(3)
	// The fake replays everything; emulate LND's "no backlog for 0".
	sub := zeroNoBacklog{node}
	sink := &memSink{seen: map[lntypes.Hash]int{}, waiting: []lntypes.Hash{{2}, {9}}}
	w := NewWatcher(WatcherConfig{Subscriber: sub, Sink: sink})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitUntil(t, func() bool { r, _ := sink.state(); return !r.IsZero() })
	if n, c := sink.count(); n != 1 || c != 0 {
		t.Fatalf("recorded %d with cursor %d, want 1 with the cursor left at 0", n, c)
	}
}

type zeroNoBacklog struct{ *fakeNode }

func (z zeroNoBacklog) SubscribeSettlements(ctx context.Context, after uint64) (<-chan Settlement, <-chan error, error) {
	if after == 0 {
		out, errs := make(chan Settlement), make(chan error, 1)
		go func() { <-ctx.Done(); errs <- ctx.Err(); close(out) }()
		return out, errs, nil
	}
	return z.fakeNode.SubscribeSettlements(ctx, after)
}

// TestWatcherInterruptedReconcile: a first catch-up that is cut short (a
// store error part-way, as a crash or an LND hiccup would) must not leave
// older settlements unrecorded for good: on the next attempt every
// settled invoice is recorded.
func TestWatcherInterruptedReconcile(t *testing.T) {
	node := &fakeNode{}
	node.settle(10)
	// Newest first, as the store lists them.
	var waiting []lntypes.Hash
	for i := 10; i > 0; i-- {
		waiting = append(waiting, lntypes.Hash{byte(i)})
	}
	sink := &memSink{seen: map[lntypes.Hash]int{}, waiting: waiting, failAfter: 3}
	w := NewWatcher(WatcherConfig{Subscriber: zeroNoBacklog{node}, Sink: sink, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitUntil(t, func() bool { n, _ := sink.count(); return n == 10 })
	waitUntil(t, func() bool { r, _ := sink.state(); return !r.IsZero() })
	// Looked-up settlements never move the cursor: it stays 0 until the
	// stream delivers one, in order.
	if _, c := sink.count(); c != 0 {
		t.Fatalf("cursor %d after a reconciliation by lookup, want 0", c)
	}
	_, calls := sink.state()
	if len(calls) != 2 || !calls[0].IsZero() || !calls[1].IsZero() {
		t.Fatalf("Unsettled called with %v, want twice for everything (no reconciliation completed before)", calls)
	}
}

// TestWatcherReconcileBounded: once a reconciliation completed, a restart
// with cursor 0 looks up only invoices payable since that mark (less the
// grace), and one with a non-zero cursor looks nothing up: the stream
// replays from the cursor.
func TestWatcherReconcileBounded(t *testing.T) {
	mark := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		name   string
		cursor uint64
		want   []time.Time
	}{
		{"cursor 0", 0, []time.Time{mark.Add(-ExpiryGrace)}},
		{"cursor set", 3, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			node := &fakeNode{}
			node.settle(5)
			sink := &memSink{seen: map[lntypes.Hash]int{}, cursor: tt.cursor, reconciled: mark}
			w := NewWatcher(WatcherConfig{Subscriber: zeroNoBacklog{node}, Sink: sink})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { w.Run(ctx); close(done) }()
			t.Cleanup(func() { cancel(); <-done })
			waitUntil(t, func() bool { return w.Status().State == WatcherStreaming })
			if tt.cursor != 0 {
				waitUntil(t, func() bool { n, _ := sink.count(); return n == 5-int(tt.cursor) })
			} else {
				waitUntil(t, func() bool { r, _ := sink.state(); return r.After(mark) })
			}
			_, calls := sink.state()
			if len(calls) != len(tt.want) || (len(calls) == 1 && !calls[0].Equal(tt.want[0])) {
				t.Fatalf("Unsettled called with %v, want %v", calls, tt.want)
			}
		})
	}
}
