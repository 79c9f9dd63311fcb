package consumer

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/l402d/l402d/storage"
)

func TestBudgetDomain(t *testing.T) {
	for host, want := range map[string]string{
		"api.example.com": "example.com", "www.example.com": "example.com", "example.com": "example.com",
		"a.b.example.co.uk": "example.co.uk", "EXAMPLE.com.": "example.com", "localhost": "localhost",
		"127.0.0.1": "127.0.0.1", "::1": "::1", "co.uk": "co.uk", "": "",
	} {
		if got := BudgetDomain(host); got != want {
			t.Errorf("BudgetDomain(%q) = %q, want %q", host, got, want)
		}
	}
}

// TestSpendPolicy: the one spend policy every path calls, over its
// inputs: lists, an unknown domain, per-domain budgets by registrable
// domain, and the rolling unapproved-spend cap.
func TestSpendPolicy(t *testing.T) {
	type spent struct {
		domain   string
		sats     int64
		approved bool
	}
	tests := []struct {
		name     string
		limits   storage.BudgetLimits
		before   []spent
		url      string // "" for none
		sats     int64
		approved bool
		code     string // refusal code, "" to pay
	}{
		{"no lists, no url", storage.BudgetLimits{}, nil, "", 30, false, ""},
		{"allow list, no url: unknown domain", storage.BudgetLimits{AllowDomains: []string{"example.com"}}, nil, "", 30, false, "domain_unknown"},
		{"deny list, no url", storage.BudgetLimits{DenyDomains: []string{"example.com"}}, nil, "", 30, false, ""},
		{"allowed host", storage.BudgetLimits{AllowDomains: []string{"*.example.com"}}, nil, "https://api.example.com/x", 30, false, ""},
		{"host not allowed", storage.BudgetLimits{AllowDomains: []string{"*.example.com"}}, nil, "https://example.org/x", 30, false, "domain_not_allowed"},
		{"denied host", storage.BudgetLimits{DenyDomains: []string{"*.example.com"}}, nil, "https://api.example.com/x", 30, false, "domain_denied"},
		{"subdomains share the domain budget", storage.BudgetLimits{PerDomainSats: 100}, []spent{{"example.com", 80, true}},
			"https://www.example.com/x", 30, true, "budget_exceeded"},
		{"other domain has its own budget", storage.BudgetLimits{PerDomainSats: 100}, []spent{{"example.com", 80, true}},
			"https://example.org/x", 30, true, ""},
		{"unapproved under the cap", storage.BudgetLimits{UnapprovedPerHourSats: 100}, []spent{{"a.example", 40, false}}, "https://b.example/x", 30, false, ""},
		{"unapproved over the cap", storage.BudgetLimits{UnapprovedPerHourSats: 100}, []spent{{"a.example", 40, false}, {"b.example", 40, false}},
			"https://c.example/x", 30, false, "approval_required"},
		{"unapproved over the cap, no url", storage.BudgetLimits{UnapprovedPerHourSats: 100}, []spent{{"", 80, false}}, "", 30, false, "approval_required"},
		{"approved over the cap", storage.BudgetLimits{UnapprovedPerHourSats: 100}, []spent{{"a.example", 90, false}}, "https://c.example/x", 30, true, ""},
		{"approved payments leave the cap free", storage.BudgetLimits{UnapprovedPerHourSats: 100}, []spent{{"a.example", 90, true}}, "https://c.example/x", 30, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := newFakeLN()
			ln.feeMsat = 0
			c, st := newTestConsumer(t, ln, func(cfg *Config) { cfg.MinFeeLimitSats = 10 })
			if err := st.PutBudgetLimits(t.Context(), tt.limits); err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.before {
				_, h := newPreimage()
				p := &storage.Payment{PaymentHash: h, Kind: storage.KindInvoice, Invoice: "lnbcrt1", AmountMsat: (s.sats - 10) * 1000,
					FeeLimitMsat: 10_000, Domain: s.domain, Approved: s.approved}
				if _, err := st.ReservePayment(t.Context(), p); err != nil {
					t.Fatal(err)
				}
			}
			var target *url.URL
			if tt.url != "" {
				target = mustURL(t, tt.url)
			}
			err := c.checkSpend(t.Context(), spendFor(target, (tt.sats-10)*1000, 10_000, tt.approved))
			got := ""
			if r := RefusalOf(err); r != nil {
				got = r.Code
			} else if err != nil {
				t.Fatal(err)
			}
			if got != tt.code {
				t.Fatalf("got %q (%v), want %q", got, err, tt.code)
			}
			if tt.code == "approval_required" && !errors.Is(err, ErrApprovalRequired) {
				t.Fatalf("%v is not ErrApprovalRequired", err)
			}
		})
	}
}

// TestPayInvoiceSpendPolicy: pay invoice goes through the same policy:
// without a url its domain is unknown, refused under an allow list; with
// one it counts against that domain.
func TestPayInvoiceSpendPolicy(t *testing.T) {
	ln := newFakeLN()
	c, st := newTestConsumer(t, ln)
	if err := st.PutBudgetLimits(t.Context(), storage.BudgetLimits{AllowDomains: []string{"*.example.com"}}); err != nil {
		t.Fatal(err)
	}
	pre, h := newPreimage()
	ln.register(pre)
	inv := invoiceFor(t, regtest, h, 5_000, time.Hour)
	if _, err := c.PayInvoice(t.Context(), PayInvoiceRequest{Invoice: inv}); RefusalOf(err) == nil || RefusalOf(err).Code != "domain_unknown" || ln.payCount(h) != 0 {
		t.Fatalf("no url: %v", err)
	}
	if q, err := c.QuoteInvoice(t.Context(), PayInvoiceRequest{Invoice: inv}); err != nil || q.Refusal == nil || q.Refusal.Code != "domain_unknown" {
		t.Fatalf("quote without url: %+v %v", q, err)
	}
	p, err := c.PayInvoice(t.Context(), PayInvoiceRequest{Invoice: inv, URL: "https://api.example.com/x"})
	if err != nil || p.State != string(storage.PaymentSucceeded) {
		t.Fatalf("with url: %+v %v", p, err)
	}
	e, err := st.Payment(t.Context(), h)
	if err != nil || e.Domain != "example.com" {
		t.Fatalf("journal domain %q %v, want example.com", e.Domain, err)
	}
}

func FuzzBudgetDomain(f *testing.F) {
	for _, s := range []string{"api.example.com", "a.b.example.co.uk", "localhost", "127.0.0.1", "::1", "co.uk", "x..y", ".", "EXAMPLE.COM."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		d := BudgetDomain(host)
		h := strings.TrimRight(strings.ToLower(host), ".")
		if (h == "") != (d == "") || !strings.HasSuffix(h, d) || len(d) > len(h) {
			t.Fatalf("BudgetDomain(%q) = %q", host, d)
		}
		if d != "" && BudgetDomain(d) != d {
			t.Fatalf("BudgetDomain(%q) = %q, but of that %q", host, d, BudgetDomain(d))
		}
	})
}
