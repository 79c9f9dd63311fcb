package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/l402d/l402d/plugin/apiclient"
)

// quote shows what get would pay (get --dry-run).
func quote(cl *client, req apiclient.AccessRequest) error {
	q, err := call(cl, spendKey, func(ctx context.Context, api *apiclient.Client) (*apiclient.Quote, error) {
		return api.Quote(ctx, req)
	})
	if err != nil {
		return err
	}
	code := exitOK
	if q.Refusal != nil {
		code = exitRefused
		switch q.Refusal.Code {
		case "no_l402_challenge", "no_manifest", "invalid_manifest":
			code = exitUpstream
		}
	}
	switch {
	case cl.json:
		cl.printJSON(q)
	case q.Manifest != nil:
		printManifest(cl, q.Manifest)
	default:
		printQuote(cl, q)
	}
	return &cliError{code: code}
}

// printManifest prints a service's price list.
func printManifest(cl *client, m *apiclient.Manifest) {
	fmt.Fprintf(cl.stdout, "%s\n", m.Name)
	rows := [][]string{}
	for _, e := range m.Entries {
		rows = append(rows, []string{e.Name, e.Method, e.Path, strconv.FormatInt(e.PriceSats, 10), e.Description})
	}
	cl.table([]string{"NAME", "METHOD", "PATH", "PRICE (SAT)", "DESCRIPTION"}, rows)
}

// printQuote prints a price and whether get would pay it.
func printQuote(cl *client, q *apiclient.Quote) {
	would := "yes"
	if !q.WouldPay {
		would = "no"
	}
	if !q.PaymentRequired {
		would = "nothing to pay"
	}
	cached := ""
	if q.CachedToken {
		cached = "yes: get would try it first and pay only if it is refused"
	}
	f := []string{"url", q.URL, "status", strconv.Itoa(q.Status)}
	if q.PaymentRequired {
		f = append(f, "price", fmt.Sprintf("%d sat (routing fee limit %d sat)", q.PriceSats, q.FeeLimitSats), "description", q.Description,
			"payment hash", q.PaymentHash, "invoice expires", fmtOptTime(q.InvoiceExpiresAt), "service", q.Service, "token scope", q.Scope,
			"token expires", fmtOptTime(q.TokenExpiresAt))
	}
	f = append(f, "cached token", cached, "would pay", would)
	if q.Refusal != nil {
		f = append(f, "refused", q.Refusal.Problem+" ["+q.Refusal.Code+"]", "fix", q.Refusal.Fix)
	}
	cl.fields(f...)
}
