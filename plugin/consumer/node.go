package consumer

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/plugin/field"
	"github.com/l402d/l402d/storage"
)

// Limits on invoices created here.
const (
	MaxMemoLen           = 639       // BOLT 11's description limit
	MaxInvoiceSats       = 4_294_967 // LND's largest non-wumbo invoice
	MaxInvoiceExpiry     = 365 * 24 * time.Hour
	DefaultInvoiceExpiry = time.Hour
)

// CreateInvoice creates an invoice on the node, for receiving.
func (c *Consumer) CreateInvoice(ctx context.Context, amountSats int64, memo string, expiry time.Duration) (invoices.Invoice, error) {
	switch {
	case amountSats <= 0 || amountSats > MaxInvoiceSats:
		return invoices.Invoice{}, &field.Error{Field: "amountSats", Problem: fmt.Sprintf("must be 1 to %d", MaxInvoiceSats), Fix: "send the amount in satoshis, e.g. 1000"}
	case len(memo) > MaxMemoLen:
		return invoices.Invoice{}, &field.Error{Field: "memo", Problem: fmt.Sprintf("is longer than %d bytes", MaxMemoLen), Fix: "shorten the memo"}
	case expiry < 0 || expiry > MaxInvoiceExpiry:
		return invoices.Invoice{}, &field.Error{Field: "expirySeconds", Problem: "must be 0 (one hour) to one year", Fix: "send the expiry in seconds, e.g. 3600"}
	}
	if expiry == 0 {
		expiry = DefaultInvoiceExpiry
	}
	return c.ln.AddInvoice(ctx, invoices.AddInvoiceRequest{AmountSats: amountSats, Memo: memo, Expiry: expiry})
}

// CheckInvoice returns the state of one of the node's invoices; the
// error wraps invoices.ErrNotFound for an unknown hash.
func (c *Consumer) CheckInvoice(ctx context.Context, h lntypes.Hash) (invoices.InvoiceStatus, error) {
	return c.ln.LookupInvoice(ctx, h)
}

// Balance reports the node's channel and on-chain funds.
func (c *Consumer) Balance(ctx context.Context) (invoices.Balance, error) {
	return c.ln.Balance(ctx)
}

// Budget is the budget state: limits and the current UTC day's usage.
type Budget struct {
	Limits storage.BudgetLimits
	Usage  storage.BudgetUsage
}

// Budget returns the limits and today's (UTC) usage.
func (c *Consumer) Budget(ctx context.Context) (Budget, error) {
	l, _, err := c.store.BudgetLimits(ctx)
	if err != nil {
		return Budget{}, err
	}
	u, err := c.store.BudgetUsage(ctx, c.cfg.Now())
	if err != nil {
		return Budget{}, err
	}
	return Budget{Limits: l, Usage: u}, nil
}

// BudgetUpdate changes some limits; nil fields are left as they are.
type BudgetUpdate struct {
	PerPaymentSats, PerDaySats, PerDomainSats *int64
	UnapprovedPerHourSats                     *int64
	AllowDomains, DenyDomains                 *[]string
}

// SetBudget applies an update to the stored limits and returns the result.
// Domain patterns are checked and lower-cased.
func (c *Consumer) SetBudget(ctx context.Context, u BudgetUpdate) (Budget, error) {
	// One update at a time, so that two partial updates both land.
	c.budgetMu.Lock()
	defer c.budgetMu.Unlock()
	old, found, err := c.store.BudgetLimits(ctx)
	if err != nil {
		return Budget{}, err
	}
	l := old
	l.AllowDomains, l.DenyDomains = slices.Clone(old.AllowDomains), slices.Clone(old.DenyDomains)
	for _, f := range []struct {
		name string
		src  *int64
		dst  *int64
	}{{storage.LimitPerPayment, u.PerPaymentSats, &l.PerPaymentSats}, {storage.LimitPerDay, u.PerDaySats, &l.PerDaySats}, {storage.LimitPerDomain, u.PerDomainSats, &l.PerDomainSats},
		{storage.LimitUnapproved, u.UnapprovedPerHourSats, &l.UnapprovedPerHourSats}} {
		if f.src == nil {
			continue
		}
		if *f.src < 0 || *f.src > storage.MaxBudgetSats {
			return Budget{}, &field.Error{Field: f.name, Problem: fmt.Sprintf("must be 0 (no limit) to %d", int64(storage.MaxBudgetSats)), Fix: "send a whole number of sats"}
		}
		*f.dst = *f.src
	}
	for _, f := range []struct {
		name string
		src  *[]string
		dst  *[]string
	}{{"allowDomains", u.AllowDomains, &l.AllowDomains}, {"denyDomains", u.DenyDomains, &l.DenyDomains}} {
		if f.src == nil {
			continue
		}
		if len(*f.src) > storage.MaxDomainListLen {
			return Budget{}, &field.Error{Field: f.name, Problem: fmt.Sprintf("lists more than %d domains", storage.MaxDomainListLen), Fix: "use wildcards such as *.example.com"}
		}
		list := make([]string, 0, len(*f.src))
		for _, s := range *f.src {
			p, err := ParseDomainPattern(s)
			if err != nil {
				return Budget{}, &field.Error{Field: f.name, Problem: err.Error(), Fix: "list host names such as api.example.com or *.example.com"}
			}
			list = append(list, p)
		}
		*f.dst = list
	}
	if found && slices.Equal(l.AllowDomains, old.AllowDomains) && slices.Equal(l.DenyDomains, old.DenyDomains) &&
		l.PerPaymentSats == old.PerPaymentSats && l.PerDaySats == old.PerDaySats && l.PerDomainSats == old.PerDomainSats &&
		l.UnapprovedPerHourSats == old.UnapprovedPerHourSats {
		return c.Budget(ctx) // unchanged: nothing to write
	}
	if err := c.store.PutBudgetLimits(ctx, l); err != nil {
		return Budget{}, err
	}
	c.log.Info("budget changed", "per_payment_sats", l.PerPaymentSats, "per_day_sats", l.PerDaySats, "per_domain_sats", l.PerDomainSats, "unapproved_per_hour_sats", l.UnapprovedPerHourSats,
		"allow", l.AllowDomains, "deny", l.DenyDomains)
	return c.Budget(ctx)
}

// Payments lists the journal, newest first, with totals over the filter.
func (c *Consumer) Payments(ctx context.Context, f storage.PaymentFilter) ([]storage.Payment, storage.Cursor, storage.PaymentTotals, error) {
	return c.store.ListPayments(ctx, f)
}

// Payment returns one journal entry.
func (c *Consumer) Payment(ctx context.Context, h lntypes.Hash) (*storage.Payment, error) {
	return c.store.Payment(ctx, h)
}

// Tokens lists the cached tokens, origin filtering when not empty.
// Expired ones are listed too (Access skips them).
func (c *Consumer) Tokens(ctx context.Context, origin string) ([]storage.Token, error) {
	if origin != "" {
		return c.store.TokensForOrigin(ctx, origin)
	}
	return c.store.ListTokens(ctx)
}

// RemoveToken drops the cached tokens bought with payment hash h; the
// error wraps storage.ErrNotFound when there is none.
func (c *Consumer) RemoveToken(ctx context.Context, h lntypes.Hash) (int, error) {
	n, err := c.store.DeleteTokensByHash(ctx, h)
	if err == nil && n == 0 {
		err = fmt.Errorf("consumer: no cached token with payment hash %s: %w", h, storage.ErrNotFound)
	}
	return n, err
}
