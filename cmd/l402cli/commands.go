package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// Headers of l402d's streamed access answer (see plugin/api/consumer.go).
const (
	hdrUpstream    = "X-L402d-Upstream"
	hdrPaid        = "X-L402d-Paid"
	hdrFromCache   = "X-L402d-From-Cache"
	hdrPaymentHash = "X-L402d-Payment-Hash"
	hdrAmountSats  = "X-L402d-Amount-Sats"
	hdrFeeMsat     = "X-L402d-Fee-Msat"
	hdrNote        = "X-L402d-Note"
)

func getCommand() *cli.Command {
	return &cli.Command{
		Name:      "get",
		Usage:     "fetch a URL through the node, paying its L402 price if it asks (like curl)",
		ArgsUsage: "[flags] URL",
		Description: "The body goes to stdout (or -o FILE), what was paid to stderr. A cached token that covers the\n" +
			"URL is used first; on a 402 the price is checked against --max-cost and the budget, paid from the\n" +
			"node's LND and the request retried with the new token, which is cached. Flags go before the URL.\n\n" + exitCodesHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "request", Aliases: []string{"X"}, Usage: "HTTP `METHOD` (default GET, POST with -d)"},
			&cli.StringSliceFlag{Name: "header", Aliases: []string{"H"}, Usage: "request header `'Name: value'` (repeatable)"},
			&cli.StringFlag{Name: "data", Aliases: []string{"d"}, Usage: "request body; `@FILE` reads a file, @- stdin"},
			&cli.Int64Flag{Name: "max-cost", Usage: "refuse to pay more than `SATS` (0: only the budget limits)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "show the price and whether it would be paid, without paying"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the body to `FILE`"},
			&cli.BoolFlag{Name: "include", Aliases: []string{"i"}, Usage: "print the response status and headers before the body"},
			&cli.BoolFlag{Name: "silent", Aliases: []string{"s"}, Usage: "print no summary or progress on stderr"},
		},
		Action: get,
	}
}

func get(c *cli.Context) error {
	if c.NArg() != 1 {
		if c.NArg() > 1 && strings.HasPrefix(c.Args().Get(1), "-") {
			return fail(exitUsage, "flags go before the URL: l402cli get [flags] URL")
		}
		return fail(exitUsage, "want one URL: l402cli get [flags] URL")
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	req := map[string]any{"url": c.Args().First(), "maxSats": c.Int64("max-cost")}
	method := c.String("request")
	if d := c.String("data"); c.IsSet("data") {
		b, err := readData(c.App.Reader, d)
		if err != nil {
			return err
		}
		if utf8.Valid(b) {
			req["body"] = string(b)
		} else {
			req["bodyBase64"] = base64.StdEncoding.EncodeToString(b)
		}
		if method == "" {
			method = http.MethodPost
		}
	}
	if method != "" {
		req["method"] = method
	}
	hdrs := map[string][]string{}
	for _, h := range c.StringSlice("header") {
		k, v, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return fail(exitUsage, "-H %q: want 'Name: value'", h)
		}
		k = strings.TrimSpace(k)
		hdrs[k] = append(hdrs[k], strings.TrimSpace(v))
	}
	if len(hdrs) > 0 {
		req["headers"] = hdrs
	}

	if c.Bool("dry-run") {
		return quote(cl, req)
	}
	if c.Bool("json") {
		if c.IsSet("output") {
			return fail(exitUsage, "--json prints the answer as JSON on stdout; drop -o")
		}
		var out struct {
			Status int `json:"status"`
		}
		_, raw, err := cl.call("POST", "/api/consumer/access", req, &out, spendKey)
		if err != nil {
			return err
		}
		cl.printJSON(raw)
		if out.Status >= 400 {
			return &cliError{code: exitUpstream}
		}
		return nil
	}

	resp, err := cl.request("POST", "/api/consumer/access?stream=1", req, spendKey)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.Header.Get(hdrUpstream) != "1" {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		cl.json = false
		return cl.apiFailure(resp.StatusCode, raw)
	}
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
		fmt.Fprintln(cl.stderr, summary(c.Args().First(), resp))
	}
	if c.Bool("include") {
		fmt.Fprintf(out, "HTTP %d %s\r\n", resp.StatusCode, http.StatusText(resp.StatusCode))
		h := resp.Header.Clone()
		for k := range h {
			if strings.HasPrefix(k, "X-L402d-") {
				h.Del(k)
			}
		}
		h.Write(out)
		fmt.Fprint(out, "\r\n")
	}
	p := &progress{w: out, total: resp.ContentLength, stderr: cl.stderr, show: !silent && isTerminal(cl.stderr)}
	_, err = io.Copy(p, resp.Body)
	p.done()
	if err != nil {
		return fail(exitUpstream, "reading the body: %v", err)
	}
	if resp.StatusCode >= 400 {
		msg := fmt.Sprintf("the target answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
		if n := resp.Header.Get(hdrNote); n != "" {
			msg += ": " + n
		}
		if silent {
			msg = ""
		}
		return &cliError{code: exitUpstream, msg: msg}
	}
	return nil
}

// summary says what l402d did for a streamed get.
func summary(target string, resp *http.Response) string {
	s := fmt.Sprintf("HTTP %d %s  %s", resp.StatusCode, http.StatusText(resp.StatusCode), target)
	h := resp.Header
	fee, _ := strconv.ParseInt(h.Get(hdrFeeMsat), 10, 64)
	hash := h.Get(hdrPaymentHash)
	switch {
	case h.Get(hdrPaid) == "true":
		s += fmt.Sprintf("\n  price %s sat, paid (routing fee %s sat), payment %s; token cached for reuse", h.Get(hdrAmountSats), fmtMsat(fee), hash)
	case hash != "":
		s += fmt.Sprintf("\n  price %s sat, already paid earlier (payment %s): token reused, nothing paid now", h.Get(hdrAmountSats), hash)
	case h.Get(hdrFromCache) == "true":
		s += "\n  a cached token covered it: nothing paid"
	default:
		s += "\n  no payment asked"
	}
	if n := h.Get(hdrNote); n != "" {
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

// quote shows what get would pay.
func quote(cl *client, req map[string]any) error {
	var q struct {
		URL              string    `json:"url"`
		Status           int       `json:"status"`
		PaymentRequired  bool      `json:"paymentRequired"`
		PriceSats        int64     `json:"priceSats"`
		FeeLimitSats     int64     `json:"feeLimitSats"`
		PaymentHash      string    `json:"paymentHash"`
		Description      string    `json:"description"`
		InvoiceExpiresAt time.Time `json:"invoiceExpiresAt"`
		Service          string    `json:"service"`
		Scope            string    `json:"scope"`
		TokenExpiresAt   time.Time `json:"tokenExpiresAt"`
		CachedToken      bool      `json:"cachedToken"`
		WouldPay         bool      `json:"wouldPay"`
		Refusal          *struct {
			Code  string `json:"code"`
			Error string `json:"error"`
			Fix   string `json:"fix"`
		} `json:"refusal"`
		Manifest *struct {
			Name    string `json:"name"`
			Entries []struct {
				Name, Path, Method, Description string
				PriceSats                       int64
			} `json:"entries"`
		} `json:"manifest"`
	}
	_, raw, err := cl.call("POST", "/api/consumer/quote", req, &q, spendKey)
	if err != nil {
		return err
	}
	code := exitOK
	if q.Refusal != nil {
		code = exitRefused
		if q.Refusal.Code == "no_l402_challenge" || q.Refusal.Code == "no_manifest" || q.Refusal.Code == "invalid_manifest" {
			code = exitUpstream
		}
	}
	if cl.json {
		cl.printJSON(raw)
		return &cliError{code: code}
	}
	if q.Manifest != nil {
		fmt.Fprintf(cl.stdout, "%s\n", q.Manifest.Name)
		rows := [][]string{}
		for _, e := range q.Manifest.Entries {
			rows = append(rows, []string{e.Name, e.Method, e.Path, strconv.FormatInt(e.PriceSats, 10), e.Description})
		}
		cl.table([]string{"NAME", "METHOD", "PATH", "PRICE (SAT)", "DESCRIPTION"}, rows)
		return &cliError{code: code}
	}
	would := "yes"
	if !q.WouldPay {
		would = "no"
	}
	if !q.PaymentRequired {
		would = "nothing to pay"
	}
	cached := ""
	if q.CachedToken {
		cached = "yes: get would try it first and pay only if it is refused"
	}
	exp := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return fmtTime(t)
	}
	f := []string{"url", q.URL, "status", strconv.Itoa(q.Status)}
	if q.PaymentRequired {
		f = append(f, "price", fmt.Sprintf("%d sat (routing fee limit %d sat)", q.PriceSats, q.FeeLimitSats), "description", q.Description,
			"payment hash", q.PaymentHash, "invoice expires", exp(q.InvoiceExpiresAt), "service", q.Service, "token scope", q.Scope,
			"token expires", exp(q.TokenExpiresAt))
	}
	f = append(f, "cached token", cached, "would pay", would)
	if q.Refusal != nil {
		f = append(f, "refused", q.Refusal.Error+" ["+q.Refusal.Code+"]", "fix", q.Refusal.Fix)
	}
	cl.fields(f...)
	return &cliError{code: code}
}

func payCommand() *cli.Command {
	return &cli.Command{
		Name:      "pay",
		Usage:     "pay an invoice, or an L402 challenge (with --macaroon or --challenge) and print its token",
		ArgsUsage: "[flags] [INVOICE]",
		Description: "Pays through the node's LND with the journal and the budget. A hash the journal holds as paid\n" +
			"is not paid again. Prints the preimage, and for a challenge the ready Authorization value.\n\n" + exitCodesHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "macaroon", Usage: "the challenge's `MACAROON` (base64): pay INVOICE as an L402 challenge"},
			&cli.StringFlag{Name: "challenge", Usage: "a whole WWW-Authenticate `VALUE`: L402 macaroon=\"…\", invoice=\"…\""},
			&cli.StringFlag{Name: "url", Usage: "the `URL` the challenge or invoice is for: its domain's budget and the allow/deny lists apply (without it the domain is unknown, refused under an allow list), and a token is cached for it"},
			&cli.Int64Flag{Name: "max-cost", Usage: "refuse to pay more than `SATS` (0: only the budget limits)"},
		},
		Action: func(c *cli.Context) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			inv := c.Args().First()
			if c.NArg() > 1 {
				return fail(exitUsage, "want at most one INVOICE (flags go before it)")
			}
			if c.IsSet("macaroon") || c.IsSet("challenge") {
				var res struct {
					Payment payInfo `json:"payment"`
					Token   struct {
						Authorization string `json:"authorization"`
					} `json:"token"`
				}
				body := map[string]any{"invoice": inv, "macaroon": c.String("macaroon"), "challenge": c.String("challenge"),
					"url": c.String("url"), "maxSats": c.Int64("max-cost")}
				_, raw, err := cl.call("POST", "/api/consumer/pay/challenge", body, &res, spendKey)
				if err != nil {
					return err
				}
				if cl.json {
					cl.printJSON(raw)
					return nil
				}
				res.Payment.print(cl, "authorization", res.Token.Authorization)
				return nil
			}
			if inv == "" {
				return fail(exitUsage, "want an INVOICE, or --challenge")
			}
			var p payInfo
			_, raw, err := cl.call("POST", "/api/consumer/pay/invoice", map[string]any{"invoice": inv, "maxSats": c.Int64("max-cost"), "url": c.String("url")}, &p, spendKey)
			if err != nil {
				return err
			}
			if cl.json {
				cl.printJSON(raw)
				return nil
			}
			p.print(cl)
			return nil
		},
	}
}

type payInfo struct {
	PaymentHash string `json:"paymentHash"`
	State       string `json:"state"`
	AmountSats  int64  `json:"amountSats"`
	FeeMsat     int64  `json:"feeMsat"`
	Preimage    string `json:"preimage"`
	AlreadyPaid bool   `json:"alreadyPaid"`
}

func (p payInfo) print(cl *client, extra ...string) {
	state := p.State
	if p.AlreadyPaid {
		state += " (paid earlier; nothing paid now)"
	}
	cl.fields(append([]string{"payment hash", p.PaymentHash, "state", state, "amount", fmt.Sprintf("%d sat", p.AmountSats),
		"routing fee", fmtMsat(p.FeeMsat) + " sat", "preimage", p.Preimage}, extra...)...)
}

func invoiceCommand() *cli.Command {
	return &cli.Command{
		Name:  "invoice",
		Usage: "create or look up an invoice of the node",
		Subcommands: []*cli.Command{
			{
				Name: "create", Usage: "create an invoice", ArgsUsage: "[flags] AMOUNT_SATS",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "memo", Usage: "description"},
					&cli.DurationFlag{Name: "expiry", Value: time.Hour, Usage: "how long it can be paid"},
				},
				Action: func(c *cli.Context) error {
					amt, err := strconv.ParseInt(c.Args().First(), 10, 64)
					if c.NArg() != 1 || err != nil {
						return fail(exitUsage, "want one AMOUNT_SATS, a whole number")
					}
					return showInvoice(c, "POST", "/api/consumer/invoices",
						map[string]any{"amountSats": amt, "memo": c.String("memo"), "expirySeconds": int64(c.Duration("expiry") / time.Second)})
				},
			},
			{
				Name: "lookup", Usage: "show an invoice's state", ArgsUsage: "PAYMENT_HASH",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return fail(exitUsage, "want one PAYMENT_HASH")
					}
					return showInvoice(c, "GET", "/api/consumer/invoices/"+url.PathEscape(c.Args().First()), nil)
				},
			},
		},
	}
}

func showInvoice(c *cli.Context, method, path string, body any) error {
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	var inv struct {
		PaymentHash    string    `json:"paymentHash"`
		Invoice        string    `json:"invoice"`
		Memo           string    `json:"memo"`
		State          string    `json:"state"`
		AmountSats     int64     `json:"amountSats"`
		AmountPaidSats int64     `json:"amountPaidSats"`
		CreatedAt      time.Time `json:"createdAt"`
		ExpiresAt      time.Time `json:"expiresAt"`
		SettledAt      time.Time `json:"settledAt"`
	}
	_, raw, err := cl.call(method, path, body, &inv, spendKey)
	if err != nil {
		return err
	}
	if cl.json {
		cl.printJSON(raw)
		return nil
	}
	t := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return fmtTime(t)
	}
	cl.fields("payment hash", inv.PaymentHash, "state", inv.State, "amount", fmt.Sprintf("%d sat", inv.AmountSats),
		"paid", fmt.Sprintf("%d sat", inv.AmountPaidSats), "memo", inv.Memo, "created", t(inv.CreatedAt), "expires", t(inv.ExpiresAt),
		"settled", t(inv.SettledAt), "invoice", inv.Invoice)
	return nil
}

func tokensCommand() *cli.Command {
	return &cli.Command{
		Name:  "tokens",
		Usage: "list or remove cached L402 tokens",
		Subcommands: []*cli.Command{
			{
				Name: "list", Aliases: []string{"ls"}, Usage: "list cached tokens",
				Flags: []cli.Flag{&cli.StringFlag{Name: "origin", Usage: "only those of `ORIGIN` (scheme://host[:port])"}},
				Action: func(c *cli.Context) error {
					cl, err := newClient(c)
					if err != nil {
						return err
					}
					var out struct {
						Tokens []struct {
							ID         string    `json:"id"`
							Origin     string    `json:"origin"`
							Scope      string    `json:"scope"`
							Service    string    `json:"service"`
							AmountSats int64     `json:"amountSats"`
							CreatedAt  time.Time `json:"createdAt"`
							ExpiresAt  time.Time `json:"expiresAt"`
							Expired    bool      `json:"expired"`
						} `json:"tokens"`
					}
					_, raw, err := cl.call("GET", "/api/consumer/tokens?origin="+url.QueryEscape(c.String("origin")), nil, &out, spendKey)
					if err != nil {
						return err
					}
					if cl.json {
						cl.printJSON(raw)
						return nil
					}
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
					return nil
				},
			},
			{
				Name: "rm", Aliases: []string{"remove"}, Usage: "remove cached tokens by id", ArgsUsage: "ID...",
				Action: func(c *cli.Context) error {
					if c.NArg() == 0 {
						return fail(exitUsage, "want one or more token IDs (from l402cli tokens list)")
					}
					cl, err := newClient(c)
					if err != nil {
						return err
					}
					for _, id := range c.Args().Slice() {
						_, raw, err := cl.call("DELETE", "/api/consumer/tokens/"+url.PathEscape(id), nil, nil, spendKey)
						if err != nil {
							return err
						}
						if cl.json {
							cl.printJSON(raw)
						} else {
							fmt.Fprintln(cl.stdout, "removed", id)
						}
					}
					return nil
				},
			},
		},
	}
}

func budgetCommand() *cli.Command {
	return &cli.Command{
		Name:  "budget",
		Usage: "show or change the spending budget",
		Subcommands: []*cli.Command{
			{Name: "show", Usage: "show the limits and today's (UTC) spending", Action: func(c *cli.Context) error { return showBudget(c, "GET", nil, spendKey) }},
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
				Action: func(c *cli.Context) error {
					body := map[string]any{}
					for _, n := range []struct{ flag, field string }{{"per-payment-sats", "perPaymentSats"}, {"per-day-sats", "perDaySats"}, {"per-domain-sats", "perDomainSats"}, {"unapproved-per-hour-sats", "unapprovedPerHourSats"}} {
						if c.IsSet(n.flag) {
							body[n.field] = c.Int64(n.flag)
						}
					}
					for _, n := range []struct{ flag, field string }{{"allow-domain", "allowDomains"}, {"deny-domain", "denyDomains"}} {
						if c.IsSet(n.flag) {
							list := []string{}
							for _, d := range c.StringSlice(n.flag) {
								if d != "none" && d != "" {
									list = append(list, d)
								}
							}
							body[n.field] = list
						}
					}
					if len(body) == 0 {
						return fail(exitUsage, "nothing to set: give at least one of the flags (see l402cli budget set --help)")
					}
					return showBudget(c, "PUT", body, adminKey)
				},
			},
		},
	}
}

func showBudget(c *cli.Context, method string, body any, role keyRole) error {
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	type window struct {
		Domain        string `json:"domain"`
		SpentMsat     int64  `json:"spentMsat"`
		ReservedMsat  int64  `json:"reservedMsat"`
		RemainingSats *int64 `json:"remainingSats"`
	}
	var b struct {
		Limits struct {
			PerPaymentSats int64    `json:"perPaymentSats"`
			PerDaySats     int64    `json:"perDaySats"`
			PerDomainSats  int64    `json:"perDomainSats"`
			Unapproved     int64    `json:"unapprovedPerHourSats"`
			AllowDomains   []string `json:"allowDomains"`
			DenyDomains    []string `json:"denyDomains"`
		} `json:"limits"`
		Window   string    `json:"window"`
		Day      string    `json:"day"`
		ResetsAt time.Time `json:"resetsAt"`
		Today    window    `json:"today"`
		Domains  []window  `json:"domains"`
	}
	_, raw, err := cl.call(method, "/api/consumer/budget", body, &b, role)
	if err != nil {
		return err
	}
	if cl.json {
		cl.printJSON(raw)
		return nil
	}
	limit := func(n int64) string {
		if n == 0 {
			return "no limit"
		}
		return fmt.Sprintf("%d sat", n)
	}
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
	cl.fields("per payment", limit(b.Limits.PerPaymentSats), "per day", limit(b.Limits.PerDaySats),
		"per domain per day", limit(b.Limits.PerDomainSats), "unapproved per hour", limit(b.Limits.Unapproved), "allowed domains", list(b.Limits.AllowDomains),
		"denied domains", list(b.Limits.DenyDomains), "window", fmt.Sprintf("%s %s (resets %s)", b.Window, b.Day, fmtTime(b.ResetsAt)))
	fmt.Fprintln(cl.stdout)
	rows := [][]string{{"(all)", fmtMsat(b.Today.SpentMsat), fmtMsat(b.Today.ReservedMsat), rem(b.Today.RemainingSats)}}
	for _, d := range b.Domains {
		rows = append(rows, []string{d.Domain, fmtMsat(d.SpentMsat), fmtMsat(d.ReservedMsat), rem(d.RemainingSats)})
	}
	cl.table([]string{"TODAY", "SPENT (SAT)", "IN FLIGHT (SAT)", "LEFT (SAT)"}, rows)
	return nil
}

func paymentsCommand() *cli.Command {
	return &cli.Command{
		Name:  "payments",
		Usage: "list outgoing payments, newest first, with totals",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "state", Usage: "reserved, in_flight, succeeded or failed"},
			&cli.StringFlag{Name: "kind", Usage: "access, challenge or invoice"},
			&cli.StringFlag{Name: "domain", Usage: "only payments to `DOMAIN`"},
			&cli.StringFlag{Name: "since", Usage: "from `TIME` (RFC 3339 or unix seconds)"},
			&cli.StringFlag{Name: "until", Usage: "before `TIME`"},
			&cli.IntFlag{Name: "limit", Value: 50, Usage: "at most `N` payments"},
			&cli.StringFlag{Name: "after", Usage: "continue after this `CURSOR` (printed after a full page)"},
		},
		Action: func(c *cli.Context) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			q := url.Values{}
			for _, f := range []string{"state", "kind", "domain", "since", "until", "after"} {
				if v := c.String(f); v != "" {
					q.Set(f, v)
				}
			}
			q.Set("limit", strconv.Itoa(c.Int("limit")))
			var out struct {
				Payments []struct {
					PaymentHash string    `json:"paymentHash"`
					State       string    `json:"state"`
					Kind        string    `json:"kind"`
					AmountMsat  int64     `json:"amountMsat"`
					FeeMsat     int64     `json:"feeMsat"`
					Domain      string    `json:"domain"`
					URL         string    `json:"url"`
					CreatedAt   time.Time `json:"createdAt"`
					Failure     string    `json:"failureReason"`
				} `json:"payments"`
				Next   string `json:"next"`
				Totals struct {
					Count, Succeeded, Failed, Pending int
					AmountMsat                        int64 `json:"amountMsat"`
					FeeMsat                           int64 `json:"feeMsat"`
				} `json:"totals"`
			}
			_, raw, err := cl.call("GET", "/api/consumer/payments?"+q.Encode(), nil, &out, spendKey)
			if err != nil {
				return err
			}
			if cl.json {
				cl.printJSON(raw)
				return nil
			}
			rows := [][]string{}
			for _, p := range out.Payments {
				what := p.URL
				if what == "" {
					what = p.Domain
				}
				if p.Failure != "" {
					what += " (" + p.Failure + ")"
				}
				rows = append(rows, []string{fmtTime(p.CreatedAt), p.State, p.Kind, fmtMsat(p.AmountMsat), fmtMsat(p.FeeMsat), short(p.PaymentHash, 16), what})
			}
			cl.table([]string{"TIME", "STATE", "KIND", "AMOUNT (SAT)", "FEE (SAT)", "HASH", "FOR"}, rows)
			t := out.Totals
			fmt.Fprintf(cl.stdout, "\n%d payments: %d succeeded, %d failed, %d pending; paid %s sat + %s sat fees\n",
				t.Count, t.Succeeded, t.Failed, t.Pending, fmtMsat(t.AmountMsat), fmtMsat(t.FeeMsat))
			if out.Next != "" {
				fmt.Fprintf(cl.stdout, "more: l402cli payments --after %s\n", out.Next)
			}
			return nil
		},
	}
}

func balanceCommand() *cli.Command {
	return &cli.Command{
		Name:  "balance",
		Usage: "show the node's channel and on-chain balance",
		Action: func(c *cli.Context) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			var b struct {
				Channel struct{ LocalSats, RemoteSats, PendingOpenSats int64 } `json:"channel"`
				Onchain struct{ ConfirmedSats, UnconfirmedSats int64 }         `json:"onchain"`
			}
			_, raw, err := cl.call("GET", "/api/consumer/balance", nil, &b, spendKey)
			if err != nil {
				return err
			}
			if cl.json {
				cl.printJSON(raw)
				return nil
			}
			cl.fields("channels (can spend)", fmt.Sprintf("%d sat", b.Channel.LocalSats), "channels (can receive)", fmt.Sprintf("%d sat", b.Channel.RemoteSats),
				"channels pending open", fmt.Sprintf("%d sat", b.Channel.PendingOpenSats), "on-chain confirmed", fmt.Sprintf("%d sat", b.Onchain.ConfirmedSats),
				"on-chain unconfirmed", fmt.Sprintf("%d sat", b.Onchain.UnconfirmedSats))
			return nil
		},
	}
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "l402d at a glance: its LND and settlement watcher, revenue, spending and budget",
		Action: func(c *cli.Context) error {
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			var h struct {
				Status  string `json:"status"`
				Version string `json:"version"`
				LND     struct {
					Up           bool   `json:"up"`
					Error        string `json:"error"`
					Alias        string `json:"alias"`
					Pubkey       string `json:"pubkey"`
					Network      string `json:"network"`
					BlockHeight  uint32 `json:"blockHeight"`
					ChainBackend string `json:"chainBackend"`
				} `json:"lnd"`
				Watcher struct {
					State       string `json:"state"`
					SettleIndex uint64 `json:"settleIndex"`
				} `json:"watcher"`
			}
			_, node, err := cl.call("GET", "/api/node", nil, &h, producerKey)
			if err != nil {
				return err
			}
			type counters struct {
				Created     uint64 `json:"challengesCreated"`
				Settled     uint64 `json:"challengesSettled"`
				RevenueSats int64  `json:"revenueSats"`
			}
			var st struct{ Total, Range counters }
			_, stats, err := cl.call("GET", "/api/l402/stats", nil, &st, producerKey)
			if err != nil {
				return err
			}
			var b struct {
				Limits struct{ PerPaymentSats, PerDaySats int64 } `json:"limits"`
				Window string                                     `json:"window"`
				Today  struct{ SpentSats int64 }                  `json:"today"`
			}
			// The budget needs the spend key; without one (spending off)
			// status shows the rest.
			budget := []byte("null")
			spending := false
			if _, kerr := cl.key(spendKey); kerr == nil {
				code, raw, err := cl.call("GET", "/api/consumer/budget", nil, &b, spendKey, http.StatusForbidden)
				if err != nil {
					return err
				}
				if code != http.StatusForbidden {
					budget, spending = raw, true
				}
			}
			if cl.json {
				cl.printJSON([]byte(fmt.Sprintf(`{"node":%s,"stats":%s,"budget":%s}`, node, stats, budget)))
			} else {
				up := "up"
				if !h.LND.Up {
					up = "down: " + h.LND.Error
				} else if h.LND.ChainBackend != "" {
					up = "up, chain backend " + h.LND.ChainBackend
				}
				limit := func(n int64) string {
					if n == 0 {
						return "no limit"
					}
					return fmt.Sprintf("%d sat", n)
				}
				spend := []string{"spending", "off (no spend key; l402d --consumer.enable creates it)"}
				if spending {
					spend = []string{"spent this " + b.Window, fmt.Sprintf("%d sat of %s", b.Today.SpentSats, limit(b.Limits.PerDaySats)),
						"per payment", limit(b.Limits.PerPaymentSats)}
				}
				cl.fields(append([]string{"l402d", h.Status + " " + h.Version, "lnd", up, "alias", h.LND.Alias, "pubkey", h.LND.Pubkey,
					"network", h.LND.Network, "block height", strconv.FormatUint(uint64(h.LND.BlockHeight), 10),
					"settlement watcher", fmt.Sprintf("%s (settle index %d)", h.Watcher.State, h.Watcher.SettleIndex),
					"revenue, 30 days", fmt.Sprintf("%d sat from %d of %d challenges", st.Range.RevenueSats, st.Range.Settled, st.Range.Created),
					"revenue, all time", fmt.Sprintf("%d sat", st.Total.RevenueSats)}, spend...)...)
			}
			if h.Status != "ok" {
				return &cliError{code: exitServer}
			}
			return nil
		},
	}
}
