package storage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// lazyOptions are disk options with debits taken in memory.
func lazyOptions(t *testing.T, allowance int64) Options {
	t.Helper()
	badgerOnly(t)
	o := diskOptions(t)
	o.DebitAllowanceMsat = allowance
	return o
}

// durable reads balance id as it is on disk, without the debits in memory.
func durable(t *testing.T, s *Store, id lntypes.Hash) Session {
	t.Helper()
	var out *Session
	if err := s.db.View(t.Context(), func(txn kvTxn) error {
		var err error
		out, err = getSession(txn, id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return *out
}

// TestLazyDebitsTakenInMemory: with the committer stopped, debits the
// allowance covers are answered from memory; the next one waits for the
// disk; everything is on disk after.
func TestLazyDebitsTakenInMemory(t *testing.T) {
	opts := lazyOptions(t, 3000)
	s := openStore(t, opts)
	ctx := t.Context()
	p := putDeposit(t, s, "api", "/api/*", 10)
	if d, err := s.DebitPrepaid(ctx, p, "api", 1000); err != nil || !d.Debited {
		t.Fatalf("first debit = %+v, %v", d, err)
	}
	// Stop the committer: every durable write waits from now on.
	hold := make(chan struct{})
	var held sync.Once
	s.issueHook = func(at issueStage) {
		if at == issueBatched {
			<-hold
		}
	}
	t.Cleanup(func() { held.Do(func() { close(hold) }) })
	var answered atomic.Int64
	done := make(chan error, 1)
	go func() {
		for i := range 4 {
			d, err := s.DebitPrepaid(context.Background(), p, "api", 1000)
			if err != nil || !d.Debited || d.Session.DebitedMsat != int64(2000+1000*i) || d.Session.Requests != int64(2+i) {
				done <- fmt.Errorf("debit %d = %+v, %v", i+2, d, err)
				return
			}
			answered.Add(1)
		}
		done <- nil
	}()
	eventually(t, 10*time.Second, "three debits answered from memory", func() bool { return answered.Load() >= 3 })
	if n := answered.Load(); n != 3 {
		t.Fatalf("%d debits answered with the disk stopped; want 3 (the allowance's 3,000 msat, then the wait)", n)
	}
	held.Do(func() { close(hold) })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b, err := s.Prepaid(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if b.DebitedMsat != 5000 || b.Requests != 5 {
		t.Fatalf("balance after five debits = %+v", b)
	}
	books(t, *b)
	s = reopen(t, s, opts)
	if got := durable(t, s, p); got.DebitedMsat != 5000 || got.Requests != 5 {
		t.Fatalf("after a clean close, on disk: %+v; want all five debits", got)
	}
}

// TestLazyDebitsCloseReckonsAll: a close while 8 clients debit refunds
// exactly what no served request took, and no debit started after the
// close went through.
func TestLazyDebitsCloseReckonsAll(t *testing.T) {
	s := openStore(t, lazyOptions(t, 5000))
	ctx := t.Context()
	p := putDeposit(t, s, "api", "/api/*", 1000)
	top := issueTopUp(t, s, "api", 1000, p)
	if _, err := s.DebitPrepaid(ctx, p, "api", 0); err != nil {
		t.Fatal(err)
	}
	var served atomic.Int64
	var closed atomic.Bool
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			h := p
			if i%2 == 1 {
				h = top
			}
			for {
				after := closed.Load()
				d, err := s.DebitPrepaid(ctx, h, "api", 1000)
				switch {
				case errors.Is(err, ErrSessionClosed):
					return
				case err != nil:
					t.Error(err)
					return
				case d.Debited && after:
					t.Error("a debit that started after the close went through")
					return
				case d.Debited:
					served.Add(1000)
				}
			}
		})
	}
	eventually(t, 10*time.Second, "some debits", func() bool { return served.Load() > 100_000 })
	c, err := s.ClosePrepaid(ctx, p, "api", "lnbcrt1refund", lntypes.Hash{1})
	if err != nil {
		t.Fatal(err)
	}
	closed.Store(true)
	wg.Wait()
	books(t, c)
	if c.DebitedMsat != served.Load() || c.RefundMsat != c.DepositedMsat-served.Load() {
		t.Fatalf("closed with %d msat debited and %d refunded; the clients were served %d of %d deposited", c.DebitedMsat, c.RefundMsat, served.Load(), c.DepositedMsat)
	}
}

// TestLazyDebitsSession: an MPP session's debits, metered debits,
// give-backs, top-ups and close interleave with debits in memory and the
// books stay exact.
func TestLazyDebitsSession(t *testing.T) {
	s := openStore(t, lazyOptions(t, 4000))
	ctx := t.Context()
	id := putDeposit(t, s, "api", "/deposit", 100)
	if _, err := s.OpenSession(ctx, id, "api", "/deposit", "lnbcrt1ret", lntypes.Hash{2}, 1000); err != nil {
		t.Fatal(err)
	}
	var want atomic.Int64
	want.Store(1000)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 10 {
				if _, err := s.DebitSession(ctx, id, "api", 500); err != nil {
					t.Error(err)
					return
				}
				want.Add(500)
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			took, _, err := s.MeterSession(ctx, id, "api", 2000, 1)
			if err != nil {
				t.Error(err)
				return
			}
			if ok, err := s.UnmeterSession(ctx, id, took/2); err != nil || !ok {
				t.Errorf("unmeter = %v, %v", ok, err)
				return
			}
			want.Add(took - took/2)
		}
	})
	wg.Go(func() {
		top := putDeposit(t, s, "api", "/deposit", 10)
		if _, err := s.TopUpSession(ctx, id, top, "api", "/deposit", 0); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	c, err := s.CloseSession(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	books(t, c)
	if c.DepositedMsat != 110_000 || c.DebitedMsat != want.Load() || c.RefundMsat != 110_000-want.Load() {
		t.Fatalf("closed %+v; want %d msat debited of 110,000", c, want.Load())
	}
	if _, err := s.DebitSession(ctx, id, "api", 1); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("debit after close = %v, want ErrSessionClosed", err)
	}
}

// TestLazyDebitsNotOnPostgres: replicas share balances, so a debit
// allowance is refused on Postgres before anything is opened.
func TestLazyDebitsNotOnPostgres(t *testing.T) {
	_, err := Open(t.Context(), Options{PostgresDSN: "postgres://l402d@127.0.0.1:1/none", DebitAllowanceMsat: 1000, Logger: quietLogger()})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "Postgres") {
		t.Fatalf("Open on Postgres with an allowance = %v; want ErrInvalid naming Postgres", err)
	}
}

const (
	lazyCrashDirEnv     = "L402D_STORAGE_LAZY_CRASH_DIR"
	lazyCrashClientsEnv = "L402D_STORAGE_LAZY_CRASH_CLIENTS"
	lazyCrashAllowance  = 5000
	lazyCrashPrice      = 1000
)

// TestLazyDebitsCrash kills -9 a process debiting one balance with an
// allowance, from 1 and from 8 clients, and checks the books: every
// debit on disk was answered (served), at most the allowance of the
// answered ones is missing, and deposits = debits + balance.
func TestLazyDebitsCrash(t *testing.T) {
	if dir := os.Getenv(lazyCrashDirEnv); dir != "" {
		n, _ := strconv.Atoi(os.Getenv(lazyCrashClientsEnv))
		lazyCrashChild(dir, n)
		return
	}
	badgerOnly(t)
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	for _, clients := range []int{1, 8} {
		t.Run(fmt.Sprintf("clients=%d", clients), func(t *testing.T) {
			dir := t.TempDir()
			acked := runKilledChild(t, "TestLazyDebitsCrash", []string{lazyCrashDirEnv + "=" + dir, lazyCrashClientsEnv + "=" + strconv.Itoa(clients)},
				200, func(line string) bool { return strings.HasPrefix(line, "debited") })
			opts := DefaultOptions(dir)
			opts.Logger = quietLogger()
			s := openStore(t, opts)
			ids, err := s.Sessions(t.Context(), SessionOpen)
			if err != nil || len(ids) != 1 {
				t.Fatalf("sessions after the crash: %v, %v", ids, err)
			}
			b := ids[0]
			books(t, b)
			servedMsat := int64(acked) * lazyCrashPrice
			// Debits answered but not yet printed when the kill came are
			// on disk too: at most one per client.
			if b.DebitedMsat > servedMsat+int64(clients)*lazyCrashPrice {
				t.Fatalf("%d msat on disk, more than the %d msat answered (+1 per client): a debit was recorded that no request got", b.DebitedMsat, servedMsat)
			}
			if b.DebitedMsat < servedMsat-lazyCrashAllowance {
				t.Fatalf("%d msat on disk of %d msat answered: the crash lost more than the allowance of %d msat", b.DebitedMsat, servedMsat, lazyCrashAllowance)
			}
			t.Logf("%d debits answered, %d msat on disk, %d msat lost to the crash (allowance %d)", acked, b.DebitedMsat, max(0, servedMsat-b.DebitedMsat), lazyCrashAllowance)
		})
	}
}

// lazyCrashChild debits one prepaid balance from n clients until killed,
// printing a line for each debit answered.
func lazyCrashChild(dir string, n int) {
	ctx := context.Background()
	opts := DefaultOptions(dir)
	opts.Logger = quietLogger()
	opts.DebitAllowanceMsat = lazyCrashAllowance
	s, err := Open(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		os.Exit(2)
	}
	c := &Challenge{PaymentHash: lntypes.Hash{7}, Service: "api", Resource: "/api/*", PriceSats: 1_000_000,
		Invoice: "lnbcrt1", Macaroon: "AgEEbHNhdAJCAAA=", CreatedAt: time.Now()}
	c.TokenID[0] = 7
	if err := s.PutChallenge(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "child: challenge:", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	deadline := time.Now().Add(time.Minute)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				d, err := s.DebitPrepaid(ctx, c.PaymentHash, "api", lazyCrashPrice)
				if err != nil || !d.Debited {
					fmt.Fprintln(os.Stderr, "child: debit:", d, err)
					os.Exit(2)
				}
				mu.Lock()
				out.WriteString("debited\n")
				out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	fmt.Fprintln(os.Stderr, "child: not killed within a minute")
	os.Exit(3)
}

// TestLazyDebitsForgetIdle: past the bound, balances with nothing in
// memory and their tokens are forgotten; one with debits in memory is
// kept.
func TestLazyDebitsForgetIdle(t *testing.T) {
	l := newLazyDebits(1000, func(string, ...any) {})
	busy, idle := lntypes.Hash{1}, lntypes.Hash{2}
	l.bal[busy] = &lazyBalance{pendMsat: 10}
	l.bal[idle] = &lazyBalance{}
	l.tok[lntypes.Hash{3}], l.tok[lntypes.Hash{4}], l.tok[lntypes.Hash{5}] = busy, idle, lntypes.Hash{9}
	l.forgetIdle()
	if len(l.bal) != 1 || l.bal[busy] == nil || len(l.tok) != 1 || l.tok[lntypes.Hash{3}] != busy {
		t.Fatalf("after forgetIdle: balances %v, tokens %v; want only the balance with debits in memory and its token", l.bal, l.tok)
	}
}
