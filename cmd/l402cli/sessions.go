package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/l402d/l402d/plugin/apiclient"
)

func sessionsCommand() *cli.Command {
	return &cli.Command{
		Name:  "sessions",
		Usage: "list or close the prepaid sessions the node holds at sellers (opened by get --session)",
		Subcommands: []*cli.Command{
			{Name: "list", Aliases: []string{"ls"}, Usage: "list held sessions", Action: listSessions},
			{
				Name: "close", Usage: "close sessions and collect the unspent balance (the seller pays it to the node)", ArgsUsage: "ID...",
				Action: closeSessions,
			},
		},
	}
}

func listSessions(c *cli.Context) error {
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	out, err := call(cl, spendKey, func(ctx context.Context, api *apiclient.Client) (*apiclient.Sessions, error) {
		return api.Sessions(ctx)
	})
	if err != nil {
		return err
	}
	return show(cl, out, func(out *apiclient.Sessions) {
		rows := [][]string{}
		for _, s := range out.Sessions {
			rows = append(rows, []string{s.SessionID, s.Kind, s.Origin, s.State, msatString(s.DepositedMsat), msatString(s.BalanceMsat), msatString(s.RefundMsat)})
		}
		cl.table([]string{"ID", "KIND", "ORIGIN", "STATE", "DEPOSITED (SAT)", "BALANCE (SAT)", "REFUNDED (SAT)"}, rows)
	})
}

func closeSessions(c *cli.Context) error {
	if c.NArg() == 0 {
		return fail(exitUsage, "want one or more session IDs (from l402cli sessions list)")
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	for _, id := range c.Args().Slice() {
		out, err := call(cl, spendKey, func(ctx context.Context, api *apiclient.Client) (*apiclient.SessionInfo, error) {
			return api.CloseSession(ctx, id)
		})
		if err != nil {
			return err
		}
		_ = show(cl, out, func(s *apiclient.SessionInfo) {
			fmt.Fprintf(cl.stdout, "closed %s: %s, refund %s sat (%s)\n", id, s.State, msatString(s.RefundMsat), s.RefundStatus)
		})
	}
	return nil
}

// msatString renders msat as sats, with the msat fraction when there is one.
func msatString(msat int64) string {
	if msat%1000 == 0 {
		return strconv.FormatInt(msat/1000, 10)
	}
	return strconv.FormatFloat(float64(msat)/1000, 'f', 3, 64)
}
