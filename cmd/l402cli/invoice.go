package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/l402d/l402d/plugin/apiclient"
)

func invoiceCommand() *cli.Command {
	return &cli.Command{
		Name:  "invoice",
		Usage: "create or look up an invoice of the node",
		Subcommands: []*cli.Command{
			{
				Name: "create", Usage: "create an invoice", ArgsUsage: "[flags] AMOUNT_SATS",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "memo", Usage: "description"},
					&cli.DurationFlag{Name: "expiry", Value: time.Hour, Usage: "how long it can be paid"},
				},
				Action: func(c *cli.Context) error {
					amt, err := strconv.ParseInt(c.Args().First(), 10, 64)
					if c.NArg() != 1 || err != nil {
						return fail(exitUsage, "want one AMOUNT_SATS, a whole number")
					}
					req := apiclient.CreateInvoiceRequest{AmountSats: amt, Memo: c.String("memo"), ExpirySeconds: int64(c.Duration("expiry") / time.Second)}
					return showInvoice(c, func(ctx context.Context, api *apiclient.Client) (*apiclient.Invoice, error) {
						return api.CreateInvoice(ctx, req)
					})
				},
			},
			{
				Name: "lookup", Usage: "show an invoice's state", ArgsUsage: "PAYMENT_HASH",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return fail(exitUsage, "want one PAYMENT_HASH")
					}
					return showInvoice(c, func(ctx context.Context, api *apiclient.Client) (*apiclient.Invoice, error) {
						return api.LookupInvoice(ctx, c.Args().First())
					})
				},
			},
		},
	}
}

// showInvoice makes the call and prints the invoice it answers.
func showInvoice(c *cli.Context, get func(context.Context, *apiclient.Client) (*apiclient.Invoice, error)) error {
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	inv, err := call(cl, spendKey, get)
	if err != nil {
		return err
	}
	return show(cl, inv, func(inv *apiclient.Invoice) {
		cl.fields("payment hash", inv.PaymentHash, "state", inv.State, "amount", fmt.Sprintf("%d sat", inv.AmountSats),
			"paid", fmt.Sprintf("%d sat", inv.AmountPaidSats), "memo", inv.Memo, "created", fmtOptTime(inv.CreatedAt),
			"expires", fmtOptTime(inv.ExpiresAt), "settled", fmtOptTime(inv.SettledAt), "invoice", inv.Invoice)
	})
}
