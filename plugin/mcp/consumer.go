package mcp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/l402d/l402d/plugin/api"
	"github.com/l402d/l402d/plugin/apiclient"
	"github.com/l402d/l402d/plugin/consumer"
	"github.com/l402d/l402d/plugin/field"
	"github.com/l402d/l402d/storage"
)

// AccessResult is access_l402_resource's answer.
type AccessResult struct {
	Success     bool        `json:"success"`
	Status      int         `json:"status"`
	ContentType string      `json:"contentType,omitempty"`
	Headers     http.Header `json:"headers"`
	// The target's body: text when it is UTF-8, else base64.
	apiclient.RelayedBody
	// Paid: this call paid; FromCache: a cached token was used.
	Paid      bool                  `json:"paid"`
	FromCache bool                  `json:"fromCache"`
	Payment   *consumer.PaymentInfo `json:"payment,omitempty"`
	// L402Token is the credential the final request carried.
	L402Token string `json:"l402Token,omitempty"`
	Note      string `json:"note,omitempty"`
	// Session is the prepaid session that paid (session: true).
	Session *consumer.SessionInfo `json:"session,omitempty"`
	Message string                `json:"message"`
}

// QuoteResult is quote_l402_resource's answer: the consumer's quote, and
// whether paying it would be put to the person.
type QuoteResult struct {
	Success bool `json:"success"`
	*consumer.Quote
	ApprovalRequired      bool   `json:"approvalRequired"`
	ApprovalThresholdSats *int64 `json:"approvalThresholdSats,omitempty"`
	Message               string `json:"message"`
}

// PaymentResult is pay_l402_challenge's and pay_invoice's answer.
type PaymentResult struct {
	Success bool `json:"success"`
	// Paid: money moved now. AlreadyPaid: the journal held this payment
	// as made, so nothing was paid now.
	Paid        bool   `json:"paid"`
	AlreadyPaid bool   `json:"alreadyPaid"`
	PaymentHash string `json:"paymentHash"`
	AmountSats  int64  `json:"amountSats"`
	FeeMsat     int64  `json:"feeMsat"`
	Preimage    string `json:"preimage"`
	// Macaroon and L402Token: challenges only. L402Token is what to give
	// the seller: "L402 <macaroon>:<preimage>".
	Macaroon       string    `json:"macaroon,omitempty"`
	L402Token      string    `json:"l402Token,omitempty"`
	TokenExpiresAt time.Time `json:"tokenExpiresAt,omitzero"`
	Message        string    `json:"message"`
}

func (s *Server) access(ctx context.Context, req *sdk.CallToolRequest, v values) (any, error) {
	ar := accessRequest(v)
	if ar.Method == "" {
		ar.Method = http.MethodGet
	}
	ok, err := s.approved(req, ToolAccess, v)
	if err != nil {
		return nil, err
	}
	if ok != nil {
		// The person approved this price: never pay more.
		ar.MaxMsat, ar.Approved = ok.approvedMsat(), true
	} else if s.cfg.ApprovalThresholdSats >= 0 {
		ar.Approve = func(_ context.Context, p consumer.Proposal) error {
			fee := (p.FeeLimitMsat + 999) / 1000
			if price := (p.AmountMsat + 999) / 1000; p.ApprovalRequired || s.needsApproval(price, fee) {
				return &needApproval{proposal{priceSats: price, priceMsat: p.AmountMsat, feeLimitSats: fee, paymentHash: p.PaymentHash.String(),
					what: ar.Method + " " + p.URL, description: p.Description, reason: p.Reason}}
			}
			return nil
		}
	}
	resp, err := s.cfg.Consumer.Access(ctx, ar)
	var need *needApproval
	if errors.As(err, &need) {
		return s.ask(req, ToolAccess, v, need.p)
	}
	if err != nil {
		if resp != nil {
			// Paid, but the retry got no answer: the token is the
			// caller's all the same, and cached.
			b := apiclient.PaidNoAnswer(err, "call access_l402_resource again: the token (or single-use credential) is kept and is used without paying again")
			e := errorBody{Error: b.Error, Code: b.Code, Field: b.Field, Fix: b.Fix, Payment: resp.Payment}
			if resp.Token != nil {
				e.L402Token = resp.Token.Authorization
			}
			return nil, &toolError{e}
		}
		return nil, err
	}
	defer resp.Body.Close()
	out := AccessResult{Success: true, Status: resp.Status, ContentType: resp.Header.Get("Content-Type"), Headers: resp.Header,
		Paid: resp.Paid, FromCache: resp.FromCache, Payment: resp.Payment, Note: resp.Note, Session: resp.Session}
	if out.Headers == nil {
		out.Headers = http.Header{}
	}
	if resp.Token != nil {
		out.L402Token = resp.Token.Authorization
	}
	out.RelayedBody, out.Note = api.RelayBody(resp, s.cfg.MaxBodyBytes, out.Note)
	singleUse := resp.Token != nil && resp.Token.SingleUse
	switch {
	case resp.Paid && resp.Payment != nil && singleUse:
		out.Message = fmt.Sprintf("Paid %d sats (fee %s sats) for %s with a single-use %s credential; the target answered %d. The next request pays again.",
			resp.Payment.AmountSats, fmtMsat(resp.Payment.FeeMsat), ar.URL, resp.Token.Scheme, resp.Status)
	case resp.Paid && resp.Payment != nil:
		out.Message = fmt.Sprintf("Paid %d sats (fee %s sats) for %s; the target answered %d. The token is cached for the next requests.",
			resp.Payment.AmountSats, fmtMsat(resp.Payment.FeeMsat), ar.URL, resp.Status)
	case resp.Payment != nil && resp.Payment.AlreadyPaid && singleUse:
		out.Message = fmt.Sprintf("Nothing paid now: a single-use credential paid earlier and never answered was presented. The target answered %d.", resp.Status)
	case resp.Payment != nil && resp.Payment.AlreadyPaid:
		out.Message = fmt.Sprintf("Nothing paid now: this challenge was paid before and its token was used. The target answered %d.", resp.Status)
	case resp.FromCache:
		out.Message = fmt.Sprintf("Nothing paid: a cached L402 token was used. The target answered %d.", resp.Status)
	case resp.Note != "":
		out.Message = fmt.Sprintf("Nothing paid: %s. The target answered %d.", resp.Note, resp.Status)
	default:
		out.Message = fmt.Sprintf("Nothing paid: the target answered %d without asking for payment.", resp.Status)
	}
	return out, nil
}

// accessRequest reads access and quote arguments.
func accessRequest(v values) consumer.AccessRequest {
	ar := consumer.AccessRequest{URL: v.str("url"), Method: v.str("method"), Header: v.header("headers"), MaxSats: v.int("maxSats"), Session: v.bool("session"),
		ExpectedCalls: int(v.int("expectedCalls"))}
	if v.has("body") {
		ar.Body = []byte(v.str("body"))
	}
	return ar
}

func (s *Server) quote(ctx context.Context, _ *sdk.CallToolRequest, v values) (any, error) {
	q, err := s.cfg.Consumer.Quote(ctx, accessRequest(v))
	if err != nil {
		return nil, err
	}
	out := QuoteResult{Success: true, Quote: q}
	if s.cfg.ApprovalThresholdSats >= 0 {
		out.ApprovalThresholdSats = ptr(s.cfg.ApprovalThresholdSats)
	}
	switch {
	case q.Manifest != nil:
		out.Message = fmt.Sprintf("The price manifest lists %d priced resources. Nothing was paid.", len(q.Manifest.Entries))
	case q.Refusal != nil && !q.PaymentRequired:
		out.Message = "No manifest: " + q.Refusal.Problem
	case !q.PaymentRequired:
		out.Message = fmt.Sprintf("The target answered %d without asking for payment: access_l402_resource would pay nothing.", q.Status)
	case q.CachedToken:
		out.Message = fmt.Sprintf("Costs %d sats, but a cached token covers this URL: access_l402_resource would try it before paying.", q.PriceSats)
	case q.AlreadyPaid:
		out.Message = "This challenge was paid before: access_l402_resource would use its token and pay nothing."
	case q.Refusal != nil && q.Refusal.Code == "approval_required" && s.cfg.ApprovalThresholdSats >= 0:
		out.ApprovalRequired = true
		out.Message = fmt.Sprintf("Costs %d sats; paying it needs the person's approval: %s.", q.PriceSats, q.Refusal.Problem)
	case q.Refusal != nil:
		out.Message = fmt.Sprintf("Costs %d sats, but l402d would not pay it: %s (%s).", q.PriceSats, q.Refusal.Problem, q.Refusal.Fix)
	default:
		out.ApprovalRequired = s.needsApproval((q.PriceMsat+999)/1000, q.FeeLimitSats)
		out.Message = fmt.Sprintf("Costs %d sats (plus up to %d sats in routing fees); l402d would pay it.", q.PriceSats, q.FeeLimitSats)
		if out.ApprovalRequired {
			out.Message += " Paying it needs the person's approval (above the approval threshold)."
		}
	}
	return out, nil
}

func (s *Server) payChallenge(ctx context.Context, req *sdk.CallToolRequest, v values) (any, error) {
	pr := consumer.PayChallengeRequest{Invoice: v.str("invoice"), Macaroon: v.str("macaroon"), Challenge: v.str("challenge"),
		MaxSats: v.int("maxSats"), URL: v.str("url")}
	ok, err := s.approved(req, ToolPayChallenge, v)
	if err != nil {
		return nil, err
	}
	if ok == nil {
		q, err := s.cfg.Consumer.QuoteChallenge(ctx, pr)
		if err != nil {
			return nil, err
		}
		if res, err := s.gate(req, ToolPayChallenge, v, q, "an L402 challenge"+forURL(pr.URL)); res != nil || err != nil {
			return res, err
		}
	} else {
		pr.MaxMsat, pr.Approved = ok.approvedMsat(), true
	}
	res, err := s.cfg.Consumer.PayChallenge(ctx, pr)
	if err != nil {
		return nil, err
	}
	out := paymentResult(res.Payment)
	out.Macaroon, out.L402Token, out.TokenExpiresAt = res.Token.Macaroon, res.Token.Authorization, res.Token.ExpiresAt
	if out.AlreadyPaid {
		out.Message = "This challenge was paid before; nothing was paid now. Give the seller this L402 token: " + out.L402Token
	} else {
		out.Message = fmt.Sprintf("Paid %d sats (fee %s sats). Give the seller this L402 token: %s", out.AmountSats, fmtMsat(out.FeeMsat), out.L402Token)
	}
	return out, nil
}

func forURL(u string) string {
	if u == "" {
		return ""
	}
	return " from " + u
}

func (s *Server) payInvoice(ctx context.Context, req *sdk.CallToolRequest, v values) (any, error) {
	pr := consumer.PayInvoiceRequest{Invoice: v.str("invoice"), MaxSats: v.int("maxSats"), URL: v.str("url")}
	ok, err := s.approved(req, ToolPayInvoice, v)
	if err != nil {
		return nil, err
	}
	if ok == nil {
		q, err := s.cfg.Consumer.QuoteInvoice(ctx, pr)
		if err != nil {
			return nil, err
		}
		if res, err := s.gate(req, ToolPayInvoice, v, q, "a Lightning invoice"); res != nil || err != nil {
			return res, err
		}
	} else {
		pr.MaxMsat, pr.Approved = ok.approvedMsat(), true
	}
	p, err := s.cfg.Consumer.PayInvoice(ctx, pr)
	if err != nil {
		return nil, err
	}
	out := paymentResult(p)
	if out.AlreadyPaid {
		out.Message = "This invoice was paid before; nothing was paid now. The preimage is the proof of payment."
	} else {
		out.Message = fmt.Sprintf("Paid %d sats (fee %s sats). The preimage is the proof of payment.", out.AmountSats, fmtMsat(out.FeeMsat))
	}
	return out, nil
}

// gate decides, from a quote, whether a payment may go ahead now: a
// refusal is an error, a payment above the threshold is put to the
// person (a non-nil result), and anything else goes ahead (nil, nil).
func (s *Server) gate(req *sdk.CallToolRequest, tool string, v values, q *consumer.Quote, what string) (*sdk.CallToolResult, error) {
	// Over the rolling unapproved-spend cap: the policy wants the
	// person's approval, asked for as above the threshold.
	capped := q.Refusal != nil && q.Refusal.Code == "approval_required" && s.cfg.ApprovalThresholdSats >= 0
	if r := q.Refusal; r != nil && !capped {
		return nil, &toolError{errorBody{Error: r.Problem, Code: r.Code, Field: r.Field, Fix: r.Fix, PriceSats: q.PriceSats, PaymentHash: q.PaymentHash}}
	}
	if !capped && (q.AlreadyPaid || !s.needsApproval((q.PriceMsat+999)/1000, q.FeeLimitSats)) {
		return nil, nil
	}
	p := proposal{priceSats: (q.PriceMsat + 999) / 1000, priceMsat: q.PriceMsat, feeLimitSats: q.FeeLimitSats, paymentHash: q.PaymentHash, what: what, description: q.Description}
	if capped {
		p.reason = q.Refusal.Problem
	}
	return s.ask(req, tool, v, p)
}

func paymentResult(p *consumer.PaymentInfo) PaymentResult {
	return PaymentResult{Success: true, Paid: !p.AlreadyPaid, AlreadyPaid: p.AlreadyPaid, PaymentHash: p.PaymentHash,
		AmountSats: p.AmountSats, FeeMsat: p.FeeMsat, Preimage: p.Preimage}
}

// InvoiceResult is create_invoice's and check_invoice_status's answer.
type InvoiceResult struct {
	Success bool `json:"success"`
	api.InvoiceResponse
	Message string `json:"message"`
}

func (s *Server) createInvoice(ctx context.Context, _ *sdk.CallToolRequest, v values) (any, error) {
	amt, memo := v.int("amountSats"), v.str("memo")
	inv, err := s.cfg.Consumer.CreateInvoice(ctx, amt, memo, time.Duration(v.int("expirySeconds"))*time.Second)
	if err != nil {
		return nil, err
	}
	return InvoiceResult{Success: true, InvoiceResponse: api.InvoiceResponse{PaymentHash: inv.PaymentHash.String(), Invoice: inv.PaymentRequest, Memo: memo,
		State: "open", AmountSats: amt, ExpiresAt: inv.ExpiresAt.UTC()},
		Message: fmt.Sprintf("Invoice for %d sats created. Share the invoice with the payer; check_invoice_status tells when it is paid.", amt)}, nil
}

func (s *Server) checkInvoice(ctx context.Context, _ *sdk.CallToolRequest, v values) (any, error) {
	hs := v.str("paymentHash")
	if inv := v.str("invoice"); inv != "" {
		q, err := s.cfg.Consumer.QuoteInvoice(ctx, consumer.PayInvoiceRequest{Invoice: inv})
		if err != nil {
			return nil, err
		}
		hs = q.PaymentHash
	}
	h, err := lntypes.MakeHashFromStr(strings.TrimSpace(hs))
	if err != nil {
		return nil, &field.Error{Field: "paymentHash", Problem: "is not 64 hex characters", Fix: "send the invoice's paymentHash: 64 hex characters"}
	}
	st, err := s.cfg.Consumer.CheckInvoice(ctx, h)
	if err != nil {
		return nil, err
	}
	out := InvoiceResult{Success: true, InvoiceResponse: api.NewInvoiceStatusResponse(st)}
	switch {
	case out.Settled:
		out.Message = fmt.Sprintf("The invoice is paid: %d sats received.", out.AmountPaidSats)
	default:
		out.Message = fmt.Sprintf("The invoice is %s: not paid yet.", out.State)
	}
	return out, nil
}

// BalanceResult is check_wallet_balance's answer.
type BalanceResult struct {
	Success bool `json:"success"`
	api.BalanceResponse
	Message string `json:"message"`
}

func (s *Server) balance(ctx context.Context, _ *sdk.CallToolRequest, _ values) (any, error) {
	b, err := s.cfg.Consumer.Balance(ctx)
	if err != nil {
		return nil, err
	}
	out := BalanceResult{Success: true, BalanceResponse: api.NewBalanceResponse(b)}
	out.Message = fmt.Sprintf("%d sats spendable over Lightning (channels), %d sats on-chain.", out.Channel.LocalSats, out.Onchain.ConfirmedSats)
	return out, nil
}

// BudgetResult is get_budget_status's answer.
type BudgetResult struct {
	Success bool `json:"success"`
	api.BudgetResponse
	// ApprovalThresholdSats is absent when no payment is put to the
	// person.
	ApprovalThresholdSats *int64 `json:"approvalThresholdSats,omitempty"`
	Message               string `json:"message"`
}

func (s *Server) budget(ctx context.Context, _ *sdk.CallToolRequest, _ values) (any, error) {
	b, err := s.cfg.Consumer.Budget(ctx)
	if err != nil {
		return nil, err
	}
	out := BudgetResult{Success: true, BudgetResponse: api.NewBudgetResponse(b)}
	if s.cfg.ApprovalThresholdSats >= 0 {
		out.ApprovalThresholdSats = ptr(s.cfg.ApprovalThresholdSats)
	}
	rem := "no daily limit"
	if r := out.Today.RemainingSats; r != nil {
		rem = fmt.Sprintf("%d sats left today", *r)
	}
	out.Message = fmt.Sprintf("Spent %d sats today (UTC), %s. Budgets can only be changed by the node runner, not through MCP. %s",
		out.Today.SpentSats, rem, s.thresholdText())
	return out, nil
}

func (s *Server) payments(ctx context.Context, _ *sdk.CallToolRequest, v values) (any, error) {
	f := storage.PaymentFilter{State: storage.PaymentState(v.str("state")), Kind: storage.PaymentKind(v.str("kind")),
		Domain: strings.ToLower(strings.TrimSpace(v.str("domain"))), After: storage.Cursor(v.str("after")), Limit: int(v.int("limit"))}
	if f.Limit == 0 {
		f.Limit = 20
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := v.str(t.name); s != "" {
			tm, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
			if err != nil {
				return nil, &field.Error{Field: t.name, Problem: "is not an RFC 3339 time", Fix: "use e.g. 2026-01-02T15:04:05Z"}
			}
			*t.dst = tm
		}
	}
	list, next, tot, err := s.cfg.Consumer.Payments(ctx, f)
	if errors.Is(err, storage.ErrInvalid) {
		return nil, &field.Error{Field: "after", Problem: "is not a cursor of this list", Fix: "pass the next value of a previous page unchanged"}
	}
	if err != nil {
		return nil, err
	}
	type totals struct {
		Count      int   `json:"count"`
		Succeeded  int   `json:"succeeded"`
		Failed     int   `json:"failed"`
		Pending    int   `json:"pending"`
		AmountSats int64 `json:"amountSats"`
		FeeMsat    int64 `json:"feeMsat"`
	}
	out := struct {
		Success  bool                `json:"success"`
		Payments []api.PaymentRecord `json:"payments"`
		Next     string              `json:"next,omitempty"`
		Totals   totals              `json:"totals"`
		Message  string              `json:"message"`
	}{Success: true, Payments: make([]api.PaymentRecord, 0, len(list)), Next: string(next),
		Totals: totals{tot.Count, tot.Succeeded, tot.Failed, tot.Pending, tot.AmountMsat / 1000, tot.FeeMsat}}
	for i := range list {
		out.Payments = append(out.Payments, api.NewPaymentRecord(&list[i]))
	}
	out.Message = fmt.Sprintf("%d payments match (%d succeeded, %d sats paid); %d listed here.", tot.Count, tot.Succeeded, tot.AmountMsat/1000, len(list))
	if next != "" {
		out.Message += " Pass next as after for more."
	}
	return out, nil
}

func (s *Server) tokens(ctx context.Context, _ *sdk.CallToolRequest, v values) (any, error) {
	origin := strings.TrimSpace(v.str("origin"))
	if origin != "" {
		u, err := consumer.ParseTarget(origin)
		if err != nil {
			return nil, &field.Error{Field: "origin", Problem: "is not an origin", Fix: "send scheme://host[:port], e.g. https://api.example.com"}
		}
		origin = consumer.Origin(u)
	}
	list, err := s.cfg.Consumer.Tokens(ctx, origin)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	out := struct {
		Success bool              `json:"success"`
		Tokens  []api.TokenRecord `json:"tokens"`
		Count   int               `json:"count"`
		Message string            `json:"message"`
	}{Success: true, Tokens: make([]api.TokenRecord, 0, len(list)), Count: len(list)}
	live := 0
	for i := range list {
		r := api.NewTokenRecord(&list[i], now)
		if !r.Expired {
			live++
		}
		out.Tokens = append(out.Tokens, r)
	}
	out.Message = fmt.Sprintf("%d cached tokens (%d still valid); access_l402_resource uses them automatically.", len(list), live)
	return out, nil
}

// fmtMsat renders msat as sats, with decimals only when needed.
func fmtMsat(msat int64) string {
	if msat%1000 == 0 {
		return fmt.Sprint(msat / 1000)
	}
	return strings.TrimRight(fmt.Sprintf("%.3f", float64(msat)/1000), "0")
}

func (s *Server) sessions(ctx context.Context, _ *sdk.CallToolRequest, _ values) (any, error) {
	list, err := s.cfg.Consumer.Sessions(ctx)
	if err != nil {
		return nil, err
	}
	return struct {
		Success  bool                   `json:"success"`
		Sessions []consumer.SessionInfo `json:"sessions"`
		Message  string                 `json:"message"`
	}{true, list, fmt.Sprintf("%d sessions held.", len(list))}, nil
}

func (s *Server) closeSession(ctx context.Context, _ *sdk.CallToolRequest, v values) (any, error) {
	info, err := s.cfg.Consumer.CloseSession(ctx, v.str("sessionId"))
	if err != nil {
		return nil, err
	}
	return struct {
		Success bool `json:"success"`
		*consumer.SessionInfo
		Message string `json:"message"`
	}{true, info, fmt.Sprintf("Session %s: %s; refund %d msat (%s).", info.SessionID, info.State, info.RefundMsat, info.RefundStatus)}, nil
}
