package apiclient

import (
	"strconv"
	"time"
)

// Header names l402d reads or writes.
const (
	// HeaderAPIKey carries the key of a request: the producer key
	// (api.key), the spend key (spend.key) or the admin key (admin.key).
	HeaderAPIKey = "X-API-Key"
	// HeaderIdempotencyKey makes POST /api/l402/challenges return the same
	// challenge for the same resource and price within 60 s (at most 256
	// characters).
	HeaderIdempotencyKey = "X-Idempotency-Key"
)

// Headers of a streamed access answer (POST /api/consumer/access?stream=1):
// the target's status and headers are the response's own, and these say
// what l402d did.
const (
	HeaderUpstream      = "X-L402d-Upstream" // "1": this is the target's answer
	HeaderPaid          = "X-L402d-Paid"     // "true" if this request paid
	HeaderFromCache     = "X-L402d-From-Cache"
	HeaderPaymentHash   = "X-L402d-Payment-Hash"
	HeaderAmountSats    = "X-L402d-Amount-Sats"
	HeaderFeeMsat       = "X-L402d-Fee-Msat"
	HeaderAuthorization = "X-L402d-Authorization" // the credential the final request carried
	HeaderNote          = "X-L402d-Note"
	HeaderScheme        = "X-L402d-Scheme" // l402, mpp or x402: how the final request was paid for
	// HeaderPrefix starts every header above but HeaderAPIKey and
	// HeaderIdempotencyKey.
	HeaderPrefix = "X-L402d-"
)

// ErrorBody is every API error's JSON shape: what went wrong, a stable
// code, which field (if one), and how to fix it.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	Field string `json:"field,omitempty"`
	Fix   string `json:"fix,omitempty"`
}

// ErrorResponse is a consumer endpoint's error: ErrorBody, plus what is
// known of the payment concerned.
type ErrorResponse struct {
	ErrorBody
	PriceSats   int64        `json:"priceSats,omitempty"`
	PaymentHash string       `json:"paymentHash,omitempty"`
	Payment     *PaymentInfo `json:"payment,omitempty"`
	Token       *TokenInfo   `json:"token,omitempty"`
}

// CodeUpstreamUnreachable is the code of an error saying the target of an
// access did not answer.
const CodeUpstreamUnreachable = "upstream_unreachable"

// PaidNoAnswer is the error of an access that paid but whose retry with
// the new token got no answer from the target: the token is the caller's
// all the same, and cached. fix says how to retry on the surface at hand.
func PaidNoAnswer(cause error, fix string) ErrorBody {
	return ErrorBody{Error: "paid, but the target did not answer the request with the new token: " + cause.Error(),
		Code: CodeUpstreamUnreachable, Field: "url", Fix: fix}
}

// Health is the daemon's state (GET /api/node, and GET /healthz with a
// key; without a key /healthz has only Status).
type Health struct {
	Status  string        `json:"status"` // ok | degraded
	LND     LNDHealth     `json:"lnd"`
	Watcher WatcherStatus `json:"watcher"`
	// DB is the shared database's state; absent on Badger.
	DB      *DBHealth `json:"db,omitempty"`
	Version string    `json:"version,omitempty"`
}

// DBHealth is the shared store's database as this replica sees it.
type DBHealth struct {
	Backend string `json:"backend"` // postgres
	Up      bool   `json:"up"`
	Error   string `json:"error,omitempty"`
}

// LNDHealth is the node's state as l402d sees it.
type LNDHealth struct {
	Up            bool   `json:"up"`
	Error         string `json:"error,omitempty"`
	Pubkey        string `json:"pubkey,omitempty"`
	Alias         string `json:"alias,omitempty"`
	Network       string `json:"network,omitempty"`
	BlockHeight   uint32 `json:"blockHeight,omitempty"`
	SyncedToChain bool   `json:"syncedToChain"`
	// ChainBackend is "unresponsive" while LND answers but cannot reach
	// its chain backend.
	ChainBackend string `json:"chainBackend,omitempty"`
}

// WatcherStatus is the state of the settlement watcher, which follows
// LND's settled invoices from the stored settle index.
type WatcherStatus struct {
	State          string    `json:"state"`
	Since          time.Time `json:"since"`
	SettleIndex    uint64    `json:"settleIndex"`
	LastError      string    `json:"lastError,omitempty"`
	Reconnects     int       `json:"reconnects"`
	LastSettlement time.Time `json:"lastSettlement,omitzero"`
	// LastLag is how long the last settlement took to be seen.
	LastLag Seconds `json:"lastLag"`
}

// Seconds is a duration in JSON as seconds with three decimals.
type Seconds float64

// MarshalJSON renders the seconds with three decimals.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(s), 'f', 3, 64), nil
}

// Duration returns s as a time.Duration.
func (s Seconds) Duration() time.Duration { return time.Duration(float64(s) * float64(time.Second)) }

// NodeSeed is POST /api/node/seed's answer: the embedded wallet's seed,
// shown once.
type NodeSeed struct {
	Mnemonic  []string  `json:"mnemonic"`
	Network   string    `json:"network"`
	CreatedAt time.Time `json:"createdAt"`
	Warning   string    `json:"warning"`
}
