// Package invoices is l402d's Lightning backend: one Backend interface for
// everything l402d asks of a node (invoices, settlements, payments, node
// info, balances), its implementation over LND with lndclient, and the
// settlement Watcher that keeps the store's view of paid challenges whole.
//
// It knows nothing of HTTP, macaroons or the store's layout: the watcher
// writes through the small SettlementSink interface.
package invoices

import (
	"context"
	"errors"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// Errors callers branch on.
var (
	// ErrUnavailable: the node could not be reached or is not ready.
	// The producer maps it to HTTP 503.
	ErrUnavailable = errors.New("lightning node unavailable")
	// ErrNotFound: the node knows no such invoice or payment.
	ErrNotFound = errors.New("not found on the lightning node")
	// ErrInvalidInvoice: a payment request that does not decode.
	ErrInvalidInvoice = errors.New("invalid invoice")
	// ErrWrongNetwork: a payment request for another network.
	ErrWrongNetwork = errors.New("invoice is for another network")
	// ErrAlreadyPaid: the node has already paid, or is paying, this hash.
	ErrAlreadyPaid = errors.New("invoice already paid or payment in flight")
)

// Backend is the Lightning node as l402d uses it. Implementations must be
// safe for concurrent use.
type Backend interface {
	// AddInvoice creates an invoice on the node.
	AddInvoice(ctx context.Context, req AddInvoiceRequest) (Invoice, error)
	// LookupInvoice returns an invoice's current state.
	LookupInvoice(ctx context.Context, hash lntypes.Hash) (InvoiceStatus, error)
	// SubscribeSettlements streams every invoice settled after the given
	// settle index, first the backlog, then live. The error channel
	// yields one error when the stream ends.
	SubscribeSettlements(ctx context.Context, afterSettleIndex uint64) (<-chan Settlement, <-chan error, error)

	// Pay pays an invoice and blocks until the payment is final or ctx
	// ends. An error wrapping ErrAlreadyPaid means the node already has a
	// payment for this hash: Track it instead.
	Pay(ctx context.Context, req PayRequest) (Payment, error)
	// Track follows a payment the node already knows until it is final
	// or ctx ends; ErrNotFound if the node never started one.
	Track(ctx context.Context, hash lntypes.Hash) (Payment, error)

	// DecodeInvoice decodes a payment request for this node's network,
	// without a call to the node.
	DecodeInvoice(ctx context.Context, invoice string) (DecodedInvoice, error)
	// NodeInfo describes the node.
	NodeInfo(ctx context.Context) (NodeInfo, error)
	// Balance reports channel and on-chain funds.
	Balance(ctx context.Context) (Balance, error)
}

// AddInvoiceRequest asks for a new invoice.
type AddInvoiceRequest struct {
	AmountSats int64
	Memo       string
	Expiry     time.Duration
}

// Invoice is a freshly created invoice.
type Invoice struct {
	PaymentHash    lntypes.Hash
	PaymentRequest string
	AddIndex       uint64
	ExpiresAt      time.Time
}

// InvoiceState mirrors LND's invoice states.
type InvoiceState string

// Invoice states.
const (
	InvoiceOpen     InvoiceState = "open"
	InvoiceSettled  InvoiceState = "settled"
	InvoiceCanceled InvoiceState = "canceled"
	InvoiceAccepted InvoiceState = "accepted"
)

// InvoiceStatus is an invoice as the node sees it now.
type InvoiceStatus struct {
	PaymentHash    lntypes.Hash
	PaymentRequest string
	Memo           string
	State          InvoiceState
	AmountMsat     int64
	AmountPaidMsat int64
	CreatedAt      time.Time
	SettledAt      time.Time
	SettleIndex    uint64
}

// Settlement is one settled invoice from the settlement stream.
type Settlement struct {
	PaymentHash    lntypes.Hash
	AmountPaidMsat int64
	SettledAt      time.Time
	SettleIndex    uint64
}

// PayRequest asks the node to pay an invoice.
type PayRequest struct {
	Invoice string
	// AmountMsat is what to pay an invoice that names no amount (a
	// refund's return invoice); it must be zero for one that does.
	AmountMsat int64
	// MaxFeeMsat caps routing fees.
	MaxFeeMsat int64
	// Timeout bounds the node's path finding and attempts.
	Timeout time.Duration
}

// PaymentState is a payment's state on the node.
type PaymentState string

// Payment states.
const (
	PaymentInFlight  PaymentState = "in_flight"
	PaymentSucceeded PaymentState = "succeeded"
	PaymentFailed    PaymentState = "failed"
)

// Payment is a payment's outcome (or its last known state).
type Payment struct {
	PaymentHash   lntypes.Hash
	State         PaymentState
	Preimage      lntypes.Preimage
	AmountMsat    int64
	FeeMsat       int64
	FailureReason string
}

// DecodedInvoice is what a payment request says.
type DecodedInvoice struct {
	PaymentHash lntypes.Hash
	// AmountMsat is 0 for an amountless invoice.
	AmountMsat  int64
	Description string
	// DescriptionHash: the invoice commits to a description by hash
	// (an "h" field) instead of carrying it.
	DescriptionHash bool
	Destination     string
	CreatedAt       time.Time
	ExpiresAt       time.Time
	Network         string
}

// Expired reports whether the invoice expired before now.
func (d DecodedInvoice) Expired(now time.Time) bool { return !now.Before(d.ExpiresAt) }

// NodeInfo describes the node.
type NodeInfo struct {
	Pubkey        string
	Alias         string
	Network       string
	Version       string
	BlockHeight   uint32
	SyncedToChain bool
	ActiveChans   uint32
	// ChainUnresponsive: LND answers but could not reach its chain
	// backend (btcd, bitcoind) in time; the other fields but Pubkey,
	// Alias and Network are then unknown.
	ChainUnresponsive bool
}

// Balance is the node's spendable funds.
type Balance struct {
	ChannelLocalMsat   int64
	ChannelRemoteMsat  int64
	PendingOpenMsat    int64
	OnchainConfirmed   int64 // sats
	OnchainUnconfirmed int64 // sats
}
