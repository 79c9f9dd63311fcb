package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/l402d/l402d/l402"
	"github.com/lightningnetwork/lnd/lntypes"
)

// commitReq is one write waiting for the group committer: apply writes
// it into the batch's transaction (again on each attempt), committed runs
// once that transaction is committed, before it is synced.
type commitReq struct {
	apply     func(txn kvTxn) error
	committed func()
	done      chan error
	err       error // set while applying, per attempt
}

// failsAlone reports whether err, returned by a request's apply, fails
// that request alone and not its batch: a verdict on the request itself
// (its key is taken, its challenge unknown, its payment spent, a record
// it read corrupt), which apply makes before it writes anything.
func failsAlone(err error) bool {
	return errors.Is(err, ErrExists) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrConsumed) || errors.Is(err, ErrCorrupt) ||
		errors.Is(err, ErrSessionClosed) || errors.Is(err, ErrInsufficientBalance) || errors.Is(err, ErrSessionMismatch)
}

// commitOne writes apply through the group committer and waits for its
// durable commit. Once handed over, the write is waited for whatever ctx
// says: a caller told "canceled" must not have written unknowingly.
// committed, if not nil, runs once the write is committed.
func (s *Store) commitOne(ctx context.Context, apply func(txn kvTxn) error, committed func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &commitReq{apply: apply, committed: committed, done: make(chan error, 1)}
	if err := s.handOver(ctx, req); err != nil {
		return err
	}
	return <-req.done
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

// handOver gives r to the group committer. It fails only if ctx ends or
// the store closes before the committer took r.
func (s *Store) handOver(ctx context.Context, r *commitReq) error {
	select {
	case s.issues <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return fmt.Errorf("storage: %w: the store is closing", ErrInvalid)
	}
}

// issueLoop is the group committer: it takes whatever writes are waiting
// (IssueChallenge and Consume calls) and commits them in one durable
// transaction, so that concurrent callers share one fsync.
func (s *Store) issueLoop() {
	defer close(s.issuesDone)
	for {
		var first *commitReq
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
		batch := []*commitReq{first}
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
// apply fails alone (failsAlone) fails alone, having written nothing; any
// other failure fails the batch.
func (s *Store) commitIssues(batch []*commitReq) {
	s.hook(issueBatched)
	err := s.update(context.Background(), false, func(txn kvTxn) error {
		for _, r := range batch {
			r.err = r.apply(txn)
			if r.err != nil && !failsAlone(r.err) {
				return r.err
			}
		}
		return nil
	})
	if err == nil {
		// Committed: the caches learn it now, before anyone is answered
		// and even if the sync below fails, because the records are in
		// the database either way and the caches may claim to be
		// complete.
		for _, r := range batch {
			if r.err == nil && r.committed != nil {
				r.committed()
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

// applyIssue writes one issue into txn, checking first that nothing is
// taken, so that a refused request leaves no partial write behind.
func applyIssue(txn kvTxn, w challengeWrite, key [l402.RootKeySize]byte, idem *Idempotency) error {
	rk := rootKeyKey(w.c.TokenID)
	switch _, err := txn.Get(rk); {
	case err == nil:
		return fmt.Errorf("storage: root key for token %s: %w", w.c.TokenID, ErrExists)
	case !errors.Is(err, errKeyNotFound):
		return fmt.Errorf("storage: reading %s: %w", fmtKey(rk), err)
	}
	if err := w.check(txn); err != nil {
		return err
	}
	if err := txn.Set(rk, key[:]); err != nil {
		return err
	}
	if idem != nil {
		if err := txn.SetTTL(idempotencyKey(idem.Key), w.c.PaymentHash[:], idem.TTL); err != nil {
			return err
		}
	}
	if w.c.PrepaidOf != (lntypes.Hash{}) {
		if err := putPrepaidFund(txn, w.c.PaymentHash, w.c.PrepaidOf); err != nil {
			return err
		}
	}
	return w.write(txn)
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
func (w challengeWrite) check(txn kvTxn) error {
	switch _, err := txn.Get(w.k); {
	case err == nil:
		return fmt.Errorf("storage: challenge %s: %w", w.c.PaymentHash, ErrExists)
	case !errors.Is(err, errKeyNotFound):
		return fmt.Errorf("storage: reading %s: %w", fmtKey(w.k), err)
	}
	return nil
}

// write stores the record and its index entry and counts it.
func (w challengeWrite) write(txn kvTxn) error {
	if err := txn.Set(w.k, w.v); err != nil {
		return err
	}
	if err := txn.Set(w.ik, w.iv); err != nil {
		return err
	}
	return addCounters(txn, w.shard, w.day, Counters{Created: 1})
}
