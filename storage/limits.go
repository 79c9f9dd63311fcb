package storage

import (
	"math"
	"time"
)

// The one table of size limits on what the consumer stores. Target
// parsing (plugin/consumer), the payment journal and the token cache all
// check these same numbers, so that anything accepted where a request
// comes in can be stored at every layer: a payment LND has made must
// never fail to be recorded because one layer took a value another
// refuses. FuzzLimits (plugin/consumer) holds them to that.
const (
	// MaxURLLen bounds a target URL in its normalized form (what the
	// journal keeps), and so every path taken from it.
	MaxURLLen = 8 << 10
	// MaxDomainLen bounds a host name: DNS's 253, with room for an IPv6
	// literal and its zone.
	MaxDomainLen = 255
	// MaxOriginLen bounds scheme://host[:port]: a scheme, a host of
	// MaxDomainLen in brackets and a port fit well inside.
	MaxOriginLen = 1 << 10
	// MaxScopeLen bounds a token's scope: an exact path (at most
	// MaxURLLen), or one taken from a caveat, which the consumer narrows
	// to the exact path when it is longer.
	MaxScopeLen = MaxURLLen
	// MaxInvoiceLen bounds a payment request; BOLT 11 decoding refuses
	// longer ones first (invoices.MaxInvoiceLength).
	MaxInvoiceLen = 8 << 10
	// MaxMacaroonLen bounds a macaroon in base64; decoding refuses
	// longer ones first (l402.MaxMacaroonSize bytes of binary).
	MaxMacaroonLen = 16 << 10
	// MaxServiceLen bounds the service name kept with a token.
	MaxServiceLen = 1 << 10
	// MaxReasonLen bounds a failure reason; longer ones are cut.
	MaxReasonLen = 1 << 10
	// MaxOfferLen bounds what the journal keeps of a single-use offer
	// (an MPP challenge, an x402 requirement) to answer it once paid.
	MaxOfferLen = 16 << 10
	// MaxCredentialLen bounds a ready single-use credential: an offer in
	// base64 with the preimage.
	MaxCredentialLen = 32 << 10
	// MaxReceiptLen bounds a receipt a service returned; longer ones are
	// cut.
	MaxReceiptLen = 4 << 10
)

// Times are stored as Unix nanoseconds: MinTime and MaxTime are the
// earliest and latest they represent. ClampTime brings any other time
// into that range.
var (
	MinTime = time.Unix(0, math.MinInt64+1).UTC()
	MaxTime = time.Unix(0, math.MaxInt64).UTC()
)

// ClampTime returns t, or the nearest of MinTime and MaxTime when t is
// beyond what the store represents. The zero time stays zero.
func ClampTime(t time.Time) time.Time {
	switch {
	case t.IsZero():
		return t
	case t.After(MaxTime):
		return MaxTime
	case t.Before(MinTime):
		return MinTime
	}
	return t
}
