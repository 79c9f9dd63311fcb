package storage

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/l402d/l402d/l402"
	"github.com/lightningnetwork/lnd/lntypes"
)

// Key schema.
//
// One unversioned entry says which layout the rest of the database uses:
//
//	meta/schema                          uint32 BE schema version (currently 1)
//
// It is written when a database is created and checked on every open: a
// version newer than this build knows is refused with ErrSchema (never
// guessed at), an older one will be migrated here once there is one. All
// other keys live under the version prefix "v1/". Binary parts are written
// <like-this> and are raw bytes, not text; integers are big-endian so that
// byte order is numeric order; times are Unix nanoseconds, 0 for none.
//
//	v1/rk/<token id 32>                  root key, 32 raw bytes
//	v1/rev/<token id 32>                 revocation: 0x01 ‖ revoked-at int64 ‖ reason
//	v1/ch/<payment hash 32>              challenge record (see encodeChallenge)
//	v1/chidx/created/<t 8><hash 32>      index of challenges by creation time:
//	                                     state byte ‖ expires-at int64 ‖ resource,
//	                                     so ListChallenges filters without
//	                                     reading the records it skips; t is the
//	                                     creation time with the sign bit flipped
//	v1/idem/<key>                        idempotency entry: payment hash 32, with
//	                                     a Badger TTL; <key> is the caller's text
//	v1/settle/cursor/<shard 1>           highest LND settle index seen, uint64;
//	                                     the cursor is the maximum over shards
//	v1/settle/reconciled                 when the watcher last completed a
//	                                     reconciliation by lookup, int64 Unix ns
//	v1/agg/total/<shard 1>               all-time counters (see below)
//	v1/agg/day/<day 4><shard 1>          counters for one UTC day; day is days
//	                                     since 1970-01-01 with the sign bit flipped
//	v1/meta/<name>                       small named values (e.g. node pubkey)
//	v1/used/<payment hash 32>            a single-use payment (MPP charge, x402
//	                                     settlement) spent: 0x01 ‖ at int64 ‖
//	                                     scheme; kept for good, so a replay is
//	                                     refused however late it comes
//	v1/sess/<deposit payment hash 32>    a prepaid session: 0x01 ‖ JSON (see
//	                                     Session); its deposits are used/
//	                                     entries of scheme "session"; an L402
//	                                     prepaid balance is one too, keyed by
//	                                     the payment hash of the token that
//	                                     bought it (see prepaid.go)
//	v1/ppfund/<payment hash 32>          the prepaid balance id a top-up
//	                                     challenge's payment credits
//	v1/refinv/<payment hash 32>          the prepaid balance whose refund an
//	                                     invoice takes (one per invoice)
//
// Counters and the settle cursor are split over 16 shards chosen by the
// low bits of the payment hash's first byte (AdvanceSettleCursor, which has
// no hash, uses the index), so that concurrent writers for different
// challenges rarely touch the same key and do not serialize on Badger's
// conflict detection; readers sum the counter shards and take the maximum
// of the cursor shards. A counters value is created ‖ settled ‖ revenue
// msat, three uint64.
//
// The consumer side (paying other L402 services):
//
//	v1/pay/<payment hash 32>             payment journal entry (see encodePayment),
//	                                     written durably before paying
//	v1/payidx/<t 8><hash 32>             payment history by first-reservation
//	                                     time (t as in chidx); empty value
//	v1/tok/<origin>\x00<scope>           cached L402 token (see encodeToken);
//	                                     origin is scheme://host[:port], scope a
//	                                     path, a path prefix ending in "*" or
//	                                     "service:<name>"
//	v1/held/<origin>\x00<id 32>            a prepaid session the consumer holds at
//	                                     a seller (JSON, see HeldSession)
//	v1/budget/limits                     budget limits and domain lists (see
//	                                     encodeBudgetLimits)
//	v1/budget/day/<day 4>                all payments of one UTC day: spent msat
//	                                     ‖ reserved msat, two int64
//	v1/budget/domain/<day 4><domain>     the same for one domain and UTC day
//
// A payment's reservation (amount + fee limit) is added to its day's
// counters in the transaction that writes its journal entry, and moved to
// spent (amount + actual fee) or released in the transaction that records
// its outcome, so the counters always equal the sum over the journal.
const (
	schemaVersion = 1

	keySchema = "meta/schema"

	prefixRootKey       = "v1/rk/"
	prefixRevocation    = "v1/rev/"
	prefixChallenge     = "v1/ch/"
	prefixByCreated     = "v1/chidx/created/"
	prefixIdempotency   = "v1/idem/"
	prefixSettleCursor  = "v1/settle/cursor/"
	keyReconciled       = "v1/settle/reconciled"
	prefixAggTotal      = "v1/agg/total/"
	prefixAggDay        = "v1/agg/day/"
	prefixMeta          = "v1/meta/"
	prefixUsed          = "v1/used/"
	prefixSession       = "v1/sess/"
	prefixPrepaidFund   = "v1/ppfund/"
	prefixRefundInvoice = "v1/refinv/"
	prefixHeld          = "v1/held/"
	prefixPayment       = "v1/pay/"
	prefixPaymentIdx    = "v1/payidx/"
	prefixToken         = "v1/tok/"
	keyBudgetLimits     = "v1/budget/limits"
	prefixBudgetDay     = "v1/budget/day/"
	prefixBudgetDomain  = "v1/budget/domain/"
	// prefixUnapproved counts, per minute, what payments without a
	// person's approval reserved (the rolling unapproved-spend cap).
	prefixUnapproved = "v1/budget/unapproved/"

	// shards is how many keys counters and the settle cursor are split
	// over. A power of two.
	shards = 16
)

func rootKeyKey(id l402.TokenID) []byte {
	return append([]byte(prefixRootKey), id[:]...)
}

func revocationKey(id l402.TokenID) []byte {
	return append([]byte(prefixRevocation), id[:]...)
}

func usedKey(h lntypes.Hash) []byte {
	return append([]byte(prefixUsed), h[:]...)
}

func challengeKey(h lntypes.Hash) []byte {
	return append([]byte(prefixChallenge), h[:]...)
}

// byCreatedKey is the index entry of a challenge created at t.
func byCreatedKey(t time.Time, h lntypes.Hash) []byte {
	k := make([]byte, 0, len(prefixByCreated)+8+lntypes.HashSize)
	k = append(k, prefixByCreated...)
	k = binary.BigEndian.AppendUint64(k, orderedInt64(unixNanos(t)))
	return append(k, h[:]...)
}

func idempotencyKey(key string) []byte {
	return append([]byte(prefixIdempotency), key...)
}

func settleCursorKey(shard byte) []byte {
	return append([]byte(prefixSettleCursor), shard)
}

func aggTotalKey(shard byte) []byte {
	return append([]byte(prefixAggTotal), shard)
}

func aggDayKey(day int64, shard byte) []byte {
	k := make([]byte, 0, len(prefixAggDay)+5)
	k = append(k, prefixAggDay...)
	k = appendDay(k, day)
	return append(k, shard)
}

func paymentKey(h lntypes.Hash) []byte {
	return append([]byte(prefixPayment), h[:]...)
}

// paymentIdxKey is the history index entry of a payment first reserved at t.
func paymentIdxKey(t time.Time, h lntypes.Hash) []byte {
	k := make([]byte, 0, len(prefixPaymentIdx)+8+lntypes.HashSize)
	k = append(k, prefixPaymentIdx...)
	k = binary.BigEndian.AppendUint64(k, orderedInt64(unixNanos(t)))
	return append(k, h[:]...)
}

func tokenKey(origin, scope string) []byte {
	k := make([]byte, 0, len(prefixToken)+len(origin)+1+len(scope))
	k = append(k, prefixToken...)
	k = append(k, origin...)
	k = append(k, 0)
	return append(k, scope...)
}

// appendDay appends a day number so that byte order is numeric order.
func appendDay(b []byte, day int64) []byte {
	return binary.BigEndian.AppendUint32(b, uint32(day)^(1<<31))
}

func budgetDayKey(day int64) []byte {
	return appendDay([]byte(prefixBudgetDay), day)
}

func budgetDomainKey(day int64, domain string) []byte {
	return append(appendDay([]byte(prefixBudgetDomain), day), domain...)
}

// unapprovedKey is the counter of Unix minute m.
func unapprovedKey(m int64) []byte {
	return binary.BigEndian.AppendUint64([]byte(prefixUnapproved), uint64(m))
}

// shardOf picks the counter shard for a payment hash.
func shardOf(h lntypes.Hash) byte { return h[0] & (shards - 1) }

// orderedInt64 maps n to a uint64 whose big-endian bytes sort like n.
func orderedInt64(n int64) uint64 { return uint64(n) ^ (1 << 63) }

// dayOf returns the UTC day number of t: days since 1970-01-01.
func dayOf(t time.Time) int64 {
	s := t.Unix()
	d := s / 86400
	if s%86400 < 0 {
		d--
	}
	return d
}

// dayStart returns midnight UTC of day d.
func dayStart(d int64) time.Time { return time.Unix(d*86400, 0).UTC() }

// fmtKey renders a key for error messages: the text prefix as is, the binary
// rest in hex (idempotency keys are text and are quoted).
func fmtKey(k []byte) string {
	s := string(k)
	prefixes := [...]string{
		keySchema, prefixRootKey, prefixRevocation, prefixByCreated, prefixChallenge,
		prefixIdempotency, prefixSettleCursor, keyReconciled, prefixAggTotal, prefixAggDay,
		prefixPaymentIdx, prefixPayment, prefixToken, keyBudgetLimits, prefixBudgetDay, prefixBudgetDomain, prefixUnapproved,
	}
	for _, p := range prefixes {
		if rest, ok := strings.CutPrefix(s, p); ok {
			switch p {
			case prefixIdempotency, prefixToken:
				return p + strconv.Quote(rest)
			case prefixBudgetDomain:
				if len(rest) >= 4 {
					return p + hex.EncodeToString([]byte(rest[:4])) + strconv.Quote(rest[4:])
				}
			}
			return p + hex.EncodeToString([]byte(rest))
		}
	}
	return fmt.Sprintf("%q", k)
}

// corrupt returns an error wrapping ErrCorrupt that names key k.
func corrupt(k []byte, format string, args ...any) error {
	return fmt.Errorf("storage: %w at %s: %s", ErrCorrupt, fmtKey(k), fmt.Sprintf(format, args...))
}
