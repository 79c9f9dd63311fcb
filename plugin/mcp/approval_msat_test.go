package mcp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/l402d/l402d/plugin/consumer"
)

// TestApprovalKeepsMsat: an approved invoice of a price that is not a
// whole number of sats is paid; the approval is not floored to sats (it
// was: 600,500 msat approved as 600 sats, then refused as above the
// approved maximum).
func TestApprovalKeepsMsat(t *testing.T) {
	e := newEnv(t, 0) // ask for every payment
	var pre lntypes.Preimage
	rand.Read(pre[:])
	h := lntypes.Hash(sha256.Sum256(pre[:]))
	inv := e.ln.invoice(h, 600_500, "odd msat", time.Hour)
	e.ln.mu.Lock()
	e.ln.preimages[h] = pre
	e.ln.mu.Unlock()

	asked := 0
	cs := connect(t, e.srv.SDK(), clientOpts{elicit: func(context.Context, *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
		asked++
		return &sdk.ElicitResult{Action: "accept", Content: map[string]any{"approve": true}}, nil
	}})
	out, isErr := call(t, cs, ToolPayInvoice, map[string]any{"invoice": inv})
	if isErr || out["paid"] != true || asked != 1 || e.ln.payCount() != 1 {
		t.Fatalf("approved 600,500 msat invoice: %v (asked %d, %d payments)", out, asked, e.ln.payCount())
	}
}

// TestUnapprovedCapAsks: payments each under the approval threshold are
// put to the person once they would go over the rolling unapproved-spend
// cap; an approved one is paid and does not count against it.
func TestUnapprovedCapAsks(t *testing.T) {
	e := newEnv(t, 1000) // threshold far above every price here
	cap := int64(50)
	if _, err := e.cons.SetBudget(t.Context(), consumer.BudgetUpdate{UnapprovedPerHourSats: &cap}); err != nil {
		t.Fatal(err)
	}
	asked := 0
	cs := connect(t, e.srv.SDK(), clientOpts{elicit: func(_ context.Context, r *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
		asked++
		return &sdk.ElicitResult{Action: "accept", Content: map[string]any{"approve": true}}, nil
	}})
	pay := func() map[string]any {
		inv, _ := call(t, cs, ToolCreateInvoice, map[string]any{"amountSats": 30}) // 30 + 10 fee limit
		out, isErr := call(t, cs, ToolPayInvoice, map[string]any{"invoice": inv["invoice"]})
		if isErr {
			t.Fatalf("pay_invoice: %v", out)
		}
		return out
	}
	if out := pay(); out["paid"] != true || asked != 0 {
		t.Fatalf("under the cap: %v, asked %d", out, asked)
	}
	if out := pay(); out["paid"] != true || asked != 1 {
		t.Fatalf("over the cap: %v, asked %d", out, asked)
	}
	// The approved payment did not use the cap: 31 of 50 spent.
	sellerURL := e.seller(10).URL // 31 spent + 10 + 10 fee limit: over the cap
	out, isErr := call(t, cs, ToolAccess, map[string]any{"url": sellerURL + "/capped"})
	if isErr || out["paid"] != true || asked != 2 {
		t.Fatalf("access over the cap: %v, asked %d", out, asked)
	}
	if e.ln.payCount() != 3 {
		t.Fatalf("%d payments, want 3", e.ln.payCount())
	}
}
