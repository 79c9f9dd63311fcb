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
	// FromLookup marks a settlement found by looking the invoice up
	// rather than read from LND's settlement stream. The stream delivers
	// settlements in settle-index order, so recording one of those means
	// every lower index was recorded too and the cursor may move; a
	// looked-up one comes out of order and leaves the cursor alone.
	FromLookup bool
}

// PutChallenge durably stores a new challenge and counts it. A zero
// CreatedAt is set to now and an empty State to pending, in c as well, so
// the caller sees what was stored. It fails with ErrExists if the payment
// hash is taken and with ErrInvalid if c is not a fresh, pending challenge.
func (s *Store) PutChallenge(ctx context.Context, c *Challenge) error {
	return s.putChallenge(ctx, c)
}

// Idempotency is an idempotency entry to write with a challenge.
type Idempotency struct {
	Key string
	TTL time.Duration
}

// IssueChallenge stores, in one durable commit, a new token's root key,
// its challenge and, if idem is set, the idempotency entry that points at
// it, so that issuing costs one fsync on top of LND's AddInvoice. Calls
// that arrive while a commit is syncing are committed together in the next
// transaction (group commit): Badger syncs once per transaction, so under
// concurrency this is what keeps issuing bound by LND rather than by the
// disk. It fails with ErrExists if the token id or the payment hash is
// taken, and writes nothing then.
func (s *Store) IssueChallenge(ctx context.Context, c *Challenge, key [l402.RootKeySize]byte, idem *Idempotency) error {
	if idem != nil {
		if err := checkIdempotency(idem.Key, idem.TTL); err != nil {
			return err
		}
	}
	w, err := s.prepareChallenge(c)
	if err != nil {
		return err
	}
	req := &issueReq{w: w, key: key, idem: idem, done: make(chan error, 1)}
	select {
	case s.issues <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return fmt.Errorf("storage: %w: the store is closing", ErrInvalid)
	}
	// The commit is not abandoned when ctx ends: the caller just stops
	// waiting. The committer owns the root key cache update, so what it
	// committed is verifiable whether or not anyone still waits for it
	// (an idempotent retry hands this very challenge back).
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// issueReq is one IssueChallenge waiting for the group committer.
type issueReq struct {
	w    challengeWrite
	key  [l402.RootKeySize]byte
	idem *Idempotency
	done chan error
	err  error // set while applying, per attempt
}

// issueStage names a point in the group committer's handling of a batch,
// for Store.issueHook.
type issueStage int

const (
	issueBatched   issueStage = iota + 1 // taken from the queue, not committed
	issueCommitted                       // committed, callers not yet answered
)

// maxIssueBatch bounds one group commit, far below Badger's transaction
// size limit.
const maxIssueBatch = 128

// issueLoop is the group committer: it takes whatever IssueChallenge calls
// are waiting and commits them in one durable transaction.
func (s *Store) issueLoop() {
	defer close(s.issuesDone)
	for {
		var first *issueReq
		select {
		case first = <-s.issues:
		case <-s.closing:
			// Fail whoever is still handing a request over.
			for {
				select {
				case r := <-s.issues:
					r.done <- fmt.Errorf("storage: %w: the store is closing", ErrInvalid)
				default:
					return
				}
			}
		}
		batch := []*issueReq{first}
	fill:
		for len(batch) < maxIssueBatch {
			select {
			case r := <-s.issues:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		s.commitIssues(batch)
	}
}

// commitIssues writes a batch in one durable transaction. A request whose
// token id or payment hash is taken fails alone with ErrExists (nothing of
// it is written); any other failure fails the batch.
func (s *Store) commitIssues(batch []*issueReq) {
	s.hook(issueBatched)
	err := s.update(context.Background(), false, func(txn *badger.Txn) error {
		for _, r := range batch {
			r.err = r.apply(txn)
			if r.err != nil && !errors.Is(r.err, ErrExists) {
				return r.err
			}
		}
		return nil
	})
	if err == nil {
		// Committed: the keys go into the cache now, before anyone is
		// answered and even if the sync below fails, because the records
		// are in the database either way and the cache may claim to be
		// complete.
		for _, r := range batch {
			if r.err == nil {
				s.keys.put(r.w.c.TokenID, r.key)
			}
		}
		err = s.sync()
	}
	s.hook(issueCommitted)
	for _, r := range batch {
		if err != nil {
			r.done <- err
			continue
		}
		r.done <- r.err
	}
}

func (s *Store) hook(at issueStage) {
	if s.issueHook != nil {
		s.issueHook(at)
	}
}

// apply writes one issue into txn, checking first that nothing is taken,
// so that a refused request leaves no partial write behind.
func (r *issueReq) apply(txn *badger.Txn) error {
	rk := rootKeyKey(r.w.c.TokenID)
	switch _, err := txn.Get(rk); {
	case err == nil:
		return fmt.Errorf("storage: root key for token %s: %w", r.w.c.TokenID, ErrExists)
	case !errors.Is(err, badger.ErrKeyNotFound):
		return fmt.Errorf("storage: reading %s: %w", fmtKey(rk), err)
	}
	if err := r.w.check(txn); err != nil {
		return err
	}
	if err := txn.Set(rk, r.key[:]); err != nil {
		return err
	}
	if r.idem != nil {
		if err := txn.SetEntry(badger.NewEntry(idempotencyKey(r.idem.Key), r.w.c.PaymentHash[:]).WithTTL(r.idem.TTL)); err != nil {
			return err
		}
	}
	return r.w.write(txn)
}

// challengeWrite is a validated new challenge, encoded and ready to write.
type challengeWrite struct {
	c      *Challenge
	k, v   []byte // the record
	ik, iv []byte // its created-time index entry
	shard  byte
	day    int64
}

// prepareChallenge validates a new challenge, fills in its defaults (in c
// as well, so the caller sees what is stored) and encodes it.
func (s *Store) prepareChallenge(c *Challenge) (challengeWrite, error) {
	if c.PaymentHash == (lntypes.Hash{}) {
		return challengeWrite{}, fmt.Errorf("storage: %w: challenge has no payment hash", ErrInvalid)
	}
	if c.State != "" && c.State != StatePending {
		return challengeWrite{}, fmt.Errorf("storage: %w: a new challenge is pending, not %q", ErrInvalid, c.State)
	}
	if c.PriceSats < 0 {
		return challengeWrite{}, fmt.Errorf("storage: %w: negative price %d", ErrInvalid, c.PriceSats)
	}
	if !c.SettledAt.IsZero() || c.AmountPaidMsat != 0 || c.SettleIndex != 0 {
		return challengeWrite{}, fmt.Errorf("storage: %w: a new challenge has no settlement", ErrInvalid)
	}
	if !representable(c.CreatedAt) || !representable(c.ExpiresAt) {
		return challengeWrite{}, fmt.Errorf("storage: %w: times must lie between the years 1678 and 2262", ErrInvalid)
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	c.State = StatePending
	return challengeWrite{
		c: c, k: challengeKey(c.PaymentHash), v: encodeChallenge(c),
		ik: byCreatedKey(c.CreatedAt, c.PaymentHash), iv: indexValue(c),
		shard: shardOf(c.PaymentHash), day: dayOf(c.CreatedAt),
	}, nil
}

// check fails with ErrExists if the payment hash is taken.
func (w challengeWrite) check(txn *badger.Txn) error {
	switch _, err := txn.Get(w.k); {
	case err == nil:
		return fmt.Errorf("storage: challenge %s: %w", w.c.PaymentHash, ErrExists)
	case !errors.Is(err, badger.ErrKeyNotFound):
		return fmt.Errorf("storage: reading %s: %w", fmtKey(w.k), err)
	}
	return nil
}

// write stores the record and its index entry and counts it.
func (w challengeWrite) write(txn *badger.Txn) error {
	if err := txn.Set(w.k, w.v); err != nil {
		return err
	}
	if err := txn.Set(w.ik, w.iv); err != nil {
		return err
	}
	return addCounters(txn, w.shard, w.day, Counters{Created: 1})
}

// putChallenge validates and writes a new challenge in its own commit.
func (s *Store) putChallenge(ctx context.Context, c *Challenge) error {
	w, err := s.prepareChallenge(c)
	if err != nil {
		return err
	}
	return s.update(ctx, true, func(txn *badger.Txn) error {
		if err := w.check(txn); err != nil {
			return err
		}
		return w.write(txn)
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
// counters and, unless st.FromLookup, advances the settle cursor to at
// least st.SettleIndex.
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
		if !st.FromLookup {
			if err := advanceCursor(txn, shard, st.SettleIndex); err != nil {
				return err
			}
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

// Reconciled returns when the invoice watcher last completed a
// reconciliation (the time it subscribed before looking invoices up), or
// the zero time if none ever completed.
func (s *Store) Reconciled(ctx context.Context) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	k := []byte(keyReconciled)
	var at time.Time
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(k)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("storage: reading %s: %w", fmtKey(k), err)
		}
		return item.Value(func(v []byte) error {
			if len(v) != 8 {
				return corrupt(k, "reconciled mark is %d bytes, want 8", len(v))
			}
			at = fromUnixNanos(int64(binary.BigEndian.Uint64(v)))
			return nil
		})
	})
	return at, err
}

// SetReconciled records that a reconciliation completed for everything
// that could have settled before at. The mark never moves back.
func (s *Store) SetReconciled(ctx context.Context, at time.Time) error {
	if !representable(at) || at.IsZero() {
		return fmt.Errorf("storage: %w: reconciled time %v is out of range", ErrInvalid, at)
	}
	k := []byte(keyReconciled)
	return s.update(ctx, true, func(txn *badger.Txn) error {
		item, err := txn.Get(k)
		switch {
		case err == nil:
			var prev int64
			if err := item.Value(func(v []byte) error {
				if len(v) != 8 {
					return corrupt(k, "reconciled mark is %d bytes, want 8", len(v))
				}
				prev = int64(binary.BigEndian.Uint64(v))
				return nil
			}); err != nil {
				return err
			}
			if prev >= unixNanos(at) {
				return nil
			}
		case !errors.Is(err, badger.ErrKeyNotFound):
			return fmt.Errorf("storage: reading %s: %w", fmtKey(k), err)
		}
		return txn.Set(k, binary.BigEndian.AppendUint64(nil, uint64(unixNanos(at))))
	})
}

// Unsettled returns the payment hashes of challenges not recorded as paid
// or canceled whose invoice was still payable at or after since: pending,
// expired at or after since, or never expiring. A zero since returns all
// of them. It walks the creation index only.
func (s *Store) Unsettled(ctx context.Context, since time.Time) ([]lntypes.Hash, error) {
	return s.hashesByCreated(ctx, 0, func(state ChallengeState, expires time.Time) bool {
		return state == StatePending && (since.IsZero() || expires.IsZero() || !expires.Before(since))
	})
}

// hashesByCreated walks the creation index, oldest first, and returns the
// payment hashes of the challenges whose state and invoice expiry keep
// accepts, at most limit of them (0: no limit). It reads no challenge
// record.
func (s *Store) hashesByCreated(ctx context.Context, limit int, keep func(state ChallengeState, expires time.Time) bool) ([]lntypes.Hash, error) {
	prefix := []byte(prefixByCreated)
	var out []lntypes.Hash
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		n := 0
		for it.Rewind(); it.Valid() && (limit == 0 || len(out) < limit); it.Next() {
			if n++; n%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			item := it.Item()
			k := item.Key()
			if len(k) != len(prefix)+8+lntypes.HashSize {
				return corrupt(k, "index entry has a %d-byte key", len(k))
			}
			var want bool
			if err := item.Value(func(v []byte) error {
				state, expires, _, err := decodeIndexValue(k, v)
				want = keep(state, expires)
				return err
			}); err != nil {
				return err
			}
			if want {
				var h lntypes.Hash
				copy(h[:], k[len(prefix)+8:])
				out = append(out, h)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
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
