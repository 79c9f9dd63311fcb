package apiclient

import (
	"net/http"
	"time"
)

// AccessRequest is the body of POST /api/consumer/access and
// /api/consumer/quote: a request to make through the node, paying its
// L402 price if it asks.
type AccessRequest struct {
	URL    string `json:"url"`
	Method string `json:"method,omitempty"` // default GET
	// Headers are sent to the target.
	Headers http.Header `json:"headers,omitempty"`
	// Body is the request body as text; BodyBase64 one that is not UTF-8
	// (set at most one).
	Body       string `json:"body,omitempty"`
	BodyBase64 string `json:"bodyBase64,omitempty"`
	// MaxSats refuses a price above it; 0 leaves only the budget.
	MaxSats int64 `json:"maxSats,omitempty"`
	// Session pays from a prepaid session held at the URL's origin,
	// opening or topping one up as needed (MaxSats caps each deposit).
	Session bool `json:"session,omitempty"`
	// ExpectedCalls, without Session, lets l402d choose: a seller's
	// prepaid session is used when ExpectedCalls × its price covers its
	// deposit (the calls would spend it anyway), else it pays per request.
	ExpectedCalls int `json:"expectedCalls,omitempty"`
}

// RelayedBody is a target's body inside a JSON answer: as text when it is
// UTF-8, else as base64.
type RelayedBody struct {
	Text      *string `json:"body,omitempty"`
	Base64    *string `json:"bodyBase64,omitempty"`
	Bytes     int     `json:"bodyBytes"`
	Truncated bool    `json:"truncated"`
}

// AccessResponse is POST /api/consumer/access' answer: the target's
// answer and what l402d paid for it.
type AccessResponse struct {
	// Status and Headers are the target's.
	Status  int         `json:"status"`
	Headers http.Header `json:"headers"`
	RelayedBody
	// Paid: this request paid; FromCache: a cached token was used.
	Paid      bool         `json:"paid"`
	FromCache bool         `json:"fromCache"`
	Payment   *PaymentInfo `json:"payment,omitempty"`
	// Token is the credential the final request carried.
	Token *TokenInfo `json:"token,omitempty"`
	// Note explains an answer that is not what it seems, such as a 402
	// l402d could not pay.
	Note string `json:"note,omitempty"`
	// Session is the prepaid session that paid (session requests only).
	Session *SessionInfo `json:"session,omitempty"`
}

// SessionInfo is a prepaid session this node holds at a seller.
type SessionInfo struct {
	SessionID string `json:"sessionId"`
	// Kind is "mpp" (an MPP session) or "l402" (an L402 prepaid balance).
	Kind   string `json:"kind"`
	Origin string `json:"origin"`
	// URL is where it was opened; a close is sent there.
	URL string `json:"url"`
	// State: opening, open, closed (refund asked for), refunded (the
	// refund reached this node's LND).
	State         string `json:"state"`
	DepositedMsat int64  `json:"depositedMsat"`
	// BalanceMsat is what the seller last reported left.
	BalanceMsat  int64  `json:"balanceMsat"`
	RefundMsat   int64  `json:"refundMsat"`
	RefundStatus string `json:"refundStatus,omitempty"`
}

// Sessions is GET /api/consumer/sessions' answer.
type Sessions struct {
	Sessions []SessionInfo `json:"sessions"`
}

// PaymentInfo describes a payment made (or found made) for a request.
type PaymentInfo struct {
	PaymentHash string `json:"paymentHash"`
	State       string `json:"state"` // reserved | in_flight | succeeded | failed
	AmountSats  int64  `json:"amountSats"`
	AmountMsat  int64  `json:"amountMsat"`
	FeeMsat     int64  `json:"feeMsat"`
	Preimage    string `json:"preimage,omitempty"`
	// AlreadyPaid: the journal held this payment as succeeded, so
	// nothing was paid now.
	AlreadyPaid bool `json:"alreadyPaid,omitempty"`
	// Scheme is how the service was answered: l402, mpp or x402; Receipt
	// what it returned on accepting a single-use credential
	// (Payment-Receipt or PAYMENT-RESPONSE, as sent).
	Scheme  string `json:"scheme,omitempty"`
	Receipt string `json:"receipt,omitempty"`
}

// TokenInfo is an L402 token and the credential that presents it, or a
// paid single-use (MPP, x402) credential.
type TokenInfo struct {
	// Authorization is the ready header value: "L402 <macaroon>:<preimage>",
	// or "Payment <credential>" for MPP.
	Authorization string `json:"authorization,omitempty"`
	// PaymentSignature is the ready PAYMENT-SIGNATURE value of an x402
	// payment.
	PaymentSignature string `json:"paymentSignature,omitempty"`
	// Scheme is l402, mpp or x402; SingleUse: the credential opens one
	// request.
	Scheme      string    `json:"scheme,omitempty"`
	SingleUse   bool      `json:"singleUse,omitempty"`
	Macaroon    string    `json:"macaroon,omitempty"`
	Preimage    string    `json:"preimage"`
	PaymentHash string    `json:"paymentHash"`
	Origin      string    `json:"origin,omitempty"`
	Scope       string    `json:"scope,omitempty"`
	Service     string    `json:"service,omitempty"`
	AmountSats  int64     `json:"amountSats,omitempty"`
	ExpiresAt   time.Time `json:"expiresAt,omitzero"`
}

// Quote is POST /api/consumer/quote's answer: what fetching a URL would
// cost, found without paying.
type Quote struct {
	URL string `json:"url"`
	// Status is the target's answer to the unpaid request.
	Status          int  `json:"status"`
	PaymentRequired bool `json:"paymentRequired"`

	// PriceSats is the price in whole sats (rounded down); PriceMsat is
	// exact. FeeLimitSats is rounded up, FeeLimitMsat exact.
	PriceSats    int64 `json:"priceSats,omitempty"`
	PriceMsat    int64 `json:"priceMsat,omitempty"`
	FeeLimitSats int64 `json:"feeLimitSats,omitempty"`
	FeeLimitMsat int64 `json:"feeLimitMsat,omitempty"`
	// Scheme is the offer Access would pay: l402, mpp or x402.
	Scheme           string    `json:"scheme,omitempty"`
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

	// CachedToken: a cached token covers the URL, so access would try it
	// before paying anything.
	CachedToken bool `json:"cachedToken"`
	// AlreadyPaid: the journal holds this challenge as paid, so access
	// would use its token and pay nothing.
	AlreadyPaid bool `json:"alreadyPaid,omitempty"`
	// WouldPay: access would pay this price now (policy and budget allow
	// it), or use the token of AlreadyPaid; otherwise Refusal says why
	// not.
	WouldPay bool     `json:"wouldPay"`
	Refusal  *Refusal `json:"refusal,omitempty"`

	// Manifest is set when the URL is a /.well-known/l402.json manifest.
	Manifest *Manifest `json:"manifest,omitempty"`
}

// Refusal explains why l402d would not pay: a code, the field concerned
// and the fix.
type Refusal struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Problem string `json:"error"`
	Fix     string `json:"fix,omitempty"`
}

// Manifest is a service's price list as read from /.well-known/l402.json
// or from an OpenAPI document with the L402 discovery draft's x-l402-*
// extensions.
type Manifest struct {
	Name string `json:"name,omitempty"`
	// Format is "l402-discovery" (the draft's manifest), "openapi" (its
	// OpenAPI profile) or "list" (an older or home-made price list).
	Format string `json:"format"`
	// NodePubkey is the seller's node as the document names it: the
	// invoices it issues should pay it.
	NodePubkey string `json:"nodePubkey,omitempty"`
	// QuoteEndpoint and OpenAPI are as the document gives them.
	QuoteEndpoint string          `json:"quoteEndpoint,omitempty"`
	OpenAPI       string          `json:"openapi,omitempty"`
	Entries       []ManifestEntry `json:"entries"`
}

// ManifestEntry is one priced resource of a manifest.
type ManifestEntry struct {
	Name        string `json:"name,omitempty"`
	Path        string `json:"path,omitempty"`
	Method      string `json:"method,omitempty"`
	Description string `json:"description,omitempty"`
	PriceSats   int64  `json:"priceSats"`
	// PriceMsat is set when the manifest priced in millisatoshis.
	PriceMsat int64 `json:"priceMsat,omitempty"`
	// PricingModel is the draft's fixed, formula (the price is the base,
	// before per-unit charges) or dynamic (ask the quote endpoint); empty
	// for a list that does not say.
	PricingModel string `json:"pricingModel,omitempty"`
}

// PayChallengeRequest is POST /api/consumer/pay/challenge's body: Invoice
// and Macaroon, or Challenge (a whole WWW-Authenticate value).
type PayChallengeRequest struct {
	Invoice   string `json:"invoice,omitempty"`
	Macaroon  string `json:"macaroon,omitempty"`
	Challenge string `json:"challenge,omitempty"`
	// URL, if set, is the resource the challenge came from: its domain's
	// budget and the allow/deny lists apply, and the token is cached for
	// it.
	URL     string `json:"url,omitempty"`
	MaxSats int64  `json:"maxSats,omitempty"`
}

// PayChallengeResult is POST /api/consumer/pay/challenge's answer.
type PayChallengeResult struct {
	Payment *PaymentInfo `json:"payment"`
	Token   *TokenInfo   `json:"token"`
}

// PayInvoiceRequest is POST /api/consumer/pay/invoice's body.
type PayInvoiceRequest struct {
	Invoice string `json:"invoice"`
	MaxSats int64  `json:"maxSats,omitempty"`
	// URL, if set, is what the invoice pays for: its domain's budget and
	// the allow/deny lists apply.
	URL string `json:"url,omitempty"`
}

// CreateInvoiceRequest is POST /api/consumer/invoices' body.
type CreateInvoiceRequest struct {
	AmountSats int64  `json:"amountSats"`
	Memo       string `json:"memo,omitempty"`
	// ExpirySeconds is how long it can be paid; 0: one hour.
	ExpirySeconds int64 `json:"expirySeconds,omitempty"`
}

// Invoice describes one of the node's invoices.
type Invoice struct {
	PaymentHash    string    `json:"paymentHash"`
	Invoice        string    `json:"invoice"`
	Memo           string    `json:"memo,omitempty"`
	State          string    `json:"state,omitempty"`
	Settled        bool      `json:"settled"`
	AmountSats     int64     `json:"amountSats"`
	AmountPaidSats int64     `json:"amountPaidSats"`
	CreatedAt      time.Time `json:"createdAt,omitzero"`
	ExpiresAt      time.Time `json:"expiresAt,omitzero"`
	SettledAt      time.Time `json:"settledAt,omitzero"`
}

// ChannelBalance is the node's funds in channels.
type ChannelBalance struct {
	LocalSats       int64 `json:"localSats"`
	RemoteSats      int64 `json:"remoteSats"`
	PendingOpenSats int64 `json:"pendingOpenSats"`
}

// OnchainBalance is the node's on-chain funds.
type OnchainBalance struct {
	ConfirmedSats   int64 `json:"confirmedSats"`
	UnconfirmedSats int64 `json:"unconfirmedSats"`
}

// Balance is GET /api/consumer/balance's answer.
type Balance struct {
	Channel ChannelBalance `json:"channel"`
	Onchain OnchainBalance `json:"onchain"`
}

// BudgetLimits are the spending limits; 0 means no limit.
type BudgetLimits struct {
	PerPaymentSats int64 `json:"perPaymentSats"`
	PerDaySats     int64 `json:"perDaySats"`
	PerDomainSats  int64 `json:"perDomainSats"`
	// UnapprovedPerHourSats caps, over any rolling hour, payments no
	// person approved; 0: no cap.
	UnapprovedPerHourSats int64     `json:"unapprovedPerHourSats"`
	AllowDomains          []string  `json:"allowDomains"`
	DenyDomains           []string  `json:"denyDomains"`
	UpdatedAt             time.Time `json:"updatedAt,omitzero"`
}

// Budget is the budget as GET and PUT /api/consumer/budget show it.
type Budget struct {
	Limits BudgetLimits `json:"limits"`
	// Window names the budget period: a UTC calendar day.
	Window   string         `json:"window"`
	Day      string         `json:"day"`
	ResetsAt time.Time      `json:"resetsAt"`
	Today    BudgetWindow   `json:"today"`
	Domains  []BudgetWindow `json:"domains"`
}

// BudgetWindow is what one budget window holds today. RemainingSats is
// nil when the window has no limit.
type BudgetWindow struct {
	Domain        string `json:"domain,omitempty"`
	SpentSats     int64  `json:"spentSats"`
	SpentMsat     int64  `json:"spentMsat"`
	ReservedMsat  int64  `json:"reservedMsat"`
	RemainingSats *int64 `json:"remainingSats"`
}

// BudgetUpdate is PUT /api/consumer/budget's body (admin key, from the
// node itself): only the limits set change; a list replaces the whole
// list.
type BudgetUpdate struct {
	PerPaymentSats        *int64    `json:"perPaymentSats,omitempty"`
	PerDaySats            *int64    `json:"perDaySats,omitempty"`
	PerDomainSats         *int64    `json:"perDomainSats,omitempty"`
	UnapprovedPerHourSats *int64    `json:"unapprovedPerHourSats,omitempty"`
	AllowDomains          *[]string `json:"allowDomains,omitempty"`
	DenyDomains           *[]string `json:"denyDomains,omitempty"`
}

// PaymentRecord is a journal entry as the payments endpoints show it.
type PaymentRecord struct {
	PaymentHash   string    `json:"paymentHash"`
	State         string    `json:"state"`
	Kind          string    `json:"kind"` // access | challenge | invoice
	AmountSats    int64     `json:"amountSats"`
	AmountMsat    int64     `json:"amountMsat"`
	FeeMsat       int64     `json:"feeMsat"`
	FeeLimitMsat  int64     `json:"feeLimitMsat"`
	Domain        string    `json:"domain,omitempty"`
	URL           string    `json:"url,omitempty"`
	Invoice       string    `json:"invoice"`
	Preimage      string    `json:"preimage,omitempty"`
	BudgetDay     string    `json:"budgetDay"`
	Attempts      uint32    `json:"attempts"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
	SettledAt     time.Time `json:"settledAt,omitzero"`
	FailureReason string    `json:"failureReason,omitempty"`
	// Scheme is how the service was answered (l402, mpp, x402; none for a
	// bare invoice); Receipt what it returned for a single-use credential.
	Scheme  string `json:"scheme,omitempty"`
	Receipt string `json:"receipt,omitempty"`
}

// PaymentFilter selects payments for Payments; zero fields do not
// filter.
type PaymentFilter struct {
	State  string // reserved, in_flight, succeeded or failed
	Kind   string // access, challenge or invoice
	Domain string
	// Since and Until are RFC 3339 times or unix seconds.
	Since, Until string
	// Limit is the page size (server default when 0).
	Limit int
	// After is the Next cursor of the previous page.
	After string
}

// PaymentTotals sum every payment a filter matches, not only one page.
type PaymentTotals struct {
	Count      int   `json:"count"`
	Succeeded  int   `json:"succeeded"`
	Failed     int   `json:"failed"`
	Pending    int   `json:"pending"`
	AmountSats int64 `json:"amountSats"`
	AmountMsat int64 `json:"amountMsat"`
	FeeMsat    int64 `json:"feeMsat"`
}

// PaymentList is a page of GET /api/consumer/payments, newest first.
type PaymentList struct {
	Payments []PaymentRecord `json:"payments"`
	// Next, if set, is the After of the next page.
	Next   string        `json:"next,omitempty"`
	Totals PaymentTotals `json:"totals"`
}

// TokenRecord is a cached token as GET /api/consumer/tokens lists it. ID
// is its payment hash.
type TokenRecord struct {
	ID string `json:"id"`
	TokenInfo
	CreatedAt time.Time `json:"createdAt"`
	Expired   bool      `json:"expired"`
}

// TokenList is GET /api/consumer/tokens' answer.
type TokenList struct {
	Tokens []TokenRecord `json:"tokens"`
}

// TokenRemoved is DELETE /api/consumer/tokens/{id}'s answer.
type TokenRemoved struct {
	ID      string `json:"id"`
	Removed int    `json:"removed"`
}
