// Command l402cli talks to a running l402d over its REST API: it fetches
// paid URLs through the node (get), pays challenges and invoices, creates
// and looks up invoices, and shows tokens, budgets, payments and the
// node's balance. It holds no logic of its own: every command is one or
// two HTTP calls and their output, a table on a terminal and JSON when
// piped (or with --json).
//
// Exit codes:
//
//	0  success
//	1  usage: bad flags or arguments, or l402d rejected a field (400, 404)
//	2  l402d unreachable, refused the key, or failed (LND down, 5xx)
//	3  refused by policy or budget: nothing was paid
//	4  payment failed, or is still in flight (l402d finishes it)
//	5  upstream error: the target was unreachable or answered >= 400
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	// Public CA roots compiled in, used only where the system has none
	// (the FROM scratch image): without them every https:// L402 service
	// fails certificate verification there.
	_ "golang.org/x/crypto/x509roots/fallback"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes (see the package comment).
const (
	exitOK       = 0
	exitUsage    = 1
	exitServer   = 2
	exitRefused  = 3
	exitPayment  = 4
	exitUpstream = 5
)

const exitCodesHelp = `EXIT CODES:
   0  success
   1  usage: bad flags or arguments, or l402d rejected a field (400, 404)
   2  l402d unreachable, refused the key, or failed (LND down, 5xx)
   3  refused by policy or budget: nothing was paid
   4  payment failed, or is still in flight (l402d finishes it)
   5  upstream error: the target was unreachable or answered >= 400`

func main() {
	app := newApp(os.Stdin, os.Stdout, os.Stderr)
	err := app.Run(os.Args)
	os.Exit(report(os.Stderr, err))
}

// report prints err and returns the process exit code.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	var ce *cliError
	if errors.As(err, &ce) {
		if ce.msg != "" {
			fmt.Fprintln(stderr, "l402cli:", ce.msg)
		}
		return ce.code
	}
	fmt.Fprintln(stderr, "l402cli:", err)
	return exitUsage // urfave/cli's own errors: flags and arguments
}

// cliError carries an exit code.
type cliError struct {
	code int
	msg  string
}

func (e *cliError) Error() string { return e.msg }

func fail(code int, format string, args ...any) error {
	return &cliError{code: code, msg: fmt.Sprintf(format, args...)}
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	home, _ := os.UserHomeDir()
	return &cli.App{
		Name:    "l402cli",
		Usage:   "pay for L402 resources and manage a running l402d",
		Version: version,
		Description: "l402cli talks to l402d's REST API (run l402d first). Lists print as tables on a terminal\n" +
			"and as JSON when piped or with --json; get prints the body like curl.\n\n" + exitCodesHelp,
		Reader:    stdin,
		Writer:    stdout,
		ErrWriter: stderr,
		// Errors are reported by main, with their exit code.
		ExitErrHandler: func(*cli.Context, error) {},
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "rpcserver", EnvVars: []string{"L402CLI_RPCSERVER"}, Value: "127.0.0.1:8402", Usage: "l402d's API address (host:port or URL)"},
			&cli.StringFlag{Name: "datadir", EnvVars: []string{"L402CLI_DATADIR"}, Value: filepath.Join(home, ".l402d"), Usage: "l402d's data dir, to read spend.key, api.key and admin.key"},
			&cli.StringFlag{Name: "spendkey", EnvVars: []string{"L402CLI_SPENDKEY"}, Usage: "spend key, for every command that spends or reads spending (default: <datadir>/spend.key)"},
			&cli.StringFlag{Name: "apikey", EnvVars: []string{"L402CLI_APIKEY"}, Usage: "producer key, for status's revenue and mcp --role producer (default: <datadir>/api.key)"},
			&cli.StringFlag{Name: "adminkey", EnvVars: []string{"L402CLI_ADMINKEY"}, Usage: "admin key for budget set, backup and node seed (default: <datadir>/admin.key)"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON even on a terminal"},
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, Usage: "how long to wait for l402d (payments can take a while)"},
		},
		Commands: []*cli.Command{
			getCommand(), quoteCommand(), payCommand(), invoiceCommand(), tokensCommand(), sessionsCommand(), budgetCommand(),
			paymentsCommand(), balanceCommand(), statusCommand(), nodeCommand(), mcpCommand(), backupCommand(),
		},
	}
}
