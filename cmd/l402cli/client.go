package main

import (
	"bytes"
	"context"
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

	"github.com/l402d/l402d/plugin/apiclient"
)

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

// api returns l402d's API client with the key of a role.
func (cl *client) api(r keyRole) (*apiclient.Client, error) {
	key, err := cl.key(r)
	if err != nil {
		return nil, err
	}
	return &apiclient.Client{BaseURL: cl.base, APIKey: key, HTTPClient: cl.http, UserAgent: "l402cli/" + version}, nil
}

// ctx is the command's context.
func (cl *client) ctx() context.Context {
	if cl.c.Context == nil {
		return context.Background()
	}
	return cl.c.Context
}

// call makes one call with the key of role, turning its error into the
// CLI's (with its exit code).
func call[T any](cl *client, role keyRole, call func(context.Context, *apiclient.Client) (T, error)) (T, error) {
	var zero T
	api, err := cl.api(role)
	if err != nil {
		return zero, err
	}
	v, err := call(cl.ctx(), api)
	if err != nil {
		return zero, cl.failure(err)
	}
	return v, nil
}

// show prints v: as JSON when --json or piped, else with human.
func show[T any](cl *client, v T, human func(T)) error {
	if cl.json {
		cl.printJSON(v)
		return nil
	}
	human(v)
	return nil
}

// failure turns an error of a call into the CLI's error: l402d's own
// error answers with their exit code, an unreachable l402d exit code 2.
func (cl *client) failure(err error) error {
	var ae *apiclient.Error
	var ue *url.Error
	switch {
	case errors.As(err, &ae):
		return cl.apiFailure(ae)
	case errors.As(err, &ue):
		return fail(exitServer, "l402d at %s: %v\n  fix: is l402d running? check --rpcserver", cl.base, err)
	}
	return fail(exitServer, "%v", err)
}

// exitFor maps an API error to an exit code.
func exitFor(status int, code string) int {
	switch {
	case code == "payment_in_flight" || code == "payment_failed":
		return exitPayment
	case code == apiclient.CodeUpstreamUnreachable:
		return exitUpstream
	case status == http.StatusForbidden && code != "forbidden":
		return exitRefused
	case status == http.StatusBadRequest || status == http.StatusNotFound || status == http.StatusRequestEntityTooLarge:
		return exitUsage
	}
	return exitServer
}

// apiFailure turns an error answer into an error: with --json (or piped)
// the body is printed to stdout as is, else a readable message.
func (cl *client) apiFailure(e *apiclient.Error) error {
	if e.Message == "" {
		return fail(exitServer, "l402d answered %d: %.300s", e.StatusCode, e.Body)
	}
	code := exitFor(e.StatusCode, e.Code)
	if cl.json {
		cl.stdout.Write(bytes.TrimSpace(e.Body))
		fmt.Fprintln(cl.stdout)
	}
	var b strings.Builder
	b.WriteString(e.Message)
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

// printJSON pretty-prints an answer as l402d encoded it, followed by a
// blank line (as l402cli always printed l402d's answers).
func (cl *client) printJSON(v any) {
	cl.writeJSON(v)
	fmt.Fprintln(cl.stdout)
}

// writeJSON pretty-prints v, ending with a newline.
func (cl *client) writeJSON(v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(&buf, "%q\n", err.Error())
	}
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

// fmtOptTime is fmtTime with "" for the zero time (left out by fields).
func fmtOptTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fmtTime(t)
}

func fmtMsat(msat int64) string {
	if msat%1000 == 0 {
		return fmt.Sprint(msat / 1000)
	}
	return strings.TrimRight(fmt.Sprintf("%.3f", float64(msat)/1000), "0")
}

// fmtLimit renders a limit in sat, 0 as no limit.
func fmtLimit(n int64) string {
	if n == 0 {
		return "no limit"
	}
	return fmt.Sprintf("%d sat", n)
}

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
