package main

import (
	"fmt"
	"slices"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"

	"github.com/l402d/l402d/plugin"
	"github.com/l402d/l402d/plugin/consumer"
	"github.com/l402d/l402d/storage"
)

// consumerFlags are the spending side's flags.
func consumerFlags() []cli.Flag {
	const budgetDefault = "the stored value; in a new data dir "
	return []cli.Flag{
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "consumer.enable", EnvVars: []string{"L402D_CONSUMER_ENABLE"},
			Usage: "let this node spend: creates <datadir>/spend.key (0600), the only key besides admin.key that the consumer endpoints, the MCP consumer tools and l402cli's spend commands accept (off: the node pays nothing)"}),
		altsrc.NewInt64Flag(&cli.Int64Flag{Name: "consumer.min-fee-limit-sats", Aliases: []string{"consumer.max-fee-sats"},
			EnvVars: []string{"L402D_CONSUMER_MIN_FEE_LIMIT_SATS", "L402D_CONSUMER_MAX_FEE_SATS"}, Value: consumer.DefaultMinFeeLimitSats,
			Usage: "the least routing fee limit of a payment, in sats: a payment may spend on fees the larger of this and --consumer.max-fee-percent of its amount, so small payments can still route (--consumer.max-fee-sats is its old name)"}),
		altsrc.NewFloat64Flag(&cli.Float64Flag{Name: "consumer.max-fee-percent", EnvVars: []string{"L402D_CONSUMER_MAX_FEE_PERCENT"}, Value: consumer.DefaultMaxFeePercent,
			Usage: "routing fee limit of a payment, in percent of its amount (see --consumer.min-fee-limit-sats)"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "consumer.payment-timeout", EnvVars: []string{"L402D_CONSUMER_PAYMENT_TIMEOUT"}, Value: consumer.DefaultPaymentTimeout,
			Usage: "how long LND may try to pay one invoice; a payment still in flight after it is resumed in the background"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "consumer.request-timeout", EnvVars: []string{"L402D_CONSUMER_REQUEST_TIMEOUT"}, Value: consumer.DefaultRequestTimeout,
			Usage: "how long to wait for a target's response headers"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "consumer.body-timeout", EnvVars: []string{"L402D_CONSUMER_BODY_TIMEOUT"}, Value: consumer.DefaultBodyTimeout,
			Usage: "how long reading one target's response body may take in all; past it the body is cut off (a payment made stays recorded, its token cached)"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "consumer.body-idle-timeout", EnvVars: []string{"L402D_CONSUMER_BODY_IDLE_TIMEOUT"}, Value: consumer.DefaultBodyIdleTimeout,
			Usage: "longest wait for the next bytes of a target's response body; past it the body is cut off"}),
		altsrc.NewInt64Flag(&cli.Int64Flag{Name: "consumer.max-response-bytes", EnvVars: []string{"L402D_CONSUMER_MAX_RESPONSE_BYTES"}, Value: consumer.DefaultMaxResponseBytes,
			Usage: "largest body returned inside a JSON access answer (streamed answers are not capped)"}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "consumer.session-idle-close", EnvVars: []string{"L402D_CONSUMER_SESSION_IDLE_CLOSE"}, Value: consumer.DefaultSessionIdleClose,
			Usage: "close a held prepaid session unused this long and collect its refund (0: keep sessions open until closed by hand)"}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "consumer.allow-private", EnvVars: []string{"L402D_CONSUMER_ALLOW_PRIVATE"},
			Usage: "let access and quote reach private, loopback and link-local addresses (off: only public hosts)"}),
		altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "consumer.schemes", EnvVars: []string{"L402D_CONSUMER_SCHEMES"},
			Value: cli.NewStringSlice(consumer.DefaultSchemePreference()...),
			Usage: "payment schemes to pay a 402 with, most preferred first, when it offers several: l402 (a reusable token), mpp (Payment auth scheme, single-use) and x402 (v2, lightning exact, single-use); a scheme left out is never used"}),
		altsrc.NewInt64Flag(&cli.Int64Flag{Name: "consumer.budget.per-payment-sats", EnvVars: []string{"L402D_CONSUMER_BUDGET_PER_PAYMENT_SATS"},
			DefaultText: fmt.Sprint(budgetDefault, storage.DefaultPerPaymentSats), Usage: "largest amount of one payment, fees excluded; 0: no limit"}),
		altsrc.NewInt64Flag(&cli.Int64Flag{Name: "consumer.budget.per-day-sats", EnvVars: []string{"L402D_CONSUMER_BUDGET_PER_DAY_SATS"},
			DefaultText: fmt.Sprint(budgetDefault, storage.DefaultPerDaySats), Usage: "most spent per UTC calendar day, fees included; 0: no limit"}),
		altsrc.NewInt64Flag(&cli.Int64Flag{Name: "consumer.budget.per-domain-sats", EnvVars: []string{"L402D_CONSUMER_BUDGET_PER_DOMAIN_SATS"},
			DefaultText: budgetDefault + "0", Usage: "most spent on one registrable domain (example.com with all its subdomains) per UTC calendar day, fees included; 0: no limit"}),
		altsrc.NewInt64Flag(&cli.Int64Flag{Name: "consumer.budget.unapproved-per-hour-sats", EnvVars: []string{"L402D_CONSUMER_BUDGET_UNAPPROVED_PER_HOUR_SATS"},
			DefaultText: fmt.Sprint(budgetDefault, storage.DefaultUnapprovedPerHourSats),
			Usage:       "most spent without a person's approval in any rolling hour, fee limits included; beyond it a payment needs approval (MCP asks the person; REST refuses with approval_required); 0: no cap"}),
		altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "consumer.budget.allow-domain", EnvVars: []string{"L402D_CONSUMER_BUDGET_ALLOW_DOMAIN"},
			DefaultText: "the stored list", Usage: "only pay these domains (example.com, *.example.com; repeatable; \"none\" clears the list)"}),
		altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "consumer.budget.deny-domain", EnvVars: []string{"L402D_CONSUMER_BUDGET_DENY_DOMAIN"},
			DefaultText: "the stored list", Usage: "never pay these domains (repeatable; \"none\" clears the list)"}),
	}
}

// applyConsumerFlags fills cfg.Consumer. Budget flags override the stored
// budget only when given (on the command line, in the environment or in
// the config file); budgets changed with l402cli budget set persist
// otherwise.
func applyConsumerFlags(c *cli.Context, cfg *plugin.Config) error {
	cc := plugin.ConsumerConfig{
		MinFeeLimitSats: c.Int64("consumer.min-fee-limit-sats"), MaxFeePercent: c.Float64("consumer.max-fee-percent"),
		PaymentTimeout: c.Duration("consumer.payment-timeout"), RequestTimeout: c.Duration("consumer.request-timeout"),
		BodyTimeout: c.Duration("consumer.body-timeout"), BodyIdleTimeout: c.Duration("consumer.body-idle-timeout"),
		MaxResponseBytes: c.Int64("consumer.max-response-bytes"), AllowPrivate: c.Bool("consumer.allow-private"),
		Enable: c.Bool("consumer.enable"), SessionIdleClose: c.Duration("consumer.session-idle-close"),
	}
	pref, err := consumer.ParseSchemePreference(slices.DeleteFunc(slices.Clone(c.StringSlice("consumer.schemes")), func(s string) bool { return s == "" }))
	if err != nil {
		return fmt.Errorf("--consumer.schemes: %w", err)
	}
	cc.SchemePreference = pref
	switch {
	case cc.MinFeeLimitSats < 0:
		return fmt.Errorf("--consumer.min-fee-limit-sats %d: want 0 or more", cc.MinFeeLimitSats)
	case cc.MaxFeePercent < 0 || cc.MaxFeePercent > 100:
		return fmt.Errorf("--consumer.max-fee-percent %v: want 0 to 100", cc.MaxFeePercent)
	case cc.BodyTimeout < 0:
		return fmt.Errorf("--consumer.body-timeout %s: want a positive duration such as 5m", cc.BodyTimeout)
	case cc.BodyIdleTimeout < 0:
		return fmt.Errorf("--consumer.body-idle-timeout %s: want a positive duration such as 30s", cc.BodyIdleTimeout)
	case cc.SessionIdleClose < 0:
		return fmt.Errorf("--consumer.session-idle-close %s: want 0 (never) or a duration such as 1h", cc.SessionIdleClose)
	case cc.MaxResponseBytes < 0:
		return fmt.Errorf("--consumer.max-response-bytes %d: want 0 or more", cc.MaxResponseBytes)
	}
	for _, f := range []struct {
		name string
		dst  **int64
	}{
		{"consumer.budget.per-payment-sats", &cc.Budget.PerPaymentSats},
		{"consumer.budget.per-day-sats", &cc.Budget.PerDaySats},
		{"consumer.budget.per-domain-sats", &cc.Budget.PerDomainSats},
		{"consumer.budget.unapproved-per-hour-sats", &cc.Budget.UnapprovedPerHourSats},
	} {
		if c.IsSet(f.name) {
			n := c.Int64(f.name)
			if n < 0 {
				return fmt.Errorf("--%s %d: want 0 (no limit) or more", f.name, n)
			}
			*f.dst = &n
		}
	}
	for _, f := range []struct {
		name string
		dst  **[]string
	}{
		{"consumer.budget.allow-domain", &cc.Budget.AllowDomains},
		{"consumer.budget.deny-domain", &cc.Budget.DenyDomains},
	} {
		if !c.IsSet(f.name) {
			continue
		}
		list := slices.DeleteFunc(slices.Clone(c.StringSlice(f.name)), func(s string) bool { return s == "" || s == "none" })
		for _, s := range list {
			if _, err := consumer.ParseDomainPattern(s); err != nil {
				return fmt.Errorf("--%s: %w", f.name, err)
			}
		}
		*f.dst = &list
	}
	cfg.Consumer = cc
	return nil
}
