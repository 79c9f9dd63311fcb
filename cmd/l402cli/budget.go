package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/l402d/l402d/plugin/apiclient"
)

func budgetCommand() *cli.Command {
	return &cli.Command{
		Name:  "budget",
		Usage: "show or change the spending budget",
		Subcommands: []*cli.Command{
			{Name: "show", Usage: "show the limits and today's (UTC) spending", Action: func(c *cli.Context) error {
				return showBudget(c, spendKey, func(ctx context.Context, api *apiclient.Client) (*apiclient.Budget, error) { return api.Budget(ctx) })
			}},
			{
				Name:  "set",
				Usage: "change limits (needs the admin key, from the node itself)",
				Description: "Only the limits given change. 0 means no limit. A domain list flag replaces the whole list;\n" +
					"\"none\" clears it. The day is the UTC calendar day.",
				Flags: []cli.Flag{
					&cli.Int64Flag{Name: "per-payment-sats", Usage: "largest amount of one payment, fees excluded"},
					&cli.Int64Flag{Name: "per-day-sats", Usage: "most spent per UTC day, fees included"},
					&cli.Int64Flag{Name: "per-domain-sats", Usage: "most spent on one domain per UTC day, fees included"},
					&cli.Int64Flag{Name: "unapproved-per-hour-sats", Usage: "most spent without a person's approval in any rolling hour, fee limits included (0: no cap)"},
					&cli.StringSliceFlag{Name: "allow-domain", Usage: "only pay these domains (example.com, *.example.com; repeatable)"},
					&cli.StringSliceFlag{Name: "deny-domain", Usage: "never pay these domains (repeatable)"},
				},
				Action: setBudget,
			},
		},
	}
}

func setBudget(c *cli.Context) error {
	var u apiclient.BudgetUpdate
	set := false
	for _, n := range []struct {
		flag string
		dst  **int64
	}{{"per-payment-sats", &u.PerPaymentSats}, {"per-day-sats", &u.PerDaySats}, {"per-domain-sats", &u.PerDomainSats}, {"unapproved-per-hour-sats", &u.UnapprovedPerHourSats}} {
		if c.IsSet(n.flag) {
			v := c.Int64(n.flag)
			*n.dst, set = &v, true
		}
	}
	for _, n := range []struct {
		flag string
		dst  **[]string
	}{{"allow-domain", &u.AllowDomains}, {"deny-domain", &u.DenyDomains}} {
		if c.IsSet(n.flag) {
			list := []string{}
			for _, d := range c.StringSlice(n.flag) {
				if d != "none" && d != "" {
					list = append(list, d)
				}
			}
			*n.dst, set = &list, true
		}
	}
	if !set {
		return fail(exitUsage, "nothing to set: give at least one of the flags (see l402cli budget set --help)")
	}
	return showBudget(c, adminKey, func(ctx context.Context, api *apiclient.Client) (*apiclient.Budget, error) {
		return api.SetBudget(ctx, u)
	})
}

// showBudget makes the call with the key of role and prints the budget it
// answers.
func showBudget(c *cli.Context, role keyRole, get func(context.Context, *apiclient.Client) (*apiclient.Budget, error)) error {
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	b, err := call(cl, role, get)
	if err != nil {
		return err
	}
	return show(cl, b, func(b *apiclient.Budget) { printBudget(cl, b) })
}

func printBudget(cl *client, b *apiclient.Budget) {
	list := func(l []string) string {
		if len(l) == 0 {
			return "-"
		}
		return strings.Join(l, ", ")
	}
	rem := func(p *int64) string {
		if p == nil {
			return "no limit"
		}
		return strconv.FormatInt(*p, 10)
	}
	l := b.Limits
	cl.fields("per payment", fmtLimit(l.PerPaymentSats), "per day", fmtLimit(l.PerDaySats),
		"per domain per day", fmtLimit(l.PerDomainSats), "unapproved per hour", fmtLimit(l.UnapprovedPerHourSats), "allowed domains", list(l.AllowDomains),
		"denied domains", list(l.DenyDomains), "window", fmt.Sprintf("%s %s (resets %s)", b.Window, b.Day, fmtTime(b.ResetsAt)))
	fmt.Fprintln(cl.stdout)
	rows := [][]string{{"(all)", fmtMsat(b.Today.SpentMsat), fmtMsat(b.Today.ReservedMsat), rem(b.Today.RemainingSats)}}
	for _, d := range b.Domains {
		rows = append(rows, []string{d.Domain, fmtMsat(d.SpentMsat), fmtMsat(d.ReservedMsat), rem(d.RemainingSats)})
	}
	cl.table([]string{"TODAY", "SPENT (SAT)", "IN FLIGHT (SAT)", "LEFT (SAT)"}, rows)
}
