package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/l402d/l402d/l402"
	"github.com/lightningnetwork/lnd/lntypes"
)

// ChallengeState is where a challenge is in its life.
type ChallengeState string

// Challenge states. Only pending, settled and canceled are stored; expired
// is derived when a challenge is read: pending and past its ExpiresAt.
const (
	StatePending  ChallengeState = "pending"
	StateSettled  ChallengeState = "settled"
	StateExpired  ChallengeState = "expired"
	StateCanceled ChallengeState = "canceled"
)

// Challenge is one L402 challenge as handed out, and what became of it.
type Challenge struct {
	PaymentHash lntypes.Hash
	TokenID     l402.TokenID

	Resource    string
	Description string
	Service     string
	PriceSats   int64
	Invoice     string // BOLT 11
	Macaroon    string // base64, exactly as handed out
	ClientID    string // who asked (API key id or IP), for audits

	CreatedAt time.Time
	ExpiresAt time.Time // zero: never expires

	State          ChallengeState
	SettledAt      time.Time
	AmountPaidMsat int64
	SettleIndex    uint64 // LND's settle index of the payment
}

// Settlement is a paid invoice as reported by LND.
type Settlement struct {
	PaymentHash    lntypes.Hash
	AmountPaidMsat int64
	SettledAt      time.Time // zero: now
	SettleIndex    uint64
}

// PutChallenge durably stores a new challenge and counts it. A zero
// CreatedAt is set to now and an empty State to pending, in c as well, so
// the caller sees what was stored. It fails with ErrExists if the payment
// hash is taken and with ErrInvalid if c is not a fresh, pending challenge.
func (s *Store) PutChallenge(ctx context.Context, c *Challenge) error {
	return s.putChallenge(ctx, c, nil)
}

// Idempotency is an idempotency entry to write with a challenge.
type Idempotency struct {
	Key string
	TTL time.Duration
}

// IssueChallenge stores, in one durable transaction, a new token's root
// key, its challenge and, if idem is set, the idempotency entry that
// points at it. One commit instead of three is what keeps issuing close to
// LND's own AddInvoice latency. It fails with ErrExists if the token id or
// the payment hash is taken.
func (s *Store) IssueChallenge(ctx context.Context, c *Challenge, key [l402.RootKeySize]byte, idem *Idempotency) error {
	if idem != nil {
		if err := checkIdempotency(idem.Key, idem.TTL); err != nil {
			return err
		}
	}
	rk := rootKeyKey(c.TokenID)
	err := s.putChallenge(ctx, c, func(txn *badger.Txn) error {
		switch _, err := txn.Get(rk); {
		case err == nil:
			return fmt.Errorf("storage: root key for token %s: %w", c.TokenID, ErrExists)
		case !errors.Is(err, badger.ErrKeyNotFound):
			return fmt.Errorf("storage: reading %s: %w", fmtKey(rk), err)
		}
		if err := txn.Set(rk, key[:]); err != nil {
			return err
		}
		if idem == nil {
			return nil
		}
		return txn.SetEntry(badger.NewEntry(idempotencyKey(idem.Key), c.PaymentHash[:]).WithTTL(idem.TTL))
	})
	if err != nil {
		return err
	}
	s.keys.put(c.TokenID, key)
	return nil
}

// putChallenge validates and writes a new challenge; extra, if set, runs
// in the same transaction.
func (s *Store) putChallenge(ctx context.Context, c *Challenge, extra func(*badger.Txn) error) error {
	if c.PaymentHash == (lntypes.Hash{}) {
		return fmt.Errorf("storage: %w: challenge has no payment hash", ErrInvalid)
	}
	if c.State != "" && c.State != StatePending {
		return fmt.Errorf("storage: %w: a new challenge is pending, not %q", ErrInvalid, c.State)
	}
	if c.PriceSats < 0 {
		return fmt.Errorf("storage: %w: negative price %d", ErrInvalid, c.PriceSats)
	}
	if !c.SettledAt.IsZero() || c.AmountPaidMsat != 0 || c.SettleIndex != 0 {
		return fmt.Errorf("storage: %w: a new challenge has no settlement", ErrInvalid)
	}
	if !representable(c.CreatedAt) || !representable(c.ExpiresAt) {
		return fmt.Errorf("storage: %w: times must lie between the years 1678 and 2262", ErrInvalid)
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	c.State = StatePending

	k := challengeKey(c.PaymentHash)
	v := encodeChallenge(c)
	ik, iv := byCreatedKey(c.CreatedAt, c.PaymentHash), indexValue(c)
	shard := shardOf(c.PaymentHash)
	day := dayOf(c.CreatedAt)
	return s.update(ctx, true, func(txn *badger.Txn) error {
		switch _, err := txn.Get(k); {
		case err == nil:
			return fmt.Errorf("storage: challenge %s: %w", c.PaymentHash, ErrExists)
		case !errors.Is(err, badger.ErrKeyNotFound):
			return fmt.Errorf("storage: reading %s: %w", fmtKey(k), err)
		}
		if err := txn.Set(k, v); err != nil {
			return err
		}
		if err := txn.Set(ik, iv); err != nil {
			return err
		}
		if extra != nil {
			if err := extra(txn); err != nil {
				return err
			}
		}
		return addCounters(txn, shard, day, Counters{Created: 1})
	})
}

// Challenge returns the challenge with payment hash h, or an error wrapping
// ErrNotFound.
func (s *Store) Challenge(ctx context.Context, h lntypes.Hash) (*Challenge, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var c *Challenge
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		c, err = getChallenge(txn, h)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.derive(c)
	return c, nil
}

// Settle records that the invoice of a challenge was paid. In one
// transaction it marks the challenge settled, adds it to the revenue
// counters and advances the settle cursor to at least st.SettleIndex.
// Settling a settled challenge changes nothing and reports changed false. A
// payment hash that is no challenge of ours (another invoice of the node)
// only advances the cursor and also reports false. A canceled or expired
// challenge that was paid after all is settled: the money arrived.
func (s *Store) Settle(ctx context.Context, st Settlement) (changed bool, err error) {
	if st.AmountPaidMsat < 0 {
		return false, fmt.Errorf("storage: %w: negative amount %d msat", ErrInvalid, st.AmountPaidMsat)
	}
	if !representable(st.SettledAt) {
		return false, fmt.Errorf("storage: %w: settle time %v is out of range", ErrInvalid, st.SettledAt)
	}
	if st.SettledAt.IsZero() {
		st.SettledAt = s.now()
	}
	shard := shardOf(st.PaymentHash)
	err = s.update(ctx, false, func(txn *badger.Txn) error {
		changed = false
		if err := advanceCursor(txn, shard, st.SettleIndex); err != nil {
			return err
		}
		c, err := getChallenge(txn, st.PaymentHash)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if c.State == StateSettled {
			return nil
		}
		c.State = StateSettled
		c.SettledAt = st.SettledAt
		c.AmountPaidMsat = st.AmountPaidMsat
		c.SettleIndex = st.SettleIndex
		if err := putChallengeRecord(txn, c); err != nil {
			return err
		}
		d := Counters{Settled: 1, RevenueMsat: st.AmountPaidMsat}
		if err := addCounters(txn, shard, dayOf(st.SettledAt), d); err != nil {
			return err
		}
		changed = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return changed, nil
}

// CancelChallenge marks a pending challenge canceled (its invoice was
// canceled). A settled or canceled challenge is left alone and reports
// false; an unknown one yields an error wrapping ErrNotFound.
func (s *Store) CancelChallenge(ctx context.Context, h lntypes.Hash) (changed bool, err error) {
	err = s.update(ctx, false, func(txn *badger.Txn) error {
		changed = false
		c, err := getChallenge(txn, h)
		if err != nil {
			return err
		}
		if c.State != StatePending {
			return nil
		}
		c.State = StateCanceled
		changed = true
		return putChallengeRecord(txn, c)
	})
	if err != nil {
		return false, err
	}
	return changed, nil
}

// AdvanceSettleCursor raises the settle cursor to index if it is lower. The
// invoice watcher calls it for settled invoices it has nothing else to do
// with; Settle does it itself.
func (s *Store) AdvanceSettleCursor(ctx context.Context, index uint64) error {
	return s.update(ctx, false, func(txn *badger.Txn) error {
		return advanceCursor(txn, byte(index%shards), index)
	})
}

// SettleCursor returns the highest settle index recorded: the watcher
// resumes its subscription after it.
func (s *Store) SettleCursor(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var cur uint64
	err := s.db.View(func(txn *badger.Txn) error {
		for sh := range byte(shards) {
			v, err := getCursor(txn, sh)
			if err != nil {
				return err
			}
			cur = max(cur, v)
		}
		return nil
	})
	return cur, err
}

func getCursor(txn *badger.Txn, shard byte) (uint64, error) {
	k := settleCursorKey(shard)
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("storage: reading %s: %w", fmtKey(k), err)
	}
	var cur uint64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return corrupt(k, "settle cursor is %d bytes, want 8", len(v))
		}
		cur = binary.BigEndian.Uint64(v)
		return nil
	})
	return cur, err
}

// advanceCursor raises one shard of the cursor to index. Reading the shard
// makes concurrent advances of the same shard conflict and retry, so the
// maximum always wins.
func advanceCursor(txn *badger.Txn, shard byte, index uint64) error {
	cur, err := getCursor(txn, shard)
	if err != nil || index <= cur {
		return err
	}
	return txn.Set(settleCursorKey(shard), binary.BigEndian.AppendUint64(nil, index))
}

// getChallenge reads and decodes one challenge record, without deriving
// the expired state.
func getChallenge(txn *badger.Txn, h lntypes.Hash) (*Challenge, error) {
	k := challengeKey(h)
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("storage: challenge %s: %w", h, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: reading %s: %w", fmtKey(k), err)
	}
	var c *Challenge
	err = item.Value(func(v []byte) error {
		var err error
		c, err = decodeChallenge(k, v)
		return err
	})
	return c, err
}

// putChallengeRecord rewrites an existing challenge and its index entry.
func putChallengeRecord(txn *badger.Txn, c *Challenge) error {
	if err := txn.Set(challengeKey(c.PaymentHash), encodeChallenge(c)); err != nil {
		return err
	}
	return txn.Set(byCreatedKey(c.CreatedAt, c.PaymentHash), indexValue(c))
}

// derive turns a stored pending state into expired once ExpiresAt passed.
func (s *Store) derive(c *Challenge) {
	c.State = effectiveState(c.State, c.ExpiresAt, s.now())
}

func effectiveState(stored ChallengeState, expiresAt, now time.Time) ChallengeState {
	if stored == StatePending && !expiresAt.IsZero() && now.After(expiresAt) {
		return StateExpired
	}
	return stored
}

// Listing.

// Limits on one ListChallenges page.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// Cursor marks a position in a ListChallenges listing. Pass the one a call
// returned as ChallengeFilter.After to get the next page. It is opaque and
// URL-safe.
type Cursor string

// ChallengeFilter selects challenges for ListChallenges. Zero fields do
// not filter.
type ChallengeFilter struct {
	State    ChallengeState // as derived: "pending" excludes expired ones
	Resource string         // exact match
	Since    time.Time      // created at or after
	Until    time.Time      // created before
	Limit    int            // <= 0: DefaultListLimit; at most MaxListLimit
	After    Cursor         // continue after this position
}

// ListChallenges returns challenges matching f, newest first, and a cursor
// for the next page, empty when there is none (a full page may be followed
// by an empty one). It walks the creation-time index, whose entries carry
// state, expiry and resource, so it reads only the records it returns.
func (s *Store) ListChallenges(ctx context.Context, f ChallengeFilter) ([]Challenge, Cursor, error) {
	switch f.State {
	case "", StatePending, StateSettled, StateExpired, StateCanceled:
	default:
		return nil, "", fmt.Errorf("storage: %w: unknown challenge state %q", ErrInvalid, f.State)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)

	prefix := []byte(prefixByCreated)
	r, err := newTimeRange(prefix, f.Since, f.Until, f.After)
	if err != nil {
		return nil, "", err
	}
	start, after, since := r.start, r.after, r.since
	if after != nil && bytes.Compare(after, start) < 0 {
		start = after
	}
	now := s.now()

	var out []Challenge
	var next Cursor
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true})
		defer it.Close()
		n := 0
		for it.Seek(start); it.Valid(); it.Next() {
			if n++; n%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			item := it.Item()
			k := item.Key()
			if after != nil && bytes.Equal(k, after) {
				continue
			}
			if len(k) != len(prefix)+8+lntypes.HashSize {
				return corrupt(k, "index entry has a %d-byte key", len(k))
			}
			if binary.BigEndian.Uint64(k[len(prefix):]) < since {
				break
			}
			var match bool
			err := item.Value(func(v []byte) error {
				state, expires, resource, err := decodeIndexValue(k, v)
				if err != nil {
					return err
				}
				match = (f.State == "" || effectiveState(state, expires, now) == f.State) &&
					(f.Resource == "" || f.Resource == string(resource))
				return nil
			})
			if err != nil {
				return err
			}
			if !match {
				continue
			}
			var h lntypes.Hash
			copy(h[:], k[len(prefix)+8:])
			c, err := getChallenge(txn, h)
			if err != nil {
				return fmt.Errorf("storage: index entry %s: %w", fmtKey(k), err)
			}
			c.State = effectiveState(c.State, c.ExpiresAt, now)
			out = append(out, *c)
			if len(out) == limit {
				next = cursorAt(prefix, k)
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// Encoding.

// challengeFormat is the first byte of an encoded challenge record.
const challengeFormat = 1

// Stored state codes.
const (
	codePending  = 1
	codeSettled  = 2
	codeCanceled = 3
)

func stateCode(s ChallengeState) byte {
	switch s {
	case StateSettled:
		return codeSettled
	case StateCanceled:
		return codeCanceled
	default:
		return codePending
	}
}

func stateFromCode(k []byte, c byte) (ChallengeState, error) {
	switch c {
	case codePending:
		return StatePending, nil
	case codeSettled:
		return StateSettled, nil
	case codeCanceled:
		return StateCanceled, nil
	}
	return "", corrupt(k, "unknown state code %d", c)
}

// encodeChallenge lays a challenge out as
//
//	format 1 ‖ payment hash 32 ‖ token id 32 ‖ state code
//	‖ varint price sats, created, expires, settled (Unix ns), amount msat
//	‖ uvarint settle index
//	‖ strings (uvarint length ‖ bytes): resource, description, service,
//	  invoice, macaroon, client id
func encodeChallenge(c *Challenge) []byte {
	b := make([]byte, 0, 1+64+1+6*10+len(c.Resource)+len(c.Description)+len(c.Service)+
		len(c.Invoice)+len(c.Macaroon)+len(c.ClientID)+6*2)
	b = append(b, challengeFormat)
	b = append(b, c.PaymentHash[:]...)
	b = append(b, c.TokenID[:]...)
	b = append(b, stateCode(c.State))
	b = binary.AppendVarint(b, c.PriceSats)
	b = binary.AppendVarint(b, unixNanos(c.CreatedAt))
	b = binary.AppendVarint(b, unixNanos(c.ExpiresAt))
	b = binary.AppendVarint(b, unixNanos(c.SettledAt))
	b = binary.AppendVarint(b, c.AmountPaidMsat)
	b = binary.AppendUvarint(b, c.SettleIndex)
	for _, s := range [...]string{c.Resource, c.Description, c.Service, c.Invoice, c.Macaroon, c.ClientID} {
		b = appendString(b, s)
	}
	return b
}

// decodeChallenge decodes what encodeChallenge wrote; k names the entry in
// errors and must match the payment hash inside.
func decodeChallenge(k, v []byte) (*Challenge, error) {
	r := reader{b: v}
	if f := r.byte(); r.err == nil && f != challengeFormat {
		return nil, corrupt(k, "unknown challenge format %d", f)
	}
	c := new(Challenge)
	r.bytes(c.PaymentHash[:])
	r.bytes(c.TokenID[:])
	code := r.byte()
	c.PriceSats = r.varint()
	c.CreatedAt = fromUnixNanos(r.varint())
	c.ExpiresAt = fromUnixNanos(r.varint())
	c.SettledAt = fromUnixNanos(r.varint())
	c.AmountPaidMsat = r.varint()
	c.SettleIndex = r.uvarint()
	c.Resource = r.string()
	c.Description = r.string()
	c.Service = r.string()
	c.Invoice = r.string()
	c.Macaroon = r.string()
	c.ClientID = r.string()
	if err := r.done(); err != nil {
		return nil, corrupt(k, "challenge: %v", err)
	}
	var err error
	if c.State, err = stateFromCode(k, code); err != nil {
		return nil, err
	}
	if len(k) < lntypes.HashSize || !bytes.Equal(k[len(k)-lntypes.HashSize:], c.PaymentHash[:]) {
		return nil, corrupt(k, "challenge record holds payment hash %s", c.PaymentHash)
	}
	return c, nil
}

// indexValue is a challenge's creation-index entry: state code ‖ expires
// (Unix ns, 8 bytes) ‖ resource.
func indexValue(c *Challenge) []byte {
	v := make([]byte, 0, 1+8+len(c.Resource))
	v = append(v, stateCode(c.State))
	v = binary.BigEndian.AppendUint64(v, uint64(unixNanos(c.ExpiresAt)))
	return append(v, c.Resource...)
}

// decodeIndexValue decodes indexValue; resource aliases v.
func decodeIndexValue(k, v []byte) (ChallengeState, time.Time, []byte, error) {
	r := reader{b: v}
	code := r.byte()
	expires := fromUnixNanos(int64(r.uint64()))
	if r.err != nil {
		return "", time.Time{}, nil, corrupt(k, "index entry: %v", r.err)
	}
	state, err := stateFromCode(k, code)
	return state, expires, r.rest(), err
}
