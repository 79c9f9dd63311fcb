package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// Debits taken in memory (Options.DebitAllowanceMsat).
//
// With an allowance, a request on a prepaid balance or an MPP session that
// the balance covers is debited in memory and answered at once; a flusher
// writes the debits taken meanwhile in one durable commit. A balance never
// has more than the allowance in debits not on disk, so a crash (kill -9,
// power cut) can lose at most that much of each balance's debits: the
// requests they paid for were served, and the holder keeps the msat (its
// books still balance: deposits = debits + balance + refund). The seller
// chooses that risk; the buyer never loses a msat.
//
// Every other write of a balance (a top-up, a metered debit, a give-back,
// a close, a debit the memory cannot take) runs exclusively: it marks the
// balance busy, so no debit is taken in memory, writes the pending debits
// first, and only then does its own commit. So a close reckons the refund
// with every debit served before it, and nothing is debited in memory
// after it.

// lazyDebits holds the debits taken in memory and not yet durable.
type lazyDebits struct {
	allowance int64
	log       func(msg string, args ...any)

	mu   sync.Mutex
	cond *sync.Cond // signalled when a flush ends
	// bal is each balance's last committed record and what was debited
	// on top of it; tok maps the payment hashes of the tokens that spend
	// a prepaid balance to its id; busy counts the exclusive writers at
	// work on a balance.
	bal  map[lntypes.Hash]*lazyBalance
	tok  map[lntypes.Hash]lntypes.Hash
	busy map[lntypes.Hash]int
	// entered counts exclusive writers ever started.
	entered uint64
	kick    chan struct{}
}

// lazyBalance is one balance's committed record and its debits in memory:
// pending (taken, not handed to the flusher) and flying (being written).
type lazyBalance struct {
	sess                   Session
	pendMsat, pendReqs     int64
	flyingMsat, flyingReqs int64
}

func newLazyDebits(allowance int64, log func(msg string, args ...any)) *lazyDebits {
	l := &lazyDebits{
		allowance: allowance, log: log,
		bal: map[lntypes.Hash]*lazyBalance{}, tok: map[lntypes.Hash]lntypes.Hash{}, busy: map[lntypes.Hash]int{},
		kick: make(chan struct{}, 1),
	}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// take debits msat in memory from the balance the token of payment h
// spends (for an MPP session, h is the session's id), if its record is
// known, open, of service and of the right kind, no writer is at work on
// it, it covers msat and the allowance does too (if the allowance is
// full, it waits for the flusher to write what it holds). ok false: the
// caller takes the durable path.
func (l *lazyDebits) take(h lntypes.Hash, service string, prepaid bool, msat int64) (_ Session, ok bool) {
	if l == nil || msat <= 0 {
		return Session{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	id, known := l.tok[h]
	if !known {
		return Session{}, false
	}
	b := l.bal[id]
	switch {
	case b == nil, l.busy[id] > 0, b.sess.State != SessionOpen, b.sess.Service != service, b.sess.Prepaid != prepaid:
		return Session{}, false
	}
	inMemory := b.pendMsat + b.flyingMsat
	// The allowance full, wait for the flusher to write what it holds
	// (every flush, failed ones too, wakes the waiters; a disk that takes
	// nothing for a second leaves this debit to the durable path).
	for start := time.Now(); inMemory+msat > l.allowance; {
		if b.sess.BalanceMsat()-inMemory < msat || time.Since(start) > time.Second {
			return Session{}, false
		}
		select {
		case l.kick <- struct{}{}:
		default:
		}
		l.cond.Wait()
		if b = l.bal[id]; b == nil || l.busy[id] > 0 || b.sess.State != SessionOpen {
			return Session{}, false
		}
		inMemory = b.pendMsat + b.flyingMsat
	}
	if inMemory+msat > l.allowance || b.sess.BalanceMsat()-inMemory < msat {
		return Session{}, false
	}
	b.pendMsat += msat
	b.pendReqs++
	out := b.sess
	out.DebitedMsat += inMemory + msat
	out.Requests += b.pendReqs + b.flyingReqs
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return out, true
}

// exclusive runs write as the only writer of the balances ids: no debit is
// taken in memory from them meanwhile, and their debits in memory are
// durable before write starts. write returns the token (payment hash) and
// the balance it spent, if any: the next debits of that token are then
// taken in memory, from the balance's record as committed, re-read once
// no writer is at work on it.
func (s *Store) exclusive(ctx context.Context, ids []lntypes.Hash, write func() (h, id lntypes.Hash, spent bool, err error)) error {
	l := s.lazy
	if l == nil {
		_, _, _, err := write()
		return err
	}
	l.mu.Lock()
	for _, id := range ids {
		l.busy[id]++
	}
	l.entered++
	l.mu.Unlock()
	h, id, spent, err := func() (h, id lntypes.Hash, spent bool, err error) {
		for _, id := range ids {
			if err := s.flushBalance(ctx, id, true, true); err != nil {
				return h, id, false, err
			}
		}
		return write()
	}()
	l.mu.Lock()
	for _, id := range ids {
		if l.busy[id]--; l.busy[id] == 0 {
			delete(l.busy, id)
		}
	}
	entered := l.entered
	if spent {
		if len(l.tok) >= 2*maxLazyBalances {
			l.forgetIdle()
		}
		l.tok[h] = id
		spent = l.busy[id] == 0
	}
	l.mu.Unlock()
	if err == nil && spent {
		s.learn(ctx, id, entered)
	}
	return err
}

// learn reads balance id's record as committed so that its debits may be
// taken in memory, unless a writer entered since entered (its record
// might be older than that writer's).
func (s *Store) learn(ctx context.Context, id lntypes.Hash, entered uint64) {
	var sess *Session
	if err := s.db.View(ctx, func(txn kvTxn) error {
		var err error
		sess, err = getSession(txn, id)
		return err
	}); err != nil {
		return
	}
	l := s.lazy
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.entered != entered || l.busy[id] > 0 || l.bal[id] != nil {
		return
	}
	if len(l.bal) >= maxLazyBalances {
		l.forgetIdle()
	}
	if sess.State == SessionOpen {
		l.bal[id] = &lazyBalance{sess: *sess}
	}
}

// maxLazyBalances bounds the balances whose records are kept in memory
// (and twice it the tokens mapped to them); past it, those with nothing
// in memory are forgotten (and learned again by their next durable
// write).
const maxLazyBalances = 1 << 16

// forgetIdle drops the records of balances with no debit in memory, and
// the tokens that spend them. The caller holds l.mu.
func (l *lazyDebits) forgetIdle() {
	for id, b := range l.bal {
		if b.pendMsat+b.flyingMsat == 0 {
			delete(l.bal, id)
		}
	}
	for h, id := range l.tok {
		if l.bal[id] == nil {
			delete(l.tok, h)
		}
	}
}

// flushBalance makes balance id's debits in memory durable. With wait set
// it first waits for a flush under way, so that every debit taken before
// the call is on disk when it returns; with drop set too (an exclusive
// writer, which has marked the balance busy) it forgets the record.
func (s *Store) flushBalance(ctx context.Context, id lntypes.Hash, wait, drop bool) error {
	l := s.lazy
	l.mu.Lock()
	b := l.bal[id]
	for wait && b != nil && b.flyingMsat > 0 {
		l.cond.Wait()
		b = l.bal[id]
	}
	if b == nil || b.flyingMsat > 0 || b.pendMsat == 0 {
		if drop {
			delete(l.bal, id)
		}
		l.mu.Unlock()
		return nil
	}
	msat, reqs := b.pendMsat, b.pendReqs
	b.flyingMsat, b.flyingReqs, b.pendMsat, b.pendReqs = msat, reqs, 0, 0
	l.mu.Unlock()

	var out Session
	err := s.commitOne(context.WithoutCancel(ctx), func(txn kvTxn) error {
		cur, err := getSession(txn, id)
		if err != nil {
			return err
		}
		if cur.State != SessionOpen || cur.BalanceMsat() < msat {
			// Cannot happen while every other write is exclusive; if it
			// does, the requests were served and the debits are lost.
			return fmt.Errorf("storage: %w: balance %s cannot take %d msat of debits taken in memory (state %s, balance %d msat)",
				ErrInsufficientBalance, id, msat, cur.State, cur.BalanceMsat())
		}
		cur.DebitedMsat += msat
		cur.Requests += reqs
		cur.UsedAt = s.now()
		out = *cur
		return txn.Set(sessionKey(id), encodeSession(cur))
	}, nil)

	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.cond.Broadcast()
	b.flyingMsat, b.flyingReqs = 0, 0
	switch {
	case err == nil:
		b.sess = out
	case errors.Is(err, ErrInsufficientBalance), errors.Is(err, ErrNotFound), errors.Is(err, ErrSessionClosed):
		l.log("storage: debits taken in memory lost", "balance", id, "msat", msat, "requests", reqs, "err", err)
		delete(l.bal, id)
		return nil
	default:
		// Still owed: written by the next flush.
		b.pendMsat += msat
		b.pendReqs += reqs
	}
	if err != nil {
		return fmt.Errorf("storage: writing debits of balance %s taken in memory: %w", id, err)
	}
	if drop {
		delete(l.bal, id)
	}
	return nil
}

// settled makes the debits in memory of the balances ids durable, for a
// read that must see them.
func (s *Store) settled(ctx context.Context, ids ...lntypes.Hash) error {
	if s.lazy == nil {
		return nil
	}
	for _, id := range ids {
		if err := s.flushBalance(ctx, id, true, false); err != nil {
			return err
		}
	}
	return nil
}

// flushLoop writes debits taken in memory as they come, each balance's in
// one commit, all balances' through the group committer at once, until
// the store closes; then it writes what is left.
func (s *Store) flushLoop() {
	l := s.lazy
	defer close(s.flushDone)
	for {
		select {
		case <-l.kick:
		case <-s.flushStop:
			s.flushAll()
			return
		case <-time.After(time.Second):
			// Retries a flush that failed.
		}
		s.flushAll()
	}
}

// balances lists the balances with debits in memory.
func (l *lazyDebits) balances() []lntypes.Hash {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []lntypes.Hash
	for id, b := range l.bal {
		if b.pendMsat+b.flyingMsat > 0 {
			ids = append(ids, id)
		}
	}
	return ids
}

// flushAll flushes every balance with debits pending, concurrently, so
// that they share one fsync.
func (s *Store) flushAll() {
	l := s.lazy
	l.mu.Lock()
	var ids []lntypes.Hash
	for id, b := range l.bal {
		if b.pendMsat > 0 && b.flyingMsat == 0 {
			ids = append(ids, id)
		}
	}
	l.mu.Unlock()
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			if err := s.flushBalance(context.Background(), id, false, false); err != nil {
				s.log.Warn("storage: writing debits taken in memory (retried)", "balance", id, "err", err)
			}
		})
	}
	wg.Wait()
}

// prepaidIDs returns the balances a write for the token of payment h may
// touch: h's own and, if h tops one up, that one.
func (s *Store) prepaidIDs(ctx context.Context, h lntypes.Hash) ([]lntypes.Hash, error) {
	if s.lazy == nil {
		return nil, nil
	}
	s.lazy.mu.Lock()
	id, ok := s.lazy.tok[h]
	s.lazy.mu.Unlock()
	if !ok {
		err := s.db.View(ctx, func(txn kvTxn) error {
			var err error
			id, ok, err = prepaidFund(txn, h)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	if !ok || id == h {
		return []lntypes.Hash{h}, nil
	}
	return []lntypes.Hash{h, id}, nil
}
