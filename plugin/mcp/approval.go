package mcp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/l402d/l402d/plugin/field"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Approvals. A payment whose price plus routing fee limit is above the
// threshold is put to the person before anything is paid. The tool
// answers with an input request (SEP-2322 multi round-trip): an
// elicitation form asking to approve, and a signed request state. The
// client (or, for clients of older protocol versions, the SDK on the
// server's side, with a server-to-client elicitation) asks the person
// and calls the tool again with the same arguments, the answer and the
// state. The state binds the answer to the tool, the exact arguments and
// the price asked about; it expires, and it can be used once.

// approvalKey names the approval in input requests and responses.
const approvalKey = "approval"

// maxStateLen bounds a request state echoed back by a client.
const maxStateLen = 2048

// approvalState is what a signed request state carries.
type approvalState struct {
	Tool         string `json:"t"`
	Digest       string `json:"d"` // of the tool's arguments
	PriceSats    int64  `json:"p"`
	FeeLimitSats int64  `json:"f"`
	// PriceMsat is the exact price approved: the retried call pays no
	// more (PriceSats, rounded up, is what the person was shown).
	PriceMsat   int64  `json:"m"`
	PaymentHash string `json:"h,omitempty"`
	Nonce       string `json:"n"`
	Expires     int64  `json:"e"` // unix seconds
}

// proposal is a payment that may need the person's approval.
type proposal struct {
	// priceSats is priceMsat rounded up: what the person is shown.
	priceSats, feeLimitSats int64
	priceMsat               int64
	paymentHash             string
	what                    string // what is paid for, for the person
	reason                  string // why approval is needed, if not the threshold
	description             string // the invoice's
}

// needApproval refuses a payment until the person approves it.
type needApproval struct{ p proposal }

func (e *needApproval) Error() string {
	return fmt.Sprintf("a payment of %d sats needs the person's approval", e.p.priceSats)
}

// needsApproval reports whether a payment is above the threshold.
func (s *Server) needsApproval(priceSats, feeLimitSats int64) bool {
	t := s.cfg.ApprovalThresholdSats
	return t >= 0 && priceSats+feeLimitSats > t
}

// approved returns the approval a retried call carries, or nil for a
// first call. A call that carries an answer that is not a valid, unused
// approval of these very arguments, or a refusal, is an error.
func (s *Server) approved(req *sdk.CallToolRequest, tool string, v values) (*approvalState, error) {
	if req == nil || req.Params == nil || (req.Params.RequestState == "" && len(req.Params.InputResponses) == 0) {
		return nil, nil
	}
	invalid := func(problem string) error {
		return &toolError{errorBody{Error: "the approval answer is not valid: " + problem + "; nothing was paid", Code: "approval_invalid", Field: "approval",
			Fix: "call the tool again with the same arguments (without inputResponses or requestState) to ask the person anew"}}
	}
	st, err := s.openState(req.Params.RequestState)
	if err != nil {
		return nil, invalid(err.Error())
	}
	if st.Tool != tool || st.Digest != argsDigest(tool, v) {
		return nil, invalid("it was given for other arguments")
	}
	if !s.consume(st.Nonce, time.Unix(st.Expires, 0)) {
		return nil, invalid("it was already used")
	}
	r, ok := req.Params.InputResponses[approvalKey].(*sdk.ElicitResult)
	if !ok || r == nil {
		return nil, invalid("it holds no answer to the approval request")
	}
	if yes, _ := r.Content["approve"].(bool); r.Action != "accept" || !yes {
		return nil, &toolError{errorBody{
			Error: fmt.Sprintf("the person did not approve paying %d sats (plus up to %d sats in routing fees); nothing was paid", st.PriceSats, st.FeeLimitSats),
			Code:  "approval_declined", Field: "approval", Fix: "do not pay this unless the person asks for it",
			PriceSats: st.PriceSats, FeeLimitSats: st.FeeLimitSats, PaymentHash: st.PaymentHash}}
	}
	return st, nil
}

// ask answers a call whose payment needs approval: an input request for
// the person, or a refusal if the client cannot ask.
func (s *Server) ask(req *sdk.CallToolRequest, tool string, v values, p proposal) (*sdk.CallToolResult, error) {
	if !canElicit(req) {
		why := fmt.Sprintf("is above this node's approval threshold of %d sats", s.cfg.ApprovalThresholdSats)
		if p.reason != "" {
			why = "needs the person's approval (" + p.reason + ")"
		}
		return nil, &toolError{errorBody{
			Error: fmt.Sprintf("paying %d sats (plus up to %d sats in routing fees) %s, "+
				"and this MCP client cannot ask the person (it does not support elicitation); nothing was paid",
				p.priceSats, p.feeLimitSats, why),
			Code: "approval_required", Field: "approval",
			Fix: "ask the person: they can approve it from an MCP client that supports elicitation, pay it themselves with l402cli, " +
				"or raise l402d's --mcp.approval-threshold-sats",
			PriceSats: p.priceSats, FeeLimitSats: p.feeLimitSats, PaymentHash: p.paymentHash, ApprovalThresholdSats: ptr(s.cfg.ApprovalThresholdSats)}}
	}
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	state := s.sealState(approvalState{Tool: tool, Digest: argsDigest(tool, v), PriceSats: p.priceSats, PriceMsat: p.priceMsat, FeeLimitSats: p.feeLimitSats,
		PaymentHash: p.paymentHash, Nonce: hex.EncodeToString(nonce[:]), Expires: s.cfg.Now().Add(approvalTTL).Unix()})
	return &sdk.CallToolResult{
		InputRequests: sdk.InputRequestMap{approvalKey: &sdk.ElicitParams{Mode: "form", Message: s.approvalMessage(p), RequestedSchema: approvalSchema(p)}},
		RequestState:  state,
	}, nil
}

// canElicit reports whether the client can put a form to the person.
func canElicit(req *sdk.CallToolRequest) bool {
	if req == nil {
		return false
	}
	caps := req.ClientCapabilities()
	if caps == nil || caps.Elicitation == nil {
		return false
	}
	// Both modes absent means form, for older clients.
	return caps.Elicitation.Form != nil || caps.Elicitation.URL == nil
}

func (s *Server) approvalMessage(p proposal) string {
	var b strings.Builder
	fmt.Fprintf(&b, "An AI agent wants to pay %d sats (plus up to %d sats in routing fees) from this node's Lightning wallet. ", p.priceSats, p.feeLimitSats)
	if p.reason != "" {
		fmt.Fprintf(&b, "It needs your approval: %s.\n", clean(p.reason, 300))
	} else {
		fmt.Fprintf(&b, "That is above your approval threshold of %d sats.\n", s.cfg.ApprovalThresholdSats)
	}
	if p.what != "" {
		fmt.Fprintf(&b, "For: %s\n", clean(p.what, 300))
	}
	if p.description != "" {
		fmt.Fprintf(&b, "Invoice description: %q\n", clean(p.description, 200))
	}
	if p.paymentHash != "" {
		fmt.Fprintf(&b, "Payment hash: %s\n", p.paymentHash)
	}
	b.WriteString("Approve this payment?")
	return b.String()
}

// clean makes text from elsewhere (a URL, an invoice's description) safe
// to show: no control characters, bounded.
func clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return field.Truncate(s, n)
}

func approvalSchema(p proposal) map[string]any {
	return map[string]any{
		"type": "object",
		"properties": map[string]any{
			"approve": map[string]any{"type": "boolean", "title": fmt.Sprintf("Pay %d sats", p.priceSats),
				"description": "Check to pay. Declining, or leaving it unchecked, pays nothing.", "default": false},
		},
		"required": []string{"approve"},
	}
}

// argsDigest binds a state to a tool and its exact arguments.
func argsDigest(tool string, v values) string {
	h := sha256.New()
	h.Write([]byte(tool))
	h.Write([]byte{0})
	h.Write(v.digest())
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// sealState signs st: base64url(JSON) "." base64url(HMAC-SHA256).
func (s *Server) sealState(st approvalState) string {
	b, _ := json.Marshal(st)
	m := hmac.New(sha256.New, s.key[:])
	m.Write(b)
	return base64.RawURLEncoding.EncodeToString(b) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// openState checks a state's signature and expiry.
func (s *Server) openState(state string) (*approvalState, error) {
	if state == "" {
		return nil, fmt.Errorf("the request state is missing")
	}
	if len(state) > maxStateLen {
		return nil, fmt.Errorf("the request state is too long")
	}
	body, sig, ok := strings.Cut(state, ".")
	if !ok {
		return nil, fmt.Errorf("the request state is malformed")
	}
	b, err1 := base64.RawURLEncoding.DecodeString(body)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("the request state is malformed")
	}
	m := hmac.New(sha256.New, s.key[:])
	m.Write(b)
	if !hmac.Equal(mac, m.Sum(nil)) {
		return nil, fmt.Errorf("the request state was not issued by this l402d (or l402d restarted since)")
	}
	var st approvalState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("the request state is malformed")
	}
	if !s.cfg.Now().Before(time.Unix(st.Expires, 0)) {
		return nil, fmt.Errorf("the approval request expired")
	}
	return &st, nil
}

// consume marks a nonce used; false if it was. Entries are kept until
// their state expires, and dropped after.
func (s *Server) consume(nonce string, expires time.Time) bool {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, exp := range s.used {
		if !now.Before(exp) {
			delete(s.used, n)
		}
	}
	if _, ok := s.used[nonce]; ok {
		return false
	}
	s.used[nonce] = expires
	return true
}

// approvedMsat is the most the approved call may pay: the exact price
// approved, or for a state without one (issued before msat were carried)
// the sats shown, which is what the person saw.
func (st *approvalState) approvedMsat() int64 {
	if st.PriceMsat > 0 {
		return st.PriceMsat
	}
	return st.PriceSats * 1000
}
