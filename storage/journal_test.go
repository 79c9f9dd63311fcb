package storage

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// newPreimage returns a random preimage and its hash.
func newPreimage(testing.TB) (lntypes.Preimage, lntypes.Hash) {
	var p lntypes.Preimage
	rand.Read(p[:]) // never fails (crypto/rand aborts the program instead)
	return p, lntypes.Hash(sha256.Sum256(p[:]))
}

func testPayment(h lntypes.Hash, amountSats int64, domain string) *Payment {
	return &Payment{
		PaymentHash: h, Kind: KindAccess, Invoice: "lnbcrt1test", AmountMsat: amountSats * 1000, FeeLimitMsat: 10_000,
		Domain: domain, URL: "https://" + domain + "/x", Macaroon: "AgEEbDQwMg", Origin: "https://" + domain, Scope: "/x",
	}
}

func usage(t testing.TB, s *Store, at time.Time) BudgetUsage {
	t.Helper()
	u, err := s.BudgetUsage(t.Context(), at)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func wantCounter(t testing.TB, what string, got BudgetCounter, spent, reserved int64) {
	t.Helper()
	if got.SpentMsat != spent || got.ReservedMsat != reserved {
		t.Fatalf("%s: spent %d reserved %d msat, want %d and %d", what, got.SpentMsat, got.ReservedMsat, spent, reserved)
	}
}

func TestJournalStateMachine(t *testing.T) {
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	clk := newClock(now)
	s := openStore(t, Options{Now: clk.Now})
	ctx := t.Context()
	pre, h := newPreimage(t)

	p := testPayment(h, 50, "a.example")
	if _, err := s.ReservePayment(ctx, p); err != nil {
		t.Fatal(err)
	}
	if p.State != PaymentReserved || p.Attempts != 1 || !p.CreatedAt.Equal(now) || !p.BudgetDay.Equal(time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("reserved entry %+v", p)
	}
	u := usage(t, s, now)
	wantCounter(t, "day after reserve", u.Total, 0, 60_000)
	if len(u.Domains) != 1 || u.Domains[0].Domain != "a.example" {
		t.Fatalf("domains %+v", u.Domains)
	}
	wantCounter(t, "domain after reserve", u.Domains[0].BudgetCounter, 0, 60_000)

	// A second reservation of the same hash pays nothing twice.
	again := testPayment(h, 50, "a.example")
	existing, err := s.ReservePayment(ctx, again)
	if !errors.Is(err, ErrExists) || existing == nil || existing.State != PaymentReserved {
		t.Fatalf("second reserve: %v %+v", err, existing)
	}
	wantCounter(t, "day after refused second reserve", usage(t, s, now).Total, 0, 60_000)

	if err := s.MarkPaymentInFlight(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkPaymentInFlight(ctx, h); err != nil {
		t.Fatalf("in flight twice: %v", err)
	}
	if pend, err := s.PendingPayments(ctx); err != nil || len(pend) != 1 || pend[0].State != PaymentInFlight {
		t.Fatalf("pending: %v %+v", err, pend)
	}

	// Wrong preimage: refused, nothing changes.
	if _, _, err := s.CompletePayment(ctx, h, PaymentOutcome{Succeeded: true, Preimage: lntypes.Preimage{1}}, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("wrong preimage: %v", err)
	}

	clk.Set(now.Add(time.Minute))
	tok := &Token{Origin: "https://a.example", Scope: "/x", Macaroon: "AgEEbDQwMg", AmountSats: 50}
	got, changed, err := s.CompletePayment(ctx, h, PaymentOutcome{Succeeded: true, Preimage: pre, AmountMsat: 50_000, FeeMsat: 1_500}, tok)
	if err != nil || !changed || got.State != PaymentSucceeded || got.Preimage != pre || got.FeeMsat != 1_500 || !got.SettledAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("complete: %v %v %+v", err, changed, got)
	}
	u = usage(t, s, now)
	wantCounter(t, "day after success", u.Total, 51_500, 0)
	wantCounter(t, "domain after success", u.Domains[0].BudgetCounter, 51_500, 0)
	if toks, err := s.TokensForOrigin(ctx, "https://a.example"); err != nil || len(toks) != 1 || toks[0].Preimage != pre || toks[0].PaymentHash != h {
		t.Fatalf("token cached with the outcome: %v %+v", err, toks)
	}

	// Completing again (a resumed tracker racing the payer) counts nothing.
	if _, changed, err := s.CompletePayment(ctx, h, PaymentOutcome{Succeeded: true, Preimage: pre, FeeMsat: 1_500}, nil); err != nil || changed {
		t.Fatalf("second complete: %v changed=%v", err, changed)
	}
	if _, _, err := s.CompletePayment(ctx, h, PaymentOutcome{FailureReason: "late"}, nil); err != nil {
		t.Fatal(err)
	}
	wantCounter(t, "day after repeated completes", usage(t, s, now).Total, 51_500, 0)
	if err := s.MarkPaymentInFlight(ctx, h); !errors.Is(err, ErrInvalid) {
		t.Fatalf("in flight after success: %v", err)
	}
	existing, err = s.ReservePayment(ctx, testPayment(h, 50, "a.example"))
	if !errors.Is(err, ErrExists) || existing.State != PaymentSucceeded || existing.Preimage != pre {
		t.Fatalf("reserve after success: %v %+v", err, existing)
	}
	if pend, _ := s.PendingPayments(ctx); len(pend) != 0 {
		t.Fatalf("pending after success: %+v", pend)
	}
}

func TestJournalFailedIsPaidAgain(t *testing.T) {
	day1 := time.Date(2026, 3, 4, 23, 59, 0, 0, time.UTC)
	clk := newClock(day1)
	s := openStore(t, Options{Now: clk.Now})
	ctx := t.Context()
	pre, h := newPreimage(t)

	if _, err := s.ReservePayment(ctx, testPayment(h, 20, "b.example")); err != nil {
		t.Fatal(err)
	}
	// The outcome arrives after midnight: it releases day 1's reservation.
	clk.Set(day1.Add(2 * time.Minute))
	if _, _, err := s.CompletePayment(ctx, h, PaymentOutcome{FailureReason: "no_route"}, &Token{Origin: "https://b.example", Scope: "/x", Macaroon: "m"}); err != nil {
		t.Fatal(err)
	}
	wantCounter(t, "day 1 after failure", usage(t, s, day1).Total, 0, 0)
	if toks, _ := s.ListTokens(ctx); len(toks) != 0 {
		t.Fatalf("a failed payment cached a token: %+v", toks)
	}
	p, err := s.Payment(ctx, h)
	if err != nil || p.State != PaymentFailed || p.FailureReason != "no_route" {
		t.Fatalf("failed entry: %v %+v", err, p)
	}

	// Paid again on day 2: a new reservation against day 2.
	q := testPayment(h, 20, "b.example")
	if _, err := s.ReservePayment(ctx, q); err != nil {
		t.Fatal(err)
	}
	if q.Attempts != 2 || !q.CreatedAt.Equal(day1) || q.FailureReason != "" || !q.BudgetDay.Equal(time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("second attempt %+v", q)
	}
	wantCounter(t, "day 2 reserved", usage(t, s, clk.Now()).Total, 0, 30_000)
	if _, _, err := s.CompletePayment(ctx, h, PaymentOutcome{Succeeded: true, Preimage: pre}, nil); err != nil {
		t.Fatal(err)
	}
	wantCounter(t, "day 2 spent", usage(t, s, clk.Now()).Total, 20_000, 0)
	wantCounter(t, "day 1 untouched", usage(t, s, day1).Total, 0, 0)
}

func TestCheckBudgetLimits(t *testing.T) {
	l := BudgetLimits{PerPaymentSats: 100, PerDaySats: 1_000, PerDomainSats: 300}
	tests := []struct {
		name        string
		l           BudgetLimits
		domain      string
		day, dom    BudgetCounter
		amt, fee    int64
		wantLimit   string
		wantReqMsat int64
	}{
		{name: "fits", l: l, domain: "a", amt: 100_000, fee: 10_000},
		{name: "no limits", l: BudgetLimits{}, domain: "a", day: BudgetCounter{SpentMsat: 1 << 60}, amt: 1 << 60, fee: 1 << 62},
		{name: "per payment counts the amount only", l: l, amt: 100_001, fee: 0, wantLimit: LimitPerPayment, wantReqMsat: 100_001},
		{name: "per payment ignores the fee", l: l, amt: 100_000, fee: 50_000},
		{name: "day exactly full", l: l, day: BudgetCounter{SpentMsat: 800_000, ReservedMsat: 90_000}, amt: 100_000, fee: 10_000},
		{name: "day over by one msat", l: l, day: BudgetCounter{SpentMsat: 800_000, ReservedMsat: 90_001}, amt: 100_000, fee: 10_000, wantLimit: LimitPerDay, wantReqMsat: 110_000},
		{name: "reservations count", l: l, day: BudgetCounter{ReservedMsat: 950_000}, amt: 50_000, fee: 1, wantLimit: LimitPerDay, wantReqMsat: 50_001},
		{name: "domain over", l: l, domain: "a", dom: BudgetCounter{SpentMsat: 250_000}, amt: 50_000, fee: 1, wantLimit: LimitPerDomain, wantReqMsat: 50_001},
		{name: "no domain: domain limit does not apply", l: l, dom: BudgetCounter{SpentMsat: 300_000}, amt: 50_000, fee: 1},
		{name: "overflowing counters are over", l: BudgetLimits{PerDaySats: MaxBudgetSats}, day: BudgetCounter{SpentMsat: 1<<63 - 1}, amt: 1, wantLimit: LimitPerDay, wantReqMsat: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckBudgetLimits(tt.l, 20_000, tt.domain, tt.day, tt.dom, tt.amt, tt.fee)
			if tt.wantLimit == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var be *BudgetError
			if !errors.As(err, &be) || !errors.Is(err, ErrBudgetExceeded) || be.Limit != tt.wantLimit || be.RequestedMsat != tt.wantReqMsat {
				t.Fatalf("got %v (%+v), want %s needing %d msat", err, be, tt.wantLimit, tt.wantReqMsat)
			}
			if be.Error() == "" || !be.Day.Equal(dayStart(20_000)) {
				t.Fatalf("error %+v", be)
			}
		})
	}
}

func TestReserveRefusedOverBudget(t *testing.T) {
	s := openStore(t, Options{})
	ctx := t.Context()
	if err := s.PutBudgetLimits(ctx, BudgetLimits{PerPaymentSats: 100, PerDaySats: 200, PerDomainSats: 130}); err != nil {
		t.Fatal(err)
	}
	reserve := func(amt int64, domain string) error {
		_, h := newPreimage(t)
		_, err := s.ReservePayment(ctx, testPayment(h, amt, domain))
		return err
	}
	if err := reserve(101, "a"); !errors.Is(err, ErrBudgetExceeded) {
		t.Fatalf("over per-payment: %v", err)
	}
	if err := reserve(60, "a"); err != nil { // 70 with the fee limit
		t.Fatal(err)
	}
	var be *BudgetError
	if err := reserve(60, "a"); !errors.As(err, &be) || be.Limit != LimitPerDomain || be.Domain != "a" {
		t.Fatalf("domain a full: %v", err)
	}
	if err := reserve(60, "b"); err != nil {
		t.Fatal(err)
	}
	if err := reserve(60, ""); !errors.As(err, &be) || be.Limit != LimitPerDay {
		t.Fatalf("day full: %v", err)
	}
	if err := s.CheckBudget(ctx, 61_000, 0, "c", false); !errors.As(err, &be) || be.Limit != LimitPerDay {
		t.Fatalf("check: %v", err)
	}
	// Refusals reserved nothing.
	wantCounter(t, "day", usage(t, s, time.Now()).Total, 0, 140_000)
}

// TestReserveConcurrent: many goroutines race for a budget that fits
// exactly some of them; exactly those get a reservation.
func TestReserveConcurrent(t *testing.T) {
	for _, name := range []string{"in memory", "on disk"} {
		t.Run(name, func(t *testing.T) {
			var opts Options
			if name == "on disk" {
				opts = diskOptions(t)
			}
			s := openStore(t, opts)
			ctx := t.Context()
			const fits, racers = 3, 24
			// Each payment reserves 50 + 10 sat; the day fits three.
			if err := s.PutBudgetLimits(ctx, BudgetLimits{PerDaySats: fits*60 + 59}); err != nil {
				t.Fatal(err)
			}
			var ok, refused atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range racers {
				wg.Go(func() {
					_, h := newPreimage(t)
					<-start
					_, err := s.ReservePayment(ctx, testPayment(h, 50, fmt.Sprintf("d%d", i)))
					switch {
					case err == nil:
						ok.Add(1)
					case errors.Is(err, ErrBudgetExceeded):
						refused.Add(1)
					default:
						t.Error(err)
					}
				})
			}
			close(start)
			wg.Wait()
			if ok.Load() != fits || refused.Load() != racers-fits {
				t.Fatalf("%d reserved, %d refused; want %d and %d", ok.Load(), refused.Load(), fits, racers-fits)
			}
			wantCounter(t, "day", usage(t, s, time.Now()).Total, 0, fits*60_000)
		})
	}
}

func TestListPayments(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	clk := newClock(base)
	s := openStore(t, Options{Now: clk.Now})
	ctx := t.Context()
	var hashes []lntypes.Hash
	for i := range 7 {
		clk.Set(base.Add(time.Duration(i) * time.Minute))
		pre, h := newPreimage(t)
		hashes = append(hashes, h)
		p := testPayment(h, int64(10+i), []string{"a", "b"}[i%2])
		if i == 6 {
			p.Kind = KindInvoice
		}
		if _, err := s.ReservePayment(ctx, p); err != nil {
			t.Fatal(err)
		}
		switch i % 3 {
		case 0:
			if _, _, err := s.CompletePayment(ctx, h, PaymentOutcome{Succeeded: true, Preimage: pre, FeeMsat: 1000}, nil); err != nil {
				t.Fatal(err)
			}
		case 1:
			if _, _, err := s.CompletePayment(ctx, h, PaymentOutcome{FailureReason: "x"}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	// i: 0 ok a, 1 fail b, 2 pend a, 3 ok b, 4 fail a, 5 pend b, 6 ok a (invoice)
	tests := []struct {
		name  string
		f     PaymentFilter
		want  []int
		total PaymentTotals
	}{
		{"all", PaymentFilter{}, []int{6, 5, 4, 3, 2, 1, 0}, PaymentTotals{Count: 7, Succeeded: 3, Failed: 2, Pending: 2, AmountMsat: 39_000, FeeMsat: 3000}},
		{"succeeded", PaymentFilter{State: PaymentSucceeded}, []int{6, 3, 0}, PaymentTotals{Count: 3, Succeeded: 3, AmountMsat: 39_000, FeeMsat: 3000}},
		{"domain a", PaymentFilter{Domain: "a"}, []int{6, 4, 2, 0}, PaymentTotals{Count: 4, Succeeded: 2, Failed: 1, Pending: 1, AmountMsat: 26_000, FeeMsat: 2000}},
		{"kind invoice", PaymentFilter{Kind: KindInvoice}, []int{6}, PaymentTotals{Count: 1, Succeeded: 1, AmountMsat: 16_000, FeeMsat: 1000}},
		{"time range", PaymentFilter{Since: base.Add(2 * time.Minute), Until: base.Add(5 * time.Minute)}, []int{4, 3, 2}, PaymentTotals{Count: 3, Succeeded: 1, Failed: 1, Pending: 1, AmountMsat: 13_000, FeeMsat: 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, next, tot, err := s.ListPayments(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if next != "" || tot != tt.total || len(got) != len(tt.want) {
				t.Fatalf("got %d entries next %q totals %+v; want %v and %+v", len(got), next, tot, tt.want, tt.total)
			}
			for i, w := range tt.want {
				if got[i].PaymentHash != hashes[w] {
					t.Fatalf("entry %d is not payment %d", i, w)
				}
			}
		})
	}

	t.Run("pages", func(t *testing.T) {
		var seen []lntypes.Hash
		var after Cursor
		for page := 0; ; page++ {
			got, next, tot, err := s.ListPayments(ctx, PaymentFilter{Limit: 3, After: after})
			if err != nil {
				t.Fatal(err)
			}
			if tot.Count != 7 {
				t.Fatalf("page %d totals %+v: totals cover every page", page, tot)
			}
			for _, p := range got {
				seen = append(seen, p.PaymentHash)
			}
			if next == "" {
				break
			}
			after = next
		}
		if len(seen) != 7 || seen[0] != hashes[6] || seen[6] != hashes[0] {
			t.Fatalf("paged through %d entries", len(seen))
		}
	})

	if _, _, _, err := s.ListPayments(ctx, PaymentFilter{After: "!!"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad cursor: %v", err)
	}
	if _, _, _, err := s.ListPayments(ctx, PaymentFilter{State: "paid"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad state: %v", err)
	}
}

func TestReservePaymentValidates(t *testing.T) {
	s := openStore(t, Options{})
	_, h := newPreimage(t)
	tests := []struct {
		name string
		edit func(p *Payment)
	}{
		{"no hash", func(p *Payment) { p.PaymentHash = lntypes.Hash{} }},
		{"amountless", func(p *Payment) { p.AmountMsat = 0 }},
		{"negative fee limit", func(p *Payment) { p.FeeLimitMsat = -1 }},
		{"no invoice", func(p *Payment) { p.Invoice = "" }},
		{"unknown kind", func(p *Payment) { p.Kind = "gift" }},
		{"huge amount", func(p *Payment) { p.AmountMsat = MaxBudgetSats*1000 + 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPayment(h, 10, "a")
			tt.edit(p)
			if _, err := s.ReservePayment(t.Context(), p); !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
}

func TestJournalSurvivesReopen(t *testing.T) {
	opts := diskOptions(t)
	s := openStore(t, opts)
	ctx := t.Context()
	_, h := newPreimage(t)
	p := testPayment(h, 42, "c.example")
	if _, err := s.ReservePayment(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkPaymentInFlight(ctx, h); err != nil {
		t.Fatal(err)
	}
	limits := BudgetLimits{PerPaymentSats: 5, PerDaySats: 6, PerDomainSats: 7, AllowDomains: []string{"*.example"}, DenyDomains: []string{"bad.example"}}
	if err := s.PutBudgetLimits(ctx, limits); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, opts)
	pend, err := s.PendingPayments(ctx)
	if err != nil || len(pend) != 1 {
		t.Fatalf("pending after reopen: %v %+v", err, pend)
	}
	got := pend[0]
	if !got.CreatedAt.Equal(p.CreatedAt) {
		t.Fatalf("created %v, was %v", got.CreatedAt, p.CreatedAt)
	}
	p.State, p.UpdatedAt, p.CreatedAt = PaymentInFlight, got.UpdatedAt, got.CreatedAt
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", *p) {
		t.Fatalf("after reopen\n got %+v\nwant %+v", got, *p)
	}
	l, found, err := s.BudgetLimits(ctx)
	if err != nil || !found || l.PerDomainSats != 7 || l.AllowDomains[0] != "*.example" || l.DenyDomains[0] != "bad.example" || l.UpdatedAt.IsZero() {
		t.Fatalf("limits after reopen: %v %v %+v", err, found, l)
	}
}

func TestBudgetLimitsValidate(t *testing.T) {
	s := openStore(t, Options{})
	for _, l := range []BudgetLimits{
		{PerDaySats: -1},
		{PerPaymentSats: MaxBudgetSats + 1},
		{AllowDomains: []string{""}},
		{DenyDomains: []string{"a\x00b"}},
	} {
		if err := s.PutBudgetLimits(t.Context(), l); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", l, err)
		}
	}
	l, found, err := s.BudgetLimits(t.Context())
	if err != nil || found || l.PerPaymentSats != DefaultPerPaymentSats || l.PerDaySats != DefaultPerDaySats {
		t.Fatalf("nothing stored: %v %v %+v, want the defaults", found, err, l)
	}
	// The defaults apply: no budget stored is not an unlimited one.
	_, h := newPreimage(t)
	if _, err := s.ReservePayment(t.Context(), testPayment(h, DefaultPerPaymentSats+1, "a")); !errors.Is(err, ErrBudgetExceeded) {
		t.Fatalf("over the default per-payment limit: %v", err)
	}
}

func TestDecodePaymentTruncated(t *testing.T) {
	pre, h := newPreimage(t)
	p := testPayment(h, 7, "d")
	p.State, p.Preimage, p.Attempts, p.FailureReason = PaymentSucceeded, pre, 2, "r"
	p.CreatedAt, p.BudgetDay = time.Unix(1_700_000_000, 5).UTC(), dayStart(19_000)
	k := paymentKey(h)
	v := encodePayment(p)
	for n := range len(v) {
		if _, err := decodePayment(k, v[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("decoding %d of %d bytes: %v", n, len(v), err)
		}
	}
	got, err := decodePayment(k, v)
	if err != nil || fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", *p) {
		t.Fatalf("round trip: %v\n got %+v\nwant %+v", err, got, p)
	}
	if _, err := decodePayment(paymentKey(lntypes.Hash{9}), v); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("hash mismatch: %v", err)
	}
}

func FuzzDecodePayment(f *testing.F) {
	pre, h := newPreimage(f)
	p := testPayment(h, 7, "d")
	p.State, p.Preimage = PaymentSucceeded, pre
	f.Add(encodePayment(p))
	f.Add([]byte{paymentFormat})
	f.Add(encodeBudgetLimits(BudgetLimits{PerDaySats: 1, AllowDomains: []string{"a"}}))
	k := paymentKey(h)
	f.Fuzz(func(t *testing.T, v []byte) {
		got, err := decodePayment(k, v)
		if err != nil {
			return
		}
		again, err := decodePayment(k, encodePayment(got))
		if err != nil || fmt.Sprintf("%+v", *again) != fmt.Sprintf("%+v", *got) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeBudgetLimits(f *testing.F) {
	f.Add(encodeBudgetLimits(BudgetLimits{PerPaymentSats: 1, PerDaySats: 2, PerDomainSats: 3, AllowDomains: []string{"a.b", "*.c"}, DenyDomains: []string{"x"}}))
	f.Add([]byte{budgetLimitsFormat, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	k := []byte(keyBudgetLimits)
	f.Fuzz(func(t *testing.T, v []byte) {
		got, err := decodeBudgetLimits(k, v)
		if err != nil {
			return
		}
		again, err := decodeBudgetLimits(k, encodeBudgetLimits(got))
		if err != nil || fmt.Sprintf("%+v", again) != fmt.Sprintf("%+v", got) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// BenchmarkPaymentJournal measures the journal's share of one payment:
// reserve (entry + budget), mark in flight, complete with a token; three
// durable transactions on disk.
func BenchmarkPaymentJournal(b *testing.B) {
	s := openStore(b, diskOptions(b))
	ctx := b.Context()
	if err := s.PutBudgetLimits(ctx, BudgetLimits{}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		pre, h := newPreimage(b)
		p := testPayment(h, 50, fmt.Sprintf("d%d.example", i%8))
		if _, err := s.ReservePayment(ctx, p); err != nil {
			b.Fatal(err)
		}
		if err := s.MarkPaymentInFlight(ctx, h); err != nil {
			b.Fatal(err)
		}
		tok := &Token{Origin: p.Origin, Scope: fmt.Sprintf("/x/%d", i), Macaroon: p.Macaroon}
		if _, _, err := s.CompletePayment(ctx, h, PaymentOutcome{Succeeded: true, Preimage: pre, FeeMsat: 1000}, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// TestUnapprovedCap: payments no person approved share a rolling hour's
// cap; approved ones do not count; a failed payment gives its share back
// and a succeeded one keeps what it spent; an hour later the cap is free.
func TestUnapprovedCap(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	s := openStore(t, Options{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	ctx := t.Context()
	if err := s.PutBudgetLimits(ctx, BudgetLimits{UnapprovedPerHourSats: 150}); err != nil {
		t.Fatal(err)
	}
	reserve := func(amt int64, approved bool) (lntypes.Hash, error) {
		_, h := newPreimage(t)
		p := testPayment(h, amt, "a")
		p.Approved = approved
		_, err := s.ReservePayment(ctx, p)
		return h, err
	}
	var be *BudgetError
	h1, err := reserve(60, false) // 70 with the fee limit
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reserve(60, false); err != nil { // 140
		t.Fatal(err)
	}
	if _, err := reserve(10, false); !errors.As(err, &be) || be.Limit != LimitUnapproved || be.SpentMsat != 140_000 {
		t.Fatalf("over the cap: %v", err)
	}
	if err := s.CheckBudget(ctx, 11_000, 0, "a", true); !errors.As(err, &be) || be.Limit != LimitUnapproved {
		t.Fatalf("check over the cap: %v", err)
	}
	if _, err := reserve(60, true); err != nil {
		t.Fatalf("an approved payment: %v", err)
	}
	if _, _, err := s.CompletePayment(ctx, h1, PaymentOutcome{FailureReason: "no_route"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := reserve(60, false); err != nil { // 70 given back
		t.Fatalf("after a failure: %v", err)
	}
	mu.Lock()
	now = now.Add(59 * time.Minute)
	mu.Unlock()
	if _, err := reserve(1, false); !errors.As(err, &be) || be.Limit != LimitUnapproved {
		t.Fatalf("59 minutes on: %v", err)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if _, err := reserve(60, false); err != nil {
		t.Fatalf("an hour on: %v", err)
	}
}

// TestCompleteRecordsDespiteBadToken: a succeeded payment is recorded,
// and its reservation settled, even when its token cannot be cached
// (before, CompletePayment failed and the payment stayed in flight for
// ever, holding its budget).
func TestCompleteRecordsDespiteBadToken(t *testing.T) {
	s := openStore(t, Options{})
	ctx := t.Context()
	pre, h := newPreimage(t)
	if _, err := s.ReservePayment(ctx, testPayment(h, 10, "a")); err != nil {
		t.Fatal(err)
	}
	bad := &Token{Origin: "https://a", Scope: "/x\x00y", Macaroon: "AgEEbDQwMg"}
	p, changed, err := s.CompletePayment(ctx, h, PaymentOutcome{Succeeded: true, Preimage: pre, FeeMsat: 1000}, bad)
	if err != nil || !changed || p.State != PaymentSucceeded {
		t.Fatalf("complete: %+v %v %v", p, changed, err)
	}
	if toks, err := s.ListTokens(ctx); err != nil || len(toks) != 0 {
		t.Fatalf("tokens %v %v, want none", toks, err)
	}
	wantCounter(t, "day", usage(t, s, time.Now()).Total, 11_000, 0)
}
