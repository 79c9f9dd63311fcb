package plugin

import (
	"context"
	"time"

	"github.com/l402d/l402d/plugin/consumer"
	"github.com/l402d/l402d/plugin/dashboard"
	"github.com/l402d/l402d/storage"
)

// ConsumerConfig configures the spending side; zero values take the
// consumer package's defaults.
type ConsumerConfig struct {
	// Enable turns spending on: <datadir>/spend.key is created (0600) if
	// missing, and the consumer's REST endpoints and MCP tools answer to
	// it (and to the admin key). Off, the node pays nothing: those
	// endpoints answer 403 spending_disabled and MCP offers no consumer
	// tools. Payments interrupted while it was on are still finished.
	Enable bool
	// MinFeeLimitSats and MaxFeePercent set each payment's routing fee limit:
	// the larger of the two.
	MinFeeLimitSats int64
	MaxFeePercent   float64
	// PaymentTimeout bounds LND's attempts to pay one invoice.
	PaymentTimeout time.Duration
	// RequestTimeout bounds the wait for a target's response headers.
	RequestTimeout time.Duration
	// BodyTimeout bounds the reading of one response body;
	// BodyIdleTimeout the wait for its next bytes.
	BodyTimeout, BodyIdleTimeout time.Duration
	// MaxResponseBytes caps bodies returned inside JSON answers.
	MaxResponseBytes int64
	// AllowPrivate lets access and quote reach private and loopback
	// addresses.
	AllowPrivate bool
	// Budget's set fields replace the stored budget's at start; the
	// others keep their stored values (the defaults in a new data dir).
	Budget consumer.BudgetUpdate
	// SchemePreference orders the payment schemes paid with (see
	// consumer.Config); empty: the default.
	SchemePreference []string
	// SessionIdleClose closes held prepaid sessions unused this long (0:
	// never).
	SessionIdleClose time.Duration
}

// consumerParts are the consumer's pieces inside a Plugin.
type consumerParts struct {
	c *consumer.Consumer
}

// initConsumer builds the consumer, mounts its REST endpoints and adds
// the resumer of interrupted payments to the runners.
func (p *Plugin) initConsumer(ctx context.Context) error {
	cc := p.cfg.Consumer
	c, err := consumer.New(ctx, consumer.Config{
		Store: p.store, Backend: p.backend, Metrics: p.metrics, Logger: p.log.With("component", "consumer"),
		MinFeeLimitSats: cc.MinFeeLimitSats, MaxFeePercent: cc.MaxFeePercent, PaymentTimeout: cc.PaymentTimeout,
		RequestTimeout: cc.RequestTimeout, BodyTimeout: cc.BodyTimeout, BodyIdleTimeout: cc.BodyIdleTimeout, MaxResponseBytes: cc.MaxResponseBytes, AllowPrivate: cc.AllowPrivate,
		Budget: cc.Budget, UserAgent: "l402d/" + p.cfg.Version, SchemePreference: cc.SchemePreference,
		SessionIdleClose: cc.SessionIdleClose,
	})
	if err != nil {
		return err
	}
	p.consumer.c = c
	p.API().MountConsumer(c)
	p.runners = append(p.runners, c.Run)
	p.spendingFn = func(ctx context.Context) (dashboard.Spending, error) { return spending(ctx, c) }
	return nil
}

// spending is today's (UTC) spending against the budget, for the
// dashboard.
func spending(ctx context.Context, c *consumer.Consumer) (dashboard.Spending, error) {
	b, err := c.Budget(ctx)
	if err != nil {
		return dashboard.Spending{}, err
	}
	_, _, tot, err := c.Payments(ctx, storage.PaymentFilter{Since: b.Usage.Day, Limit: 1})
	if err != nil {
		return dashboard.Spending{}, err
	}
	s := dashboard.Spending{Window: "UTC day", SpentSats: tot.AmountMsat / 1000, FeesSats: tot.FeeMsat / 1000,
		BudgetSats: b.Limits.PerDaySats, Payments: tot.Count, PerPaymentMax: b.Limits.PerPaymentSats}
	for _, d := range b.Usage.Domains {
		s.Domains = append(s.Domains, dashboard.DomainSpend{Domain: d.Domain, SpentSats: d.SpentMsat / 1000, BudgetSats: b.Limits.PerDomainSats})
	}
	return s, nil
}

// Consumer returns the consumer, for embedding programs and other
// surfaces (MCP).
func (p *Plugin) Consumer() *consumer.Consumer { return p.consumer.c }
