package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/l402d/l402d/l402"
)

// Defaults for zero Options fields.
const (
	DefaultGCInterval       = 10 * time.Minute
	DefaultRootKeyCacheSize = 1 << 20
)

// Options configures Open. The zero value of every field but Dir is usable.
type Options struct {
	// Dir is the database directory, created if missing. Required unless
	// InMemory, which ignores it.
	Dir string

	// InMemory keeps everything in memory and nothing on disk. For unit
	// tests only.
	InMemory bool

	// SyncWrites makes every commit fsync before it returns. DefaultOptions
	// turns it on. When it is off, root keys, challenges and revocations
	// are still synced (db.Sync) before their calls return, and only
	// settlements (replayed from LND after a crash, since the settle cursor
	// is lost with them), cancellations and idempotency entries wait for
	// the OS. One gap remains when it is off: if Badger switches memtables
	// between a commit and its sync, that entry reaches disk only when the
	// old memtable is flushed, so a power cut (not a process crash) in that
	// window can lose it. Leave it on unless writes are the bottleneck.
	SyncWrites bool

	// EncryptionKey, if set, encrypts the database at rest (AES, 16, 24 or
	// 32 bytes). A database created with a key can only be opened with the
	// same key.
	EncryptionKey []byte

	// GCInterval is how often value-log garbage collection runs. Zero means
	// DefaultGCInterval, negative disables it.
	GCInterval time.Duration

	// RootKeyCacheSize bounds the in-memory root key cache, in entries
	// (rounded up to a multiple of 64). Zero means DefaultRootKeyCacheSize
	// (roughly 100 MB when full), negative disables the cache so every
	// RootKey reads Badger.
	RootKeyCacheSize int

	// MinFreeBytes is the free space below which writes are refused with
	// ErrDiskFull. Zero means DefaultMinFreeBytes, negative disables the
	// guard.
	MinFreeBytes int64

	// Logger receives Badger's warnings and errors and the store's own
	// messages. Nil means slog.Default().
	Logger *slog.Logger

	// Now is the clock used for defaults and for deriving the expired
	// state. Nil means time.Now.
	Now func() time.Time

	// PostgresDSN, if set, keeps the store in that Postgres database
	// instead of Badger in Dir, shared with every other l402d replica
	// given the same DSN (see shared.go). Dir, InMemory, SyncWrites,
	// EncryptionKey and MinFreeBytes are then unused.
	PostgresDSN string

	// DebitAllowanceMsat, if positive, lets a request's debit of a prepaid
	// balance or an MPP session be taken in memory and answered before it
	// is on disk, up to this many msat of each balance not yet written
	// (lazydebit.go): a crash loses at most that much of each balance's
	// debits, to the seller, never to the holder. Zero: every debit is
	// durable before its request is answered. Badger only: on Postgres
	// replicas share balances, and Open refuses it.
	DebitAllowanceMsat int64
}

// DefaultOptions returns the recommended options for a database in dir:
// SyncWrites on, everything else at its default.
func DefaultOptions(dir string) Options {
	return Options{Dir: dir, SyncWrites: true}
}

// Store is l402d's durable state. Its methods are safe for concurrent use.
type Store struct {
	db kvDB
	// bdb is the Badger database under db, nil on Postgres.
	bdb *badger.DB
	// pg is the Postgres engine under db, nil on Badger; listenStop and
	// listenDone stop its revocation listener.
	pg         *postgresKV
	locks      *pgLocks
	listenStop context.CancelFunc
	listenDone chan struct{}
	log        *slog.Logger
	now        func() time.Time
	syncWrites bool
	// encKey is the at-rest encryption key, which also encrypts backups.
	encKey []byte

	keys    *rootKeyCache
	revoked revocationSet
	space   *spaceGuard // nil in memory

	gcStop context.CancelFunc
	gcDone chan struct{}

	// issues feeds IssueChallenge and Consume calls to the group
	// committer, which closing stops and issuesDone reports stopped.
	issues     chan *commitReq
	closing    chan struct{}
	issuesDone chan struct{}
	closeOnce  sync.Once
	closeErr   error

	// conflicts counts transactions run again after a conflict.
	conflicts atomic.Int64

	// lazy holds debits taken in memory (nil without an allowance);
	// flushStop stops its flusher, which flushDone reports stopped.
	lazy      *lazyDebits
	flushStop chan struct{}
	flushDone chan struct{}

	// issueHook, if set (by tests, before the first IssueChallenge), is
	// called by the group committer at each stage of a batch.
	issueHook func(issueStage)
}

// Store serves the verify path of the l402 package.
var (
	_ l402.RootKeyStore      = (*Store)(nil)
	_ l402.RevocationChecker = (*Store)(nil)
)

// Open opens (creating if needed) the database described by opts, checks its
// schema, loads revocations and root keys into memory and starts value-log
// garbage collection. Close releases it.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.PostgresDSN != "" {
		return openShared(ctx, opts)
	}
	bopts, err := badgerOptions(&opts)
	if err != nil {
		return nil, err
	}
	db, err := openBadger(bopts, opts)
	if err != nil {
		return nil, err
	}
	s := newStore(opts, badgerKV{db})
	s.bdb = db
	s.syncWrites = opts.SyncWrites && !opts.InMemory
	s.encKey = bytes.Clone(opts.EncryptionKey)
	if !opts.InMemory {
		s.space = &spaceGuard{dir: opts.Dir, minFree: opts.MinFreeBytes}
	}
	if err := s.start(ctx, opts); err != nil {
		return nil, err
	}
	return s, nil
}

func newStore(opts Options, db kvDB) *Store {
	return &Store{
		db:   db,
		log:  opts.Logger,
		now:  opts.Now,
		keys: newRootKeyCache(opts.RootKeyCacheSize),
	}
}

// start loads the in-memory state and starts the background loops; on
// failure it closes the engine.
func (s *Store) start(ctx context.Context, opts Options) error {
	if err := s.load(ctx); err != nil {
		if cerr := s.db.Close(); cerr != nil {
			s.log.Warn("storage: closing after a failed open", "err", cerr)
		}
		return err
	}
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.gcStop, s.gcDone = stop, make(chan struct{})
	s.issues, s.closing, s.issuesDone = make(chan *commitReq), make(chan struct{}), make(chan struct{})
	go s.issueLoop()
	if opts.DebitAllowanceMsat > 0 {
		s.lazy = newLazyDebits(opts.DebitAllowanceMsat, s.log.Error)
		s.flushStop, s.flushDone = make(chan struct{}), make(chan struct{})
		go s.flushLoop()
	}
	if s.bdb != nil {
		go s.gcLoop(bg, opts.GCInterval, opts.InMemory)
	} else {
		go s.sharedLoop(bg, opts.GCInterval)
	}
	return nil
}

// openBadger opens the database, first removing what a kill at the wrong
// instant leaves that Badger cannot open.
func openBadger(bopts badger.Options, opts Options) (*badger.DB, error) {
	if !opts.InMemory {
		if err := removeEmptyMemtables(opts.Dir, opts.Logger); err != nil {
			return nil, err
		}
	}
	db, err := badger.Open(bopts)
	if err != nil {
		return nil, openError(opts.Dir, len(opts.EncryptionKey) > 0, err)
	}
	return db, nil
}

// setDefaults fills the zero fields that both engines use.
func (opts *Options) setDefaults() {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.GCInterval == 0 {
		opts.GCInterval = DefaultGCInterval
	}
	if opts.RootKeyCacheSize == 0 {
		opts.RootKeyCacheSize = DefaultRootKeyCacheSize
	}
}

func badgerOptions(opts *Options) (badger.Options, error) {
	opts.setDefaults()
	if opts.MinFreeBytes == 0 {
		opts.MinFreeBytes = DefaultMinFreeBytes
	}
	switch len(opts.EncryptionKey) {
	case 0, 16, 24, 32:
	default:
		return badger.Options{}, fmt.Errorf("storage: %w: encryption key is %d bytes, want 16, 24 or 32",
			ErrEncryptionKey, len(opts.EncryptionKey))
	}
	var b badger.Options
	if opts.InMemory {
		b = badger.DefaultOptions("").WithInMemory(true)
	} else {
		if opts.Dir == "" {
			return badger.Options{}, fmt.Errorf("storage: %w: Options.Dir is required", ErrInvalid)
		}
		b = badger.DefaultOptions(opts.Dir)
	}
	// Sized for a sidecar, not a database server: the state is small and
	// hot (root keys are cached above Badger anyway).
	b = b.WithSyncWrites(opts.SyncWrites).
		WithLogger(badgerLogger{opts.Logger.With("component", "badger")}).
		WithMetricsEnabled(false).
		WithNumCompactors(2).
		WithMemTableSize(16 << 20).
		WithNumMemtables(3).
		WithValueLogFileSize(64 << 20).
		WithBlockCacheSize(32 << 20).
		WithIndexCacheSize(16 << 20)
	if len(opts.EncryptionKey) > 0 {
		b = b.WithEncryptionKey(opts.EncryptionKey)
	}
	return b, nil
}

// openError explains why badger.Open failed in terms an operator can act on.
func openError(dir string, withKey bool, err error) error {
	switch {
	case errors.Is(err, badger.ErrEncryptionKeyMismatch) && !withKey:
		return fmt.Errorf("storage: opening %s: %w: the database is encrypted and no key was given",
			dir, ErrEncryptionKey)
	case errors.Is(err, badger.ErrEncryptionKeyMismatch):
		return fmt.Errorf("storage: opening %s: %w: the database is encrypted with another key, "+
			"or is not encrypted at all", dir, ErrEncryptionKey)
	case errors.Is(err, badger.ErrInvalidEncryptionKey):
		return fmt.Errorf("storage: opening %s: %w: %v", dir, ErrEncryptionKey, err)
	case strings.Contains(err.Error(), "Cannot acquire directory lock"):
		return fmt.Errorf("storage: opening %s: %w: another process holds it "+
			"(is another l402d running with the same data directory?): %v", dir, ErrLocked, err)
	}
	return fmt.Errorf("storage: opening %s: %w", dir, err)
}

// load checks the schema and fills the in-memory state.
func (s *Store) load(ctx context.Context) error {
	if err := s.checkSchema(ctx); err != nil {
		return err
	}
	if err := s.loadRevocations(ctx); err != nil {
		return err
	}
	return s.loadRootKeys(ctx)
}

// checkSchema writes the schema version into a new database and refuses a
// database written by a newer build.
func (s *Store) checkSchema(ctx context.Context) error {
	key := []byte(keySchema)
	var v []byte
	err := s.db.View(ctx, func(txn kvTxn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, errKeyNotFound) {
		// Only an empty database may be stamped: data without a schema
		// entry was not written by us. (Reading first keeps opening an
		// existing store free of writes, so it opens on a full disk.)
		err := s.update(ctx, true, func(txn kvTxn) error {
			if _, err := txn.Get(key); err == nil {
				return nil // another replica of a shared store stamped it meanwhile
			}
			if err := mustBeEmpty(txn); err != nil {
				return err
			}
			return txn.Set(key, binary.BigEndian.AppendUint32(nil, schemaVersion))
		})
		if err != nil {
			return err
		}
		return s.checkSchema(ctx)
	}
	if err != nil {
		return fmt.Errorf("storage: reading %s: %w", keySchema, err)
	}
	if len(v) != 4 {
		return fmt.Errorf("storage: %w: %s holds %d bytes, want 4", ErrSchema, keySchema, len(v))
	}
	switch got := binary.BigEndian.Uint32(v); {
	case got == schemaVersion:
		return nil
	case got > schemaVersion:
		return fmt.Errorf("storage: %w: the database has schema version %d but this l402d "+
			"only knows up to %d; run a newer l402d", ErrSchema, got, schemaVersion)
	default:
		// No older schema exists yet; migrations go here.
		return fmt.Errorf("storage: %w: no migration from schema version %d to %d",
			ErrSchema, got, schemaVersion)
	}
}

// scan decodes each entry under prefix in txn and hands it to fn, in key
// order, checking ctx every 1024 entries.
func scan[T any](ctx context.Context, txn kvTxn, prefix []byte, decode func(k, v []byte) (T, error), fn func(T) error) error {
	it := txn.NewIterator(iterOptions{Prefix: prefix})
	defer it.Close()
	n := 0
	for it.Rewind(); it.Valid(); it.Next() {
		if n++; n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		item := it.Item()
		var e T
		if err := item.Value(func(v []byte) error {
			var err error
			e, err = decode(item.Key(), v)
			return err
		}); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

func mustBeEmpty(txn kvTxn) error {
	it := txn.NewIterator(iterOptions{})
	defer it.Close()
	it.Rewind()
	if it.Valid() {
		return fmt.Errorf("storage: %w: the database has data (first key %s) but no %s entry; "+
			"it was not written by l402d", ErrSchema, fmtKey(it.Item().Key()), keySchema)
	}
	return nil
}

// Close stops garbage collection, flushes and closes the database. Calls
// after the first return its result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.lazy != nil {
			// Debits taken in memory are written before the committer
			// stops.
			close(s.flushStop)
			<-s.flushDone
		}
		close(s.closing)
		<-s.issuesDone
		s.gcStop()
		<-s.gcDone
		if s.listenStop != nil {
			s.listenStop()
			<-s.listenDone
		}
		if s.locks != nil {
			s.locks.close()
		}
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("storage: closing: %w", err)
		}
	})
	return s.closeErr
}

// gcLoop runs value-log garbage collection every interval until ctx ends.
func (s *Store) gcLoop(ctx context.Context, interval time.Duration, inMemory bool) {
	defer close(s.gcDone)
	if interval < 0 || inMemory {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Each successful run rewrites one file; keep going while there is
		// garbage, but never hold Close up for long.
		for range 16 {
			if ctx.Err() != nil {
				return
			}
			err := s.bdb.RunValueLogGC(0.5)
			if err == nil {
				continue
			}
			if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
				s.log.Warn("storage: value log GC", "err", err)
			}
			break
		}
	}
}

// maxAttempts bounds retries of a transaction that keeps conflicting.
const maxAttempts = 64

// update runs fn in a read-write transaction, retrying it from scratch when
// Badger reports a conflict (another transaction changed a key fn read), so
// fn must reset whatever it reports back on each run. durable makes the
// commit reach disk before update returns even when SyncWrites is off.
func (s *Store) update(ctx context.Context, durable bool, fn func(kvTxn) error) error {
	if err := s.space.check(); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := s.db.Update(ctx, fn)
		if err == nil {
			if durable {
				return s.sync()
			}
			return nil
		}
		if !errors.Is(err, errConflict) {
			return err
		}
		s.conflicts.Add(1)
		if attempt == maxAttempts {
			return fmt.Errorf("storage: gave up after %d attempts: %w", attempt, err)
		}
		// Back off a little, with jitter, so the retries of transactions
		// that collided do not collide again. A Postgres transaction
		// takes milliseconds, not Badger's microseconds: back off in
		// proportion, capped so a retry never waits long.
		step := 50 * time.Microsecond
		if s.pg != nil {
			step = time.Millisecond
		}
		d := time.Duration(rand.Int64N(int64(min(attempt, 16)) * int64(step)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}

// sync makes committed writes durable when commits do not sync themselves.
func (s *Store) sync() error {
	if s.syncWrites {
		return nil
	}
	if err := s.db.Sync(); err != nil {
		return fmt.Errorf("storage: syncing: %w", err)
	}
	return nil
}

// badgerLogger adapts slog to Badger's logger, at warning level and above:
// Badger's info messages (compactions, flushes, replays) are routine.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(format string, args ...any) {
	b.l.Error(strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (b badgerLogger) Warningf(format string, args ...any) {
	b.l.Warn(strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}

// removeEmptyMemtables deletes zero-length memtable logs (NNNNN.mem) in
// dir. Badger creates a memtable's log, then sizes it and writes its
// header; killed between the two, it leaves an empty file that its open
// refuses for good ("while opening fid: N err: Create a new file"), so
// the store would never open again. An empty log holds no entry: nothing
// is lost by removing it. The crash campaign found this (a kill -9 of an
// l402d during its restart).
func removeEmptyMemtables(dir string, log *slog.Logger) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("storage: reading %s: %w", dir, err)
	}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".mem") {
			continue
		}
		info, err := e.Info()
		if err != nil || info.Size() != 0 {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("storage: removing the empty memtable log %s left by a crash: %w", p, err)
		}
		log.Warn("storage: removed an empty memtable log left by a crash", "file", p)
	}
	return nil
}
