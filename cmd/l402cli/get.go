package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/l402d/l402d/plugin/apiclient"
)

func getCommand() *cli.Command {
	return &cli.Command{
		Name:      "get",
		Usage:     "fetch a URL through the node, paying its L402 price if it asks (like curl)",
		ArgsUsage: "[flags] URL",
		Description: "The body goes to stdout (or -o FILE), what was paid to stderr. A cached token that covers the\n" +
			"URL is used first; on a 402 the price is checked against --max-cost and the budget, paid from the\n" +
			"node's LND and the request retried with the new token, which is cached. Flags go before the URL.\n\n" + exitCodesHelp,
		Flags: append(requestFlags("refuse to pay more than `SATS` (0: only the budget limits)"),
			&cli.BoolFlag{Name: "dry-run", Usage: "show the price and whether it would be paid, without paying"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the body to `FILE`"},
			&cli.BoolFlag{Name: "include", Aliases: []string{"i"}, Usage: "print the response status and headers before the body"},
			&cli.BoolFlag{Name: "silent", Aliases: []string{"s"}, Usage: "print no summary or progress on stderr"},
			&cli.IntFlag{Name: "expected-calls", Usage: "how many calls to this service you expect soon: a prepaid session is used when they would spend its deposit anyway (calls × price ≥ deposit), else it pays per request"},
			&cli.BoolFlag{Name: "session", Usage: "pay from a prepaid session held at the URL's origin, opening (one deposit, capped by --max-cost) or topping one up as needed; see l402cli sessions"},
		),
		Action: get,
	}
}

// requestFlags are the flags that describe the request, for get and
// quote; maxCost is --max-cost's usage.
func requestFlags(maxCost string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "request", Aliases: []string{"X"}, Usage: "HTTP `METHOD` (default GET, POST with -d)"},
		&cli.StringSliceFlag{Name: "header", Aliases: []string{"H"}, Usage: "request header `'Name: value'` (repeatable)"},
		&cli.StringFlag{Name: "data", Aliases: []string{"d"}, Usage: "request body; `@FILE` reads a file, @- stdin"},
		&cli.Int64Flag{Name: "max-cost", Usage: maxCost},
	}
}

// requestOf reads the one URL argument and the request flags of command
// cmd (get or quote), and connects to l402d.
func requestOf(c *cli.Context, cmd string) (*client, apiclient.AccessRequest, error) {
	if c.NArg() != 1 {
		if c.NArg() > 1 && strings.HasPrefix(c.Args().Get(1), "-") {
			return nil, apiclient.AccessRequest{}, fail(exitUsage, "flags go before the URL: l402cli %s [flags] URL", cmd)
		}
		return nil, apiclient.AccessRequest{}, fail(exitUsage, "want one URL: l402cli %s [flags] URL", cmd)
	}
	cl, err := newClient(c)
	if err != nil {
		return nil, apiclient.AccessRequest{}, err
	}
	req, err := accessRequest(c)
	return cl, req, err
}

func get(c *cli.Context) error {
	cl, req, err := requestOf(c, "get")
	if err != nil {
		return err
	}
	switch {
	case c.Bool("dry-run"):
		return quote(cl, req)
	case c.Bool("json"):
		if c.IsSet("output") {
			return fail(exitUsage, "--json prints the answer as JSON on stdout; drop -o")
		}
		out, err := call(cl, spendKey, func(ctx context.Context, api *apiclient.Client) (*apiclient.AccessResponse, error) {
			return api.Access(ctx, req)
		})
		if err != nil {
			return err
		}
		cl.printJSON(out)
		if out.Status >= 400 {
			return &cliError{code: exitUpstream}
		}
		return nil
	}
	return getStream(c, cl, req)
}

// accessRequest reads get's flags.
func accessRequest(c *cli.Context) (apiclient.AccessRequest, error) {
	req := apiclient.AccessRequest{URL: c.Args().First(), MaxSats: c.Int64("max-cost"), Method: c.String("request"), Session: c.Bool("session"), ExpectedCalls: c.Int("expected-calls")}
	if d := c.String("data"); c.IsSet("data") {
		b, err := readData(c.App.Reader, d)
		if err != nil {
			return req, err
		}
		if utf8.Valid(b) {
			req.Body = string(b)
		} else {
			req.BodyBase64 = base64.StdEncoding.EncodeToString(b)
		}
		if req.Method == "" {
			req.Method = http.MethodPost
		}
	}
	for _, h := range c.StringSlice("header") {
		k, v, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return req, fail(exitUsage, "-H %q: want 'Name: value'", h)
		}
		if req.Headers == nil {
			req.Headers = http.Header{}
		}
		k = strings.TrimSpace(k)
		req.Headers[k] = append(req.Headers[k], strings.TrimSpace(v))
	}
	return req, nil
}

// getStream fetches through l402d with the target's answer streamed:
// the body to stdout (or -o), what l402d did to stderr.
func getStream(c *cli.Context, cl *client, req apiclient.AccessRequest) error {
	// Errors are printed for a person here, even when piped: stdout is
	// the target's body.
	cl.json = false
	resp, err := call(cl, spendKey, func(ctx context.Context, api *apiclient.Client) (*http.Response, error) {
		return api.AccessStream(ctx, req)
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out := io.Writer(cl.stdout)
	if path := c.String("output"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fail(exitUsage, "-o: %v", err)
		}
		defer f.Close()
		out = f
	}
	silent := c.Bool("silent")
	if !silent {
		fmt.Fprintln(cl.stderr, summary(req.URL, resp))
	}
	if c.Bool("include") {
		writeHead(out, resp)
	}
	p := &progress{w: out, total: resp.ContentLength, stderr: cl.stderr, show: !silent && isTerminal(cl.stderr)}
	_, err = io.Copy(p, resp.Body)
	p.done()
	if err != nil {
		return fail(exitUpstream, "reading the body: %v", err)
	}
	if resp.StatusCode >= 400 {
		msg := fmt.Sprintf("the target answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
		if n := resp.Header.Get(apiclient.HeaderNote); n != "" {
			msg += ": " + n
		}
		if silent {
			msg = ""
		}
		return &cliError{code: exitUpstream, msg: msg}
	}
	return nil
}

// writeHead prints the target's status and headers (-i), without l402d's.
func writeHead(out io.Writer, resp *http.Response) {
	fmt.Fprintf(out, "HTTP %d %s\r\n", resp.StatusCode, http.StatusText(resp.StatusCode))
	h := resp.Header.Clone()
	for k := range h {
		if strings.HasPrefix(k, apiclient.HeaderPrefix) {
			h.Del(k)
		}
	}
	h.Write(out)
	fmt.Fprint(out, "\r\n")
}

// summary says what l402d did for a streamed get.
func summary(target string, resp *http.Response) string {
	s := fmt.Sprintf("HTTP %d %s  %s", resp.StatusCode, http.StatusText(resp.StatusCode), target)
	h := resp.Header
	fee, _ := strconv.ParseInt(h.Get(apiclient.HeaderFeeMsat), 10, 64)
	hash := h.Get(apiclient.HeaderPaymentHash)
	amount := h.Get(apiclient.HeaderAmountSats)
	switch {
	case h.Get(apiclient.HeaderPaid) == "true" && (h.Get(apiclient.HeaderScheme) == "mpp" || h.Get(apiclient.HeaderScheme) == "x402"):
		s += fmt.Sprintf("\n  price %s sat, paid (routing fee %s sat), payment %s; a single-use %s payment, spent by this request", amount, fmtMsat(fee), hash, h.Get(apiclient.HeaderScheme))
	case h.Get(apiclient.HeaderPaid) == "true":
		s += fmt.Sprintf("\n  price %s sat, paid (routing fee %s sat), payment %s; token cached for reuse", amount, fmtMsat(fee), hash)
	case hash != "":
		s += fmt.Sprintf("\n  price %s sat, already paid earlier (payment %s): token reused, nothing paid now", amount, hash)
	case h.Get(apiclient.HeaderFromCache) == "true":
		s += "\n  a cached token covered it: nothing paid"
	default:
		s += "\n  no payment asked"
	}
	if n := h.Get(apiclient.HeaderNote); n != "" {
		s += "\n  note: " + n
	}
	return s
}

// readData reads -d: literal text, @FILE or @- for stdin.
func readData(stdin io.Reader, d string) ([]byte, error) {
	name, ok := strings.CutPrefix(d, "@")
	if !ok {
		return []byte(d), nil
	}
	var b []byte
	var err error
	if name == "-" {
		b, err = io.ReadAll(io.LimitReader(stdin, 1<<20+1))
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, fail(exitUsage, "-d %s: %v", d, err)
	}
	if len(b) > 1<<20 {
		return nil, fail(exitUsage, "-d %s: bodies are limited to 1 MiB", d)
	}
	return b, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress counts bytes written through it and, past 1 MiB on a terminal,
// shows how far the download is.
type progress struct {
	w      io.Writer
	stderr io.Writer
	total  int64 // -1 if unknown
	show   bool
	n      int64
	last   time.Time
	shown  bool
}

func (p *progress) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	if p.show && p.n > 1<<20 && time.Since(p.last) > 200*time.Millisecond {
		p.last, p.shown = time.Now(), true
		if p.total > 0 {
			fmt.Fprintf(p.stderr, "\r  %s / %s (%d%%)", mib(p.n), mib(p.total), p.n*100/p.total)
		} else {
			fmt.Fprintf(p.stderr, "\r  %s", mib(p.n))
		}
	}
	return n, err
}

func (p *progress) done() {
	if p.shown {
		fmt.Fprintf(p.stderr, "\r  %s done\n", mib(p.n))
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
