package invoices

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// Subscriber is the part of Backend the watcher needs.
type Subscriber interface {
	SubscribeSettlements(ctx context.Context, afterSettleIndex uint64) (<-chan Settlement, <-chan error, error)
	LookupInvoice(ctx context.Context, hash lntypes.Hash) (InvoiceStatus, error)
}

// SettlementSink persists settlements.
//
// The settle cursor means "every settlement up to here is recorded". Only
// the subscription moves it: LND delivers settlements in settle-index
// order, so applying one in order proves all lower ones were applied.
// LND replays nothing after settle index 0, though, so while the cursor is
// 0 (and once after an upgrade) the watcher looks invoices up instead
// (reconciles); those settlements arrive out of order and must not move
// the cursor, or a reconciliation cut short would leave older settlements
// below the cursor, unrecorded for good.
type SettlementSink interface {
	SettleCursor(ctx context.Context) (uint64, error)
	// ApplySettlement records s idempotently (the same settlement can be
	// replayed after a reconnect). inOrder is true for settlements from
	// the subscription: the sink then advances its cursor to
	// s.SettleIndex in the same durable write. A looked-up settlement has
	// inOrder false and leaves the cursor alone.
	ApplySettlement(ctx context.Context, s Settlement, inOrder bool) error
	// Unsettled lists the payment hashes the sink still waits for whose
	// invoice was payable at or after since (zero: all of them).
	Unsettled(ctx context.Context, since time.Time) ([]lntypes.Hash, error)
	// Reconciled returns the mark SetReconciled last stored, zero if none.
	Reconciled(ctx context.Context) (time.Time, error)
	// SetReconciled durably records that every settlement before at is
	// recorded or will be replayed by the subscription.
	SetReconciled(ctx context.Context, at time.Time) error
}

// ExpiryGrace is how long after an invoice's recorded expiry l402d still
// treats it as payable: it covers clock skew between l402d and LND and an
// HTLC that settles right at expiry.
const ExpiryGrace = 10 * time.Minute

// WatcherConfig configures a Watcher.
type WatcherConfig struct {
	Subscriber Subscriber
	Sink       SettlementSink
	Logger     *slog.Logger
	// MinBackoff and MaxBackoff bound the wait between reconnects;
	// defaults 200 ms and 15 s.
	MinBackoff, MaxBackoff time.Duration
	// OnSettlement, if set, is called after each settlement is stored,
	// with how long after LND settled it l402d recorded it.
	OnSettlement func(s Settlement, lag time.Duration)
}

// WatcherState names what the watcher is doing.
type WatcherState string

// Watcher states.
const (
	WatcherStarting  WatcherState = "starting"
	WatcherStreaming WatcherState = "streaming"
	WatcherBackoff   WatcherState = "reconnecting"
	WatcherStopped   WatcherState = "stopped"
	// WatcherStandby: another l402d replica on the same shared store
	// watches settlements; this one takes over if that one dies.
	WatcherStandby WatcherState = "standby"
)

// WatcherStatus is a snapshot for health checks and metrics.
type WatcherStatus struct {
	State          WatcherState `json:"state"`
	Since          time.Time    `json:"since"`
	Cursor         uint64       `json:"settleIndex"`
	LastError      string       `json:"lastError,omitempty"`
	Reconnects     int          `json:"reconnects"`
	LastSettlement time.Time    `json:"lastSettlement,omitzero"`
	LastLag        Duration     `json:"lastLag"`
}

// Duration marshals as seconds in JSON.
type Duration time.Duration

// MarshalJSON renders the duration in seconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(formatSeconds(time.Duration(d))), nil
}

func formatSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}

// Watcher keeps the store's record of settled invoices complete. It
// subscribes from the stored settle index, so whatever settled while
// l402d or LND was down is replayed on the next connection, and it
// reconnects with jittered exponential backoff when the stream breaks.
type Watcher struct {
	cfg WatcherConfig
	log *slog.Logger

	mu     sync.Mutex
	status WatcherStatus
}

// NewWatcher returns a watcher; call Run to start it.
func NewWatcher(cfg WatcherConfig) *Watcher {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 200 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Watcher{cfg: cfg, log: cfg.Logger, status: WatcherStatus{State: WatcherStarting, Since: time.Now()}}
}

// Standby marks the watcher as waiting for its turn: another replica
// runs it.
func (w *Watcher) Standby() { w.setState(WatcherStandby, nil) }

// Status returns a snapshot of the watcher's state.
func (w *Watcher) Status() WatcherStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status
}

func (w *Watcher) setState(s WatcherState, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.status.State != s {
		w.status.State, w.status.Since = s, time.Now()
	}
	if err != nil {
		w.status.LastError = err.Error()
	}
	if s == WatcherBackoff {
		w.status.Reconnects++
	}
}

// Run watches until ctx ends. It has nothing to return: every failure of
// LND or of the store is retried with backoff and shown in Status, since
// a watcher that gave up would strand settlements.
func (w *Watcher) Run(ctx context.Context) {
	defer w.setState(WatcherStopped, nil)
	backoff := w.cfg.MinBackoff
	for {
		healthy, err := w.stream(ctx)
		if ctx.Err() != nil {
			return
		}
		if healthy {
			backoff = w.cfg.MinBackoff
		}
		w.log.Warn("settlement stream ended; reconnecting", "err", err, "in", backoff)
		w.setState(WatcherBackoff, err)
		// Full jitter in [backoff/2, backoff) keeps many l402d instances
		// from reconnecting in step.
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, w.cfg.MaxBackoff)
	}
}

// reconcile looks up every invoice the sink still waits for that was
// payable at or after since and records, out of order, those already
// settled.
func (w *Watcher) reconcile(ctx context.Context, since time.Time) error {
	hashes, err := w.cfg.Sink.Unsettled(ctx, since)
	if err != nil {
		return err
	}
	w.log.Info("reconciling unsettled challenges with LND", "count", len(hashes), "payable_since", since)
	for _, h := range hashes {
		st, err := w.cfg.Subscriber.LookupInvoice(ctx, h)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if st.State != InvoiceSettled {
			continue
		}
		s := Settlement{PaymentHash: h, AmountPaidMsat: st.AmountPaidMsat, SettledAt: st.SettledAt, SettleIndex: st.SettleIndex}
		if err := w.cfg.Sink.ApplySettlement(ctx, s, false); err != nil {
			return err
		}
		w.recorded(s, false)
	}
	return nil
}

// recorded updates the status and calls the hook for a stored settlement.
func (w *Watcher) recorded(s Settlement, inOrder bool) {
	lag := max(time.Since(s.SettledAt), 0)
	w.mu.Lock()
	if inOrder {
		w.status.Cursor = max(w.status.Cursor, s.SettleIndex)
	}
	w.status.LastSettlement = time.Now()
	w.status.LastLag = Duration(lag)
	w.mu.Unlock()
	w.log.Debug("settlement recorded", "hash", s.PaymentHash.String(), "settle_index", s.SettleIndex, "lag", lag)
	if w.cfg.OnSettlement != nil {
		w.cfg.OnSettlement(s, lag)
	}
}

// stream runs one subscription. healthy reports whether it got as far as
// streaming for a while, which resets the backoff.
func (w *Watcher) stream(ctx context.Context) (healthy bool, err error) {
	cursor, err := w.cfg.Sink.SettleCursor(ctx)
	if err != nil {
		return false, err
	}
	reconciled, err := w.cfg.Sink.Reconciled(ctx)
	if err != nil {
		return false, err
	}
	w.mu.Lock()
	w.status.Cursor = cursor
	w.mu.Unlock()

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	subscribed := time.Now()
	updates, errs, err := w.cfg.Subscriber.SubscribeSettlements(sctx, cursor)
	if err != nil {
		return false, err
	}
	w.setState(WatcherStreaming, nil)
	w.log.Info("settlement stream open", "after_settle_index", cursor)
	if cursor == 0 || reconciled.IsZero() {
		// LND replays settlements only after a non-zero settle index, so
		// a store that has never seen one asks about its invoices
		// directly; so does one that never completed a reconciliation
		// (written by an older l402d, whose cursor may have skipped some).
		// The stream is already open: whatever settles from now on comes
		// through it. What settled before was covered by the last
		// completed reconciliation up to its mark, so only invoices still
		// payable since then need a lookup: a restart costs lookups for
		// the live invoices, not for every unpaid challenge ever issued.
		var since time.Time
		if !reconciled.IsZero() {
			since = reconciled.Add(-ExpiryGrace)
		}
		if err := w.reconcile(ctx, since); err != nil {
			return false, err
		}
		if err := w.cfg.Sink.SetReconciled(ctx, subscribed); err != nil {
			return false, err
		}
	}
	started := time.Now()
	for {
		select {
		case s, ok := <-updates:
			if !ok {
				err := <-errs
				if err == nil {
					err = errors.New("settlement stream closed")
				}
				return time.Since(started) > w.cfg.MaxBackoff, err
			}
			if err := w.cfg.Sink.ApplySettlement(ctx, s, true); err != nil {
				// Not stored, so the cursor did not move: resubscribing
				// replays this settlement.
				return true, err
			}
			w.recorded(s, true)
		case <-ctx.Done():
			return true, ctx.Err()
		}
	}
}
