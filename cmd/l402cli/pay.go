package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/l402d/l402d/plugin/apiclient"
)

func payCommand() *cli.Command {
	return &cli.Command{
		Name:      "pay",
		Usage:     "pay an invoice, or an L402 challenge (with --macaroon or --challenge) and print its token",
		ArgsUsage: "[flags] [INVOICE]",
		Description: "Pays through the node's LND with the journal and the budget. A hash the journal holds as paid\n" +
			"is not paid again. Prints the preimage, and for a challenge the ready Authorization value.\n\n" + exitCodesHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "macaroon", Usage: "the challenge's `MACAROON` (base64): pay INVOICE as an L402 challenge"},
			&cli.StringFlag{Name: "challenge", Usage: "a whole WWW-Authenticate `VALUE`: L402 macaroon=\"…\", invoice=\"…\""},
			&cli.StringFlag{Name: "url", Usage: "the `URL` the challenge or invoice is for: its domain's budget and the allow/deny lists apply (without it the domain is unknown, refused under an allow list), and a token is cached for it"},
			&cli.Int64Flag{Name: "max-cost", Usage: "refuse to pay more than `SATS` (0: only the budget limits)"},
		},
		Action: pay,
	}
}

func pay(c *cli.Context) error {
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	inv := c.Args().First()
	if c.NArg() > 1 {
		return fail(exitUsage, "want at most one INVOICE (flags go before it)")
	}
	if c.IsSet("macaroon") || c.IsSet("challenge") {
		req := apiclient.PayChallengeRequest{Invoice: inv, Macaroon: c.String("macaroon"), Challenge: c.String("challenge"),
			URL: c.String("url"), MaxSats: c.Int64("max-cost")}
		res, err := call(cl, spendKey, func(ctx context.Context, api *apiclient.Client) (*apiclient.PayChallengeResult, error) {
			return api.PayChallenge(ctx, req)
		})
		if err != nil {
			return err
		}
		return show(cl, res, func(res *apiclient.PayChallengeResult) {
			auth := ""
			if res.Token != nil {
				auth = res.Token.Authorization
			}
			printPayment(cl, res.Payment, "authorization", auth)
		})
	}
	if inv == "" {
		return fail(exitUsage, "want an INVOICE, or --challenge")
	}
	req := apiclient.PayInvoiceRequest{Invoice: inv, MaxSats: c.Int64("max-cost"), URL: c.String("url")}
	p, err := call(cl, spendKey, func(ctx context.Context, api *apiclient.Client) (*apiclient.PaymentInfo, error) {
		return api.PayInvoice(ctx, req)
	})
	if err != nil {
		return err
	}
	return show(cl, p, func(p *apiclient.PaymentInfo) { printPayment(cl, p) })
}

// printPayment prints a payment, and extra label, value pairs.
func printPayment(cl *client, p *apiclient.PaymentInfo, extra ...string) {
	if p == nil {
		p = &apiclient.PaymentInfo{}
	}
	state := p.State
	if p.AlreadyPaid {
		state += " (paid earlier; nothing paid now)"
	}
	cl.fields(append([]string{"payment hash", p.PaymentHash, "state", state, "amount", fmt.Sprintf("%d sat", p.AmountSats),
		"routing fee", fmtMsat(p.FeeMsat) + " sat", "preimage", p.Preimage}, extra...)...)
}
