package consumer

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/l402d/l402d/invoices"
	"github.com/l402d/l402d/plugin/field"
)

// ErrPolicy: a payment was refused by policy (as opposed to the budget,
// which refuses with storage.ErrBudgetExceeded). Errors are *PolicyError.
var ErrPolicy = errors.New("refused by policy")

// PolicyError says why a payment or a target was refused: a short code,
// the request field it concerns and how to fix it.
type PolicyError struct {
	// Code is one of amountless_invoice, invoice_expired, wrong_network,
	// invalid_invoice, price_above_max, price_mismatch, hash_mismatch,
	// invalid_macaroon, token_expired, domain_denied, domain_not_allowed,
	// domain_unknown, approval_required, private_target, and for MPP and
	// x402 offers challenge_expired, offer_mismatch, offer_too_large.
	Code    string
	Field   string
	Problem string
	Fix     string
	err     error // what errors.Is also matches, besides ErrPolicy
}

func (e *PolicyError) Error() string {
	if e.Field == "" {
		return "refused: " + e.Problem
	}
	return "refused: " + e.Field + " " + e.Problem
}

// Is makes errors.Is(err, ErrPolicy) true, and ErrPrivateTarget for
// private_target.
func (e *PolicyError) Is(target error) bool {
	return target == ErrPolicy || (e.err != nil && target == e.err)
}

// offerTerms is what policy judges about an invoice before it is paid.
type offerTerms struct {
	invoice invoices.DecodedInvoice
	// advertisedSats are the prices the seller stated elsewhere (the
	// challenge body, the token's amount caveat); zero entries are
	// absent. Each must equal the invoice amount.
	advertisedSats []int64
	// maxMsat is the caller's cap; 0 for none.
	maxMsat int64
}

// capMsat combines a caller's cap in sats (what people and programs
// send) with one in msat (an approved exact price): the lower of those
// set, 0 for none.
func capMsat(maxSats, maxMsat int64) int64 {
	c := int64(0)
	if maxSats > 0 {
		c = satMul(maxSats)
	}
	if maxMsat > 0 && (c == 0 || maxMsat < c) {
		c = maxMsat
	}
	return c
}

// satMul converts sats to msat without overflowing.
func satMul(sats int64) int64 {
	if sats > math.MaxInt64/1000 {
		return math.MaxInt64
	}
	return sats * 1000
}

// checkOffer applies the invoice rules: no amountless, expired or
// (already decoded, so caught earlier) wrong-network invoice, the amount
// equal to every advertised price, and not above maxMsat.
func checkOffer(o offerTerms, now time.Time) error {
	inv := o.invoice
	if inv.AmountMsat <= 0 {
		return &PolicyError{Code: "amountless_invoice", Field: "invoice", Problem: "has no amount; l402d never pays an amount the seller did not fix",
			Fix: "ask the seller for an invoice with an amount"}
	}
	if inv.Expired(now) {
		return &PolicyError{Code: "invoice_expired", Field: "invoice", Problem: "expired at " + inv.ExpiresAt.UTC().Format(time.RFC3339),
			Fix: "request the resource again for a fresh challenge"}
	}
	for _, adv := range o.advertisedSats {
		if adv > 0 && inv.AmountMsat != adv*1000 {
			return &PolicyError{Code: "price_mismatch", Field: "invoice",
				Problem: fmt.Sprintf("asks %s sat but the seller advertised %d sat", fmtMsat(inv.AmountMsat), adv),
				Fix:     "do not pay this challenge: the invoice does not match the stated price"}
		}
	}
	if o.maxMsat > 0 && inv.AmountMsat > o.maxMsat {
		return &PolicyError{Code: "price_above_max", Field: "maxSats",
			Problem: fmt.Sprintf("is %s sat but the price is %s sat", fmtMsat(o.maxMsat), fmtMsat(inv.AmountMsat)),
			Fix:     fmt.Sprintf("raise maxSats to at least %d to pay it", (inv.AmountMsat+999)/1000)}
	}
	return nil
}

// invoiceError turns a decoding error into a policy or field error.
func invoiceError(name string, err error) error {
	if errors.Is(err, invoices.ErrWrongNetwork) {
		return &PolicyError{Code: "wrong_network", Field: name, Problem: "is for another network: " + err.Error(),
			Fix: "pay only invoices of the network this node runs on", err: invoices.ErrWrongNetwork}
	}
	return &field.Error{Field: name, Problem: "is not a valid BOLT 11 invoice: " + err.Error(), Fix: "send the payment request exactly as received (lnbc…)"}
}

// ParseDomainPattern checks one allow/deny list entry: a host name
// ("api.example.com") or a wildcard for its subdomains ("*.example.com"),
// and returns it in lower case.
func ParseDomainPattern(s string) (string, error) {
	p := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
	host := strings.TrimPrefix(p, "*.")
	if host == "" || len(p) > 253 {
		return "", fmt.Errorf("domain pattern %q is empty or too long", s)
	}
	for _, c := range host {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.', c == '_', c == ':', c == '[', c == ']':
		default:
			return "", fmt.Errorf("domain pattern %q: want a host name such as api.example.com or *.example.com, without scheme, port or path", s)
		}
	}
	if strings.Contains(host, "..") || strings.HasPrefix(host, ".") || strings.HasSuffix(host, ".") {
		return "", fmt.Errorf("domain pattern %q has an empty label", s)
	}
	return p, nil
}

// DomainMatches reports whether domain (lower case) matches pattern: equal
// to it, or for "*.example.com" a subdomain of example.com (not
// example.com itself).
func DomainMatches(pattern, domain string) bool {
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(domain, "."+rest)
	}
	return pattern == domain
}

// checkDomain applies the allow and deny lists: a denied domain is
// refused, and with a non-empty allow list so is every domain not on it,
// and an unknown one ("": no URL was given).
func checkDomain(allow, deny []string, domain string) error {
	if domain == "" {
		if len(allow) == 0 {
			return nil
		}
		return &PolicyError{Code: "domain_unknown", Field: "url", Problem: "is not given, so the domain paid is unknown, and the allow list only pays the domains on it",
			Fix: "send the url of the resource the challenge or invoice is for"}
	}
	for _, p := range deny {
		if DomainMatches(p, domain) {
			return &PolicyError{Code: "domain_denied", Field: "url", Problem: fmt.Sprintf("is on %s, which the deny list refuses (%s)", domain, p),
				Fix: "the node runner can change the list with l402cli budget set --deny-domain"}
		}
	}
	if len(allow) == 0 {
		return nil
	}
	for _, p := range allow {
		if DomainMatches(p, domain) {
			return nil
		}
	}
	return &PolicyError{Code: "domain_not_allowed", Field: "url", Problem: fmt.Sprintf("is on %s, which is not on the allow list", domain),
		Fix: "the node runner can add it with l402cli budget set --allow-domain"}
}

// fmtMsat renders msat as sats, with decimals only when needed.
func fmtMsat(msat int64) string {
	if msat%1000 == 0 {
		return fmt.Sprint(msat / 1000)
	}
	return strings.TrimRight(fmt.Sprintf("%.3f", float64(msat)/1000), "0")
}
