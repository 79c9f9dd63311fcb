package consumer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/l402/x402"
	"github.com/l402d/l402d/plugin/field"
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
	// Session pays from a prepaid MPP session held at the URL's origin,
	// opening one (one deposit) or topping it up as needed, instead of
	// paying per request; see sessionAccess. MaxSats caps each deposit.
	Session bool
	// ExpectedCalls, when Session is not set, is how many calls to this
	// service the caller expects to make soon: if the seller's 402 offers
	// a prepaid session whose deposit those calls would spend anyway
	// (ExpectedCalls × the session's price ≥ its deposit; the rest is
	// refunded at close), the access opens or uses that session instead
	// of paying per request, and Response.Note says so. 0: per request.
	ExpectedCalls int
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
	// Session is the prepaid session the request was paid from (Session
	// requests only).
	Session *SessionInfo
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
		return nil, &field.Error{Field: "method", Problem: fmt.Sprintf("%q is not an HTTP method", req.Method), Fix: "use GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS"}
	}
	if req.ExpectedCalls < 0 || req.ExpectedCalls > maxExpectedCalls {
		return nil, &field.Error{Field: "expectedCalls", Problem: fmt.Sprintf("is %d", req.ExpectedCalls),
			Fix: fmt.Sprintf("send 0 (pay per request) or the number of calls you expect, at most %d", maxExpectedCalls)}
	}
	if req.MaxSats < 0 {
		return nil, &field.Error{Field: "maxSats", Problem: "is negative", Fix: "send 0 (no cap beyond the budget) or a price cap in sats"}
	}
	if req.MaxMsat < 0 {
		return nil, &field.Error{Field: "maxMsat", Problem: "is negative", Fix: "send 0 (no cap beyond the budget) or a price cap in msat"}
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
		return nil, &field.Error{Field: "url", Problem: "cannot be requested: " + err.Error(), Fix: "send an absolute http(s) URL"}
	}
	r.Header = pr.header.Clone()
	if r.Header.Get("User-Agent") == "" {
		r.Header.Set("User-Agent", c.cfg.UserAgent)
	}
	if tok != nil {
		if tok.Origin != pr.origin {
			// Tokens are looked up by origin; this guards the rule that
			// a credential only ever goes where it was bought.
			cancel(nil)
			return nil, fmt.Errorf("consumer: a credential bought from %s is not sent to %s", tok.Origin, pr.origin)
		}
		r.Header.Set(credentialHeader(tok))
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

// Access fetches a URL. A paid single-use credential for it that was
// never answered is presented first; else a cached token that covers it
// is sent along. On a 402 with an offer of a scheme in
// Config.SchemePreference, policy and budget are checked, the invoice is
// paid through the journal and the request is retried once with the new
// credential: an L402 token is cached for reuse, a single-use credential
// is kept only until the service answers it. Answers other than a payable
// 402 are returned as they are. If the retry after paying gets no answer,
// the Response (with the token) is returned along with an
// *UpstreamError, and the credential is kept for the next Access.
func (c *Consumer) Access(ctx context.Context, req AccessRequest) (*Response, error) {
	pr, err := prepare(req)
	if err != nil {
		return nil, err
	}
	if req.Session {
		return c.sessionAccess(ctx, req, pr)
	}
	ownAuth := pr.header.Get(l402.HeaderAuthorization) != "" || pr.header.Get(x402.HeaderPaymentSignature) != ""
	tried := map[lntypes.Hash]bool{}
	var tok *storage.Token
	if !ownAuth {
		if r, err := c.presentPaid(ctx, pr); r != nil || err != nil {
			return r, err
		}
		if tok, err = c.cachedToken(ctx, pr, tried, ""); err != nil {
			return nil, err
		}
	}
	r, due, err := c.fetch(ctx, pr, tok, tried, ownAuth)
	if err != nil {
		return nil, err
	}
	if why := c.sessionWorth(ctx, req, ownAuth, r, due); why != "" {
		if r != nil {
			discard402(r)
		}
		req.Session = true
		sr, err := c.sessionAccess(ctx, req, pr)
		if sr != nil && sr.Note == "" {
			sr.Note = why
		}
		return sr, err
	}
	if r != nil {
		return r, nil
	}
	// One purchase per resource at a time: a concurrent Access of the
	// same URL may be buying the token this one needs. The lock is held
	// until the bought token has been used.
	unlock, err := c.urlLocks.lock(ctx, resourceKey(pr))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !ownAuth {
		if tok, err = c.cachedToken(ctx, pr, tried, ""); err != nil {
			return nil, err
		}
		if tok != nil {
			if r, due, err = c.fetch(ctx, pr, tok, tried, ownAuth); r != nil || err != nil {
				return r, err
			}
		}
	}
	if due.prepaid != nil && !ownAuth {
		// Prepaid credit is bought one at a time per seller, and used
		// before the next: a credit bought beside it would take its
		// place in the token cache (one token per scope) before it was
		// ever presented, and its sats would never reach a balance.
		unlockCredit, err := c.lockOrigin(ctx, pr.origin)
		if err != nil {
			return nil, err
		}
		defer unlockCredit()
		// A credit bought while this waited is in the cache under its
		// resource (or, from sellers that scope by service, its service).
		if tok, err = c.cachedToken(ctx, pr, tried, ""); err == nil && tok == nil {
			if svc := challengeService(due.offer.L402); svc != "" {
				tok, err = c.cachedToken(ctx, pr, tried, svc)
			}
		}
		if err != nil {
			return nil, err
		}
		if tok != nil {
			if r, due, err = c.fetch(ctx, pr, tok, tried, ownAuth); r != nil || err != nil {
				return r, err
			}
		}
	}
	return c.buy(ctx, req, pr, due)
}

// dueChallenge is an offer Access has to pay: no cached token got past
// it.
type dueChallenge struct {
	offer      Offer
	advertised int64 // the price the 402's body states, 0 if none
	// prepaid is set when the token sold is prepaid credit.
	prepaid *prepaidTerms
	// header is the 402's, for the session it may offer beside.
	header http.Header
}

// maxExpectedCalls bounds AccessRequest.ExpectedCalls.
const maxExpectedCalls = 1_000_000

// sessionWorth says why an access that did not ask for a session should
// use the seller's (req.ExpectedCalls × its price ≥ its deposit), or ""
// when it should not. r is a 402 answered as it is (a seller of sessions
// only), due one to pay per request; one of them is set. The deposit
// weighed is the deposit invoice's amount, not what the 402 says it is.
func (c *Consumer) sessionWorth(ctx context.Context, req AccessRequest, ownAuth bool, r *Response, due *dueChallenge) string {
	if req.ExpectedCalls <= 0 || ownAuth {
		return ""
	}
	var h http.Header
	switch {
	case due != nil:
		h = due.header
	case r != nil && r.Status == http.StatusPaymentRequired:
		h = r.Header
	default:
		return ""
	}
	_, sreq, err := sessionOffer(h)
	if err != nil {
		return ""
	}
	unit, err := strconv.ParseInt(sreq.Amount, 10, 64)
	if err != nil || unit <= 0 {
		return "" // no price to weigh: per request
	}
	d, err := c.ln.DecodeInvoice(ctx, sreq.DepositInvoice)
	if err != nil || d.AmountMsat <= 0 {
		return ""
	}
	deposit := (d.AmountMsat + 999) / 1000
	// expected × unit ≥ deposit, without overflowing.
	need := deposit / unit
	if deposit%unit != 0 {
		need++
	}
	if int64(req.ExpectedCalls) < need {
		return ""
	}
	return fmt.Sprintf("paid from a prepaid session: %d expected calls × %d sats ≥ the %d-sat deposit (the rest is refunded at close)",
		req.ExpectedCalls, unit, deposit)
}

// discard402 drops a 402 answer that is not returned.
func discard402(r *Response) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<10))
		r.Body.Close()
	}
}

// paidOnce returns the paid single-use credential for the request's
// resource that no service has answered yet, nil if none.
func (c *Consumer) paidOnce(ctx context.Context, pr *prepared) (*storage.Token, error) {
	toks, err := c.store.TokensForOrigin(ctx, pr.origin)
	if err != nil {
		return nil, fmt.Errorf("consumer: reading the token cache: %w", err)
	}
	scope := onceScope(pr.u.Path)
	for i := range toks {
		if toks[i].SingleUse() && toks[i].Scope == scope {
			return &toks[i], nil
		}
	}
	return nil, nil
}

// presentPaid presents a paid single-use credential for the resource
// that was never answered (the retry after paying got no answer, or the
// process died before it), under the resource's lock. Any answer uses it
// up: it is dropped and its receipt recorded. A 401 or 402 yields no
// Response: Access goes on as if there had been none. A failure to reach
// the service keeps it for the next try.
func (c *Consumer) presentPaid(ctx context.Context, pr *prepared) (*Response, error) {
	if tok, err := c.paidOnce(ctx, pr); tok == nil || err != nil {
		return nil, err
	}
	unlock, err := c.urlLocks.lock(ctx, resourceKey(pr))
	if err != nil {
		return nil, err
	}
	defer unlock()
	tok, err := c.paidOnce(ctx, pr)
	if tok == nil || err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, pr, tok)
	if err != nil {
		return nil, err
	}
	c.usedOnce(ctx, tok, resp)
	if resp.StatusCode == http.StatusPaymentRequired || resp.StatusCode == http.StatusUnauthorized {
		c.log.Info("a paid single-use credential was refused", "origin", tok.Origin, "payment_hash", tok.PaymentHash, "status", resp.StatusCode)
		discard(resp)
		return nil, nil
	}
	r := c.answer(resp, tok, true)
	if p, err := c.store.Payment(ctx, tok.PaymentHash); err == nil {
		r.Payment = paymentInfo(p, true)
	}
	return r, nil
}

// usedOnce drops a single-use credential the service answered and
// records the receipt the answer carries. Other tokens are left alone.
// An answer without a receipt that says "not now" (429, or a 5xx: the
// seller's store failed before spending it, say) keeps the credential
// for the next Access: if it was spent after all, that Access is refused
// and drops it then; dropping it now could throw away a payment never
// spent.
func (c *Consumer) usedOnce(ctx context.Context, tok *storage.Token, resp *http.Response) {
	if !tok.SingleUse() {
		return
	}
	rc := receiptOf(tok.Scheme, resp.Header)
	if rc == "" && (resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests) {
		c.log.Info("a paid single-use credential got no receipt; kept for the next try", "origin", tok.Origin, "payment_hash", tok.PaymentHash, "status", resp.StatusCode)
		return
	}
	c.dropToken(ctx, tok)
	if rc != "" {
		if err := c.store.SetPaymentReceipt(context.WithoutCancel(ctx), tok.PaymentHash, rc); err != nil {
			c.log.Warn("recording a receipt", "payment_hash", tok.PaymentHash, "err", err)
		}
	}
}

// fetch sends the request with tok (nil: without one) and, while the
// target refuses a cached token, drops it where it is no good and tries
// the next one that may do (for the service the challenge names, unless
// the caller sent its own Authorization), never one in tried. It returns
// the target's answer, or (with a nil Response) the challenge to pay when
// no cached token is left to try.
func (c *Consumer) fetch(ctx context.Context, pr *prepared, tok *storage.Token, tried map[lntypes.Hash]bool, ownAuth bool) (*Response, *dueChallenge, error) {
	for {
		resp, err := c.do(ctx, pr, tok)
		if err != nil {
			return nil, nil, err
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
			return c.answer(resp, tok, tok != nil), nil, nil
		}
		of, offered, advertised, head, ok := readChallenge(resp, c.cfg.SchemePreference)
		if !ok {
			r := c.answer(resp, nil, false)
			r.Body = readCloser{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
			r.Note = "the target answered 402 without an L402, MPP (lightning charge) or x402 (lightning) offer l402d can pay"
			if len(offered) > 0 {
				r.Note = "the target offers only " + schemesOf(offered) + ", which the scheme preference (" + strings.Join(c.cfg.SchemePreference, ", ") + ") leaves out"
			}
			if _, _, err := sessionOffer(resp.Header); err == nil {
				r.Note = "the target sells prepaid sessions only (a metered service): access it with session (REST \"session\": true, l402cli get --session, MCP session: true)"
			}
			return r, nil, nil
		}
		service := challengeService(of.L402)
		if tok != nil && !scopeRefusal(head) && (scopeService(tok.Scope) == "" || service == "" || service == tok.Service) {
			c.dropToken(ctx, tok) // refused for what it was bought for
		}
		tok = nil
		// Another cached token for the service the challenge names?
		if service != "" && !ownAuth {
			if tok, err = c.cachedToken(ctx, pr, tried, service); err != nil {
				return nil, nil, err
			}
		}
		if tok == nil {
			return nil, &dueChallenge{offer: of, advertised: advertised, prepaid: parsePrepaid(head), header: resp.Header}, nil
		}
	}
}

// buy checks a due challenge against policy and budget (asking
// req.Approve, if set), pays it through the journal and retries the
// request once with the new credential, which is cached.
func (c *Consumer) buy(ctx context.Context, req AccessRequest, pr *prepared, due *dueChallenge) (*Response, error) {
	o, err := c.approve(ctx, req, pr, due)
	if err != nil {
		return nil, err
	}
	credit := due.prepaid != nil && due.offer.Scheme == SchemeL402
	var balance lntypes.Hash
	if credit {
		if balance, err = c.holdPrepaid(ctx, pr, o, due.offer.L402.Macaroon, due.prepaid); err != nil {
			return nil, err
		}
	}
	p, already, err := c.pay(ctx, o.entry(storage.KindAccess))
	if err != nil {
		return nil, &ChallengeError{PriceSats: o.decoded.AmountMsat / 1000, PaymentHash: o.decoded.PaymentHash.String(), Err: err}
	}
	bought, err := o.bought(p.Preimage)
	if err != nil {
		// Checked before paying (Offer.material); only a bug gets here.
		return nil, &ChallengeError{PriceSats: o.decoded.AmountMsat / 1000, PaymentHash: o.decoded.PaymentHash.String(), Err: err}
	}
	if credit {
		// Paid before a crash: its token is still the newest, but its
		// amount may have been added already.
		amount := o.decoded.AmountMsat
		if already {
			amount = 0
		}
		c.creditPaid(ctx, pr.origin, balance, amount, due.offer.L402.Macaroon, o.decoded.PaymentHash)
	}
	if already {
		// Paid before (the token may have been dropped since): cache it
		// again rather than pay twice. A single-use credential is kept
		// until the service answers it, as after a fresh payment.
		if err := c.store.PutToken(ctx, bought); err != nil {
			c.log.Warn("caching a token again", "payment_hash", p.PaymentHash, "err", err)
		}
	}
	return c.retry(ctx, pr, bought, p, already)
}

// approve evaluates a due challenge against policy and budget and, if
// req.Approve is set and the challenge is not paid already, asks it (also
// for an offer that needs approval, which it may grant).
func (c *Consumer) approve(ctx context.Context, req AccessRequest, pr *prepared, due *dueChallenge) (*offer, error) {
	var o *offer
	var err error
	if of := due.offer; of.Scheme == SchemeL402 {
		o, err = c.evaluate(ctx, of.L402, due.advertised, pr.maxMsat, pr.u, req.Approved)
	} else {
		o, err = c.evaluateOnce(ctx, of, due.advertised, pr.maxMsat, pr.u, req.Approved)
	}
	ask := errors.Is(err, ErrApprovalRequired) && req.Approve != nil && o != nil
	if err != nil && !ask {
		c.count("refused", nil)
		return nil, c.challengeError(ctx, due.offer.Invoice, err)
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
	return o, nil
}

// retry sends the request again with the token just bought (or found
// paid in the journal). If it gets no answer, the Response with the
// token comes back along with the error (a single-use credential stays
// kept for the next Access). Any answer uses a single-use credential up.
func (c *Consumer) retry(ctx context.Context, pr *prepared, bought *storage.Token, p *storage.Payment, already bool) (*Response, error) {
	resp, err := c.do(ctx, pr, bought)
	out := &Response{Paid: !already, Payment: paymentInfo(p, already), Token: TokenInfoOf(bought)}
	if err != nil {
		return out, err
	}
	c.usedOnce(ctx, bought, resp)
	r := c.answer(resp, bought, false)
	r.Paid, r.Payment = out.Paid, out.Payment
	if rc := receiptOf(bought.Scheme, resp.Header); rc != "" {
		r.Payment.Receipt = rc
	}
	if bought.SingleUse() && (resp.StatusCode == http.StatusPaymentRequired || resp.StatusCode == http.StatusUnauthorized) {
		r.Note = "the target refused the paid " + bought.Scheme + " credential; it is single-use and was not kept"
	}
	return r, nil
}

// resourceKey names the resource a request is for, for urlLocks.
func resourceKey(pr *prepared) lntypes.Hash {
	return sha256.Sum256([]byte(pr.origin + "\x00" + pr.u.Path))
}

// challengeError wraps a refusal with what the challenge asked, as far as
// it decodes.
func (c *Consumer) challengeError(ctx context.Context, invoice string, err error) error {
	ce := &ChallengeError{Err: err}
	if d, derr := c.ln.DecodeInvoice(ctx, invoice); derr == nil {
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
