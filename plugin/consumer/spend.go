package consumer

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/l402d/l402d/storage"
)

// ErrApprovalRequired: a payment no person approved would go over the
// rolling unapproved-spend cap. Errors are *PolicyError with code
// approval_required; surfaces that can ask a person (MCP) ask, and pay
// once approved.
var ErrApprovalRequired = errors.New("approval required")

// spend is a payment about to be made, as every path puts it to the
// spend policy.
type spend struct {
	// host is the target's host name, "" when no URL is known (a
	// challenge or an invoice paid without one): an unknown domain.
	host string
	// domain is the budget domain: host's registrable domain.
	domain                   string
	amountMsat, feeLimitMsat int64
	// approved: a person approved this very payment.
	approved bool
}

// spendFor describes a payment for target (nil if none).
func spendFor(target *url.URL, amountMsat, feeLimitMsat int64, approved bool) spend {
	s := spend{amountMsat: amountMsat, feeLimitMsat: feeLimitMsat, approved: approved}
	if target != nil {
		s.host = Domain(target)
		s.domain = BudgetDomain(s.host)
	}
	return s
}

// checkSpend is the spend policy: the one check every path makes before
// paying (access, pay challenge and pay invoice, over REST, MCP and the
// CLI), and that quotes make to say what would happen. In order:
//
//   - the allow and deny lists, on the target's host; a payment without a
//     URL is for an unknown domain, refused when an allow list is set;
//   - the budgets: per payment, per UTC day, per registrable domain (so
//     api.example.com and www.example.com share example.com's);
//   - for a payment no person approved, the rolling unapproved-spend cap:
//     beyond it the payment is refused with approval_required.
//
// Reserving a payment checks the budgets again, atomically.
func (c *Consumer) checkSpend(ctx context.Context, s spend) error {
	limits, _, err := c.store.BudgetLimits(ctx)
	if err != nil {
		return err
	}
	if err := checkDomain(limits.AllowDomains, limits.DenyDomains, s.host); err != nil {
		return err
	}
	return spendError(c.store.CheckBudget(ctx, s.amountMsat, s.feeLimitMsat, s.domain, !s.approved))
}

// spendError turns the store's refusal under the unapproved-spend cap
// into the policy's approval_required; other errors pass as they are.
func spendError(err error) error {
	var be *storage.BudgetError
	if !errors.As(err, &be) || be.Limit != storage.LimitUnapproved {
		return err
	}
	return &PolicyError{Code: "approval_required", Field: "approval", Problem: be.Error(),
		Fix: "have a person approve it (an MCP client with elicitation asks them), wait for the hour to roll on, " +
			"or raise the cap with l402cli budget set --unapproved-per-hour-sats (admin key, from the node)",
		err: ErrApprovalRequired}
}

// BudgetDomain is the domain whose budget a host's payments count
// against: its registrable domain (public suffix list: api.example.com
// and www.example.com count as example.com, a.b.example.co.uk as
// example.co.uk). An IP address, or a name with no registrable domain
// (localhost, a bare public suffix), counts as itself.
func BudgetDomain(host string) string {
	host = strings.TrimRight(strings.ToLower(host), ".")
	if host == "" {
		return ""
	}
	if _, err := netip.ParseAddr(host); err == nil || strings.Contains(host, ":") {
		return host
	}
	d, err := publicsuffix.EffectiveTLDPlusOne(host)
	if err != nil {
		return host
	}
	return d
}
