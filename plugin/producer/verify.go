package producer

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/l402/mpp"
	"github.com/l402d/l402d/plugin/field"
	"github.com/l402d/l402d/plugin/metrics"
	"github.com/l402d/l402d/storage"
)

// VerifyRequest is a token to check, as the seed API receives it.
type VerifyRequest struct {
	Macaroon string // base64
	Preimage string // hex
	// Resource, when set, must be the one the token was bought for.
	Resource string
}

// VerifyResult is the seed API's verify answer.
type VerifyResult struct {
	Valid       bool
	Resource    string
	MerchantID  string // the issuing node's public key
	AmountSats  int64
	PaymentHash string
	// Error says why an invalid token is invalid; Reason is its short code.
	Error  string
	Reason string
}

// VerifyToken checks a token given as its two parts. Malformed input is a
// *field.Error; a well-formed token that fails is Valid=false with the
// reason. It never calls LND.
func (p *Producer) VerifyToken(ctx context.Context, req VerifyRequest) (VerifyResult, error) {
	m, pre := strings.TrimSpace(req.Macaroon), strings.TrimSpace(req.Preimage)
	switch {
	case m == "":
		return VerifyResult{}, &field.Error{Field: "macaroon", Problem: "is required", Fix: "send the base64 macaroon from the challenge"}
	case pre == "":
		return VerifyResult{}, &field.Error{Field: "preimage", Problem: "is required", Fix: "send the 64-character hex preimage you got when paying the invoice"}
	}
	mac, err := l402.DecodeMacaroon(m)
	if err != nil {
		return VerifyResult{}, &field.Error{Field: "macaroon", Problem: "does not decode: " + strings.TrimPrefix(err.Error(), l402.ErrMalformed.Error()+": "), Fix: "send the macaroon exactly as the challenge gave it (base64)"}
	}
	p32, err := l402.ParsePreimage(pre)
	if err != nil {
		return VerifyResult{}, &field.Error{Field: "preimage", Problem: "is not 64 hex characters", Fix: "send the payment preimage as hex"}
	}
	// Resources named by API clients are literal: "/api/*" is a name,
	// never a prefix (the gate's configured services are the only
	// wildcards, and their tokens carry a services caveat this path
	// refuses).
	want := l402.Expect{Resource: req.Resource, AnyResource: req.Resource == "", LiteralResource: true}
	v, err := p.Verify(ctx, l402.Credential{Macaroon: mac, Preimage: p32}, want)
	if err != nil {
		if isVerdict(err) {
			return VerifyResult{Valid: false, Error: verdictMessage(err), Reason: ReasonCode(err)}, nil
		}
		return VerifyResult{}, err
	}
	return VerifyResult{
		Valid:       true,
		Resource:    v.Resource,
		MerchantID:  v.Node,
		AmountSats:  v.AmountSats,
		PaymentHash: v.PaymentHash.String(),
	}, nil
}

// Verify checks a credential against this node's keys. Expect.Node is
// filled with this node's key. Errors wrapping l402's sentinels are
// verdicts on the token; others are failures to check it.
func (p *Producer) Verify(ctx context.Context, cred l402.Credential, want l402.Expect) (l402.Verified, error) {
	start := time.Now()
	want.Node = p.Node()
	v, err := p.verifier.Verify(ctx, cred, want)
	if m := p.cfg.Metrics; m != nil {
		metrics.Since(m.VerifyLatency, start)
		m.Verifications.WithLabelValues(ReasonCode(err)).Inc()
	}
	return v, err
}

var verdicts = []struct {
	err  error
	code string
}{
	{l402.ErrMalformed, "malformed"},
	{l402.ErrWrongPreimage, "wrong_preimage"},
	{l402.ErrUnknownToken, "unknown_token"},
	{l402.ErrBadSignature, "bad_signature"},
	{l402.ErrExpired, "expired"},
	{l402.ErrWrongService, "wrong_service"},
	{l402.ErrWrongResource, "wrong_resource"},
	{l402.ErrWrongAmount, "wrong_amount"},
	{l402.ErrWrongNode, "wrong_node"},
	{l402.ErrCapability, "missing_capability"},
	{l402.ErrCaveatWidened, "caveat_widened"},
	{l402.ErrUnknownCaveat, "unknown_caveat"},
	{l402.ErrRevoked, "revoked"},
	{l402.ErrNoCredential, "no_credential"},
	{storage.ErrConsumed, "consumed"},
	{mpp.ErrChallengeID, "bad_challenge_id"},
	{mpp.ErrUnsupported, "unsupported_payment"},
	{storage.ErrInsufficientBalance, "insufficient_balance"},
	{storage.ErrSessionClosed, "session_closed"},
	{storage.ErrSessionMismatch, "wrong_session"},
}

// ReasonCode is a short, stable code for a verification outcome.
func ReasonCode(err error) string {
	if err == nil {
		return "valid"
	}
	for _, v := range verdicts {
		if errors.Is(err, v.err) {
			return v.code
		}
	}
	return "error"
}

func isVerdict(err error) bool { return ReasonCode(err) != "error" }

// verdictMessage is the human text for an invalid token: the seed's
// "Preimage does not match payment hash" style, with our detail.
func verdictMessage(err error) string {
	s := err.Error()
	if s == "" {
		return "invalid token"
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
