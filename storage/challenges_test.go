package storage

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

var t0 = time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)

func TestPutChallenge(t *testing.T) {
	s := openStore(t, Options{Now: func() time.Time { return t0 }})
	ctx := t.Context()

	c := fullChallenge(t, time.Time{})
	c.ExpiresAt = t0.Add(time.Hour)
	if err := s.PutChallenge(ctx, c); err != nil {
		t.Fatal(err)
	}
	if !c.CreatedAt.Equal(t0) || c.State != StatePending {
		t.Errorf("defaults not filled in: CreatedAt %v State %q", c.CreatedAt, c.State)
	}
	got, err := s.Challenge(ctx, c.PaymentHash)
	if err != nil {
		t.Fatal(err)
	}
	assertChallenge(t, got, c)

	if err := s.PutChallenge(ctx, fullChallengeWithHash(t, c.PaymentHash)); !errors.Is(err, ErrExists) {
		t.Errorf("PutChallenge over an existing hash: %v, want ErrExists", err)
	}
	if _, err := s.Challenge(ctx, randomHash(t)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Challenge of an unknown hash: %v, want ErrNotFound", err)
	}

	invalid := []struct {
		name   string
		mutate func(*Challenge)
	}{
		{"zero hash", func(c *Challenge) { c.PaymentHash = lntypes.Hash{} }},
		{"settled", func(c *Challenge) { c.State = StateSettled }},
		{"negative price", func(c *Challenge) { c.PriceSats = -1 }},
		{"already paid", func(c *Challenge) { c.AmountPaidMsat = 1 }},
		{"settle index", func(c *Challenge) { c.SettleIndex = 1 }},
		{"expiry out of range", func(c *Challenge) { c.ExpiresAt = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) }},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			c := fullChallenge(t, t0)
			tt.mutate(c)
			if err := s.PutChallenge(ctx, c); !errors.Is(err, ErrInvalid) {
				t.Errorf("PutChallenge: %v, want ErrInvalid", err)
			}
		})
	}
	st, err := s.Stats(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Total.Created != 1 {
		t.Errorf("Created = %d after one successful put, want 1", st.Total.Created)
	}
}

func fullChallengeWithHash(t *testing.T, h lntypes.Hash) *Challenge {
	t.Helper()
	c := fullChallenge(t, t0)
	c.PaymentHash = h
	return c
}

func TestChallengeStateDerived(t *testing.T) {
	clk := newClock(t0)
	s := openStore(t, Options{Now: clk.Now})
	ctx := t.Context()

	expiring := fullChallenge(t, t0) // expires at t0+10m
	forever := fullChallenge(t, t0)
	forever.ExpiresAt = time.Time{}
	paid := fullChallenge(t, t0)
	canceled := fullChallenge(t, t0)
	for _, c := range []*Challenge{expiring, forever, paid, canceled} {
		if err := s.PutChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Settle(ctx, Settlement{PaymentHash: paid.PaymentHash, AmountPaidMsat: 21000, SettleIndex: 1}); err != nil {
		t.Fatal(err)
	}
	if changed, err := s.CancelChallenge(ctx, canceled.PaymentHash); err != nil || !changed {
		t.Fatalf("CancelChallenge = %v, %v", changed, err)
	}
	if changed, err := s.CancelChallenge(ctx, paid.PaymentHash); err != nil || changed {
		t.Fatalf("CancelChallenge of a settled challenge = %v, %v", changed, err)
	}
	if _, err := s.CancelChallenge(ctx, randomHash(t)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("CancelChallenge of an unknown hash: %v", err)
	}

	tests := []struct {
		at   time.Time
		c    *Challenge
		want ChallengeState
	}{
		{t0.Add(10 * time.Minute), expiring, StatePending}, // ExpiresAt itself is still valid
		{t0.Add(11 * time.Minute), expiring, StateExpired},
		{t0.Add(24 * time.Hour), forever, StatePending},
		{t0.Add(24 * time.Hour), paid, StateSettled},
		{t0.Add(24 * time.Hour), canceled, StateCanceled},
	}
	for _, tt := range tests {
		clk.Set(tt.at)
		got, err := s.Challenge(ctx, tt.c.PaymentHash)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != tt.want {
			t.Errorf("at %v: state %q, want %q", tt.at, got.State, tt.want)
		}
	}
}

func TestListChallenges(t *testing.T) {
	clk := newClock(t0)
	s := openStore(t, Options{Now: clk.Now})
	ctx := t.Context()

	// 30 challenges a minute apart, alternating resources; every third
	// settled, the last 5 still pending, the rest expired by listing time.
	var all []*Challenge
	for i := range 30 {
		c := fullChallenge(t, t0.Add(time.Duration(i)*time.Minute))
		c.ExpiresAt = c.CreatedAt.Add(5 * time.Minute)
		if i%2 == 1 {
			c.Resource = "/api/other"
		}
		if err := s.PutChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
		all = append(all, c)
	}
	for i, c := range all {
		if i%3 == 0 {
			if _, err := s.Settle(ctx, Settlement{PaymentHash: c.PaymentHash, AmountPaidMsat: 1000, SettleIndex: uint64(i + 1)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	clk.Set(t0.Add(29*time.Minute + 30*time.Second)) // challenges 25..29 have not expired yet

	stateOf := func(i int) ChallengeState {
		switch {
		case i%3 == 0:
			return StateSettled
		case i >= 25:
			return StatePending
		}
		return StateExpired
	}
	// want returns the indexes (newest first) matching pred.
	want := func(pred func(i int) bool) []int {
		var out []int
		for i := len(all) - 1; i >= 0; i-- {
			if pred(i) {
				out = append(out, i)
			}
		}
		return out
	}
	tests := []struct {
		name   string
		filter ChallengeFilter
		want   []int
	}{
		{"all", ChallengeFilter{}, want(func(int) bool { return true })},
		{"settled", ChallengeFilter{State: StateSettled}, want(func(i int) bool { return stateOf(i) == StateSettled })},
		{"pending", ChallengeFilter{State: StatePending}, want(func(i int) bool { return stateOf(i) == StatePending })},
		{"expired", ChallengeFilter{State: StateExpired}, want(func(i int) bool { return stateOf(i) == StateExpired })},
		{"resource", ChallengeFilter{Resource: "/api/other"}, want(func(i int) bool { return i%2 == 1 })},
		{"resource and state", ChallengeFilter{Resource: "/api/weather", State: StateSettled},
			want(func(i int) bool { return i%2 == 0 && i%3 == 0 })},
		{"since", ChallengeFilter{Since: t0.Add(20 * time.Minute)}, want(func(i int) bool { return i >= 20 })},
		{"until is exclusive", ChallengeFilter{Until: t0.Add(10 * time.Minute)}, want(func(i int) bool { return i < 10 })},
		{"window", ChallengeFilter{Since: t0.Add(5 * time.Minute), Until: t0.Add(8 * time.Minute)},
			want(func(i int) bool { return i >= 5 && i < 8 })},
		{"nothing", ChallengeFilter{Since: t0.Add(time.Hour)}, nil},
	}
	for _, tt := range tests {
		for _, limit := range []int{0, 1, 4, 7} {
			t.Run(tt.name, func(t *testing.T) {
				f := tt.filter
				f.Limit = limit
				var got []int
				for pages := 0; ; pages++ {
					if pages > len(all)+1 {
						t.Fatal("pagination does not terminate")
					}
					page, next, err := s.ListChallenges(ctx, f)
					if err != nil {
						t.Fatal(err)
					}
					if limit > 0 && len(page) > limit {
						t.Fatalf("page of %d, limit %d", len(page), limit)
					}
					for _, c := range page {
						got = append(got, indexOf(t, all, c.PaymentHash))
						if want := stateOf(got[len(got)-1]); c.State != want {
							t.Errorf("listed state %q, want %q", c.State, want)
						}
					}
					if next == "" {
						break
					}
					f.After = next
				}
				if !equalInts(got, tt.want) {
					t.Errorf("limit %d: got %v, want %v", limit, got, tt.want)
				}
			})
		}
	}

	if _, _, err := s.ListChallenges(ctx, ChallengeFilter{State: "paid"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown state: %v, want ErrInvalid", err)
	}
	if _, _, err := s.ListChallenges(ctx, ChallengeFilter{After: "bogus"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad cursor: %v, want ErrInvalid", err)
	}
}

func indexOf(t *testing.T, all []*Challenge, h lntypes.Hash) int {
	t.Helper()
	for i, c := range all {
		if c.PaymentHash == h {
			return i
		}
	}
	t.Fatalf("listed an unknown challenge %s", h)
	return -1
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSettle(t *testing.T) {
	type step struct {
		name        string
		settle      *Settlement // else advance the cursor to advance
		advance     uint64
		wantChanged bool
		wantCursor  uint64
		wantSettled uint64
		wantRevenue int64
	}
	s := openStore(t, Options{Now: func() time.Time { return t0 }})
	ctx := t.Context()
	a, b := fullChallenge(t, t0), fullChallenge(t, t0)
	for _, c := range []*Challenge{a, b} {
		if err := s.PutChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	foreign := randomHash(t)
	steps := []step{
		{name: "settle a", settle: &Settlement{PaymentHash: a.PaymentHash, AmountPaidMsat: 21000, SettleIndex: 5},
			wantChanged: true, wantCursor: 5, wantSettled: 1, wantRevenue: 21000},
		{name: "settle a again", settle: &Settlement{PaymentHash: a.PaymentHash, AmountPaidMsat: 21000, SettleIndex: 5},
			wantCursor: 5, wantSettled: 1, wantRevenue: 21000},
		{name: "replay of a with a higher index", settle: &Settlement{PaymentHash: a.PaymentHash, AmountPaidMsat: 99, SettleIndex: 6},
			wantCursor: 6, wantSettled: 1, wantRevenue: 21000},
		{name: "foreign invoice advances cursor", settle: &Settlement{PaymentHash: foreign, AmountPaidMsat: 5, SettleIndex: 9},
			wantCursor: 9, wantSettled: 1, wantRevenue: 21000},
		{name: "b with a lower index keeps cursor", settle: &Settlement{PaymentHash: b.PaymentHash, AmountPaidMsat: 1000, SettleIndex: 3},
			wantChanged: true, wantCursor: 9, wantSettled: 2, wantRevenue: 22000},
		{name: "advance", advance: 12, wantCursor: 12, wantSettled: 2, wantRevenue: 22000},
		{name: "advance backwards", advance: 4, wantCursor: 12, wantSettled: 2, wantRevenue: 22000},
	}
	for _, st := range steps {
		var changed bool
		var err error
		if st.settle != nil {
			changed, err = s.Settle(ctx, *st.settle)
		} else {
			err = s.AdvanceSettleCursor(ctx, st.advance)
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if changed != st.wantChanged {
			t.Errorf("%s: changed = %v, want %v", st.name, changed, st.wantChanged)
		}
		if cur, err := s.SettleCursor(ctx); err != nil || cur != st.wantCursor {
			t.Errorf("%s: cursor = %d, %v; want %d", st.name, cur, err, st.wantCursor)
		}
		stats, err := s.Stats(ctx, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if stats.Total.Settled != st.wantSettled || stats.Total.RevenueMsat != st.wantRevenue {
			t.Errorf("%s: settled %d revenue %d, want %d %d", st.name,
				stats.Total.Settled, stats.Total.RevenueMsat, st.wantSettled, st.wantRevenue)
		}
	}
	got, err := s.Challenge(ctx, a.PaymentHash)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateSettled || got.AmountPaidMsat != 21000 || got.SettleIndex != 5 || !got.SettledAt.Equal(t0) {
		t.Errorf("settled challenge = %+v; the first settlement must stick", got)
	}
	if _, err := s.Settle(ctx, Settlement{PaymentHash: b.PaymentHash, AmountPaidMsat: -1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative amount: %v, want ErrInvalid", err)
	}
}

func TestIssueChallenge(t *testing.T) {
	s := openStore(t, Options{Now: func() time.Time { return t0 }})
	ctx := t.Context()
	key := [32]byte{9, 9, 9}

	c := fullChallenge(t, t0)
	c.ExpiresAt = t0.Add(time.Hour)
	if err := s.IssueChallenge(ctx, c, key, &Idempotency{Key: "create/x", TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.RootKey(ctx, c.TokenID); err != nil || got != key {
		t.Fatalf("root key: %x %v", got, err)
	}
	if got, err := s.Challenge(ctx, c.PaymentHash); err != nil {
		t.Fatal(err)
	} else {
		assertChallenge(t, got, c)
	}
	if h, ok, err := s.Idempotency(ctx, "create/x"); err != nil || !ok || h != c.PaymentHash {
		t.Fatalf("idempotency: %v %v %v", h, ok, err)
	}

	// A taken token id or payment hash writes nothing at all.
	dup := fullChallenge(t, t0)
	dup.TokenID = c.TokenID
	if err := s.IssueChallenge(ctx, dup, key, &Idempotency{Key: "create/y", TTL: time.Minute}); !errors.Is(err, ErrExists) {
		t.Fatalf("reused token id: %v", err)
	}
	if _, err := s.Challenge(ctx, dup.PaymentHash); !errors.Is(err, ErrNotFound) {
		t.Fatalf("challenge written despite the failure: %v", err)
	}
	if _, ok, _ := s.Idempotency(ctx, "create/y"); ok {
		t.Fatal("idempotency entry written despite the failure")
	}
	if err := s.IssueChallenge(ctx, fullChallenge(t, t0), key, &Idempotency{Key: "", TTL: time.Minute}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty idempotency key: %v", err)
	}
	st, err := s.Stats(ctx, time.Time{}, time.Time{})
	if err != nil || st.Total.Created != 1 {
		t.Fatalf("created counter %d %v", st.Total.Created, err)
	}
}

// TestIssueChallengeGroupCommit: concurrent issues are committed together
// and each still gets its own answer: distinct challenges all succeed,
// and of several racing for one payment hash or one token id exactly one
// wins while the others get ErrExists and write nothing.
func TestIssueChallengeGroupCommit(t *testing.T) {
	s := openStore(t, DefaultOptions(t.TempDir()))
	ctx := t.Context()
	const n = 64
	var wg sync.WaitGroup
	errs := make([]error, n)
	chs := make([]*Challenge, n)
	for i := range n {
		chs[i] = fullChallenge(t, t0)
		chs[i].ExpiresAt = t0.Add(time.Hour)
	}
	// Racers: the same payment hash under other token ids, and the same
	// token id under other payment hashes.
	sameHash, sameToken := fullChallenge(t, t0), fullChallenge(t, t0)
	sameHash.ExpiresAt, sameToken.ExpiresAt = t0.Add(time.Hour), t0.Add(time.Hour)
	const racers = 8
	hashWins, tokenWins := make([]error, racers), make([]error, racers)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.IssueChallenge(ctx, chs[i], [32]byte{byte(i)}, &Idempotency{Key: fmt.Sprintf("k%d", i), TTL: time.Minute})
		}()
	}
	for i := range racers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			c := *sameHash
			c.TokenID[0] = byte(i) // distinct token ids, one payment hash
			hashWins[i] = s.IssueChallenge(ctx, &c, [32]byte{1}, nil)
		}()
		go func() {
			defer wg.Done()
			c := *sameToken
			c.PaymentHash[0] ^= byte(i + 1) // distinct hashes, one token id
			tokenWins[i] = s.IssueChallenge(ctx, &c, [32]byte{2}, nil)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("issue %d: %v", i, err)
		}
		if _, err := s.RootKey(ctx, chs[i].TokenID); err != nil {
			t.Fatalf("root key %d: %v", i, err)
		}
		if h, ok, _ := s.Idempotency(ctx, fmt.Sprintf("k%d", i)); !ok || h != chs[i].PaymentHash {
			t.Fatalf("idempotency %d", i)
		}
	}
	for name, results := range map[string][]error{"payment hash": hashWins, "token id": tokenWins} {
		won := 0
		for _, err := range results {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ErrExists):
				t.Fatalf("%s racer: %v", name, err)
			}
		}
		if won != 1 {
			t.Fatalf("%d racers for one %s won, want exactly 1", won, name)
		}
	}
	st, err := s.Stats(ctx, time.Time{}, time.Time{})
	if err != nil || st.Total.Created != n+2 {
		t.Fatalf("created %d, want %d (%v)", st.Total.Created, n+2, err)
	}
}

func TestIssueChallengeAfterClose(t *testing.T) {
	opts := DefaultOptions(t.TempDir())
	onTestBackend(t, &opts)
	s, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	c := fullChallenge(t, t0)
	if err := s.IssueChallenge(t.Context(), c, [32]byte{1}, nil); err == nil {
		t.Fatal("issue on a closed store succeeded")
	}
}
