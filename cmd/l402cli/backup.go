package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/l402d/l402d/plugin/apiclient"
)

// backupCommand saves a consistent backup of a running l402d's store.
func backupCommand() *cli.Command {
	return &cli.Command{
		Name:      "backup",
		Usage:     "save a consistent backup of l402d's store while it runs (admin key); restore it with l402d restore",
		ArgsUsage: " ",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Required: true, Usage: "write the backup to `FILE` (created 0600; it holds the tokens' root keys)"},
		},
		Action: func(c *cli.Context) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			body, err := call(cl, adminKey, func(ctx context.Context, api *apiclient.Client) (io.ReadCloser, error) { return api.Backup(ctx) })
			if err != nil {
				return err
			}
			defer body.Close()
			path := c.String("output")
			// Write beside the target and rename, so a failed backup never
			// leaves a truncated file under the name a restore would use.
			tmp, err := os.CreateTemp(filepath.Dir(path), ".l402d-backup-*")
			if err != nil {
				return fail(exitUsage, "%v", err)
			}
			defer os.Remove(tmp.Name())
			n, err := io.Copy(tmp, body)
			if err == nil {
				err = tmp.Sync()
			}
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fail(exitServer, "backup cut short after %d bytes: %v", n, err)
			}
			if err := os.Rename(tmp.Name(), path); err != nil {
				return fail(exitUsage, "%v", err)
			}
			fmt.Fprintf(cl.stderr, "backup of %d bytes written to %s; restore with: l402d --datadir NEWDIR restore --from %s\n", n, path, path)
			return nil
		},
	}
}
