package mcp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
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
