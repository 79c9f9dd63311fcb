package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/l402d/l402d/plugin/apiclient"
)

// quoteCommand is get --dry-run under its own name.
func quoteCommand() *cli.Command {
	return &cli.Command{
		Name:      "quote",
		Usage:     "show a URL's price and whether get would pay it, paying nothing (get --dry-run)",
		ArgsUsage: "[flags] URL",
		Description: "A URL ending in /.well-known/l402.json (the L402 discovery manifest) or openapi.json (its\n" +
			"OpenAPI profile) prints the seller's price list, its node key and its quote endpoint.\n\n" + exitCodesHelp,
		Flags: requestFlags("say whether get would refuse a price above `SATS`"),
		Action: func(c *cli.Context) error {
			cl, req, err := requestOf(c, "quote")
			if err != nil {
				return err
			}
			return quote(cl, req)
		},
	}
}

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
	fmt.Fprintf(cl.stdout, "%s (%s)\n", m.Name, m.Format)
	if m.NodePubkey != "" {
		fmt.Fprintf(cl.stdout, "node %s\n", m.NodePubkey)
	}
	if m.QuoteEndpoint != "" {
		fmt.Fprintf(cl.stdout, "quote endpoint %s\n", m.QuoteEndpoint)
	}
	rows := [][]string{}
	for _, e := range m.Entries {
		rows = append(rows, []string{e.Name, e.Method, e.Path, manifestPrice(e), e.Description})
	}
	cl.table([]string{"NAME", "METHOD", "PATH", "PRICE (SAT)", "DESCRIPTION"}, rows)
}

// manifestPrice shows an entry's price: a formula's is where it starts,
// a dynamic one comes from the quote endpoint.
func manifestPrice(e apiclient.ManifestEntry) string {
	switch e.PricingModel {
	case "formula":
		return "from " + strconv.FormatInt(e.PriceSats, 10)
	case "dynamic":
		return "ask (dynamic)"
	}
	return strconv.FormatInt(e.PriceSats, 10)
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
