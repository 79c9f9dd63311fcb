package consumer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/storage"
)

// ErrBodyTimeout: a target's response body took longer than the body
// deadline, or stopped coming for longer than the idle timeout.
var ErrBodyTimeout = errors.New("response body timed out")

// ErrUpstream: the target could not be reached or did not answer.
// Errors are *UpstreamError.
var ErrUpstream = errors.New("target unreachable")

// UpstreamError is a request to a target that got no response.
type UpstreamError struct {
	Method, URL string
	Err         error
}

func (e *UpstreamError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Method, e.URL, e.Err)
}

// Is matches ErrUpstream.
func (e *UpstreamError) Is(target error) bool { return target == ErrUpstream }

// Unwrap exposes the cause (a *PolicyError for a private target).
func (e *UpstreamError) Unwrap() error { return e.Err }

// ChallengeError is a refusal or failure to pay a challenge met while
// fetching a URL, with what the challenge asked.
type ChallengeError struct {
	PriceSats   int64
	PaymentHash string
	Err         error
}

func (e *ChallengeError) Error() string { return e.Err.Error() }

// Unwrap exposes the cause: a *PolicyError, *storage.BudgetError or
// *PaymentError.
func (e *ChallengeError) Unwrap() error { return e.Err }

// AccessRequest is a request to fetch, paying if it asks.
type AccessRequest struct {
	URL    string
	Method string // default GET
	Header http.Header
	Body   []byte
	// MaxSats refuses a price above it; 0 leaves only the budget.
	MaxSats int64
	// MaxMsat, if set, refuses a price above it too: the exact price a
	// person approved.
	MaxMsat int64
	// Approved: a person approved paying for this request (the rolling
	// unapproved-spend cap does not apply).
	Approved bool
	// Approve, if set, is asked before anything is paid, once policy and
	// the budget allow the payment, or when the payment is over the
	// rolling unapproved-spend cap (Proposal.ApprovalRequired: it must
	// then refuse unless a person approves). An error refuses the payment: Access
	// returns it wrapped in a *ChallengeError. It is not asked when a
	// cached token or an earlier payment of the same challenge serves the
	// request. Surfaces that let a person approve large payments (MCP)
	// set it; it should not block for long, since concurrent accesses of
	// the same resource wait for it.
	Approve func(ctx context.Context, p Proposal) error
}

// Proposal is a payment Access is about to make, for AccessRequest.Approve.
type Proposal struct {
	URL         string
	Description string // the invoice's
	PaymentHash lntypes.Hash
	AmountMsat  int64
	// FeeLimitMsat is the most the payment may cost in routing fees.
	FeeLimitMsat int64
	// ApprovalRequired: the spend policy requires a person's approval
	// (the rolling unapproved-spend cap); Reason says why.
	ApprovalRequired bool
	Reason           string
}

// Response is the target's final answer. The caller must close Body.
type Response struct {
	Status int
	Header http.Header
	Body   io.ReadCloser
	// Paid reports whether this request paid; Payment describes that
	// payment, or one the journal already held for the challenge.
	Paid    bool
	Payment *PaymentInfo
	// Token is the credential the final request carried, nil for none.
	Token     *TokenInfo
	FromCache bool
	// Note explains an answer that is not what it seems, such as a 402
	// l402d could not pay.
	Note string
}

// BufferedBody is a response body read into memory for a JSON answer:
// as text when it is UTF-8, else as base64.
type BufferedBody struct {
	Text, Base64 *string
	Bytes        int
	Truncated    bool
}

// ReadBody reads up to limit bytes of the body. On a read error it
// returns what it read and the error.
func (r *Response) ReadBody(limit int64) (BufferedBody, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	var out BufferedBody
	if int64(len(b)) > limit {
		b, out.Truncated = b[:limit], true
	}
	out.Bytes = len(b)
	if utf8.Valid(b) {
		s := string(b)
		out.Text = &s
	} else {
		s := base64.StdEncoding.EncodeToString(b)
		out.Base64 = &s
	}
	return out, err
}

// prepared is a validated AccessRequest.
type prepared struct {
	u       *url.URL
	origin  string
	method  string
	header  http.Header
	body    []byte
	maxMsat int64
}

// hopHeaders are not forwarded to a target.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length"}

func prepare(req AccessRequest) (*prepared, error) {
	u, err := ParseTarget(req.URL)
	if err != nil {
		return nil, err
	}
	method := strings.ToUpper(strings.TrimSpace(req.Method))
	if method == "" {
		method = http.MethodGet
	}
	if len(method) > 32 || strings.IndexFunc(method, func(r rune) bool { return r < 'A' || r > 'Z' }) >= 0 {
		return nil, &FieldError{"method", fmt.Sprintf("%q is not an HTTP method", req.Method), "use GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS"}
	}
	if req.MaxSats < 0 {
		return nil, &FieldError{"maxSats", "is negative", "send 0 (no cap beyond the budget) or a price cap in sats"}
	}
	if req.MaxMsat < 0 {
		return nil, &FieldError{"maxMsat", "is negative", "send 0 (no cap beyond the budget) or a price cap in msat"}
	}
	h := req.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
	return &prepared{u: u, origin: Origin(u), method: method, header: h, body: req.Body, maxMsat: capMsat(req.MaxSats, req.MaxMsat)}, nil
}

// do sends the request, with tok's credential if tok is not nil.
func (c *Consumer) do(ctx context.Context, pr *prepared, tok *storage.Token) (*http.Response, error) {
	var body io.Reader
	if pr.body != nil {
		body = bytes.NewReader(pr.body)
	}
	// The request's own context lets the body's deadlines cut the
	// connection; it ends when the body is closed.
	rctx, cancel := context.WithCancelCause(ctx)
	r, err := http.NewRequestWithContext(rctx, pr.method, pr.u.String(), body)
	if err != nil {
		cancel(nil)
		return nil, &FieldError{"url", "cannot be requested: " + err.Error(), "send an absolute http(s) URL"}
	}
	r.Header = pr.header.Clone()
	if r.Header.Get("User-Agent") == "" {
		r.Header.Set("User-Agent", c.cfg.UserAgent)
	}
	if tok != nil {
		r.Header.Set(l402.HeaderAuthorization, l402.AuthorizationValue(tok.Macaroon, tok.Preimage))
	}
	resp, err := c.client.Do(r)
	if err != nil {
		cancel(nil)
		var pe *PolicyError
		if errors.As(err, &pe) {
			return nil, pe
		}
		return nil, &UpstreamError{Method: pr.method, URL: pr.u.String(), Err: err}
	}
	resp.Body = newDeadlineBody(rctx, cancel, resp.Body, c.cfg.BodyTimeout, c.cfg.BodyIdleTimeout)
	return resp, nil
}

// deadlineBody is a response body with a total deadline and an idle
// timeout: past either, the request's context is cancelled (which closes
// the connection) and reads fail with ErrBodyTimeout. A target that
// trickles its body, or stops sending it, cannot hold an access, a
// goroutine and a connection for ever.
type deadlineBody struct {
	rc     io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	idle   time.Duration
	idleT  *time.Timer
	totalT *time.Timer
}

func newDeadlineBody(ctx context.Context, cancel context.CancelCauseFunc, rc io.ReadCloser, total, idle time.Duration) *deadlineBody {
	b := &deadlineBody{rc: rc, ctx: ctx, cancel: cancel, idle: idle}
	b.totalT = time.AfterFunc(total, func() {
		cancel(fmt.Errorf("%w: the body took longer than %s (--consumer.body-timeout)", ErrBodyTimeout, total))
	})
	b.idleT = time.AfterFunc(idle, func() {
		cancel(fmt.Errorf("%w: no bytes of the body for %s (--consumer.body-idle-timeout)", ErrBodyTimeout, idle))
	})
	return b
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.idleT.Reset(b.idle)
	}
	if err != nil && err != io.EOF {
		if cause := context.Cause(b.ctx); errors.Is(cause, ErrBodyTimeout) {
			err = cause
		}
	}
	return n, err
}

func (b *deadlineBody) Close() error {
	b.idleT.Stop()
	b.totalT.Stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// Access fetches a URL. A cached token that covers it is sent along; on a
// 402 with an L402 challenge, policy and budget are checked, the invoice
// is paid through the journal and the request is retried once with the
// new credential, which is cached. Answers other than a payable 402 are
// returned as they are. If the retry after paying gets no answer, the
// Response (with the token) is returned along with an *UpstreamError.
func (c *Consumer) Access(ctx context.Context, req AccessRequest) (*Response, error) {
	pr, err := prepare(req)
	if err != nil {
		return nil, err
	}
	ownAuth := pr.header.Get(l402.HeaderAuthorization) != ""
	tried := map[lntypes.Hash]bool{}
	var tok *storage.Token
	if !ownAuth {
		if tok, err = c.cachedToken(ctx, pr, tried, ""); err != nil {
			return nil, err
		}
	}
	var ch l402.Challenge
	var advertised int64
	locked := false
	for {
		resp, err := c.do(ctx, pr, tok)
		if err != nil {
			return nil, err
		}
		if tok != nil {
			tried[tok.PaymentHash] = true
		}
		if resp.StatusCode == http.StatusUnauthorized && tok != nil {
			// The cached token is no good here: drop it, ask again bare.
			discard(resp)
			c.dropToken(ctx, tok)
			tok = nil
			continue
		}
		if resp.StatusCode != http.StatusPaymentRequired {
			return c.answer(resp, tok, tok != nil), nil
		}
		var head []byte
		var ok bool
		ch, advertised, head, ok = readChallenge(resp)
		if !ok {
			r := c.answer(resp, nil, false)
			r.Body = readCloser{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
			r.Note = "the target answered 402 without an L402 challenge l402d can pay"
			return r, nil
		}
		service := challengeService(ch)
		if tok != nil && !scopeRefusal(head) && (scopeService(tok.Scope) == "" || service == "" || service == tok.Service) {
			c.dropToken(ctx, tok) // refused for what it was bought for
		}
		tok = nil
		// Another cached token for the service the challenge names?
		if service != "" && !ownAuth {
			if tok, err = c.cachedToken(ctx, pr, tried, service); err != nil {
				return nil, err
			}
		}
		if tok != nil {
			continue
		}
		if locked {
			break
		}
		// One purchase per resource at a time: a concurrent Access of the
		// same URL may be buying the token this one needs.
		unlock, err := c.urlLocks.lock(ctx, resourceKey(pr))
		if err != nil {
			return nil, err
		}
		defer unlock()
		locked = true
		if ownAuth {
			break
		}
		if tok, err = c.cachedToken(ctx, pr, tried, ""); err != nil {
			return nil, err
		}
		if tok == nil {
			break
		}
	}

	o, err := c.evaluate(ctx, ch, advertised, pr.maxMsat, pr.u, req.Approved)
	ask := errors.Is(err, ErrApprovalRequired) && req.Approve != nil && o != nil
	if err != nil && !ask {
		c.count("refused", nil)
		return nil, c.challengeError(ctx, ch, err)
	}
	if req.Approve != nil && !o.paid {
		p := Proposal{URL: o.url, Description: o.decoded.Description, PaymentHash: o.decoded.PaymentHash,
			AmountMsat: o.decoded.AmountMsat, FeeLimitMsat: o.feeLimitMsat, ApprovalRequired: ask}
		if ask {
			p.Reason = err.Error()
		}
		if err := req.Approve(ctx, p); err != nil {
			c.count("refused", nil)
			return nil, &ChallengeError{PriceSats: o.decoded.AmountMsat / 1000, PaymentHash: o.decoded.PaymentHash.String(), Err: err}
		}
	}
	p, already, err := c.pay(ctx, o.entry(storage.KindAccess))
	if err != nil {
		return nil, &ChallengeError{PriceSats: o.decoded.AmountMsat / 1000, PaymentHash: o.decoded.PaymentHash.String(), Err: err}
	}
	bought := tokenOf(o, p.Preimage)
	if already {
		// Paid before (the token may have been dropped since): cache it
		// again rather than pay twice.
		if err := c.store.PutToken(ctx, bought); err != nil {
			c.log.Warn("caching a token again", "payment_hash", p.PaymentHash, "err", err)
		}
	}
	resp, err := c.do(ctx, pr, bought)
	out := &Response{Paid: !already, Payment: paymentInfo(p, already), Token: TokenInfoOf(bought)}
	if err != nil {
		return out, err
	}
	r := c.answer(resp, bought, false)
	r.Paid, r.Payment = out.Paid, out.Payment
	return r, nil
}

// resourceKey names the resource a request is for, for urlLocks.
func resourceKey(pr *prepared) lntypes.Hash {
	return sha256.Sum256([]byte(pr.origin + "\x00" + pr.u.Path))
}

// challengeError wraps a refusal with what the challenge asked, as far as
// it decodes.
func (c *Consumer) challengeError(ctx context.Context, ch l402.Challenge, err error) error {
	ce := &ChallengeError{Err: err}
	if d, derr := c.ln.DecodeInvoice(ctx, ch.Invoice); derr == nil {
		ce.PriceSats, ce.PaymentHash = d.AmountMsat/1000, d.PaymentHash.String()
	}
	return ce
}

// answer turns a target's response into a Response.
func (c *Consumer) answer(resp *http.Response, tok *storage.Token, fromCache bool) *Response {
	r := &Response{Status: resp.StatusCode, Header: resp.Header, Body: resp.Body, FromCache: fromCache}
	if tok != nil {
		r.Token = TokenInfoOf(tok)
	}
	return r
}

// cachedToken returns the live cached token to try for the request: the
// most specific one whose scope covers its path, or with service set the
// one for that service; never one in tried. Expired tokens met on the way
// are dropped.
func (c *Consumer) cachedToken(ctx context.Context, pr *prepared, tried map[lntypes.Hash]bool, service string) (*storage.Token, error) {
	toks, err := c.store.TokensForOrigin(ctx, pr.origin)
	if err != nil {
		return nil, fmt.Errorf("consumer: reading the token cache: %w", err)
	}
	best, expired := bestToken(toks, pr.u.Path, c.cfg.Now(), func(t *storage.Token) bool {
		return tried[t.PaymentHash] || (service != "" && t.Scope != servicePrefix+service)
	})
	for i := range expired {
		c.dropToken(ctx, &expired[i])
	}
	return best, nil
}

// dropToken removes a token from the cache (if it is still there).
func (c *Consumer) dropToken(ctx context.Context, t *storage.Token) {
	if _, err := c.store.DeleteToken(context.WithoutCancel(ctx), t.Origin, t.Scope, t.PaymentHash); err != nil {
		c.log.Warn("dropping a cached token", "origin", t.Origin, "scope", t.Scope, "err", err)
		return
	}
	c.log.Debug("dropped cached token", "origin", t.Origin, "scope", t.Scope, "payment_hash", t.PaymentHash)
}

// scopeRefusal reports whether a 402's JSON body says the credential was
// refused only for being bought for another resource, service or
// capability of the same seller (l402d's reasons wrong_resource,
// wrong_service, missing_capability): the token is still good where it
// was bought for, so it stays cached.
func scopeRefusal(body []byte) bool {
	var b struct {
		Reason string `json:"reason"`
	}
	if len(body) == 0 || json.Unmarshal(body, &b) != nil {
		return false
	}
	switch b.Reason {
	case "wrong_resource", "wrong_service", "missing_capability":
		return true
	}
	return false
}

// challengeService returns the first service a challenge's token names.
func challengeService(ch l402.Challenge) string {
	mac, err := l402.DecodeMacaroon(ch.Macaroon)
	if err != nil {
		return ""
	}
	info, err := l402.Inspect(mac)
	if err != nil || len(info.Services) == 0 {
		return ""
	}
	return info.Services[0].Name
}

// readChallenge reads the L402 challenge of a 402: from WWW-Authenticate
// (L402 before LSAT), else from a JSON body with macaroon and invoice
// fields, as the seed producer API returns. advertised is the price the
// body states, 0 if none. It reads at most maxChallengeBody bytes of the
// body and returns them as head; when ok it closes the body.
func readChallenge(resp *http.Response) (ch l402.Challenge, advertised int64, head []byte, ok bool) {
	head, _ = io.ReadAll(io.LimitReader(resp.Body, maxChallengeBody))
	cs, err := l402.ParseChallenges(resp.Header.Values(l402.HeaderWWWAuthenticate))
	fromBody, advertised := ParseChallengeBody(head)
	switch {
	case err == nil:
		ch, ok = cs[0], true
	case fromBody.Macaroon != "" && fromBody.Invoice != "":
		ch, ok = fromBody, true
	}
	if ok {
		discard(resp)
	}
	return ch, advertised, head, ok
}

// ParseChallengeBody reads a 402's JSON body: the challenge it carries
// (macaroon and invoice fields, either may be empty) and the price it
// states (amountSats, priceSats, amount_sats, price_sats or amount; 0 if
// none). Anything that is not a JSON object yields zero values.
func ParseChallengeBody(b []byte) (l402.Challenge, int64) {
	var m map[string]json.RawMessage
	if len(b) == 0 || json.Unmarshal(b, &m) != nil {
		return l402.Challenge{}, 0
	}
	str := func(k string) string {
		var s string
		_ = json.Unmarshal(m[k], &s)
		return s
	}
	ch := l402.Challenge{Scheme: l402.SchemeL402, Macaroon: str("macaroon"), Invoice: str("invoice")}
	if ch.Macaroon == "" {
		ch.Macaroon = str("token")
	}
	for _, k := range []string{"amountSats", "priceSats", "amount_sats", "price_sats", "amount"} {
		var n int64
		if json.Unmarshal(m[k], &n) == nil && n > 0 {
			return ch, n
		}
	}
	return ch, 0
}

// discard drains a little of a body (so the connection can be reused)
// and closes it.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

type readCloser struct {
	io.Reader
	io.Closer
}

// Quote is what fetching a URL would cost, found without paying.
type Quote struct {
	URL string `json:"url"`
	// Status is the target's answer to the unpaid request.
	Status          int  `json:"status"`
	PaymentRequired bool `json:"paymentRequired"`

	// PriceSats is the price in whole sats (rounded down); PriceMsat is
	// exact. FeeLimitSats is rounded up, FeeLimitMsat exact.
	PriceSats        int64     `json:"priceSats,omitempty"`
	PriceMsat        int64     `json:"priceMsat,omitempty"`
	FeeLimitSats     int64     `json:"feeLimitSats,omitempty"`
	FeeLimitMsat     int64     `json:"feeLimitMsat,omitempty"`
	Invoice          string    `json:"invoice,omitempty"`
	PaymentHash      string    `json:"paymentHash,omitempty"`
	Description      string    `json:"description,omitempty"`
	InvoiceExpiresAt time.Time `json:"invoiceExpiresAt,omitzero"`
	Macaroon         string    `json:"macaroon,omitempty"`
	Service          string    `json:"service,omitempty"`
	Resource         string    `json:"resource,omitempty"`
	TokenExpiresAt   time.Time `json:"tokenExpiresAt,omitzero"`
	// Scope is where the token would be reused once bought.
	Scope string `json:"scope,omitempty"`

	// CachedToken: a cached token covers the URL, so Access would try it
	// before paying anything.
	CachedToken bool `json:"cachedToken"`
	// AlreadyPaid: the journal holds this challenge as paid, so Access
	// would use its token and pay nothing.
	AlreadyPaid bool `json:"alreadyPaid,omitempty"`
	// WouldPay: Access would pay this price now (policy and budget
	// allow it), or use the token of AlreadyPaid; otherwise Refusal says
	// why not.
	WouldPay bool     `json:"wouldPay"`
	Refusal  *Refusal `json:"refusal,omitempty"`

	// Manifest is set when the URL is a /.well-known/l402.json manifest.
	Manifest *Manifest `json:"manifest,omitempty"`
}

// ManifestPath is where a service lists its prices.
const ManifestPath = "/.well-known/l402.json"

// Quote fetches a URL without a credential and reports its price, whether
// policy and budget would let Access pay it, and whether a cached token
// covers it, without paying or reserving anything. A URL whose path is
// ManifestPath is read as a price manifest.
func (c *Consumer) Quote(ctx context.Context, req AccessRequest) (*Quote, error) {
	pr, err := prepare(req)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(pr.u.Path, ManifestPath) {
		return c.quoteManifest(ctx, pr)
	}
	q := &Quote{URL: pr.u.String()}
	if tok, err := c.cachedToken(ctx, pr, nil, ""); err != nil {
		return nil, err
	} else if tok != nil {
		q.CachedToken = true
	}
	pr.header.Del(l402.HeaderAuthorization)
	resp, err := c.do(ctx, pr, nil)
	if err != nil {
		return nil, err
	}
	q.Status = resp.StatusCode
	if resp.StatusCode != http.StatusPaymentRequired {
		discard(resp)
		return q, nil
	}
	q.PaymentRequired = true
	ch, advertised, _, ok := readChallenge(resp)
	if !ok {
		resp.Body.Close()
		q.Refusal = &Refusal{Code: "no_l402_challenge", Problem: "the target answered 402 without an L402 challenge", Fix: "this service wants another payment scheme"}
		return q, nil
	}
	return c.judge(ctx, q, ch, advertised, pr.maxMsat, pr.u)
}

// judge fills q with what paying ch would mean: its price and fee limit,
// and whether policy and budget allow it (WouldPay) or not (Refusal),
// without paying or reserving anything. target may be nil. Errors other
// than refusals (an invoice that does not decode, a store failure) are
// returned as they are.
func (c *Consumer) judge(ctx context.Context, q *Quote, ch l402.Challenge, advertised, maxMsat int64, target *url.URL) (*Quote, error) {
	q.Macaroon, q.Invoice = ch.Macaroon, ch.Invoice
	if d, err := c.ln.DecodeInvoice(ctx, ch.Invoice); err == nil {
		q.PriceSats, q.PriceMsat, q.PaymentHash, q.Description, q.InvoiceExpiresAt = d.AmountMsat/1000, d.AmountMsat, d.PaymentHash.String(), d.Description, d.ExpiresAt.UTC()
		q.FeeLimitMsat = c.feeLimitMsat(d.AmountMsat)
		q.FeeLimitSats = (q.FeeLimitMsat + 999) / 1000
	}
	o, err := c.evaluate(ctx, ch, advertised, maxMsat, target, false)
	if o != nil {
		q.Service, q.Resource, q.Scope, q.TokenExpiresAt, q.AlreadyPaid = challengeService(ch), o.info.Resource, o.scope, o.info.ValidUntil, o.paid
	}
	if err != nil {
		if q.Refusal = RefusalOf(err); q.Refusal == nil {
			return nil, err
		}
		return q, nil
	}
	q.WouldPay = true
	return q, nil
}

// Refusal explains why l402d would not pay: a code, the field concerned
// and the fix.
type Refusal struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Problem string `json:"error"`
	Fix     string `json:"fix,omitempty"`
}

// RefusalOf explains a policy or budget refusal; nil for other errors.
func RefusalOf(err error) *Refusal {
	var pe *PolicyError
	var be *storage.BudgetError
	switch {
	case errors.As(err, &pe):
		return &Refusal{Code: pe.Code, Field: pe.Field, Problem: pe.Error(), Fix: pe.Fix}
	case errors.As(err, &be):
		fix := "wait for the next UTC day (" + be.Day.Add(24*time.Hour).Format(time.RFC3339) + "), or raise the limit with l402cli budget set --" + flagOf(be.Limit) + " (admin key, from the node)"
		if be.Limit == storage.LimitPerPayment {
			fix = "raise the limit with l402cli budget set --" + flagOf(be.Limit) + " (admin key, from the node)"
		}
		return &Refusal{Code: "budget_exceeded", Field: "budget." + be.Limit, Problem: be.Error(), Fix: fix}
	}
	return nil
}

// flagOf names the l402cli budget flag of a limit.
func flagOf(limit string) string {
	switch limit {
	case storage.LimitPerPayment:
		return "per-payment-sats"
	case storage.LimitPerDomain:
		return "per-domain-sats"
	}
	return "per-day-sats"
}
