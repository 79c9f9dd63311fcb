package apiclient

import "time"

// CreateChallengeRequest is POST /api/l402/challenges' body (seed API).
type CreateChallengeRequest struct {
	// Resource is what the token will be good for, e.g. "/api/weather".
	Resource string `json:"resource"`
	// PriceSats is the price in satoshis (required, > 0).
	PriceSats   int64  `json:"priceSats"`
	Description string `json:"description,omitempty"`
	// IdempotencyKey, sent as X-Idempotency-Key, returns the same
	// challenge for the same resource and price within 60 s.
	IdempotencyKey string `json:"-"`
}

// Challenge is the seed API's challenge: the invoice to pay and the
// macaroon that, with the payment's preimage, makes the L402 token.
type Challenge struct {
	Invoice     string    `json:"invoice"`
	Macaroon    string    `json:"macaroon"`
	PaymentHash string    `json:"paymentHash"`
	ExpiresAt   time.Time `json:"expiresAt"`
	Resource    string    `json:"resource"`
	PriceSats   int64     `json:"priceSats"`
}

// VerifyRequest is POST /api/l402/challenges/verify's body.
type VerifyRequest struct {
	Macaroon string `json:"macaroon"`
	Preimage string `json:"preimage"`
	// Resource, if set, must be the one the token was issued for.
	Resource string `json:"resource,omitempty"`
}

// VerifyResponse is the seed API's verdict; an invalid token carries only
// Valid=false, Error and (l402d's) Reason. A token that is not valid is
// an answer, not an error.
type VerifyResponse struct {
	Valid       bool   `json:"valid"`
	Resource    string `json:"resource,omitempty"`
	MerchantID  string `json:"merchantId,omitempty"`
	AmountSats  int64  `json:"amountSats,omitempty"`
	PaymentHash string `json:"paymentHash,omitempty"`
	Error       string `json:"error,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// ChallengeRecord is a stored challenge as GET /api/l402/challenges lists
// it.
type ChallengeRecord struct {
	PaymentHash    string    `json:"paymentHash"`
	TokenID        string    `json:"tokenId"`
	Resource       string    `json:"resource"`
	Description    string    `json:"description,omitempty"`
	Service        string    `json:"service,omitempty"`
	PriceSats      int64     `json:"priceSats"`
	Invoice        string    `json:"invoice"`
	State          string    `json:"state"` // pending | settled | expired | canceled
	CreatedAt      time.Time `json:"createdAt"`
	ExpiresAt      time.Time `json:"expiresAt"`
	SettledAt      time.Time `json:"settledAt,omitzero"`
	AmountPaidSats int64     `json:"amountPaidSats,omitempty"`
}

// ChallengeFilter selects challenges for ListChallenges; zero fields do
// not filter.
type ChallengeFilter struct {
	Resource string
	State    string // pending, settled, expired or canceled
	// Since and Until bound the creation time.
	Since, Until time.Time
	// Limit is the page size (server default when 0).
	Limit int
	// After is the Next cursor of the previous page.
	After string
}

// ChallengeList is a page of GET /api/l402/challenges.
type ChallengeList struct {
	Challenges []ChallengeRecord `json:"challenges"`
	// Next, if set, is the After of the next page.
	Next string `json:"next,omitempty"`
}

// StatsCounters are the producer's counts over a period.
type StatsCounters struct {
	Created     uint64 `json:"challengesCreated"`
	Settled     uint64 `json:"challengesSettled"`
	RevenueSats int64  `json:"revenueSats"`
}

// StatsDay is one UTC day of Stats.
type StatsDay struct {
	Day string `json:"day"` // 2006-01-02
	StatsCounters
}

// Stats is GET /api/l402/stats' answer: all time, the range asked (30
// days by default) and the range day by day.
type Stats struct {
	Total StatsCounters `json:"total"`
	Range StatsCounters `json:"range"`
	Since string        `json:"since"`
	Days  []StatsDay    `json:"days"`
}

// RevokeRequest is POST /api/l402/tokens/revoke's body (admin key).
type RevokeRequest struct {
	// Token is the token id (hex) or the macaroon (base64).
	Token  string `json:"token"`
	Reason string `json:"reason,omitempty"`
}

// RevokeResponse is POST /api/l402/tokens/revoke's answer.
type RevokeResponse struct {
	Revoked bool   `json:"revoked"`
	TokenID string `json:"tokenId"`
}
