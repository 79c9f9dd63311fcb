package apiclient

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Producer endpoints (producer key, or admin key).

// CreateChallenge mints an L402 challenge: POST /api/l402/challenges.
func (c *Client) CreateChallenge(ctx context.Context, r CreateChallengeRequest) (*Challenge, error) {
	req, err := c.Request(ctx, http.MethodPost, "/api/l402/challenges", r)
	if err != nil {
		return nil, err
	}
	if r.IdempotencyKey != "" {
		req.Header.Set(HeaderIdempotencyKey, r.IdempotencyKey)
	}
	var out Challenge
	if err := c.roundTrip(req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Verify checks an L402 token (macaroon and preimage): POST
// /api/l402/challenges/verify. A token that is not valid is an answer
// (Valid false, with Error and Reason), not an error.
func (c *Client) Verify(ctx context.Context, r VerifyRequest) (*VerifyResponse, error) {
	return call[VerifyResponse](ctx, c, http.MethodPost, "/api/l402/challenges/verify", r)
}

// ListChallenges lists stored challenges, newest first: GET
// /api/l402/challenges.
func (c *Client) ListChallenges(ctx context.Context, f ChallengeFilter) (*ChallengeList, error) {
	q := query("resource", f.Resource, "state", f.State, "since", rfc3339(f.Since), "until", rfc3339(f.Until), "limit", itoa(f.Limit), "after", f.After)
	return call[ChallengeList](ctx, c, http.MethodGet, "/api/l402/challenges"+q, nil)
}

// Challenge returns one stored challenge: GET
// /api/l402/challenges/{paymentHash}.
func (c *Client) Challenge(ctx context.Context, paymentHash string) (*ChallengeRecord, error) {
	return call[ChallengeRecord](ctx, c, http.MethodGet, "/api/l402/challenges/"+url.PathEscape(paymentHash), nil)
}

// Stats returns the producer's counts and revenue: GET /api/l402/stats.
// A zero since means 30 days ago; a zero until, now.
func (c *Client) Stats(ctx context.Context, since, until time.Time) (*Stats, error) {
	return call[Stats](ctx, c, http.MethodGet, "/api/l402/stats"+query("since", rfc3339(since), "until", rfc3339(until)), nil)
}

// Revoke revokes a token (admin key): POST /api/l402/tokens/revoke.
func (c *Client) Revoke(ctx context.Context, r RevokeRequest) (*RevokeResponse, error) {
	return call[RevokeResponse](ctx, c, http.MethodPost, "/api/l402/tokens/revoke", r)
}

// Node endpoints.

// Node returns the daemon's state (any key): GET /api/node.
func (c *Client) Node(ctx context.Context) (*Health, error) {
	return call[Health](ctx, c, http.MethodGet, "/api/node", nil)
}

// Healthz returns the daemon's state: GET /healthz (no key needed;
// without one only Status is set). strict asks for 503 while degraded,
// which Healthz reads as an answer too.
func (c *Client) Healthz(ctx context.Context, strict bool) (*Health, error) {
	q := ""
	if strict {
		q = "?strict=1"
	}
	return call[Health](ctx, c, http.MethodGet, "/healthz"+q, nil, http.StatusServiceUnavailable)
}

// Backup streams a consistent backup of the store (admin key): GET
// /api/admin/backup. The caller closes it; a backup cut short ends in a
// read error.
func (c *Client) Backup(ctx context.Context) (io.ReadCloser, error) {
	resp, err := c.stream(ctx, http.MethodGet, "/api/admin/backup", nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errorOf(resp)
	}
	return resp.Body, nil
}

// NodeSeed shows the embedded wallet's seed, once (admin key, from the
// node itself): POST /api/node/seed. Once shown, it is a *Error with
// StatusCode 410.
func (c *Client) NodeSeed(ctx context.Context) (*NodeSeed, error) {
	return call[NodeSeed](ctx, c, http.MethodPost, "/api/node/seed", nil)
}

// Consumer endpoints (spend key, or admin key).

// Access fetches a URL through the node, paying its L402 price if it asks
// and policy and budget allow: POST /api/consumer/access. The target's
// answer, whatever its status, is an AccessResponse; a *Error says l402d
// could not get one (refused, payment failed, target unreachable). When
// it paid but the target then did not answer, the *Error carries the
// Payment and the Token.
func (c *Client) Access(ctx context.Context, r AccessRequest) (*AccessResponse, error) {
	return call[AccessResponse](ctx, c, http.MethodPost, "/api/consumer/access", r)
}

// AccessStream is Access with the target's answer passed through as it
// comes (POST /api/consumer/access?stream=1): the response's status,
// headers and body are the target's, and the X-L402d-* headers
// (HeaderPaid, HeaderPaymentHash, …) say what l402d did. The caller
// closes the body. An answer l402d gave itself is a *Error.
func (c *Client) AccessStream(ctx context.Context, r AccessRequest) (*http.Response, error) {
	resp, err := c.stream(ctx, http.MethodPost, "/api/consumer/access?stream=1", r)
	if err != nil {
		return nil, err
	}
	if resp.Header.Get(HeaderUpstream) != "1" {
		return nil, errorOf(resp)
	}
	return resp, nil
}

// Quote reports what Access would pay for a URL, and whether it would,
// without paying: POST /api/consumer/quote.
func (c *Client) Quote(ctx context.Context, r AccessRequest) (*Quote, error) {
	return call[Quote](ctx, c, http.MethodPost, "/api/consumer/quote", r)
}

// PayChallenge pays an L402 challenge and returns the token: POST
// /api/consumer/pay/challenge. A challenge paid before is not paid again
// (Payment.AlreadyPaid).
func (c *Client) PayChallenge(ctx context.Context, r PayChallengeRequest) (*PayChallengeResult, error) {
	return call[PayChallengeResult](ctx, c, http.MethodPost, "/api/consumer/pay/challenge", r)
}

// PayInvoice pays a BOLT 11 invoice: POST /api/consumer/pay/invoice.
func (c *Client) PayInvoice(ctx context.Context, r PayInvoiceRequest) (*PaymentInfo, error) {
	return call[PaymentInfo](ctx, c, http.MethodPost, "/api/consumer/pay/invoice", r)
}

// CreateInvoice creates an invoice of the node: POST
// /api/consumer/invoices.
func (c *Client) CreateInvoice(ctx context.Context, r CreateInvoiceRequest) (*Invoice, error) {
	return call[Invoice](ctx, c, http.MethodPost, "/api/consumer/invoices", r)
}

// LookupInvoice returns the state of one of the node's invoices: GET
// /api/consumer/invoices/{paymentHash}.
func (c *Client) LookupInvoice(ctx context.Context, paymentHash string) (*Invoice, error) {
	return call[Invoice](ctx, c, http.MethodGet, "/api/consumer/invoices/"+url.PathEscape(paymentHash), nil)
}

// Balance returns the node's funds: GET /api/consumer/balance.
func (c *Client) Balance(ctx context.Context) (*Balance, error) {
	return call[Balance](ctx, c, http.MethodGet, "/api/consumer/balance", nil)
}

// Budget returns the limits and today's spending: GET
// /api/consumer/budget. Without spending enabled it is a *Error with
// StatusCode 403 and Code "spending_disabled".
func (c *Client) Budget(ctx context.Context) (*Budget, error) {
	return call[Budget](ctx, c, http.MethodGet, "/api/consumer/budget", nil)
}

// SetBudget changes the limits set in u (admin key, from the node
// itself): PUT /api/consumer/budget.
func (c *Client) SetBudget(ctx context.Context, u BudgetUpdate) (*Budget, error) {
	return call[Budget](ctx, c, http.MethodPut, "/api/consumer/budget", u)
}

// Payments lists outgoing payments, newest first, with totals: GET
// /api/consumer/payments.
func (c *Client) Payments(ctx context.Context, f PaymentFilter) (*PaymentList, error) {
	q := query("state", f.State, "kind", f.Kind, "domain", f.Domain, "since", f.Since, "until", f.Until, "after", f.After, "limit", itoa(f.Limit))
	return call[PaymentList](ctx, c, http.MethodGet, "/api/consumer/payments"+q, nil)
}

// Payment returns one journal entry: GET
// /api/consumer/payments/{paymentHash}.
func (c *Client) Payment(ctx context.Context, paymentHash string) (*PaymentRecord, error) {
	return call[PaymentRecord](ctx, c, http.MethodGet, "/api/consumer/payments/"+url.PathEscape(paymentHash), nil)
}

// Tokens lists the cached L402 tokens, of one origin
// (scheme://host[:port]) if origin is set: GET /api/consumer/tokens.
func (c *Client) Tokens(ctx context.Context, origin string) (*TokenList, error) {
	return call[TokenList](ctx, c, http.MethodGet, "/api/consumer/tokens"+query("origin", origin), nil)
}

// RemoveToken drops a cached token by id: DELETE
// /api/consumer/tokens/{id}.
func (c *Client) RemoveToken(ctx context.Context, id string) (*TokenRemoved, error) {
	return call[TokenRemoved](ctx, c, http.MethodDelete, "/api/consumer/tokens/"+url.PathEscape(id), nil)
}

// Sessions lists the prepaid sessions the node holds: GET
// /api/consumer/sessions.
func (c *Client) Sessions(ctx context.Context) (*Sessions, error) {
	return call[Sessions](ctx, c, http.MethodGet, "/api/consumer/sessions", nil)
}

// CloseSession closes a held session and collects its refund: POST
// /api/consumer/sessions/{id}/close.
func (c *Client) CloseSession(ctx context.Context, id string) (*SessionInfo, error) {
	return call[SessionInfo](ctx, c, http.MethodPost, "/api/consumer/sessions/"+url.PathEscape(id)+"/close", nil)
}

// rfc3339 renders t, "" for the zero time.
func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// call is Do decoding into a new T.
func call[T any](ctx context.Context, c *Client, method, path string, in any, also ...int) (*T, error) {
	var out T
	if err := c.Do(ctx, method, path, in, &out, also...); err != nil {
		return nil, err
	}
	return &out, nil
}
