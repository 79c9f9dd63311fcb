package invoices

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// SweepSink is the store side of the Sweeper.
type SweepSink interface {
	// SweepCandidates returns up to limit unpaid challenges whose invoice
	// expired before before, oldest first.
	SweepCandidates(ctx context.Context, before time.Time, limit int) ([]lntypes.Hash, error)
	// DeleteUnpaid deletes one of them with its root key, if it is still
	// unpaid and expired before before.
	DeleteUnpaid(ctx context.Context, h lntypes.Hash, before time.Time) (bool, error)
	// ApplySettlement records a settlement found by lookup (inOrder false).
	ApplySettlement(ctx context.Context, s Settlement, inOrder bool) error
}

// InvoiceLooker looks an invoice up on the node.
type InvoiceLooker interface {
	LookupInvoice(ctx context.Context, hash lntypes.Hash) (InvoiceStatus, error)
}

// Sweeper defaults.
const (
	DefaultUnpaidRetention = 24 * time.Hour
	DefaultSweepInterval   = 10 * time.Minute
	DefaultSweepBatch      = 500
)

// SweeperConfig configures a Sweeper.
type SweeperConfig struct {
	Node InvoiceLooker
	Sink SweepSink
	// Retention is how long an unpaid challenge is kept after its invoice
	// expired: zero means DefaultUnpaidRetention, and it is never less
	// than ExpiryGrace.
	Retention time.Duration
	// Interval between sweeps (zero: DefaultSweepInterval) and how many
	// challenges one step looks at (zero: DefaultSweepBatch).
	Interval time.Duration
	Batch    int
	Now      func() time.Time
	Logger   *slog.Logger
}

// Sweeper deletes challenges whose invoice expired unpaid long ago, so
// that an unpaid-mint flood cannot grow the store and the start-up scan
// without bound. Before deleting one it asks the node: an invoice the node
// reports settled is recorded instead (the money arrived), one it reports
// accepted (an HTLC held) is kept, and any lookup error ends the sweep
// until the next interval. Past its expiry and the grace, LND refuses
// HTLCs for an invoice, so one it reports open or canceled can never be
// paid any more.
type Sweeper struct {
	cfg SweeperConfig
	log *slog.Logger
}

// NewSweeper returns a sweeper; call Run or Sweep.
func NewSweeper(cfg SweeperConfig) *Sweeper {
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultUnpaidRetention
	}
	cfg.Retention = max(cfg.Retention, ExpiryGrace)
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultSweepInterval
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultSweepBatch
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Sweeper{cfg: cfg, log: cfg.Logger}
}

// SweepResult counts what one sweep did: challenges deleted, found paid
// after all and recorded, and kept because the node holds an HTLC for
// them.
type SweepResult struct {
	Deleted, Recorded, Kept int
}

// Run sweeps every interval until ctx ends; it returns nil then.
func (s *Sweeper) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		r, err := s.Sweep(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			s.log.Warn("sweeping expired unpaid challenges", "err", err, "deleted", r.Deleted)
			continue
		}
		if r != (SweepResult{}) {
			s.log.Info("swept expired unpaid challenges", "deleted", r.Deleted, "recorded_settled", r.Recorded, "kept", r.Kept)
		}
	}
}

// Sweep deletes every challenge whose invoice expired unpaid more than the
// retention ago and that the node confirms was not paid.
func (s *Sweeper) Sweep(ctx context.Context) (SweepResult, error) {
	var r SweepResult
	before := s.cfg.Now().Add(-s.cfg.Retention)
	for {
		limit := s.cfg.Batch + r.Kept
		hashes, err := s.cfg.Sink.SweepCandidates(ctx, before, limit)
		if err != nil {
			return r, err
		}
		// Kept challenges are listed again (they are the oldest); skip
		// past them rather than loop on them.
		fresh := hashes[min(r.Kept, len(hashes)):]
		if len(fresh) == 0 {
			return r, nil
		}
		for _, h := range fresh {
			if err := s.one(ctx, h, before, &r); err != nil {
				return r, err
			}
		}
		if len(hashes) < limit {
			return r, nil
		}
	}
}

func (s *Sweeper) one(ctx context.Context, h lntypes.Hash, before time.Time, r *SweepResult) error {
	st, err := s.cfg.Node.LookupInvoice(ctx, h)
	switch {
	case errors.Is(err, ErrNotFound):
		// The node has no such invoice: nothing can pay it.
	case err != nil:
		return fmt.Errorf("looking up %s before deleting it: %w", h, err)
	case st.State == InvoiceSettled:
		r.Recorded++
		return s.cfg.Sink.ApplySettlement(ctx, Settlement{PaymentHash: h, AmountPaidMsat: st.AmountPaidMsat, SettledAt: st.SettledAt, SettleIndex: st.SettleIndex}, false)
	case st.State == InvoiceAccepted:
		r.Kept++
		return nil
	}
	deleted, err := s.cfg.Sink.DeleteUnpaid(ctx, h, before)
	if err != nil {
		return err
	}
	if deleted {
		r.Deleted++
	}
	// Not deleted: it was paid or removed meanwhile and is no candidate
	// any more.
	return nil
}
