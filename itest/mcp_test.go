//go:build itest

package itest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// MCP's tools by key: the producer key gets the producer's, the spend key
// the consumer's.
var (
	mcpProducerTools = []string{"create_l402_challenge", "verify_l402_payment"}
	mcpConsumerTools = []string{"access_l402_resource", "check_invoice_status", "check_wallet_balance", "close_l402_session", "create_invoice",
		"get_budget_status", "get_payment_history", "list_l402_sessions", "list_l402_tokens", "pay_invoice", "pay_l402_challenge", "quote_l402_resource"}
)

// mcpAgent is an MCP client session, as an AI agent's.
type mcpAgent struct {
	t  testing.TB
	cs *sdk.ClientSession

	mu    sync.Mutex
	asked []string // elicitation messages
}

// agentOpts say how an agent connects and answers approval requests.
type agentOpts struct {
	// legacy speaks protocol 2025-11-25: a session, with approvals asked
	// as server-to-client elicitation; else the latest (input requests).
	legacy bool
	// approve answers elicitation: "accept" or "decline"; "" declares no
	// elicitation support.
	approve string
	// producer connects with the producer key (create and verify); else
	// the spend key (the consumer's tools).
	producer bool
}

func (o agentOpts) client(a *mcpAgent) *sdk.Client {
	opts := &sdk.ClientOptions{}
	if o.approve != "" {
		opts.ElicitationHandler = func(_ context.Context, r *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
			a.mu.Lock()
			a.asked = append(a.asked, r.Params.Message)
			a.mu.Unlock()
			if o.approve == "accept" {
				return &sdk.ElicitResult{Action: "accept", Content: map[string]any{"approve": true}}, nil
			}
			return &sdk.ElicitResult{Action: "decline"}, nil
		}
	}
	return sdk.NewClient(&sdk.Implementation{Name: "itest-agent", Version: "1"}, opts)
}

func (o agentOpts) session() *sdk.ClientSessionOptions {
	if o.legacy {
		return &sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"}
	}
	return nil
}

type apiKeyTransport struct{ key string }

func (k apiKeyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-API-Key", k.key)
	return http.DefaultTransport.RoundTrip(r)
}

// httpAgent connects to a daemon's /mcp over streamable HTTP.
func httpAgent(t testing.TB, d *daemon, o agentOpts) *mcpAgent {
	t.Helper()
	a := &mcpAgent{t: t}
	var key string
	if o.producer {
		key = d.apiKey(t)
	} else {
		key = d.spendKey(t)
	}
	tr := &sdk.StreamableClientTransport{Endpoint: "http://" + d.listen + "/mcp", HTTPClient: &http.Client{Transport: apiKeyTransport{key}}}
	cs, err := o.client(a).Connect(testCtx(t, time.Minute), tr, o.session())
	if err != nil {
		t.Fatalf("MCP over HTTP to %s: %v", d.name, err)
	}
	t.Cleanup(func() { cs.Close() })
	a.cs = cs
	return a
}

// stdioAgent spawns `l402cli mcp` against d, as a desktop agent does.
func stdioAgent(t testing.TB, d *daemon, o agentOpts) *mcpAgent {
	t.Helper()
	a := &mcpAgent{t: t}
	cmd := exec.Command(binPath(t, "l402cli"), "--rpcserver", d.listen, "--datadir", d.dataDir, "mcp", "--verbose")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cs, err := o.client(a).Connect(testCtx(t, time.Minute), &sdk.CommandTransport{Command: cmd}, o.session())
	if err != nil {
		t.Fatalf("MCP over stdio (l402cli mcp) to %s: %v\n%s", d.name, err, stderr.String())
	}
	t.Cleanup(func() {
		cs.Close()
		if t.Failed() {
			t.Logf("l402cli mcp stderr:\n%s", tail(stderr.String(), 40))
		}
	})
	a.cs = cs
	return a
}

// call calls a tool; out is its JSON result and isError whether it was a
// tool error. The text and the structured content must agree.
func (a *mcpAgent) call(name string, args map[string]any) (out map[string]any, isError bool) {
	a.t.Helper()
	res, err := a.cs.CallTool(testCtx(a.t, 3*time.Minute), &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		a.t.Fatalf("%s: %v", name, err)
	}
	if len(res.Content) != 1 {
		a.t.Fatalf("%s: %d contents", name, len(res.Content))
	}
	text := res.Content[0].(*sdk.TextContent).Text
	if err := json.Unmarshal([]byte(text), &out); err != nil {
		a.t.Fatalf("%s: not JSON: %s", name, text)
	}
	sc, _ := json.Marshal(res.StructuredContent)
	var structured map[string]any
	if json.Unmarshal(sc, &structured) != nil || fmt.Sprint(structured) != fmt.Sprint(out) {
		a.t.Fatalf("%s: structured content %s differs from the text %s", name, sc, text)
	}
	return out, res.IsError
}

func (a *mcpAgent) lastAsked() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.asked) == 0 {
		return ""
	}
	return a.asked[len(a.asked)-1]
}

func (a *mcpAgent) askedCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.asked)
}

// tools lists the tools and checks their names and schemas.
// tools lists the agent's tools, which must be want, and checks their
// schemas.
func (a *mcpAgent) tools(want []string) map[string]*sdk.Tool {
	a.t.Helper()
	out := map[string]*sdk.Tool{}
	for tl, err := range a.cs.Tools(testCtx(a.t, time.Minute), nil) {
		if err != nil {
			a.t.Fatal(err)
		}
		out[tl.Name] = tl
	}
	var names []string
	for n := range out {
		names = append(names, n)
	}
	slices.Sort(names)
	if !slices.Equal(names, want) {
		a.t.Fatalf("tools %v, want %v", names, want)
	}
	schema := func(name string) map[string]any {
		var m map[string]any
		b, _ := json.Marshal(out[name].InputSchema)
		json.Unmarshal(b, &m)
		return m
	}
	for name, tl := range out {
		s := schema(name)
		if s["type"] != "object" || s["additionalProperties"] != false || tl.Description == "" || tl.Annotations == nil {
			a.t.Errorf("%s: schema %v", name, s)
		}
		for p, ps := range obj(s["properties"]) {
			if str(obj(ps)["description"]) == "" {
				a.t.Errorf("%s.%s has no description", name, p)
			}
		}
	}
	if out["create_l402_challenge"] == nil {
		if *out["pay_invoice"].Annotations.DestructiveHint != true {
			a.t.Error("annotations")
		}
		return out
	}
	create := obj(schema("create_l402_challenge")["properties"])
	if p := obj(create["priceSats"]); p["type"] != "integer" || p["minimum"] != 1.0 || p["maximum"] != 1_000_000.0 || obj(create["price_sats"])["minimum"] != 1.0 {
		a.t.Errorf("priceSats schema %v", p)
	}
	if fmt.Sprint(schema("create_l402_challenge")["anyOf"]) != "[map[required:[priceSats]] map[required:[price_sats]]]" ||
		fmt.Sprint(schema("create_l402_challenge")["required"]) != "[resource]" {
		a.t.Errorf("create_l402_challenge requires %v / %v", schema("create_l402_challenge")["required"], schema("create_l402_challenge")["anyOf"])
	}
	if p := obj(obj(schema("verify_l402_payment")["properties"])["preimage"]); p["pattern"] != "^[0-9a-fA-F]{64}$" {
		a.t.Errorf("preimage schema %v", p)
	}
	if out["verify_l402_payment"].Annotations.ReadOnlyHint != true {
		a.t.Error("annotations")
	}
	return out
}

// lndPaymentCount is how many payments (any state) bob's LND knows.
func lndPaymentCount(t testing.TB) int {
	t.Helper()
	resp, err := lnd(t, testNet(t), "bob").Lightning.ListPayments(testCtx(t, time.Minute), &lnrpc.ListPaymentsRequest{IncludeIncomplete: true, MaxPayments: 100000})
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.Payments)
}

// mcpGateServices: a cheap service and a premium one (above the approval
// threshold bob's l402d runs with) behind alice's gate.
func mcpGateServices(u *gateUpstreams) string {
	return fmt.Sprintf(`services:
  - name: weather
    path: /weather/*
    upstream: http://%[1]s
    price: 50
    description: weather data
  - name: premium
    path: /premium/*
    upstream: http://%[1]s
    price: 500
    description: premium reports
`, u.http)
}

// TestMCP runs seed 000's agent-to-agent flow with real MCP clients over
// streamable HTTP and over stdio (l402cli mcp): alice's l402d earns, bob's
// spends, both on their own regtest LND.
func TestMCP(t *testing.T) {
	u := startGateUpstreams(t)
	alice := startGateDaemon(t, mcpGateServices(u), "--gate.mint-rate", "100", "--gate.mint-burst", "1000")
	bob := startBob(t, "--mcp.approval-threshold-sats", "200")
	alicePub := testNet(t).Node("alice").Pubkey

	producer := httpAgent(t, alice.daemon, agentOpts{producer: true})
	consumer := httpAgent(t, bob, agentOpts{})
	desktop := stdioAgent(t, bob, agentOpts{approve: "accept"})

	t.Run("tools and schemas", func(t *testing.T) {
		producer.tools(mcpProducerTools)
		desktop.tools(mcpConsumerTools)
		consumer.tools(mcpConsumerTools)
	})

	// seedFlow: the producer agent charges, the consumer agent pays, the
	// producer verifies.
	seedFlow := func(t *testing.T, payer *mcpAgent, resource string) {
		ch, isErr := producer.call("create_l402_challenge", map[string]any{"resource": resource, "priceSats": 50, "description": "7-day forecast"})
		c := obj(ch["challenge"])
		if isErr || ch["success"] != true || num(ch["priceSats"]) != 50 || ch["resource"] != resource || !strings.HasPrefix(str(c["invoice"]), "lnbcrt500n1") ||
			str(c["macaroon"]) == "" || len(str(c["paymentHash"])) != 64 || str(c["expiresAt"]) == "" ||
			obj(ch["instructions"])["tokenFormat"] != "L402 {macaroon}:{preimage}" || str(obj(ch["instructions"])["verifyWith"]) == "" ||
			ch["message"] != "L402 challenge created for 50 sats. Share the invoice with the payer." {
			t.Fatalf("create_l402_challenge: %v", ch)
		}
		// Before payment: not valid.
		if v, _ := producer.call("verify_l402_payment", map[string]any{"macaroon": c["macaroon"], "preimage": strings.Repeat("0", 64)}); v["valid"] != false ||
			!strings.Contains(str(v["message"]), "Do NOT grant access") {
			t.Fatalf("verify before payment: %v", v)
		}
		before := lndPaymentCount(t)
		paid, isErr := payer.call("pay_l402_challenge", map[string]any{"invoice": c["invoice"], "macaroon": c["macaroon"]})
		if isErr || paid["paid"] != true || num(paid["amountSats"]) != 50 || paid["paymentHash"] != c["paymentHash"] || len(str(paid["preimage"])) != 64 ||
			paid["l402Token"] != "L402 "+str(c["macaroon"])+":"+str(paid["preimage"]) {
			t.Fatalf("pay_l402_challenge: %v", paid)
		}
		if ps := bobPayments(t, str(c["paymentHash"])); len(ps) != 1 || ps[0].Status != lnrpc.Payment_SUCCEEDED || lndPaymentCount(t) != before+1 {
			t.Fatalf("bob's LND: %v", ps)
		}
		v, isErr := producer.call("verify_l402_payment", map[string]any{"macaroon": c["macaroon"], "preimage": paid["preimage"]})
		if isErr || v["success"] != true || v["valid"] != true || v["resource"] != resource || num(v["amountSats"]) != 50 || v["merchantId"] != alicePub ||
			v["paymentHash"] != c["paymentHash"] || !strings.Contains(str(v["message"]), "grant access") {
			t.Fatalf("verify_l402_payment: %v", v)
		}
		// The token as the payer sends it, bound to its resource.
		if v, _ := producer.call("verify_l402_payment", map[string]any{"token": paid["l402Token"], "resource": resource}); v["valid"] != true {
			t.Fatalf("verify the token: %v", v)
		}
		if v, _ := producer.call("verify_l402_payment", map[string]any{"token": paid["l402Token"], "resource": "/api/other"}); v["valid"] != false || v["reason"] != "wrong_resource" {
			t.Fatalf("verify for another resource: %v", v)
		}
		// Paying again pays nothing.
		again, _ := payer.call("pay_l402_challenge", map[string]any{"invoice": c["invoice"], "macaroon": c["macaroon"]})
		if again["alreadyPaid"] != true || again["preimage"] != paid["preimage"] || lndPaymentCount(t) != before+1 {
			t.Fatalf("paying again: %v", again)
		}
		waitSettled(t, alice.daemon, str(c["paymentHash"]), 50)
	}
	t.Run("seed flow over HTTP", func(t *testing.T) { seedFlow(t, consumer, "/api/weather/forecast/nyc") })
	t.Run("seed flow over stdio", func(t *testing.T) { seedFlow(t, desktop, "/api/weather/forecast/sf") })

	t.Run("access_l402_resource pays once and reuses the token", func(t *testing.T) {
		gateURL := "http://" + alice.gate
		q, isErr := consumer.call("quote_l402_resource", map[string]any{"url": gateURL + "/weather/today"})
		if isErr || num(q["priceSats"]) != 50 || q["wouldPay"] != true || q["approvalRequired"] != false || q["service"] != "weather" {
			t.Fatalf("quote: %v", q)
		}
		alicePub := testNet(t).Node("alice").Pubkey
		for doc, format := range map[string]string{"/.well-known/l402.json": "l402-discovery", "/l402/openapi.json": "openapi"} {
			m, _ := consumer.call("quote_l402_resource", map[string]any{"url": gateURL + doc})
			man := obj(m["manifest"])
			entries, _ := man["entries"].([]any)
			if len(entries) != 2 || man["format"] != format || man["nodePubkey"] != alicePub || num(obj(entries[0])["priceMsat"]) != 50000 && num(obj(entries[1])["priceMsat"]) != 50000 {
				t.Fatalf("%s: %v", doc, m)
			}
		}
		before := lndPaymentCount(t)
		first, isErr := consumer.call("access_l402_resource", map[string]any{"url": gateURL + "/weather/today"})
		pay := obj(first["payment"])
		if isErr || num(first["status"]) != 200 || first["paid"] != true || first["fromCache"] != false || !strings.Contains(str(first["body"]), `"path":"/weather/today"`) ||
			num(pay["amountSats"]) != 50 || !strings.HasPrefix(str(first["l402Token"]), "L402 ") {
			t.Fatalf("first access: %v", first)
		}
		second, _ := consumer.call("access_l402_resource", map[string]any{"url": gateURL + "/weather/today"})
		if num(second["status"]) != 200 || second["paid"] != false || second["fromCache"] != true {
			t.Fatalf("second access: %v", second)
		}
		// Over stdio too: the same cache (the same daemon).
		if third, _ := desktop.call("access_l402_resource", map[string]any{"url": gateURL + "/weather/tomorrow"}); third["fromCache"] != true || third["paid"] != false {
			t.Fatalf("access over stdio: %v", third)
		}
		if ps := bobPayments(t, str(pay["paymentHash"])); len(ps) != 1 || lndPaymentCount(t) != before+1 {
			t.Fatalf("bob's LND has %d payments for the token, %d new in all", len(ps), lndPaymentCount(t)-before)
		}
		toks, _ := consumer.call("list_l402_tokens", map[string]any{"origin": gateURL})
		h, _ := consumer.call("get_payment_history", map[string]any{"kind": "access"})
		if num(toks["count"]) != 1 || num(obj(h["totals"])["count"]) != 1 {
			t.Fatalf("tokens %v, history %v", toks, h)
		}
	})

	t.Run("bad inputs are tool errors and move no money", func(t *testing.T) {
		ch, _ := producer.call("create_l402_challenge", map[string]any{"resource": "/api/bad", "priceSats": 5})
		c := obj(ch["challenge"])
		amountless, err := lnd(t, testNet(t), "alice").Lightning.AddInvoice(testCtx(t, time.Minute), &lnrpc.Invoice{Memo: "no amount"})
		if err != nil {
			t.Fatal(err)
		}
		before := lndPaymentCount(t)
		for _, tc := range []struct {
			agent       *mcpAgent
			tool        string
			args        map[string]any
			field, code string
		}{
			{producer, "create_l402_challenge", map[string]any{"priceSats": 50}, "resource", "invalid_argument"},
			{producer, "create_l402_challenge", map[string]any{"resource": "/r", "priceSats": 0}, "priceSats", "invalid_argument"},
			{producer, "create_l402_challenge", map[string]any{"resource": "/r", "price_sats": -50}, "price_sats", "invalid_argument"},
			{producer, "create_l402_challenge", map[string]any{"resource": "/r", "priceSats": json.RawMessage("1e30")}, "priceSats", "invalid_argument"},
			{producer, "create_l402_challenge", map[string]any{"resource": "/r", "priceSats": 1_000_001}, "priceSats", "invalid_argument"},
			{producer, "verify_l402_payment", map[string]any{"macaroon": "not*a*macaroon", "preimage": strings.Repeat("0", 64)}, "macaroon", "invalid_argument"},
			{producer, "verify_l402_payment", map[string]any{"macaroon": c["macaroon"], "preimage": "not-hex"}, "preimage", "invalid_argument"},
			{consumer, "pay_invoice", map[string]any{"invoice": amountless.PaymentRequest}, "invoice", "amountless_invoice"},
			{desktop, "pay_invoice", map[string]any{"invoice": amountless.PaymentRequest}, "invoice", "amountless_invoice"},
			{consumer, "pay_l402_challenge", map[string]any{"invoice": c["invoice"], "macaroon": "AgEL"}, "macaroon", "invalid_macaroon"},
			{consumer, "pay_l402_challenge", map[string]any{"invoice": amountless.PaymentRequest, "macaroon": c["macaroon"]}, "macaroon", "hash_mismatch"},
			{consumer, "pay_invoice", map[string]any{"invoice": c["invoice"], "maxSats": 4}, "maxSats", "price_above_max"},
			{consumer, "get_budget_status", map[string]any{"perPaymentSats": 1_000_000}, "perPaymentSats", "invalid_argument"},
		} {
			out, isErr := tc.agent.call(tc.tool, tc.args)
			if !isErr || out["success"] != false || out["field"] != tc.field || out["code"] != tc.code || str(out["error"]) == "" || str(out["fix"]) == "" {
				t.Errorf("%s(%v): %v, want field %s code %s", tc.tool, tc.args, out, tc.field, tc.code)
			}
		}
		if n := lndPaymentCount(t); n != before {
			t.Fatalf("bob's LND made %d payments on bad inputs", n-before)
		}
	})

	t.Run("approval threshold", func(t *testing.T) {
		gateURL := "http://" + alice.gate
		before := lndPaymentCount(t)
		// A client that cannot ask the person: refused.
		out, isErr := consumer.call("access_l402_resource", map[string]any{"url": gateURL + "/premium/q1"})
		if !isErr || out["code"] != "approval_required" || num(out["priceSats"]) != 500 || num(out["approvalThresholdSats"]) != 200 || lndPaymentCount(t) != before {
			t.Fatalf("without elicitation: %v", out)
		}
		// A session client (server-to-client elicitation) that declines.
		decliner := httpAgent(t, bob, agentOpts{legacy: true, approve: "decline"})
		out, isErr = decliner.call("access_l402_resource", map[string]any{"url": gateURL + "/premium/q1"})
		if !isErr || out["code"] != "approval_declined" || decliner.askedCount() != 1 || lndPaymentCount(t) != before {
			t.Fatalf("declined: %v", out)
		}
		// One that accepts.
		accepter := httpAgent(t, bob, agentOpts{legacy: true, approve: "accept"})
		out, isErr = accepter.call("access_l402_resource", map[string]any{"url": gateURL + "/premium/q1"})
		if isErr || out["paid"] != true || num(obj(out["payment"])["amountSats"]) != 500 || accepter.askedCount() != 1 || lndPaymentCount(t) != before+1 ||
			!strings.Contains(accepter.lastAsked(), "500 sats") {
			t.Fatalf("accepted: %v, asked %q", out, accepter.lastAsked())
		}
		// The latest protocol (input requests) over HTTP, accepted.
		latest := httpAgent(t, bob, agentOpts{approve: "accept"})
		ch, _ := producer.call("create_l402_challenge", map[string]any{"resource": "/api/big", "priceSats": 300})
		c := obj(ch["challenge"])
		out, isErr = latest.call("pay_l402_challenge", map[string]any{"invoice": c["invoice"], "macaroon": c["macaroon"]})
		if isErr || out["paid"] != true || latest.askedCount() != 1 || lndPaymentCount(t) != before+2 {
			t.Fatalf("pay_l402_challenge approved: %v", out)
		}
		// The premium token bought above covers the other premium paths:
		// nothing to pay, nobody asked.
		out, isErr = consumer.call("access_l402_resource", map[string]any{"url": gateURL + "/premium/q2"})
		if isErr || out["fromCache"] != true || lndPaymentCount(t) != before+2 {
			t.Fatalf("cached premium token: %v", out)
		}
		// Through l402cli mcp: the desktop client is asked.
		asked := desktop.askedCount()
		ch, _ = producer.call("create_l402_challenge", map[string]any{"resource": "/api/big/stdio", "priceSats": 400})
		c = obj(ch["challenge"])
		out, isErr = desktop.call("pay_l402_challenge", map[string]any{"invoice": c["invoice"], "macaroon": c["macaroon"]})
		if isErr || out["paid"] != true || desktop.askedCount() != asked+1 || lndPaymentCount(t) != before+3 {
			t.Fatalf("approved over stdio: %v", out)
		}
		if v, _ := producer.call("verify_l402_payment", map[string]any{"token": out["l402Token"]}); v["valid"] != true || num(v["amountSats"]) != 400 {
			t.Fatalf("verify the approved payment: %v", v)
		}
		// A budget is not something an agent can change.
		if out, isErr := desktop.call("get_budget_status", nil); isErr || !strings.Contains(str(out["message"]), "not through MCP") || num(out["approvalThresholdSats"]) != 200 {
			t.Fatalf("budget: %v", out)
		}
	})

	t.Run("latency", func(t *testing.T) {
		const n = 30
		measure := func(f func()) time.Duration {
			var ds []time.Duration
			for range n {
				t0 := time.Now()
				f()
				ds = append(ds, time.Since(t0))
			}
			return median(ds)
		}
		ch, _ := producer.call("create_l402_challenge", map[string]any{"resource": "/api/latency", "priceSats": 5})
		c := obj(ch["challenge"])
		paid, _ := consumer.call("pay_l402_challenge", map[string]any{"invoice": c["invoice"], "macaroon": c["macaroon"]})
		args := map[string]any{"macaroon": c["macaroon"], "preimage": paid["preimage"]}
		restVerify := measure(func() { alice.call(t, "POST", "/api/l402/challenges/verify", args) })
		mcpVerify := measure(func() { producer.call("verify_l402_payment", args) })
		restBudget := measure(func() { bob.call(t, "GET", "/api/consumer/budget", nil) })
		httpBudget := measure(func() { consumer.call("get_budget_status", nil) })
		stdioBudget := measure(func() { desktop.call("get_budget_status", nil) })
		t.Logf("median of %d calls: verify REST %v, MCP over HTTP %v; budget REST %v, MCP over HTTP %v, MCP over stdio (l402cli mcp → HTTP) %v",
			n, restVerify.Round(time.Microsecond), mcpVerify.Round(time.Microsecond), restBudget.Round(time.Microsecond),
			httpBudget.Round(time.Microsecond), stdioBudget.Round(time.Microsecond))
	})
}
