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
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

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
			getCommand(), payCommand(), invoiceCommand(), tokensCommand(), budgetCommand(),
			paymentsCommand(), balanceCommand(), statusCommand(), nodeCommand(), mcpCommand(), backupCommand(),
		},
	}
}

// client is l402d's API as one command sees it.
type client struct {
	c      *cli.Context
	base   string
	http   *http.Client
	stdout io.Writer
	stderr io.Writer
	json   bool // print JSON rather than tables
}

func newClient(c *cli.Context) (*client, error) {
	base := c.String("rpcserver")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, fail(exitUsage, "--rpcserver %q: want host:port or http(s)://host:port", c.String("rpcserver"))
	}
	cl := &client{c: c, base: strings.TrimSuffix(u.String(), "/"), http: &http.Client{Timeout: c.Duration("timeout")},
		stdout: c.App.Writer, stderr: c.App.ErrWriter, json: c.Bool("json")}
	if f, ok := cl.stdout.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		cl.json = true
	}
	return cl, nil
}

// keyRole says which of l402d's keys a call needs.
type keyRole int

const (
	// spendKey: every consumer call (spend.key).
	spendKey keyRole = iota
	// producerKey: challenges, stats, node (api.key).
	producerKey
	// adminKey: budget set, backup, node seed (admin.key).
	adminKey
)

// key returns the key of a role, from its flag or its file in --datadir.
func (cl *client) key(r keyRole) (string, error) {
	flag, file := "spendkey", "spend.key"
	switch r {
	case producerKey:
		flag, file = "apikey", "api.key"
	case adminKey:
		flag, file = "adminkey", "admin.key"
	}
	if k := cl.c.String(flag); k != "" {
		return k, nil
	}
	path := filepath.Join(cl.c.String("datadir"), file)
	b, err := os.ReadFile(path)
	if err != nil {
		fix := "pass --" + flag + ", or --datadir pointing at l402d's data dir (readable by you)"
		if r == spendKey && errors.Is(err, fs.ErrNotExist) {
			fix = "l402d creates spend.key when it runs with --consumer.enable (spending is off without it); or " + fix
		}
		return "", fail(exitServer, "reading the key: %v\n  fix: %s", err, fix)
	}
	return strings.TrimSpace(string(b)), nil
}

// apiError is l402d's JSON error body.
type apiError struct {
	Error       string          `json:"error"`
	Code        string          `json:"code"`
	Field       string          `json:"field"`
	Fix         string          `json:"fix"`
	PriceSats   int64           `json:"priceSats"`
	PaymentHash string          `json:"paymentHash"`
	Token       json.RawMessage `json:"token"`
}

// exitFor maps an API error to an exit code.
func exitFor(status int, code string) int {
	switch {
	case code == "payment_in_flight" || code == "payment_failed":
		return exitPayment
	case code == "upstream_unreachable":
		return exitUpstream
	case status == http.StatusForbidden && code != "forbidden":
		return exitRefused
	case status == http.StatusBadRequest || status == http.StatusNotFound || status == http.StatusRequestEntityTooLarge:
		return exitUsage
	}
	return exitServer
}

// request sends one call and returns the raw response; the caller closes
// its body. Transport failures become exit code 2.
func (cl *client) request(method, path string, body any, role keyRole, hdr ...string) (*http.Response, error) {
	key, err := cl.key(role)
	if err != nil {
		return nil, err
	}
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(cl.c.Context, method, cl.base+path, rd)
	if err != nil {
		return nil, fail(exitUsage, "%v", err)
	}
	req.Header.Set("X-API-Key", key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "l402cli/"+version)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		return nil, fail(exitServer, "l402d at %s: %v\n  fix: is l402d running? check --rpcserver", cl.base, err)
	}
	return resp, nil
}

// call sends one call and decodes a JSON answer into out (if not nil),
// returning the raw body too. A non-2xx answer is turned into an error
// with its exit code, except statuses listed in accept.
func (cl *client) call(method, path string, body, out any, role keyRole, accept ...int) (int, []byte, error) {
	resp, err := cl.request(method, path, body, role)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fail(exitServer, "reading l402d's answer: %v", err)
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300 && resp.StatusCode != http.StatusAccepted
	for _, a := range accept {
		ok = ok || resp.StatusCode == a
	}
	if !ok {
		return resp.StatusCode, raw, cl.apiFailure(resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, raw, fail(exitServer, "l402d answered %d with something that is not JSON: %.200s", resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, raw, nil
}

// apiFailure turns an error answer into an error: with --json (or piped)
// the body is printed to stdout as is, else a readable message.
func (cl *client) apiFailure(status int, raw []byte) error {
	var e apiError
	if json.Unmarshal(raw, &e) != nil || e.Error == "" {
		return fail(exitServer, "l402d answered %d: %.300s", status, raw)
	}
	code := exitFor(status, e.Code)
	if cl.json {
		cl.stdout.Write(bytes.TrimSpace(raw))
		fmt.Fprintln(cl.stdout)
	}
	var b strings.Builder
	b.WriteString(e.Error)
	if e.Code != "" {
		fmt.Fprintf(&b, " [%s]", e.Code)
	}
	if e.PriceSats > 0 {
		fmt.Fprintf(&b, "\n  price: %d sat", e.PriceSats)
	}
	if e.PaymentHash != "" {
		fmt.Fprintf(&b, "\n  payment hash: %s", e.PaymentHash)
	}
	if e.Fix != "" {
		fmt.Fprintf(&b, "\n  fix: %s", e.Fix)
	}
	return &cliError{code: code, msg: b.String()}
}

// printJSON pretty-prints raw JSON.
func (cl *client) printJSON(raw []byte) {
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") != nil {
		buf.Reset()
		buf.Write(raw)
	}
	buf.WriteByte('\n')
	cl.stdout.Write(buf.Bytes())
}

// table prints rows under a header, aligned.
func (cl *client) table(header []string, rows [][]string) {
	tw := tabwriter.NewWriter(cl.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// fields prints label: value pairs, aligned.
func (cl *client) fields(pairs ...string) {
	tw := tabwriter.NewWriter(cl.stdout, 0, 0, 2, ' ', 0)
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			continue
		}
		fmt.Fprintf(tw, "%s:\t%s\n", pairs[i], pairs[i+1])
	}
	tw.Flush()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func fmtMsat(msat int64) string {
	if msat%1000 == 0 {
		return fmt.Sprint(msat / 1000)
	}
	return strings.TrimRight(fmt.Sprintf("%.3f", float64(msat)/1000), "0")
}

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
