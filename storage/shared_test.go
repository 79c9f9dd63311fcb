package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/l402d/l402d/l402"
	"github.com/lightningnetwork/lnd/lntypes"
)

// sharedDB returns the DSN of a fresh database of the Postgres run's
// server; replicas need one, so on Badger the test does not apply.
func sharedDB(t *testing.T) string {
	t.Helper()
	if testPG == nil {
		t.Skip("replicas share a Postgres database; run with L402D_STORAGE_BACKEND=postgres (make test does)")
	}
	dsn, err := testPG.CreateDB(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// replicas opens n stores on one fresh Postgres database, as n l402d
// replicas would.
func replicas(t *testing.T, n int) []*Store {
	t.Helper()
	dsn := sharedDB(t)
	out := make([]*Store, n)
	for i := range out {
		out[i] = openStore(t, Options{PostgresDSN: dsn})
	}
	return out
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSharedReplicasAgree(t *testing.T) {
	rs := replicas(t, 3)
	a, b, c := rs[0], rs[1], rs[2]
	ctx := t.Context()

	// A key minted on one replica verifies on the others, although their
	// caches were filled before it existed.
	id := randomID(t)
	key, err := a.NewRootKey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range []*Store{b, c} {
		if got, err := s.RootKey(ctx, id); err != nil || got != key {
			t.Fatalf("replica %d: RootKey = %x, %v; want %x", i+1, got, err, key)
		}
	}
	if _, err := b.RootKey(ctx, randomID(t)); !errors.Is(err, l402.ErrUnknownToken) {
		t.Fatalf("unknown id on a replica: %v, want ErrUnknownToken", err)
	}

	// A revocation on one replica is refused by every replica within 1 s.
	start := time.Now()
	if err := b.Revoke(ctx, id, "test"); err != nil {
		t.Fatal(err)
	}
	for _, s := range rs {
		eventually(t, time.Second, "revocation pushed to a replica", func() bool {
			r, _ := s.IsRevoked(ctx, id)
			return r
		})
	}
	t.Logf("revocation seen by all 3 replicas after %s", time.Since(start))

	// So is a payment consumed on one replica (consuming revokes the
	// token under every other scheme).
	ch := fullChallenge(t, t0)
	if err := a.PutChallenge(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Consume(ctx, ch.PaymentHash, "l402"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Consume(ctx, ch.PaymentHash, "l402"); !errors.Is(err, ErrConsumed) {
		t.Fatalf("second consume on another replica: %v, want ErrConsumed", err)
	}
	eventually(t, time.Second, "a consumed token refused by a replica", func() bool {
		r, _ := b.IsRevoked(ctx, ch.TokenID)
		return r
	})
}

// TestSharedPrepaidNeverOverdraws: replicas debiting one balance at once
// spend exactly what it holds.
func TestSharedPrepaidNeverOverdraws(t *testing.T) {
	rs := replicas(t, 2)
	ctx := t.Context()
	p := putDeposit(t, rs[0], "api", "/api/*", 50)
	if _, err := rs[1].DebitPrepaid(ctx, p, "api", 0); err != nil {
		t.Fatal(err)
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 10 {
				d, err := rs[i%2].DebitPrepaid(ctx, p, "api", 1000)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Debited {
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	bal, err := rs[0].Prepaid(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if ok.Load() != 50 || bal.DebitedMsat != 50_000 || bal.BalanceMsat() != 0 {
		t.Fatalf("%d debits went through; balance %+v; want exactly 50 of 1,000 msat", ok.Load(), bal)
	}
}

// TestSharedLead: one replica leads a role; when it gives up (or dies,
// which closes its connection) another takes over.
func TestSharedLead(t *testing.T) {
	rs := replicas(t, 2)
	ctx := t.Context()
	la, cancelA, err := rs[0].Lead(ctx, "settlement")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan time.Time, 1)
	go func() {
		lb, cancelB, err := rs[1].Lead(ctx, "settlement")
		if err != nil {
			return
		}
		defer cancelB()
		got <- time.Now()
		<-lb.Done()
	}()
	select {
	case <-got:
		t.Fatal("two replicas lead at once")
	case <-time.After(3 * leadPoll):
	}
	if la.Err() != nil {
		t.Fatal("the leader's context ended while it leads")
	}
	// Another role is led independently.
	_, cancelOther, err := rs[1].Lead(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	cancelOther()

	stepped := time.Now()
	cancelA()
	select {
	case at := <-got:
		t.Logf("the second replica took the lead %s after the first stood down", at.Sub(stepped))
	case <-time.After(10 * time.Second):
		t.Fatal("no replica took the lead within 10 s")
	}
}

// TestSharedListenerGap: a replica whose notification connection was cut
// still learns of a revocation made meanwhile.
func TestSharedListenerGap(t *testing.T) {
	rs := replicas(t, 2)
	ctx := t.Context()
	id := randomID(t)
	if _, err := rs[0].NewRootKey(ctx, id); err != nil {
		t.Fatal(err)
	}
	// Cut every listening connection of the database, then revoke at
	// once: the revocation may fall before the listener is back.
	if _, err := rs[0].pg.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	if err := rs[0].Revoke(ctx, id, "during the gap"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "revocation made during a listener gap", func() bool {
		r, _ := rs[1].IsRevoked(ctx, id)
		return r
	})
}

// TestSharedDatabaseDown: with Postgres gone, a replica keeps verifying
// what it knows, refuses writes with ErrUnavailable, and works again once
// the database is back.
func TestSharedDatabaseDown(t *testing.T) {
	rs := replicas(t, 1)
	s := rs[0]
	ctx := t.Context()
	id := randomID(t)
	key, err := s.NewRootKey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	revoked := randomID(t)
	if err := s.Revoke(ctx, revoked, "x"); err != nil {
		t.Fatal(err)
	}
	testPG.Kill()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			if err := testPG.Restart(context.Background()); err != nil {
				t.Error(err)
			}
		}
	})
	if got, err := s.RootKey(ctx, id); err != nil || got != key {
		t.Fatalf("cached RootKey with the database down = %x, %v", got, err)
	}
	if r, _ := s.IsRevoked(ctx, revoked); !r {
		t.Fatal("a revocation was forgotten with the database down")
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := s.NewRootKey(wctx, randomID(t)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("write with the database down: %v, want ErrUnavailable", err)
	}
	if err := testPG.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	restarted = true
	var last error
	eventually(t, 30*time.Second, "writes after the database returned", func() bool {
		_, last = s.NewRootKey(ctx, randomID(t))
		if last != nil {
			t.Log(last)
		}
		return last == nil
	})
}

// TestSharedOpenTogether: replicas starting at once on an empty database
// all open it (one stamps the schema, the others find it stamped).
func TestSharedOpenTogether(t *testing.T) {
	dsn := sharedDB(t)
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			s, err := Open(t.Context(), Options{PostgresDSN: dsn, Logger: quietLogger()})
			if err != nil {
				t.Error(err)
				return
			}
			s.Close()
		})
	}
	wg.Wait()
}

// TestSharedLock: a lock one replica holds is refused to another until it
// is released, or until the replica holding it dies (closes).
func TestSharedLock(t *testing.T) {
	rs := replicas(t, 3)
	ctx := t.Context()
	key := [32]byte{1, 2, 3}
	unlock, ok, err := rs[0].SharedLock(ctx, 'p', key, false)
	if err != nil || !ok {
		t.Fatalf("first lock: %v %v", ok, err)
	}
	if _, ok, err := rs[1].SharedLock(ctx, 'p', key, false); ok || err != nil {
		t.Fatalf("a held lock taken by another replica: %v %v", ok, err)
	}
	if u, ok, err := rs[1].SharedLock(ctx, 'r', key, false); !ok || err != nil {
		t.Fatalf("the same key in another namespace: %v %v", ok, err)
	} else {
		u()
	}
	got := make(chan func(), 1)
	go func() {
		u, ok, err := rs[1].SharedLock(ctx, 'p', key, true)
		if err != nil || !ok {
			t.Error(err)
			return
		}
		got <- u
	}()
	select {
	case <-got:
		t.Fatal("a waiting lock taken while held")
	case <-time.After(100 * time.Millisecond):
	}
	unlock()
	var u1 func()
	select {
	case u1 = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter did not get the released lock")
	}
	// The holder dies: its locks go with its connection.
	if err := rs[1].Close(); err != nil {
		t.Fatal(err)
	}
	_ = u1
	eventually(t, 5*time.Second, "a dead replica's lock taken by another", func() bool {
		u, ok, _ := rs[2].SharedLock(ctx, 'p', key, false)
		if ok {
			u()
		}
		return ok
	})
}

func TestRedactDSN(t *testing.T) {
	for _, in := range []string{
		"cannot parse `postgres://l402d:s3cret@db:5432/l402d?sslmode=x`: bad",
		"cannot parse `host=db user=l402d password=s3cret dbname=l402d`: bad",
		"cannot parse `host=db password='s3 cret'`: bad",
	} {
		if out := redactDSN(errors.New(in)); strings.Contains(out, "s3") {
			t.Errorf("redactDSN(%q) = %q: the password shows", in, out)
		}
	}
	_, err := Open(t.Context(), Options{PostgresDSN: "postgres://l402d:s3cret@db:notaport/x"})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("a malformed DSN: %v", err)
	}
}

// TestSharedContention: many writers on three replicas at once — creates,
// settlements and debits of one balance — all get through: Postgres's
// serialization failures (frequent under SERIALIZABLE, which locks index
// pages) are retried, never surfaced.
func TestSharedContention(t *testing.T) {
	rs := replicas(t, 3)
	ctx := t.Context()
	p := putDeposit(t, rs[0], "api", "/api/*", 1000)
	if _, err := rs[1].DebitPrepaid(ctx, p, "api", 0); err != nil {
		t.Fatal(err)
	}
	var debits atomic.Int64
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() {
			s := rs[i%3]
			for j := range 15 {
				if i%2 == 0 {
					c := fullChallenge(t, t0)
					var key [32]byte
					if err := s.IssueChallenge(ctx, c, key, &Idempotency{Key: fmt.Sprintf("k%d-%d", i, j), TTL: time.Hour}); err != nil {
						t.Errorf("issue: %v", err)
						return
					}
					continue
				}
				d, err := s.DebitPrepaid(ctx, p, "api", 1000)
				if err != nil {
					t.Errorf("debit: %v", err)
					return
				}
				if d.Debited {
					debits.Add(1)
				}
			}
		})
	}
	wg.Wait()
	bal, err := rs[2].Prepaid(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("transactions run again after a conflict: %d, %d, %d", rs[0].conflicts.Load(), rs[1].conflicts.Load(), rs[2].conflicts.Load())
	if debits.Load() != 12*15 || bal.DebitedMsat != 12*15*1000 {
		t.Fatalf("%d debits, balance %+v; want %d", debits.Load(), bal, 12*15)
	}
}

// TestSharedExpirySweep: entries past their time to live are invisible at
// once and deleted by the periodic sweep.
func TestSharedExpirySweep(t *testing.T) {
	s := replicas(t, 1)[0]
	ctx := t.Context()
	if err := s.PutIdempotency(ctx, "short", lntypes.Hash{1}, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := s.PutIdempotency(ctx, "long", lntypes.Hash{2}, time.Hour); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "an entry past its time to live no longer read", func() bool {
		_, ok, _ := s.Idempotency(ctx, "short")
		return !ok
	})
	n, err := s.pg.deleteExpired(ctx)
	if err != nil || n != 1 {
		t.Fatalf("sweep deleted %d (%v), want 1", n, err)
	}
	if _, ok, _ := s.Idempotency(ctx, "long"); !ok {
		t.Fatal("the sweep took an entry still alive")
	}
}

// TestSharedNewerSchema: a database migrated by a newer l402d is refused.
func TestSharedNewerSchema(t *testing.T) {
	s := replicas(t, 1)[0]
	if _, err := s.pg.pool.Exec(t.Context(), "INSERT INTO l402d_schema_migrations (version, name) VALUES (99, 'future')"); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), Options{PostgresDSN: s.pg.pool.Config().ConnString(), Logger: quietLogger()})
	if !errors.Is(err, ErrSchema) {
		t.Fatalf("Open of a database from a newer l402d: %v, want ErrSchema", err)
	}
}

// TestSharedBudget: replicas reserving payments against one daily budget
// at once never reserve more than it holds, whichever replica asks.
func TestSharedBudget(t *testing.T) {
	rs := replicas(t, 3)
	ctx := t.Context()
	const fits, racers = 4, 24
	if err := rs[0].PutBudgetLimits(ctx, BudgetLimits{PerDaySats: fits*60 + 59}); err != nil {
		t.Fatal(err)
	}
	var ok atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range racers {
		wg.Go(func() {
			_, h := newPreimage(t)
			<-start
			_, err := rs[i%3].ReservePayment(ctx, testPayment(h, 50, fmt.Sprintf("d%d", i)))
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, ErrBudgetExceeded):
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok.Load() != fits {
		t.Fatalf("%d reserved across replicas, want %d", ok.Load(), fits)
	}
	wantCounter(t, "day", usage(t, rs[1], time.Now()).Total, 0, fits*60_000)
}

// TestSharedConnectionCut: a statement in flight when the database dies
// (kill -9) fails as ErrUnavailable (503 db_unavailable at the API), not
// as an unclassified error (500 internal).
func TestSharedConnectionCut(t *testing.T) {
	rs := replicas(t, 1)
	s := rs[0]
	ctx := t.Context()
	errc := make(chan error, 1)
	go func() {
		errc <- s.pg.run(ctx, pgx.TxOptions{}, func(tx kvTxn) error {
			pt := tx.(*pgTxn)
			if _, err := pt.tx.Exec(pt.ctx, `SELECT pg_sleep(60)`); err != nil {
				return pt.fail("sleeping", err)
			}
			return nil
		})
	}()
	eventually(t, 10*time.Second, "the statement running", func() bool {
		var n int
		err := s.pg.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'`).Scan(&n)
		return err == nil && n == 1
	})
	testPG.Kill()
	t.Cleanup(func() {
		if err := testPG.Restart(context.Background()); err != nil {
			t.Error(err)
		}
	})
	err := <-errc
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a statement cut by the database's death: %v, want ErrUnavailable", err)
	}
	t.Log(err)
}

// TestPGErrorClass: how a pgx error is classed — a cut connection is
// ErrUnavailable, a lost race errConflict, a refusal neither.
func TestPGErrorClass(t *testing.T) {
	tests := []struct {
		name              string
		err               error
		unavail, conflict bool
	}{
		{"unexpected EOF", io.ErrUnexpectedEOF, true, false},
		{"EOF", fmt.Errorf("read: %w", io.EOF), true, false},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true, false},
		{"broken pipe", fmt.Errorf("write: %w", syscall.EPIPE), true, false},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true, false},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true, false},
		{"serialization", &pgconn.PgError{Code: "40001"}, false, true},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, false, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false, false},
		{"other", errors.New("scan: bad type"), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := pgError("x", tt.err)
			if got := errors.Is(err, ErrUnavailable); got != tt.unavail {
				t.Errorf("ErrUnavailable = %v, want %v (%v)", got, tt.unavail, err)
			}
			if got := errors.Is(err, errConflict); got != tt.conflict {
				t.Errorf("errConflict = %v, want %v (%v)", got, tt.conflict, err)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("the cause is lost: %v", err)
			}
		})
	}
}
