package main

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/l402d/l402d/plugin/apiclient"
)

// nodeCommand groups the commands about l402d's own node (integrated
// mode).
func nodeCommand() *cli.Command {
	return &cli.Command{
		Name:        "node",
		Usage:       "the LND that l402d runs inside itself (--lnd-mode=integrated)",
		Subcommands: []*cli.Command{seedCommand()},
	}
}

// seedCommand shows the embedded wallet's seed, once (POST
// /api/node/seed with the admin key, from the l402d machine).
func seedCommand() *cli.Command {
	return &cli.Command{
		Name:  "seed",
		Usage: "show the embedded LND wallet's 24-word seed, ONCE: l402d never shows it again",
		Description: "Run this on the machine l402d runs on (l402d answers only loopback requests) with the admin key.\n" +
			"Write the words down and keep them offline: anyone who has them can take the node's funds.\n" +
			"The seed also stays in <datadir>/lnd-seed.json (0600) until you delete that file.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "yes", Usage: "do not ask for confirmation (needed when standard input is not a terminal)"},
		},
		Action: func(c *cli.Context) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			if !c.Bool("yes") {
				if err := confirmSeed(c); err != nil {
					return err
				}
			}
			api, err := cl.api(adminKey)
			if err != nil {
				return err
			}
			s, err := api.NodeSeed(cl.ctx())
			if ae := (*apiclient.Error)(nil); errors.As(err, &ae) && ae.StatusCode == http.StatusGone {
				// Already shown: a refusal, not a server failure.
				ae.StatusCode = http.StatusBadRequest
			}
			if err != nil {
				return cl.failure(err)
			}
			return show(cl, s, func(s *apiclient.NodeSeed) { printSeed(cl, s.Mnemonic, s.Network, s.CreatedAt, s.Warning) })
		},
	}
}

// confirmSeed asks on the terminal before the one showing is spent.
func confirmSeed(c *cli.Context) error {
	in, ok := c.App.Reader.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return fail(exitUsage, "node seed shows the seed only once: pass --yes to confirm when not on a terminal")
	}
	fmt.Fprint(c.App.ErrWriter, "l402d shows the wallet seed only once. Make sure nobody can see your screen.\nShow it now? Type yes: ")
	line, _ := bufio.NewReader(in).ReadString('\n')
	if strings.TrimSpace(strings.ToLower(line)) != "yes" {
		return fail(exitUsage, "not shown")
	}
	return nil
}

// printSeed prints the words numbered, in columns read top to bottom.
func printSeed(cl *client, words []string, network string, created time.Time, warning string) {
	fmt.Fprintf(cl.stdout, "\nWARNING: %s\n\n", warning)
	const cols = 4
	rows := (len(words) + cols - 1) / cols
	tw := tabwriter.NewWriter(cl.stdout, 0, 0, 3, ' ', 0)
	for r := range rows {
		var cells []string
		for col := range cols {
			if i := col*rows + r; i < len(words) {
				cells = append(cells, fmt.Sprintf("%2d. %s", i+1, words[i]))
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
	fmt.Fprintf(cl.stdout, "\nnetwork: %s, created %s (aezeed, no passphrase)\n", network, fmtTime(created))
}
