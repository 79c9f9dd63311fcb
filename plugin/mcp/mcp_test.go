package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

var allTools = []string{ToolCreateChallenge, ToolVerifyPayment, ToolAccess, ToolQuote, ToolPayChallenge, ToolPayInvoice,
	ToolCreateInvoice, ToolCheckInvoice, ToolBalance, ToolBudget, ToolPayments, ToolTokens, ToolSessions, ToolCloseSession}

func TestToolsAndSchemas(t *testing.T) {
	e := newEnv(t, -1)
	cs := connect(t, e.srv.SDK(), clientOpts{})
	tools := map[string]*sdk.Tool{}
	for tl, err := range cs.Tools(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		tools[tl.Name] = tl
	}
	var names []string
	for n := range tools {
		names = append(names, n)
	}
	slices.Sort(names)
	want := slices.Sorted(slices.Values(allTools))
	if !slices.Equal(names, want) {
		t.Fatalf("tools %v, want %v", names, want)
	}
	for _, tl := range tools {
		sc := obj(roundTrip(t, tl.InputSchema))
		if sc["type"] != "object" || sc["additionalProperties"] != false || tl.Description == "" || tl.Annotations == nil {
			t.Errorf("%s: schema %v, description %q, annotations %v", tl.Name, sc, tl.Description, tl.Annotations)
		}
		for name, p := range obj(sc["properties"]) {
			if str(obj(p)["description"]) == "" || obj(p)["type"] == nil {
				t.Errorf("%s.%s has no description or type: %v", tl.Name, name, p)
			}
		}
	}
	create := obj(roundTrip(t, tools[ToolCreateChallenge].InputSchema))
	props := obj(create["properties"])
	if p := obj(props["priceSats"]); p["type"] != "integer" || p["minimum"] != 1.0 || p["maximum"] != 100_000.0 || obj(props["price_sats"])["minimum"] != 1.0 {
		t.Errorf("priceSats schema %v", p)
	}
	if r := obj(props["resource"]); r["maxLength"] != 1024.0 || r["minLength"] != 1.0 || fmt.Sprint(create["required"]) != "[resource]" {
		t.Errorf("resource schema %v, required %v", r, create["required"])
	}
	if fmt.Sprint(create["anyOf"]) != "[map[required:[priceSats]] map[required:[price_sats]]]" {
		t.Errorf("create anyOf %v", create["anyOf"])
	}
	verify := obj(roundTrip(t, tools[ToolVerifyPayment].InputSchema))
	if fmt.Sprint(verify["anyOf"]) != "[map[required:[macaroon preimage]] map[required:[token]]]" || obj(obj(verify["properties"])["preimage"])["pattern"] != "^[0-9a-fA-F]{64}$" {
		t.Errorf("verify schema %v", verify)
	}
	for name, ro := range map[string]bool{ToolVerifyPayment: true, ToolBudget: true, ToolQuote: true, ToolAccess: false, ToolPayInvoice: false} {
		if a := tools[name].Annotations; a.ReadOnlyHint != ro {
			t.Errorf("%s readOnlyHint %v", name, a.ReadOnlyHint)
		}
	}
	for _, name := range []string{ToolAccess, ToolPayChallenge, ToolPayInvoice} {
		if a := tools[name].Annotations; a.DestructiveHint == nil || !*a.DestructiveHint {
			t.Errorf("%s is not marked destructive", name)
		}
	}
	// No tool can change a budget.
	for n, tl := range tools {
		for p := range obj(obj(roundTrip(t, tl.InputSchema))["properties"]) {
			if strings.Contains(strings.ToLower(p), "budget") || strings.Contains(strings.ToLower(p), "limit") && p != "limit" {
				t.Errorf("%s takes %s", n, p)
			}
		}
	}
}

func roundTrip(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSeedFlow is seed 000's agent-to-agent flow on one node: the
// producer creates a challenge, the consumer pays it, the producer
// verifies the token.
func TestSeedFlow(t *testing.T) {
	e := newEnv(t, -1)
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprintf("legacy=%v", legacy), func(t *testing.T) {
			cs := connect(t, e.srv.SDK(), clientOpts{legacy: legacy})
			resource := fmt.Sprintf("/api/weather/forecast/%v", legacy)
			ch, isErr := call(t, cs, ToolCreateChallenge, map[string]any{"resource": resource, "priceSats": 50, "description": "7-day forecast"})
			c := obj(ch["challenge"])
			if isErr || ch["success"] != true || ch["priceSats"] != 50.0 || ch["resource"] != resource || !strings.HasPrefix(str(c["invoice"]), "lnbcrt500n1") ||
				str(c["macaroon"]) == "" || len(str(c["paymentHash"])) != 64 || str(c["expiresAt"]) == "" ||
				obj(ch["instructions"])["tokenFormat"] != "L402 {macaroon}:{preimage}" || !strings.Contains(str(ch["message"]), "50 sats") {
				t.Fatalf("create: %v", ch)
			}
			// Asked again: the same challenge (idempotency, per session).
			again, _ := call(t, cs, ToolCreateChallenge, map[string]any{"resource": resource, "price_sats": 50})
			if obj(again["challenge"])["invoice"] != c["invoice"] || again["replayed"] != true {
				t.Fatalf("idempotent create: %v", again)
			}

			paid, isErr := call(t, cs, ToolPayChallenge, map[string]any{"invoice": c["invoice"], "macaroon": c["macaroon"]})
			if isErr || paid["paid"] != true || paid["amountSats"] != 50.0 || paid["paymentHash"] != c["paymentHash"] || len(str(paid["preimage"])) != 64 ||
				paid["l402Token"] != "L402 "+str(c["macaroon"])+":"+str(paid["preimage"]) {
				t.Fatalf("pay: %v", paid)
			}
			payments := e.ln.payCount()
			// Paying again pays nothing.
			again, isErr = call(t, cs, ToolPayChallenge, map[string]any{"invoice": c["invoice"], "macaroon": c["macaroon"]})
			if isErr || again["paid"] != false || again["alreadyPaid"] != true || again["preimage"] != paid["preimage"] || e.ln.payCount() != payments {
				t.Fatalf("pay again: %v", again)
			}

			ok, isErr := call(t, cs, ToolVerifyPayment, map[string]any{"macaroon": c["macaroon"], "preimage": paid["preimage"]})
			if isErr || ok["success"] != true || ok["valid"] != true || ok["resource"] != resource || ok["amountSats"] != 50.0 ||
				ok["paymentHash"] != c["paymentHash"] || str(ok["merchantId"]) == "" || !strings.Contains(str(ok["message"]), "grant access") {
				t.Fatalf("verify: %v", ok)
			}
			if ok, _ := call(t, cs, ToolVerifyPayment, map[string]any{"token": paid["l402Token"], "resource": resource}); ok["valid"] != true {
				t.Fatalf("verify the whole token: %v", ok)
			}
			bad, isErr := call(t, cs, ToolVerifyPayment, map[string]any{"macaroon": c["macaroon"], "preimage": strings.Repeat("ab", 32)})
			if isErr || bad["success"] != true || bad["valid"] != false || bad["reason"] != "wrong_preimage" || !strings.Contains(str(bad["message"]), "Do NOT grant access") {
				t.Fatalf("verify wrong preimage: %v", bad)
			}
			if bad, _ := call(t, cs, ToolVerifyPayment, map[string]any{"token": paid["l402Token"], "resource": "/other"}); bad["valid"] != false || bad["reason"] != "wrong_resource" {
				t.Fatalf("verify for another resource: %v", bad)
			}
		})
	}
}

// TestBadInputs: each bad input is a tool error naming the field, and
// moves no money.
func TestBadInputs(t *testing.T) {
	e := newEnv(t, -1)
	cs := connect(t, e.srv.SDK(), clientOpts{})
	ch, _ := call(t, cs, ToolCreateChallenge, map[string]any{"resource": "/x", "priceSats": 5})
	c := obj(ch["challenge"])
	var h lntypes.Hash
	amountless := e.ln.invoice(h, 0, "no amount", time.Hour)
	expired := e.ln.invoice(lntypes.Hash{1}, 5000, "old", time.Nanosecond)
	time.Sleep(time.Millisecond)
	for _, tc := range []struct {
		tool       string
		args       any
		field      string
		code, text string
	}{
		{ToolCreateChallenge, map[string]any{"priceSats": 50}, "resource", "invalid_argument", "is required"},
		{ToolCreateChallenge, map[string]any{"resource": "  ", "priceSats": 50}, "resource", "invalid_argument", "is empty"},
		{ToolCreateChallenge, map[string]any{"resource": "/r"}, "priceSats", "invalid_argument", "is required"},
		{ToolCreateChallenge, map[string]any{"resource": "/r", "priceSats": 0}, "priceSats", "invalid_argument", "greater than 0"},
		{ToolCreateChallenge, map[string]any{"resource": "/r", "price_sats": -5}, "price_sats", "invalid_argument", "greater than 0"},
		{ToolCreateChallenge, map[string]any{"resource": "/r", "priceSats": 100_001}, "priceSats", "invalid_argument", "at most 100000"},
		{ToolCreateChallenge, map[string]any{"resource": "/r", "priceSats": json.RawMessage("1e30")}, "priceSats", "invalid_argument", "out of range"},
		{ToolCreateChallenge, map[string]any{"resource": "/r", "priceSats": json.RawMessage("99999999999999999999")}, "priceSats", "invalid_argument", "out of range"},
		{ToolCreateChallenge, map[string]any{"resource": "/r", "priceSats": "50"}, "priceSats", "invalid_argument", "not a string"},
		{ToolCreateChallenge, map[string]any{"resource": "/r", "priceSats": 1.5}, "priceSats", "invalid_argument", "whole number"},
		{ToolCreateChallenge, map[string]any{"resource": "/r", "priceSats": 5, "price_sats": 6}, "price_sats", "invalid_argument", "both given"},
		{ToolCreateChallenge, map[string]any{"resource": "/r", "priceSats": 5, "prise": 6}, "prise", "invalid_argument", "not an argument"},
		{ToolCreateChallenge, map[string]any{"resource": strings.Repeat("r", 1025), "priceSats": 5}, "resource", "invalid_argument", "1025 bytes"},
		{ToolCreateChallenge, map[string]any{"resource": "/r\x01", "priceSats": 5}, "resource", "invalid_argument", "control characters"},
		{ToolCreateChallenge, []int{1}, "arguments", "invalid_argument", "not a JSON object"},
		{ToolVerifyPayment, map[string]any{"macaroon": "AgEL!!not-base64", "preimage": strings.Repeat("0", 64)}, "macaroon", "invalid_argument", "does not decode"},
		{ToolVerifyPayment, map[string]any{"macaroon": c["macaroon"], "preimage": strings.Repeat("z", 64)}, "preimage", "invalid_argument", "64 hex"},
		{ToolVerifyPayment, map[string]any{"macaroon": c["macaroon"]}, "preimage", "invalid_argument", "required with macaroon"},
		{ToolVerifyPayment, map[string]any{}, "macaroon", "invalid_argument", "is required"},
		{ToolVerifyPayment, map[string]any{"token": "L402 abc:def", "macaroon": c["macaroon"]}, "token", "invalid_argument", "cannot be combined"},
		{ToolVerifyPayment, map[string]any{"token": "L402 nocolon"}, "token", "invalid_argument", "no ':'"},
		{ToolVerifyPayment, map[string]any{"token": "L402 " + str(c["macaroon"]) + ":xyz"}, "token", "invalid_argument", "has a preimage that is not 64 hex"},
		{ToolPayInvoice, map[string]any{"invoice": amountless}, "invoice", "amountless_invoice", "no amount"},
		{ToolPayInvoice, map[string]any{"invoice": expired}, "invoice", "invoice_expired", "expired"},
		{ToolPayInvoice, map[string]any{"invoice": "lnbcrt1garbage"}, "invoice", "invalid_argument", "not a valid BOLT 11"},
		{ToolPayInvoice, map[string]any{"invoice": c["invoice"], "maxSats": 4}, "maxSats", "price_above_max", "5"},
		{ToolPayInvoice, map[string]any{"invoice": c["invoice"], "maxSats": -1}, "maxSats", "invalid_argument", "at least 0"},
		{ToolPayInvoice, map[string]any{}, "invoice", "invalid_argument", "is required"},
		{ToolPayChallenge, map[string]any{"invoice": c["invoice"], "macaroon": "AgEL"}, "macaroon", "invalid_macaroon", "does not decode"},
		{ToolPayChallenge, map[string]any{"invoice": amountless, "macaroon": c["macaroon"]}, "macaroon", "hash_mismatch", "payment hash"},
		{ToolPayChallenge, map[string]any{"challenge": "Bearer x"}, "challenge", "invalid_argument", "no L402 challenge"},
		{ToolPayChallenge, map[string]any{"invoice": c["invoice"]}, "macaroon", "invalid_argument", "required with invoice"},
		{ToolAccess, map[string]any{"url": "ftp://x"}, "url", "invalid_argument", "scheme"},
		{ToolAccess, map[string]any{"url": "http://127.0.0.1:1/x", "method": "BREW"}, "method", "invalid_argument", "one of"},
		{ToolAccess, map[string]any{"url": "http://127.0.0.1:1/x", "headers": map[string]any{"X": "a\r\nb"}}, "headers", "invalid_argument", "line break"},
		{ToolCreateInvoice, map[string]any{"amountSats": 0}, "amountSats", "invalid_argument", "greater than 0"},
		{ToolCreateInvoice, map[string]any{"amount": 10, "expiry": 400_000_000}, "expiry", "invalid_argument", "at most 31536000"},
		{ToolCheckInvoice, map[string]any{"paymentHash": "xyz"}, "paymentHash", "invalid_argument", "64 hex"},
		{ToolCheckInvoice, map[string]any{"payment_hash": strings.Repeat("0", 64)}, "paymentHash", "not_found", ""},
		{ToolPayments, map[string]any{"state": "done"}, "state", "invalid_argument", "one of"},
		{ToolPayments, map[string]any{"since": "yesterday"}, "since", "invalid_argument", "RFC 3339"},
		{ToolPayments, map[string]any{"limit": 0}, "limit", "invalid_argument", "greater than 0"},
		{ToolBalance, map[string]any{"perDaySats": 1_000_000}, "perDaySats", "invalid_argument", "not an argument"},
		{ToolBudget, map[string]any{"perPaymentSats": 1_000_000}, "perPaymentSats", "invalid_argument", "not an argument"},
	} {
		before := e.ln.payCount()
		out, isErr := call(t, cs, tc.tool, tc.args)
		if !isErr || out["success"] != false || out["field"] != tc.field || out["code"] != tc.code || !strings.Contains(str(out["error"]), tc.text) ||
			(tc.code != "not_found" && str(out["fix"]) == "") {
			t.Errorf("%s(%v): error %v, want field %q code %q containing %q", tc.tool, tc.args, out, tc.field, tc.code, tc.text)
		}
		if e.ln.payCount() != before {
			t.Errorf("%s(%v) paid", tc.tool, tc.args)
		}
	}
}

// TestApproval: a payment above the threshold is refused for a client
// that cannot ask, and put to the person for one that can, in both
// protocol generations.
func TestApproval(t *testing.T) {
	e := newEnv(t, 40) // 50 sats + 10 fee limit > 40
	sellerURL := e.seller(50).URL

	cs := connect(t, e.srv.SDK(), clientOpts{})
	out, isErr := call(t, cs, ToolAccess, map[string]any{"url": sellerURL + "/no-elicitation"})
	if !isErr || out["code"] != "approval_required" || out["priceSats"] != 50.0 || out["feeLimitSats"] != 10.0 || out["approvalThresholdSats"] != 40.0 ||
		len(str(out["paymentHash"])) != 64 || e.ln.payCount() != 0 {
		t.Fatalf("without elicitation: %v, %d payments", out, e.ln.payCount())
	}
	inv, _ := call(t, cs, ToolCreateInvoice, map[string]any{"amountSats": 31}) // 31 + 10 > 40
	if out, isErr := call(t, cs, ToolPayInvoice, map[string]any{"invoice": inv["invoice"]}); !isErr || out["code"] != "approval_required" || e.ln.payCount() != 0 {
		t.Fatalf("pay_invoice without elicitation: %v", out)
	}
	inv, _ = call(t, cs, ToolCreateInvoice, map[string]any{"amountSats": 30}) // 30 + 10 is not above 40
	if out, isErr := call(t, cs, ToolPayInvoice, map[string]any{"invoice": inv["invoice"]}); isErr || out["paid"] != true || e.ln.payCount() != 1 {
		t.Fatalf("pay_invoice at the threshold: %v", out)
	}

	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprintf("legacy=%v", legacy), func(t *testing.T) {
			var asked []string
			answer := "decline"
			cs := connect(t, e.srv.SDK(), clientOpts{legacy: legacy, elicit: func(_ context.Context, r *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
				asked = append(asked, r.Params.Message)
				if answer == "accept" {
					return &sdk.ElicitResult{Action: "accept", Content: map[string]any{"approve": true}}, nil
				}
				return &sdk.ElicitResult{Action: answer}, nil
			}})
			u := fmt.Sprintf("%s/approval/%v", sellerURL, legacy)
			before := e.ln.payCount()
			out, isErr := call(t, cs, ToolAccess, map[string]any{"url": u})
			if !isErr || out["code"] != "approval_declined" || len(asked) != 1 || e.ln.payCount() != before ||
				!strings.Contains(asked[0], "50 sats") || !strings.Contains(asked[0], "/approval/") {
				t.Fatalf("declined: %v, asked %q", out, asked)
			}
			answer = "accept"
			out, isErr = call(t, cs, ToolAccess, map[string]any{"url": u})
			if isErr || out["paid"] != true || out["body"] != "paid content of "+strings.TrimPrefix(u, sellerURL) || len(asked) != 2 || e.ln.payCount() != before+1 {
				t.Fatalf("accepted: %v, asked %d", out, len(asked))
			}
			// The cached token serves the next call: nobody is asked.
			out, _ = call(t, cs, ToolAccess, map[string]any{"url": u})
			if out["fromCache"] != true || len(asked) != 2 {
				t.Fatalf("cached: %v", out)
			}
			// pay_invoice: 35 + 10 > 40.
			inv, _ := call(t, cs, ToolCreateInvoice, map[string]any{"amountSats": 35})
			out, isErr = call(t, cs, ToolPayInvoice, map[string]any{"invoice": inv["invoice"]})
			if isErr || out["paid"] != true || len(asked) != 3 || !strings.Contains(asked[2], "35 sats") {
				t.Fatalf("pay_invoice approved: %v", out)
			}
			// A small payment is not put to the person.
			small, _ := call(t, cs, ToolCreateInvoice, map[string]any{"amountSats": 5})
			if out, isErr := call(t, cs, ToolPayInvoice, map[string]any{"invoice": small["invoice"]}); isErr || out["paid"] != true || len(asked) != 3 {
				t.Fatalf("small payment: %v, asked %d", out, len(asked))
			}
		})
	}
}

// TestApprovalStateForgery: an answer a client makes up, or replays, or
// moves to other arguments, pays nothing.
func TestApprovalStateForgery(t *testing.T) {
	e := newEnv(t, 0)
	cs := connect(t, e.srv.SDK(), clientOpts{})
	inv, _ := call(t, cs, ToolCreateInvoice, map[string]any{"amountSats": 20})
	other, _ := call(t, cs, ToolCreateInvoice, map[string]any{"amountSats": 20})
	yes := sdk.InputResponseMap{approvalKey: &sdk.ElicitResult{Action: "accept", Content: map[string]any{"approve": true}}}

	raw := func(args map[string]any, state string) (map[string]any, bool) {
		res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: ToolPayInvoice, Arguments: args, InputResponses: yes, RequestState: state})
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		json.Unmarshal([]byte(res.Content[0].(*sdk.TextContent).Text), &out)
		return out, res.IsError
	}
	if out, isErr := raw(map[string]any{"invoice": inv["invoice"]}, ""); !isErr || out["code"] != "approval_invalid" {
		t.Fatalf("no state: %v", out)
	}
	if out, isErr := raw(map[string]any{"invoice": inv["invoice"]}, "eyJ0IjoicGF5X2ludm9pY2UifQ.AAAA"); !isErr || out["code"] != "approval_invalid" {
		t.Fatalf("forged state: %v", out)
	}
	// A real state, for other arguments.
	v := values{"invoice": str(other["invoice"])}
	res, err := e.srv.ask(nil, ToolPayInvoice, v, proposal{priceSats: 20, feeLimitSats: 10})
	if err == nil || res != nil {
		t.Fatalf("ask without a request: %v %v", res, err)
	}
	state := e.srv.sealState(approvalState{Tool: ToolPayInvoice, Digest: argsDigest(ToolPayInvoice, v), PriceSats: 20, Nonce: "n1",
		Expires: time.Now().Add(time.Minute).Unix()})
	if out, isErr := raw(map[string]any{"invoice": inv["invoice"]}, state); !isErr || out["code"] != "approval_invalid" || !strings.Contains(str(out["error"]), "other arguments") {
		t.Fatalf("state of other arguments: %v", out)
	}
	if out, isErr := raw(map[string]any{"invoice": other["invoice"]}, state); isErr || out["paid"] != true {
		t.Fatalf("the real approval: %v", out)
	}
	if out, isErr := raw(map[string]any{"invoice": other["invoice"]}, state); !isErr || !strings.Contains(str(out["error"]), "already used") {
		t.Fatalf("replayed approval: %v", out)
	}
	expired := e.srv.sealState(approvalState{Tool: ToolPayInvoice, Digest: argsDigest(ToolPayInvoice, values{"invoice": str(inv["invoice"])}), Nonce: "n2",
		Expires: time.Now().Add(-time.Second).Unix()})
	if out, isErr := raw(map[string]any{"invoice": inv["invoice"]}, expired); !isErr || !strings.Contains(str(out["error"]), "expired") {
		t.Fatalf("expired approval: %v", out)
	}
	if e.ln.payCount() != 1 {
		t.Fatalf("%d payments, want 1", e.ln.payCount())
	}
}

func TestReadTools(t *testing.T) {
	e := newEnv(t, 500)
	cs := connect(t, e.srv.SDK(), clientOpts{})
	sellerURL := e.seller(7).URL

	q, isErr := call(t, cs, ToolQuote, map[string]any{"url": sellerURL + "/q"})
	if isErr || q["priceSats"] != 7.0 || q["feeLimitSats"] != 10.0 || q["wouldPay"] != true || q["approvalRequired"] != false || e.ln.payCount() != 0 {
		t.Fatalf("quote: %v", q)
	}
	a, isErr := call(t, cs, ToolAccess, map[string]any{"url": sellerURL + "/q", "maxSats": 7})
	if isErr || a["status"] != 200.0 || a["paid"] != true || !strings.HasPrefix(str(a["l402Token"]), "L402 ") || obj(a["payment"])["amountSats"] != 7.0 {
		t.Fatalf("access: %v", a)
	}
	inv, _ := call(t, cs, ToolCreateInvoice, map[string]any{"amount_sats": 12, "memo": "tip"})
	if inv["success"] != true || inv["amountSats"] != 12.0 || inv["memo"] != "tip" || inv["state"] != "open" {
		t.Fatalf("create_invoice: %v", inv)
	}
	st, _ := call(t, cs, ToolCheckInvoice, map[string]any{"paymentHash": inv["paymentHash"]})
	if st["settled"] != false || st["state"] != "open" {
		t.Fatalf("check_invoice_status: %v", st)
	}
	call(t, cs, ToolPayInvoice, map[string]any{"invoice": inv["invoice"]})
	if st, _ := call(t, cs, ToolCheckInvoice, map[string]any{"invoice": inv["invoice"]}); st["settled"] != true || st["amountPaidSats"] != 12.0 {
		t.Fatalf("check_invoice_status after paying: %v", st)
	}
	b, _ := call(t, cs, ToolBalance, nil)
	if obj(b["channel"])["localSats"] != 1_000_000.0 || obj(b["onchain"])["confirmedSats"] != 100_000.0 {
		t.Fatalf("balance: %v", b)
	}
	bu, _ := call(t, cs, ToolBudget, map[string]any{})
	if obj(bu["limits"])["perPaymentSats"] != 1000.0 || bu["approvalThresholdSats"] != 500.0 || num(obj(bu["today"])["spentSats"]) != 21 ||
		!strings.Contains(str(bu["message"]), "not through MCP") {
		t.Fatalf("budget: %v", bu)
	}
	h, _ := call(t, cs, ToolPayments, map[string]any{"state": "SUCCEEDED", "limit": 1})
	if ps, _ := h["payments"].([]any); len(ps) != 1 || obj(h["totals"])["count"] != 2.0 || str(h["next"]) == "" {
		t.Fatalf("history: %v", h)
	}
	tk, _ := call(t, cs, ToolTokens, map[string]any{"origin": sellerURL})
	if ts, _ := tk["tokens"].([]any); len(ts) != 1 || tk["count"] != 1.0 || obj(ts[0])["scope"] != "/q" {
		t.Fatalf("tokens: %v", tk)
	}
}
