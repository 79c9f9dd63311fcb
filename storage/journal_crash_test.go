//go:build unix

package storage

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

const journalCrashDirEnv = "L402D_STORAGE_JOURNAL_CRASH_DIR"

// TestCrashKeepsAcknowledgedPayments runs a child that reserves payments,
// marks half of them in flight and completes a quarter, printing each step
// once it has returned, kills it with SIGKILL mid-stream and checks that
// every acknowledged step survived and that the budget counters still
// equal the sum over the journal: nothing reserved is lost, nothing is
// counted twice. Two rounds crash the same directory.
func TestCrashKeepsAcknowledgedPayments(t *testing.T) {
	if dir := os.Getenv(journalCrashDirEnv); dir != "" {
		journalCrashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	dir := t.TempDir()
	acked := map[lntypes.Hash]PaymentState{}
	for round := range 2 {
		n := runKilledChild(t, "TestCrashKeepsAcknowledgedPayments", []string{journalCrashDirEnv + "=" + dir}, 200, func(line string) bool {
			f := strings.Fields(line)
			if len(f) != 2 {
				return false
			}
			h, err := lntypes.MakeHashFromStr(f[1])
			if err != nil {
				return false
			}
			switch PaymentState(f[0]) {
			case PaymentReserved, PaymentInFlight, PaymentSucceeded:
				acked[h] = PaymentState(f[0])
				return true
			}
			return false
		})
		t.Logf("round %d: %d steps acknowledged before SIGKILL", round, n)
	}
	opts := DefaultOptions(dir)
	opts.Logger = quietLogger()
	s := openStore(t, opts)
	ctx := t.Context()
	order := map[PaymentState]int{PaymentReserved: 0, PaymentInFlight: 1, PaymentSucceeded: 2}
	for h, st := range acked {
		p, err := s.Payment(ctx, h)
		if err != nil {
			t.Fatalf("acknowledged payment %s lost: %v", h, err)
		}
		if order[p.State] < order[st] {
			t.Fatalf("payment %s is %s after the crash, acknowledged %s", h, p.State, st)
		}
	}
	// The counters equal the sum over the journal, for every day.
	want := map[time.Time]BudgetCounter{}
	all, _, _, err := s.ListPayments(ctx, PaymentFilter{Limit: MaxListLimit})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range all {
		c := want[p.BudgetDay]
		if p.State == PaymentSucceeded {
			c.SpentMsat += p.AmountMsat + p.FeeMsat
		} else {
			c.ReservedMsat += p.AmountMsat + p.FeeLimitMsat
		}
		want[p.BudgetDay] = c
	}
	for day, c := range want {
		got := usage(t, s, day)
		wantCounter(t, "day "+day.Format(time.DateOnly), got.Total, c.SpentMsat, c.ReservedMsat)
	}
}

// journalCrashChild reserves payments until killed; it gives up on its own
// after a minute so an orphan cannot run forever.
func journalCrashChild(dir string) {
	ctx := context.Background()
	opts := DefaultOptions(dir)
	opts.Logger = quietLogger()
	opts.PostgresDSN = os.Getenv(childDSNEnv)
	s, err := Open(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		os.Exit(2)
	}
	if err := s.PutBudgetLimits(ctx, BudgetLimits{}); err != nil { // no limits: this test is about durability
		fmt.Fprintln(os.Stderr, "child: budget:", err)
		os.Exit(2)
	}
	ack := func(st PaymentState, h lntypes.Hash) {
		// One write per line, so a line is either whole or missing.
		if _, err := os.Stdout.WriteString(string(st) + " " + hex.EncodeToString(h[:]) + "\n"); err != nil {
			os.Exit(2)
		}
	}
	fail := func(what string, err error) {
		fmt.Fprintln(os.Stderr, "child:", what, err)
		os.Exit(2)
	}
	deadline := time.Now().Add(time.Minute)
	for i := 0; time.Now().Before(deadline); i++ {
		pre, h := newPreimage(nil)
		p := testPayment(h, int64(1+i%50), fmt.Sprintf("d%d.example", i%3))
		if _, err := s.ReservePayment(ctx, p); err != nil {
			fail("reserve", err)
		}
		ack(PaymentReserved, h)
		if i%2 == 0 {
			if err := s.MarkPaymentInFlight(ctx, h); err != nil {
				fail("in flight", err)
			}
			ack(PaymentInFlight, h)
		}
		if i%4 == 0 {
			tok := &Token{Origin: "https://" + p.Domain, Scope: "/x", Macaroon: "m"}
			if _, _, err := s.CompletePayment(ctx, h, PaymentOutcome{Succeeded: true, Preimage: pre, FeeMsat: 7}, tok); err != nil {
				fail("complete", err)
			}
			ack(PaymentSucceeded, h)
		}
	}
	fmt.Fprintln(os.Stderr, "child: not killed within a minute")
	os.Exit(3)
}
