package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/l402d/l402d/plugin/apiclient"
)

func balanceCommand() *cli.Command {
	return &cli.Command{
		Name:  "balance",
		Usage: "show the node's channel and on-chain balance",
		Action: func(c *cli.Context) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			b, err := call(cl, spendKey, func(ctx context.Context, api *apiclient.Client) (*apiclient.Balance, error) { return api.Balance(ctx) })
			if err != nil {
				return err
			}
			return show(cl, b, func(b *apiclient.Balance) {
				sat := func(n int64) string { return fmt.Sprintf("%d sat", n) }
				cl.fields("channels (can spend)", sat(b.Channel.LocalSats), "channels (can receive)", sat(b.Channel.RemoteSats),
					"channels pending open", sat(b.Channel.PendingOpenSats), "on-chain confirmed", sat(b.Onchain.ConfirmedSats),
					"on-chain unconfirmed", sat(b.Onchain.UnconfirmedSats))
			})
		},
	}
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:   "status",
		Usage:  "l402d at a glance: its LND and settlement watcher, revenue, spending and budget",
		Action: status,
	}
}

// statusReport is what status shows; as JSON, with budget null while
// spending is off.
type statusReport struct {
	Node   *apiclient.Health `json:"node"`
	Stats  *apiclient.Stats  `json:"stats"`
	Budget *apiclient.Budget `json:"budget"`
}

func status(c *cli.Context) error {
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	var st statusReport
	if st.Node, err = call(cl, producerKey, func(ctx context.Context, api *apiclient.Client) (*apiclient.Health, error) { return api.Node(ctx) }); err != nil {
		return err
	}
	if st.Stats, err = call(cl, producerKey, func(ctx context.Context, api *apiclient.Client) (*apiclient.Stats, error) {
		return api.Stats(ctx, time.Time{}, time.Time{})
	}); err != nil {
		return err
	}
	// The budget needs the spend key; without one (spending off) status
	// shows the rest.
	if _, kerr := cl.key(spendKey); kerr == nil {
		api, err := cl.api(spendKey)
		if err != nil {
			return err
		}
		b, err := api.Budget(cl.ctx())
		var ae *apiclient.Error
		switch {
		case errors.As(err, &ae) && ae.StatusCode == http.StatusForbidden:
		case err != nil:
			return cl.failure(err)
		default:
			st.Budget = b
		}
	}
	if cl.json {
		cl.writeJSON(&st)
	} else {
		printStatus(cl, &st)
	}
	if st.Node.Status != "ok" {
		return &cliError{code: exitServer}
	}
	return nil
}

func printStatus(cl *client, st *statusReport) {
	h, s := st.Node, st.Stats
	up := "up"
	if !h.LND.Up {
		up = "down: " + h.LND.Error
	} else if h.LND.ChainBackend != "" {
		up = "up, chain backend " + h.LND.ChainBackend
	}
	spend := []string{"spending", "off (no spend key; l402d --consumer.enable creates it)"}
	if b := st.Budget; b != nil {
		spend = []string{"spent this " + b.Window, fmt.Sprintf("%d sat of %s", b.Today.SpentSats, fmtLimit(b.Limits.PerDaySats)),
			"per payment", fmtLimit(b.Limits.PerPaymentSats)}
	}
	cl.fields(append([]string{"l402d", h.Status + " " + h.Version, "lnd", up, "alias", h.LND.Alias, "pubkey", h.LND.Pubkey,
		"network", h.LND.Network, "block height", strconv.FormatUint(uint64(h.LND.BlockHeight), 10),
		"settlement watcher", fmt.Sprintf("%s (settle index %d)", h.Watcher.State, h.Watcher.SettleIndex),
		"revenue, 30 days", fmt.Sprintf("%d sat from %d of %d challenges", s.Range.RevenueSats, s.Range.Settled, s.Range.Created),
		"revenue, all time", fmt.Sprintf("%d sat", s.Total.RevenueSats)}, spend...)...)
}
