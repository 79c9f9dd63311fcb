package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/l402d/l402d/plugin/apiclient"
)

func tokensCommand() *cli.Command {
	return &cli.Command{
		Name:  "tokens",
		Usage: "list or remove cached L402 tokens",
		Subcommands: []*cli.Command{
			{
				Name: "list", Aliases: []string{"ls"}, Usage: "list cached tokens",
				Flags:  []cli.Flag{&cli.StringFlag{Name: "origin", Usage: "only those of `ORIGIN` (scheme://host[:port])"}},
				Action: listTokens,
			},
			{
				Name: "rm", Aliases: []string{"remove"}, Usage: "remove cached tokens by id", ArgsUsage: "ID...",
				Action: removeTokens,
			},
		},
	}
}

func listTokens(c *cli.Context) error {
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	out, err := call(cl, spendKey, func(ctx context.Context, api *apiclient.Client) (*apiclient.TokenList, error) {
		return api.Tokens(ctx, c.String("origin"))
	})
	if err != nil {
		return err
	}
	return show(cl, out, func(out *apiclient.TokenList) {
		rows := [][]string{}
		for _, t := range out.Tokens {
			exp := "never"
			if !t.ExpiresAt.IsZero() {
				exp = fmtTime(t.ExpiresAt)
			}
			if t.Expired {
				exp += " (expired)"
			}
			rows = append(rows, []string{t.ID, t.Origin, t.Scope, strconv.FormatInt(t.AmountSats, 10), fmtTime(t.CreatedAt), exp})
		}
		cl.table([]string{"ID", "ORIGIN", "SCOPE", "PAID (SAT)", "BOUGHT", "EXPIRES"}, rows)
	})
}

func removeTokens(c *cli.Context) error {
	if c.NArg() == 0 {
		return fail(exitUsage, "want one or more token IDs (from l402cli tokens list)")
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	for _, id := range c.Args().Slice() {
		out, err := call(cl, spendKey, func(ctx context.Context, api *apiclient.Client) (*apiclient.TokenRemoved, error) {
			return api.RemoveToken(ctx, id)
		})
		if err != nil {
			return err
		}
		_ = show(cl, out, func(*apiclient.TokenRemoved) { fmt.Fprintln(cl.stdout, "removed", id) })
	}
	return nil
}
