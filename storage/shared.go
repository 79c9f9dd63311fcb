package storage

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A store opened with Options.PostgresDSN is shared: several l402d
// replicas read and write the one database, each with its own memory.
// What each replica keeps in memory stays true this way:
//
//   - Revocations: a trigger NOTIFYs every revocation on commit; each
//     replica LISTENs and adds it to its set, and reloads them all after
//     a lost connection, so a token revoked anywhere is refused
//     everywhere within the notification's delay (milliseconds).
//   - Root keys: the cache is never complete, so a key another replica
//     wrote is read from the database on a miss (then cached).
//   - Entries with a time to live are deleted by a periodic sweep.
//   - Work that must run once at a time (the settlement watcher) runs
//     under Lead, an advisory lock.

// sharedSweepInterval is how often a shared store deletes expired entries.
const sharedSweepInterval = time.Minute

// leadPoll is how often a replica waiting for the lead tries for it, and
// how often the leader checks the connection that holds it.
const leadPoll = time.Second

func openShared(ctx context.Context, opts Options) (*Store, error) {
	opts.setDefaults()
	if opts.DebitAllowanceMsat > 0 {
		return nil, fmt.Errorf("storage: %w: a debit allowance keeps debits in one process's memory, and replicas on Postgres share balances: leave it at 0 on Postgres", ErrInvalid)
	}
	pg, err := openPostgres(ctx, opts.PostgresDSN, opts.Logger)
	if err != nil {
		return nil, err
	}
	s := newStore(opts, pg)
	s.pg = pg
	s.locks = &pgLocks{pool: pg.pool, log: opts.Logger}
	// Listen before loading, so no revocation falls between the two.
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.listenStop = stop
	l := &pgListener{
		pool: pg.pool, log: opts.Logger, ready: make(chan struct{}),
		onKey: s.revokedKey,
		onGap: s.loadRevocations,
	}
	s.listenDone = make(chan struct{})
	go func() {
		defer close(s.listenDone)
		l.run(lctx)
	}()
	select {
	case <-l.ready:
	case <-ctx.Done():
		stop()
		<-s.listenDone
		pg.Close()
		return nil, ctx.Err()
	}
	if err := s.start(ctx, opts); err != nil {
		stop()
		<-s.listenDone
		return nil, err
	}
	return s, nil
}

// Conflicts returns how many transactions were run again after a
// conflict since the store opened.
func (s *Store) Conflicts() int64 { return s.conflicts.Load() }

// Ping checks that a shared store's database answers; nil on Badger.
func (s *Store) Ping(ctx context.Context) error {
	if s.pg == nil {
		return nil
	}
	if err := s.pg.pool.Ping(ctx); err != nil {
		return pgError("ping", err)
	}
	return nil
}

// Shared reports whether the store is shared with other replicas
// (Postgres).
func (s *Store) Shared() bool { return s.pg != nil }

// revokedKey adds the token of a revocation entry's key to the set.
func (s *Store) revokedKey(k []byte) {
	r, err := decodeRevocation(k, []byte{revocationFormat, 0, 0, 0, 0, 0, 0, 0, 0})
	if err != nil {
		s.log.Warn("storage: notified of a malformed revocation key", "key", fmtKey(k))
		return
	}
	s.revoked.add(r.TokenID)
}

// sharedLoop deletes expired entries every interval until ctx ends.
func (s *Store) sharedLoop(ctx context.Context, interval time.Duration) {
	defer close(s.gcDone)
	if interval <= 0 {
		interval = sharedSweepInterval
	}
	t := time.NewTicker(min(interval, sharedSweepInterval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := s.pg.deleteExpired(ctx); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("storage: deleting expired entries", "err", err)
			}
		} else if n > 0 {
			s.log.Debug("storage: deleted expired entries", "n", n)
		}
	}
}

// Lead blocks until this process is the one that runs role, then returns
// a context that ends when it stops being so (ctx ended, or on Postgres
// the connection holding the lock failed) and a function that gives the
// role up. On Badger the process owns the store and leads at once; on
// Postgres a session advisory lock elects one replica, and when it dies
// (its connection closes) another takes over within about a second.
func (s *Store) Lead(ctx context.Context, role string) (context.Context, context.CancelFunc, error) {
	if s.pg == nil {
		lctx, cancel := context.WithCancel(ctx)
		return lctx, cancel, nil
	}
	h := fnv.New64a()
	h.Write([]byte("l402d/lead/" + role))
	lctx, cancel, err := (&pgLeader{pool: s.pg.pool, log: s.log}).lead(ctx, int64(h.Sum64()), leadPoll)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: leading %s: %w", role, err)
	}
	return lctx, cancel, nil
}

// SharedLock takes the lock named by ns and key across every replica of a
// shared store, so that work one replica does on a payment or a seller
// (paying a hash, buying a session) is not also done by another. wait
// makes it wait for the lock until ctx ends; otherwise ok is false when
// another replica holds it. On Badger the process is the only one: the
// lock is always free (the caller's own in-process locks serialize).
//
// The locks of a replica live on one connection; if it breaks they are
// released with it (and logged), which the consumer covers by asking LND
// before it records anything as never sent.
func (s *Store) SharedLock(ctx context.Context, ns byte, key [32]byte, wait bool) (unlock func(), ok bool, err error) {
	if s.pg == nil {
		return func() {}, true, nil
	}
	k := int64(binary.BigEndian.Uint64(append([]byte{ns}, key[:7]...)))
	for {
		ok, err := s.locks.try(ctx, k)
		if err != nil {
			return nil, false, err
		}
		if ok {
			return func() { s.locks.unlock(k) }, true, nil
		}
		if !wait {
			return nil, false, nil
		}
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-time.After(sharedLockPoll):
		}
	}
}

// sharedLockPoll is how often a waiting SharedLock tries again.
const sharedLockPoll = 20 * time.Millisecond

// pgLocks holds a replica's session advisory locks on one connection.
type pgLocks struct {
	pool *pgxpool.Pool
	log  *slog.Logger

	mu   sync.Mutex
	conn *pgx.Conn
	held int // locks taken on conn and not released
}

func (l *pgLocks) try(ctx context.Context, key int64) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil || l.conn.IsClosed() {
		if l.held > 0 {
			l.log.Error("storage: the connection holding this replica's locks broke; its locks were released",
				"locks", l.held)
		}
		l.conn, l.held = nil, 0
		pc, err := l.pool.Acquire(ctx)
		if err != nil {
			return false, pgError("connecting for locks", err)
		}
		l.conn = pc.Hijack()
	}
	var ok bool
	if err := l.conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok); err != nil {
		l.closeLocked()
		return false, pgError("taking a lock", err)
	}
	if ok {
		l.held++
	}
	return ok, nil
}

func (l *pgLocks) unlock(key int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil || l.conn.IsClosed() {
		return // released with the connection
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
		// Unknown whether it was released: drop the connection, which
		// releases every lock on it.
		l.log.Warn("storage: releasing a lock failed; dropping the lock connection", "err", err)
		l.closeLocked()
		return
	}
	l.held--
}

func (l *pgLocks) closeLocked() {
	if l.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		l.conn.Close(ctx)
	}
	l.conn, l.held = nil, 0
}

func (l *pgLocks) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeLocked()
}
