package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/l402d/l402d/plugin"
)

// parseConfig runs the app's flag parsing on args and returns the Config.
func parseConfig(t *testing.T, args ...string) plugin.Config {
	t.Helper()
	app := newApp()
	var cfg plugin.Config
	app.Action = func(c *cli.Context) error {
		var err error
		cfg, err = configFrom(c, slog.New(slog.DiscardHandler))
		return err
	}
	if err := app.Run(append([]string{"l402d"}, args...)); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestConsumerFlags(t *testing.T) {
	cfg := parseConfig(t)
	if cc := cfg.Consumer; cc.MinFeeLimitSats != 10 || cc.MaxFeePercent != 1 || cc.PaymentTimeout != time.Minute || cc.AllowPrivate ||
		cc.Budget.PerDaySats != nil || cc.Budget.AllowDomains != nil {
		t.Fatalf("defaults: %+v", cc)
	}

	cfg = parseConfig(t, "--consumer.allow-private", "--consumer.min-fee-limit-sats", "3", "--consumer.budget.per-day-sats", "0",
		"--consumer.budget.deny-domain", "Bad.example", "--consumer.budget.allow-domain", "none")
	cc := cfg.Consumer
	if !cc.AllowPrivate || cc.MinFeeLimitSats != 3 || cc.Budget.PerDaySats == nil || *cc.Budget.PerDaySats != 0 || cc.Budget.PerPaymentSats != nil ||
		len(*cc.Budget.DenyDomains) != 1 || cc.Budget.AllowDomains == nil || len(*cc.Budget.AllowDomains) != 0 {
		t.Fatalf("flags: %+v", cc)
	}

	if got := strings.Join(parseConfig(t).Consumer.SchemePreference, ","); got != "l402,mpp,x402" {
		t.Fatalf("default schemes %q", got)
	}
	if got := strings.Join(parseConfig(t, "--consumer.schemes", "MPP", "--consumer.schemes", "x402").Consumer.SchemePreference, ","); got != "mpp,x402" {
		t.Fatalf("--consumer.schemes mpp x402: %q", got)
	}

	// The old name of the fee floor still works, on the command line and
	// in the environment.
	if cc := parseConfig(t, "--consumer.max-fee-sats", "4").Consumer; cc.MinFeeLimitSats != 4 {
		t.Fatalf("--consumer.max-fee-sats 4: MinFeeLimitSats %d", cc.MinFeeLimitSats)
	}
	t.Setenv("L402D_CONSUMER_MAX_FEE_SATS", "6")
	if cc := parseConfig(t).Consumer; cc.MinFeeLimitSats != 6 {
		t.Fatalf("L402D_CONSUMER_MAX_FEE_SATS=6: MinFeeLimitSats %d", cc.MinFeeLimitSats)
	}

	t.Setenv("L402D_CONSUMER_BUDGET_PER_PAYMENT_SATS", "77")
	t.Setenv("L402D_CONSUMER_PAYMENT_TIMEOUT", "5s")
	if cc := parseConfig(t).Consumer; cc.Budget.PerPaymentSats == nil || *cc.Budget.PerPaymentSats != 77 || cc.PaymentTimeout != 5*time.Second {
		t.Fatalf("env: %+v", cc)
	}

	yaml := filepath.Join(t.TempDir(), "l402d.yaml")
	if err := os.WriteFile(yaml, []byte("consumer.allow-private: true\nconsumer.max-fee-percent: 0.5\nconsumer.budget.per-domain-sats: 42\n"+
		"consumer.budget.allow-domain:\n  - '*.example.com'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cc = parseConfig(t, "--config", yaml).Consumer
	if !cc.AllowPrivate || cc.MaxFeePercent != 0.5 || cc.Budget.PerDomainSats == nil || *cc.Budget.PerDomainSats != 42 ||
		cc.Budget.AllowDomains == nil || (*cc.Budget.AllowDomains)[0] != "*.example.com" {
		t.Fatalf("config file: %+v", cc)
	}
}

func TestConsumerFlagsRejected(t *testing.T) {
	for _, args := range [][]string{
		{"--consumer.max-fee-percent", "101"},
		{"--consumer.budget.per-day-sats", "-1"},
		{"--consumer.budget.deny-domain", "https://x/y"},
	} {
		app := newApp()
		app.Action = func(c *cli.Context) error {
			_, err := configFrom(c, slog.New(slog.DiscardHandler))
			return err
		}
		if err := app.Run(append([]string{"l402d"}, args...)); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
