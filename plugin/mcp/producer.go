package mcp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/l402d/l402d/plugin/field"
	"github.com/l402d/l402d/plugin/producer"
)

// ChallengeResult is create_l402_challenge's answer, in seed 000's shape.
type ChallengeResult struct {
	Success   bool `json:"success"`
	Challenge struct {
		Invoice     string    `json:"invoice"`
		Macaroon    string    `json:"macaroon"`
		PaymentHash string    `json:"paymentHash"`
		ExpiresAt   time.Time `json:"expiresAt"`
	} `json:"challenge"`
	Resource     string `json:"resource"`
	PriceSats    int64  `json:"priceSats"`
	Description  string `json:"description,omitempty"`
	Instructions struct {
		ForPayer    string `json:"forPayer"`
		TokenFormat string `json:"tokenFormat"`
		VerifyWith  string `json:"verifyWith"`
	} `json:"instructions"`
	// Replayed: the same challenge as a moment ago (same client,
	// resource and price within the idempotency window).
	Replayed bool   `json:"replayed,omitempty"`
	Message  string `json:"message"`
}

// VerifyResult is verify_l402_payment's answer, in seed 000's shape (with
// the REST API's fields).
type VerifyResult struct {
	Success     bool   `json:"success"`
	Valid       bool   `json:"valid"`
	Resource    string `json:"resource,omitempty"`
	AmountSats  int64  `json:"amountSats,omitempty"`
	MerchantID  string `json:"merchantId,omitempty"`
	PaymentHash string `json:"paymentHash,omitempty"`
	// Reason is a short code for an invalid token (wrong_preimage,
	// unknown_token, expired, wrong_resource, revoked, …); Error says it
	// in words.
	Reason  string `json:"reason,omitempty"`
	Error   string `json:"error,omitempty"`
	Message string `json:"message"`
}

func (s *Server) createChallenge(ctx context.Context, req *sdk.CallToolRequest, v values) (any, error) {
	role, ip := callerOf(req)
	ch, err := s.cfg.Producer.Create(ctx, producer.CreateRequest{
		Resource: v.str("resource"), PriceSats: v.int("priceSats"), Description: v.str("description"),
		IdempotencyKey: idempotencyKey(req, v), ClientIP: ip, Caller: "mcp:" + role, Source: "mcp",
	})
	if err != nil {
		return nil, err
	}
	var out ChallengeResult
	out.Success = true
	out.Challenge.Invoice, out.Challenge.Macaroon, out.Challenge.PaymentHash, out.Challenge.ExpiresAt = ch.Invoice, ch.Macaroon, ch.PaymentHash.String(), ch.ExpiresAt.UTC()
	out.Resource, out.PriceSats, out.Description, out.Replayed = ch.Resource, ch.PriceSats, v.str("description"), ch.Replayed
	out.Instructions.ForPayer = fmt.Sprintf("Pay the Lightning invoice, then present the L402 token: 'L402 %s:<preimage>' "+
		"where <preimage> is the proof of payment received after paying the invoice.", ch.Macaroon)
	out.Instructions.TokenFormat = "L402 {macaroon}:{preimage}"
	out.Instructions.VerifyWith = "After receiving the L402 token from the payer, use verify_l402_payment to confirm payment before granting access."
	out.Message = fmt.Sprintf("L402 challenge created for %d sats. Share the invoice with the payer.", ch.PriceSats)
	if ch.Replayed {
		out.Message = fmt.Sprintf("L402 challenge for %d sats (the same one as created a moment ago for this resource and price). Share the invoice with the payer.", ch.PriceSats)
	}
	return out, nil
}

// idempotencyKey scopes create_l402_challenge's idempotency: the
// argument, else the X-Idempotency-Key header of an HTTP client, else the
// MCP session. Without any (a stateless HTTP call), the producer scopes by
// the caller's key and address (CreateRequest.Caller and ClientIP).
func idempotencyKey(req *sdk.CallToolRequest, v values) string {
	if k := v.str("idempotencyKey"); k != "" {
		return k
	}
	if req == nil {
		return ""
	}
	if req.Extra != nil && req.Extra.Header != nil {
		if k := req.Extra.Header.Get("X-Idempotency-Key"); k != "" {
			return k
		}
	}
	if req.Session != nil && req.Session.ID() != "" {
		return "mcp-session:" + req.Session.ID()
	}
	return ""
}

func (s *Server) verifyPayment(ctx context.Context, _ *sdk.CallToolRequest, v values) (any, error) {
	mac, pre := v.str("macaroon"), v.str("preimage")
	tok := v.str("token")
	if tok != "" {
		var err error
		if mac, pre, err = splitToken(tok); err != nil {
			return nil, err
		}
	}
	res, err := s.cfg.Producer.VerifyToken(ctx, producer.VerifyRequest{Macaroon: mac, Preimage: pre, Resource: v.str("resource")})
	var fe *field.Error
	if tok != "" && errors.As(err, &fe) {
		return nil, &field.Error{Field: "token", Problem: "has a " + fe.Field + " that " + fe.Problem, Fix: "send the token as the payer gave it: L402 <macaroon>:<preimage>"}
	}
	if err != nil {
		return nil, err
	}
	if !res.Valid {
		return VerifyResult{Success: true, Valid: false, Reason: res.Reason, Error: res.Error,
			Message: "Payment verification failed (" + strings.TrimSuffix(res.Error, ".") + "). The token is invalid or the invoice has not been paid. Do NOT grant access."}, nil
	}
	return VerifyResult{Success: true, Valid: true, Resource: res.Resource, AmountSats: res.AmountSats, MerchantID: res.MerchantID, PaymentHash: res.PaymentHash,
		Message: fmt.Sprintf("Payment verified: %d sats paid for %s. The payer has paid — you can now grant access to the resource.", res.AmountSats, res.Resource)}, nil
}

// splitToken splits "L402 <macaroon>:<preimage>" (the scheme optional,
// L402 or LSAT in any case) into its parts.
func splitToken(tok string) (mac, pre string, err error) {
	t := strings.TrimSpace(tok)
	if scheme, rest, ok := strings.Cut(t, " "); ok && (strings.EqualFold(scheme, "L402") || strings.EqualFold(scheme, "LSAT")) {
		t = strings.TrimSpace(rest)
	}
	i := strings.LastIndexByte(t, ':')
	if i < 0 {
		return "", "", &field.Error{Field: "token", Problem: "has no ':' between the macaroon and the preimage", Fix: "send the token as the payer gave it: L402 <macaroon>:<preimage>"}
	}
	return t[:i], t[i+1:], nil
}
