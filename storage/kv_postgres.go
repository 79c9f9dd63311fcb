package storage

import (
	"context"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgSchema holds the Postgres migrations, applied in name order, each
// once; l402d_schema_migrations records which ran.
//
//go:embed pgschema/*.sql
var pgSchema embed.FS

// pgRevocationChannel is the NOTIFY channel the revocation trigger uses.
const pgRevocationChannel = "l402d_revocations"

// pgMigrationLock is the advisory lock key that serializes migrations of
// replicas starting at once ("l402dmig").
const pgMigrationLock = 0x6c343032646d6967

// pgPageSize is how many rows an iterator fetches per query.
const pgPageSize = 512

// postgresKV is the shared engine: one table in a Postgres database that
// any number of l402d replicas use at once. Transactions are SERIALIZABLE,
// so the records' read-check-write code keeps the meaning it has on
// Badger; a serialization failure is errConflict and is run again.
type postgresKV struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

// openPostgres connects to dsn and brings its schema up to date.
func openPostgres(ctx context.Context, dsn string, log *slog.Logger) (*postgresKV, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("storage: %w: --db.postgres.dsn: %v", ErrInvalid, redactDSN(err))
	}
	if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
	// A commit l402d acknowledges (a settlement, a debit, a journal step)
	// must survive a crash of the server: whatever the server's default,
	// l402d's sessions wait for the WAL flush.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("storage: connecting to postgres: %w", err)
	}
	p := &postgresKV{pool: pool, log: log}
	if err := p.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	var fsync string
	if err := pool.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err == nil && fsync != "on" {
		log.Warn("storage: the postgres server runs with fsync off: a crash of its machine can lose " +
			"settlements, debits and payments l402d acknowledged; turn it on for anything but tests")
	}
	return p, nil
}

// redactDSN keeps a password in a DSN out of an error message, in both
// the URL form (postgres://user:secret@host) and the key=value form.
func redactDSN(err error) string {
	msg := err.Error()
	msg = urlPassword.ReplaceAllString(msg, "${1}xxxxx@")
	return kvPassword.ReplaceAllString(msg, "password=xxxxx")
}

var (
	urlPassword = regexp.MustCompile(`(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*@`)
	kvPassword  = regexp.MustCompile(`password=(?:'[^']*'|[^\s'"]*)`)
)

// migrate applies the embedded migrations not yet recorded, in one
// transaction under an advisory lock, so replicas starting together apply
// each once.
func (p *postgresKV) migrate(ctx context.Context) error {
	names, err := fs.Glob(pgSchema, "pgschema/*.sql")
	if err != nil {
		return fmt.Errorf("storage: reading migrations: %w", err)
	}
	slices.Sort(names)
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(pgMigrationLock)); err != nil {
			return fmt.Errorf("storage: locking for migration: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS l402d_schema_migrations (
			version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("storage: creating the migrations table: %w", err)
		}
		var have int
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM l402d_schema_migrations").Scan(&have); err != nil {
			return fmt.Errorf("storage: reading the schema version: %w", err)
		}
		if have > len(names) {
			return fmt.Errorf("storage: %w: the postgres database has schema version %d but this l402d "+
				"only knows up to %d; run a newer l402d", ErrSchema, have, len(names))
		}
		for i, name := range names[have:] {
			version := have + i + 1
			if n, err := strconv.Atoi(strings.SplitN(path.Base(name), "_", 2)[0]); err != nil || n != version {
				return fmt.Errorf("storage: migration %s is out of sequence (want version %d)", name, version)
			}
			sql, err := pgSchema.ReadFile(name)
			if err != nil {
				return fmt.Errorf("storage: reading %s: %w", name, err)
			}
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return fmt.Errorf("storage: applying %s: %w", name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO l402d_schema_migrations (version, name) VALUES ($1, $2)",
				version, path.Base(name)); err != nil {
				return fmt.Errorf("storage: recording %s: %w", name, err)
			}
			p.log.Info("storage: applied postgres migration", "version", version, "name", path.Base(name))
		}
		return nil
	})
}

func (p *postgresKV) View(ctx context.Context, fn func(kvTxn) error) error {
	return p.run(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

func (p *postgresKV) Update(ctx context.Context, fn func(kvTxn) error) error {
	return p.run(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable}, fn)
}

// run runs fn in one transaction. A statement that failed inside fn fails
// the transaction even if fn went on, so nothing half-read is committed.
func (p *postgresKV) run(ctx context.Context, opts pgx.TxOptions, fn func(kvTxn) error) error {
	tx, err := p.pool.BeginTx(ctx, opts)
	if err != nil {
		return pgError("beginning a transaction", err)
	}
	t := &pgTxn{ctx: ctx, tx: tx}
	err = fn(t)
	if err == nil {
		err = t.err
	}
	if err != nil {
		if rerr := tx.Rollback(ctx); rerr != nil && !errors.Is(rerr, pgx.ErrTxClosed) {
			p.log.Debug("storage: rollback", "err", rerr)
		}
		if t.err != nil && isConflict(t.err) {
			return fmt.Errorf("%w: %w", errConflict, t.err)
		}
		return err
	}
	// A commit is not abandoned for a caller's deadline, which would leave
	// the caller not knowing whether it was written; only a database that
	// stays silent ends it.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pgCommitTimeout)
	defer cancel()
	if err := tx.Commit(cctx); err != nil {
		if !pgconn.SafeToRetry(err) && isConnError(err) {
			return pgError("committing, cut by the connection: it may or may not be written", err)
		}
		return pgError("committing", err)
	}
	return nil
}

// pgCommitTimeout bounds a commit the database does not answer.
const pgCommitTimeout = 30 * time.Second

// isConflict reports whether err is Postgres refusing a transaction that
// lost a race: run again, it can succeed.
func isConflict(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// pgError wraps err, marking a lost race as errConflict and a database
// that cannot be reached as ErrUnavailable.
func pgError(what string, err error) error {
	switch {
	case isConflict(err):
		return fmt.Errorf("%w: %s: %w", errConflict, what, err)
	case pgconn.SafeToRetry(err) || pgconn.Timeout(err) || isConnError(err):
		return fmt.Errorf("storage: %w: postgres: %s: %w", ErrUnavailable, what, err)
	}
	return fmt.Errorf("storage: postgres: %s: %w", what, err)
}

// isConnError reports whether err says the connection to the database
// failed or was cut, not that the database refused the statement: a
// server killed or a network cut mid-statement surfaces from pgx as the
// socket's own error (EOF, reset, a net.Error), not as a PgError.
func isConnError(err error) bool {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var pe *pgconn.PgError
	// Class 08: connection exception; 57P: the server is shutting down.
	return errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P"))
}

// Sync is a no-op: a Postgres commit is durable when it returns (with the
// server's default synchronous_commit).
func (p *postgresKV) Sync() error { return nil }

func (p *postgresKV) Close() error {
	p.pool.Close()
	return nil
}

// deleteExpired removes rows whose time to live ended, in batches.
func (p *postgresKV) deleteExpired(ctx context.Context) (int64, error) {
	var total int64
	for {
		tag, err := p.pool.Exec(ctx, `DELETE FROM l402d_kv WHERE k IN (
			SELECT k FROM l402d_kv WHERE expires_at <= now() LIMIT 1000)`)
		if err != nil {
			return total, pgError("deleting expired entries", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < 1000 {
			return total, nil
		}
	}
}

// pgTxn is one transaction. The first failed statement is kept in err:
// Postgres refuses every later statement of the transaction anyway.
type pgTxn struct {
	ctx context.Context
	tx  pgx.Tx
	err error
}

func (t *pgTxn) fail(what string, err error) error {
	err = pgError(what, err)
	if t.err == nil {
		t.err = err
	}
	return err
}

func (t *pgTxn) Get(key []byte) (*kvItem, error) {
	if t.err != nil {
		return nil, t.err
	}
	var v []byte
	err := t.tx.QueryRow(t.ctx, `SELECT v FROM l402d_kv WHERE k = $1
		AND (expires_at IS NULL OR expires_at > now())`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errKeyNotFound
	}
	if err != nil {
		return nil, t.fail("reading "+fmtKey(key), err)
	}
	return &kvItem{key: append([]byte(nil), key...), value: v}, nil
}

func (t *pgTxn) Set(key, value []byte) error {
	return t.set(key, value, nil)
}

func (t *pgTxn) SetTTL(key, value []byte, ttl time.Duration) error {
	secs := ttl.Seconds()
	return t.set(key, value, &secs)
}

func (t *pgTxn) set(key, value []byte, ttlSeconds *float64) error {
	if t.err != nil {
		return t.err
	}
	if value == nil {
		value = []byte{}
	}
	_, err := t.tx.Exec(t.ctx, `INSERT INTO l402d_kv (k, v, expires_at)
		VALUES ($1, $2, now() + make_interval(secs => $3))
		ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v, expires_at = EXCLUDED.expires_at`, key, value, ttlSeconds)
	if err != nil {
		return t.fail("writing "+fmtKey(key), err)
	}
	return nil
}

func (t *pgTxn) Delete(key []byte) error {
	if t.err != nil {
		return t.err
	}
	if _, err := t.tx.Exec(t.ctx, "DELETE FROM l402d_kv WHERE k = $1", key); err != nil {
		return t.fail("deleting "+fmtKey(key), err)
	}
	return nil
}

func (t *pgTxn) NewIterator(opts iterOptions) kvIterator {
	return &pgIter{t: t, prefix: opts.Prefix, end: prefixEnd(opts.Prefix), reverse: opts.Reverse}
}

// pgIter reads its range a page at a time, so a walk never holds the
// connection busy between steps (the walker may Get in between) and a
// large range is never all in memory.
type pgIter struct {
	t       *pgTxn
	prefix  []byte
	end     []byte // exclusive upper bound of the prefix, nil for none
	reverse bool

	page []kvItem
	pos  int
	last bool // the page is the range's last
}

func (i *pgIter) Rewind() {
	if i.reverse {
		if i.end == nil {
			i.fetch(nil, true)
			return
		}
		i.fetch(i.end, false)
		return
	}
	i.fetch(i.prefix, true)
}

func (i *pgIter) Seek(key []byte) {
	i.fetch(key, true)
}

// fetch loads the page starting at from (at it if inclusive, else past
// it), in the walk's direction; a nil from starts at the range's first
// entry in that direction.
func (i *pgIter) fetch(from []byte, inclusive bool) {
	i.page, i.pos, i.last = i.page[:0], 0, true
	if i.t.err != nil {
		return
	}
	var (
		cond []string
		args []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if len(i.prefix) > 0 {
		cond = append(cond, "k >= "+arg(i.prefix))
	}
	if i.end != nil {
		cond = append(cond, "k < "+arg(i.end))
	}
	if from != nil {
		op := map[[2]bool]string{{false, true}: ">=", {false, false}: ">", {true, true}: "<=", {true, false}: "<"}[[2]bool{i.reverse, inclusive}]
		cond = append(cond, "k "+op+" "+arg(from))
	}
	cond = append(cond, "(expires_at IS NULL OR expires_at > now())")
	order := "ASC"
	if i.reverse {
		order = "DESC"
	}
	q := "SELECT k, v, expires_at FROM l402d_kv WHERE " + strings.Join(cond, " AND ") +
		" ORDER BY k " + order + " LIMIT " + strconv.Itoa(pgPageSize)
	rows, err := i.t.tx.Query(i.t.ctx, q, args...)
	if err != nil {
		i.t.fail("walking "+fmtKey(i.prefix), err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var (
			it  kvItem
			exp *time.Time
		)
		if err := rows.Scan(&it.key, &it.value, &exp); err != nil {
			i.t.fail("walking "+fmtKey(i.prefix), err)
			i.page = i.page[:0]
			return
		}
		if exp != nil {
			it.expiresAt = *exp
		}
		i.page = append(i.page, it)
	}
	if err := rows.Err(); err != nil {
		i.t.fail("walking "+fmtKey(i.prefix), err)
		i.page = i.page[:0]
		return
	}
	i.last = len(i.page) < pgPageSize
}

func (i *pgIter) Valid() bool { return i.pos < len(i.page) }

func (i *pgIter) Next() {
	i.pos++
	if i.pos == len(i.page) && !i.last && len(i.page) > 0 {
		i.fetch(i.page[len(i.page)-1].key, false)
	}
}

func (i *pgIter) Item() *kvItem {
	it := i.page[i.pos]
	return &it
}

func (i *pgIter) Close() {}

// pgListener keeps one connection listening for revocations and hands
// each revoked key to onKey. After a lost connection it listens again and
// calls onGap, so the caller can reload what it may have missed.
type pgListener struct {
	pool  *pgxpool.Pool
	log   *slog.Logger
	onKey func(key []byte)
	onGap func(ctx context.Context) error
	// ready is closed once the first LISTEN is in place.
	ready     chan struct{}
	readyOnce sync.Once
}

func (l *pgListener) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := l.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		l.log.Warn("storage: revocation listener lost its connection; reconnecting", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (l *pgListener) listen(ctx context.Context) error {
	pc, err := l.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// A listening connection is never handed back: its session state
	// (LISTEN) must not leak into the pool.
	conn := pc.Hijack()
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgRevocationChannel); err != nil {
		return err
	}
	again := true
	l.readyOnce.Do(func() { close(l.ready); again = false })
	if again {
		// Listening again after a gap: revocations committed meanwhile
		// were not pushed to us.
		if err := l.onGap(ctx); err != nil {
			return err
		}
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		k, err := hex.DecodeString(n.Payload)
		if err != nil {
			l.log.Warn("storage: malformed revocation notification", "payload", n.Payload)
			continue
		}
		l.onKey(k)
	}
}

// pgLeader holds a session-level advisory lock on a connection of its own
// for as long as it leads.
type pgLeader struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

// lead blocks until this process holds lock key, then returns a context
// that ends when the lock may be lost (its connection failed a check) or
// ctx ends, and a release function.
func (p *pgLeader) lead(ctx context.Context, key int64, poll time.Duration) (context.Context, context.CancelFunc, error) {
	for {
		conn, err := p.pool.Acquire(ctx)
		if err == nil {
			var got bool
			err = conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got)
			if err == nil && got {
				raw := conn.Hijack()
				lctx, cancel := context.WithCancel(ctx)
				go p.hold(lctx, cancel, raw, poll)
				return lctx, cancel, nil
			}
			conn.Release()
		}
		if err != nil && ctx.Err() == nil {
			p.log.Warn("storage: trying for leadership", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// hold checks the lock's connection every poll and gives up the lead
// (cancel) when it fails; closing the connection releases the lock.
func (p *pgLeader) hold(ctx context.Context, cancel context.CancelFunc, conn *pgx.Conn, poll time.Duration) {
	defer func() {
		cancel()
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer ccancel()
		conn.Close(cctx)
	}()
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, pcancel := context.WithTimeout(ctx, poll)
		err := conn.Ping(pctx)
		pcancel()
		if err != nil && ctx.Err() == nil {
			p.log.Warn("storage: lost the connection that holds the lead; standing down", "err", err)
			return
		}
	}
}
