package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/l402d/l402d/plugin/apiclient"
)

func paymentsCommand() *cli.Command {
	return &cli.Command{
		Name:  "payments",
		Usage: "list outgoing payments, newest first, with totals",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "state", Usage: "reserved, in_flight, succeeded or failed"},
			&cli.StringFlag{Name: "kind", Usage: "access, challenge or invoice"},
			&cli.StringFlag{Name: "domain", Usage: "only payments to `DOMAIN`"},
			&cli.StringFlag{Name: "since", Usage: "from `TIME` (RFC 3339 or unix seconds)"},
			&cli.StringFlag{Name: "until", Usage: "before `TIME`"},
			&cli.IntFlag{Name: "limit", Value: 50, Usage: "at most `N` payments"},
			&cli.StringFlag{Name: "after", Usage: "continue after this `CURSOR` (printed after a full page)"},
		},
		Action: payments,
	}
}

func payments(c *cli.Context) error {
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	f := apiclient.PaymentFilter{State: c.String("state"), Kind: c.String("kind"), Domain: c.String("domain"),
		Since: c.String("since"), Until: c.String("until"), Limit: c.Int("limit"), After: c.String("after")}
	out, err := call(cl, spendKey, func(ctx context.Context, api *apiclient.Client) (*apiclient.PaymentList, error) {
		return api.Payments(ctx, f)
	})
	if err != nil {
		return err
	}
	return show(cl, out, func(out *apiclient.PaymentList) { printPayments(cl, out) })
}

func printPayments(cl *client, out *apiclient.PaymentList) {
	rows := [][]string{}
	for _, p := range out.Payments {
		what := p.URL
		if what == "" {
			what = p.Domain
		}
		if p.FailureReason != "" {
			what += " (" + p.FailureReason + ")"
		}
		scheme := p.Scheme
		if scheme == "" {
			scheme = "-"
		}
		if p.Receipt != "" {
			scheme += "+receipt" // the receipt itself is in --json
		}
		rows = append(rows, []string{fmtTime(p.CreatedAt), p.State, p.Kind, scheme, fmtMsat(p.AmountMsat), fmtMsat(p.FeeMsat), short(p.PaymentHash, 16), what})
	}
	cl.table([]string{"TIME", "STATE", "KIND", "SCHEME", "AMOUNT (SAT)", "FEE (SAT)", "HASH", "FOR"}, rows)
	t := out.Totals
	fmt.Fprintf(cl.stdout, "\n%d payments: %d succeeded, %d failed, %d pending; paid %s sat + %s sat fees\n",
		t.Count, t.Succeeded, t.Failed, t.Pending, fmtMsat(t.AmountMsat), fmtMsat(t.FeeMsat))
	if out.Next != "" {
		fmt.Fprintf(cl.stdout, "more: l402cli payments --after %s\n", out.Next)
	}
}
