package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/l402d/l402d/l402"
	"github.com/lightningnetwork/lnd/lntypes"
)

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
