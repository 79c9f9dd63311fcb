package storage

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/l402d/l402d/l402"
	"github.com/lightningnetwork/lnd/lntypes"
)

// quietLogger drops Badger's warnings so test output stays readable.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openStore opens a store with opts (in memory if opts has no Dir) and
// closes it when the test ends.
func openStore(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Dir == "" {
		opts.InMemory = true
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	onTestBackend(t, &opts)
	s, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// diskOptions returns options for a fresh on-disk store in a temp dir.
func diskOptions(t testing.TB) Options {
	t.Helper()
	o := DefaultOptions(t.TempDir())
	o.Logger = quietLogger()
	return o
}

// reopen closes s and opens the same directory again.
func reopen(t testing.TB, s *Store, opts Options) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openStore(t, opts)
}

func randomHash(t testing.TB) lntypes.Hash {
	t.Helper()
	var h lntypes.Hash
	if _, err := rand.Read(h[:]); err != nil {
		t.Fatal(err)
	}
	return h
}

func randomID(t testing.TB) l402.TokenID {
	t.Helper()
	id, err := l402.NewTokenID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// rawDelete deletes a key straight from the engine, bypassing the store.
func rawDelete(t testing.TB, s *Store, k []byte) {
	t.Helper()
	if err := s.db.Update(context.Background(), func(txn kvTxn) error { return txn.Delete(k) }); err != nil {
		t.Fatal(err)
	}
}

// rawSet writes a value straight into the engine, bypassing the store.
func rawSet(t testing.TB, s *Store, k, v []byte) {
	t.Helper()
	if err := s.db.Update(context.Background(), func(txn kvTxn) error { return txn.Set(k, v) }); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want error
	}{
		{"no dir", Options{}, ErrInvalid},
		{"short key", Options{Dir: t.TempDir(), EncryptionKey: make([]byte, 15)}, ErrEncryptionKey},
		{"long key", Options{Dir: t.TempDir(), EncryptionKey: make([]byte, 33)}, ErrEncryptionKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Logger = quietLogger()
			s, err := Open(t.Context(), tt.opts)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	badgerOnly(t)
	opts := diskOptions(t)
	openStore(t, opts)
	s, err := Open(t.Context(), opts)
	if err == nil {
		s.Close()
		t.Fatal("second Open on the same directory succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "another l402d") {
		t.Errorf("error does not hint at another l402d: %v", err)
	}
}

func TestCloseTwice(t *testing.T) {
	s := openStore(t, diskOptions(t)) // Cleanup closes it again
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestSchema(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, s *Store)
	}{
		{"newer version", func(t *testing.T, s *Store) {
			rawSet(t, s, []byte(keySchema), binary.BigEndian.AppendUint32(nil, schemaVersion+1))
		}},
		{"older version", func(t *testing.T, s *Store) {
			rawSet(t, s, []byte(keySchema), binary.BigEndian.AppendUint32(nil, 0))
		}},
		{"malformed", func(t *testing.T, s *Store) {
			rawSet(t, s, []byte(keySchema), []byte("one"))
		}},
		{"foreign data", func(t *testing.T, s *Store) {
			rawDelete(t, s, []byte(keySchema))
			rawSet(t, s, []byte("someone/else"), []byte("x"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := diskOptions(t)
			onTestBackend(t, &opts)
			s, err := Open(t.Context(), opts)
			if err != nil {
				t.Fatal(err)
			}
			tt.setup(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, err = Open(t.Context(), opts)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrSchema) {
				t.Fatalf("Open: %v, want ErrSchema", err)
			}
			t.Log(err)
		})
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	opts := diskOptions(t)
	clk := newClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	opts.Now = clk.Now
	s := openStore(t, opts)
	ctx := t.Context()

	ids := make(map[l402.TokenID][l402.RootKeySize]byte)
	for range 10 {
		id := randomID(t)
		key, err := s.NewRootKey(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		ids[id] = key
	}

	chs := []*Challenge{
		fullChallenge(t, clk.Now()),
		fullChallenge(t, clk.Now().Add(time.Hour)),
		fullChallenge(t, clk.Now().Add(25*time.Hour)),
	}
	for _, c := range chs {
		if err := s.PutChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	settle := Settlement{PaymentHash: chs[1].PaymentHash, AmountPaidMsat: 21_000, SettledAt: clk.Now().Add(2 * time.Hour), SettleIndex: 7}
	if _, err := s.Settle(ctx, settle); err != nil {
		t.Fatal(err)
	}
	chs[1].State, chs[1].SettledAt, chs[1].AmountPaidMsat, chs[1].SettleIndex = StateSettled, settle.SettledAt, settle.AmountPaidMsat, settle.SettleIndex
	if err := s.AdvanceSettleCursor(ctx, 9); err != nil {
		t.Fatal(err)
	}
	revoked := randomID(t)
	if err := s.Revoke(ctx, revoked, "leaked"); err != nil {
		t.Fatal(err)
	}
	statsBefore, err := s.Stats(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}

	s = reopen(t, s, opts)

	for id, want := range ids {
		got, err := s.RootKey(ctx, id)
		if err != nil || got != want {
			t.Errorf("RootKey(%s) = %x, %v; want %x", id, got, err, want)
		}
	}
	if got, want := s.keys.complete.Load(), !s.Shared(); got != want {
		t.Errorf("root key cache complete after reopen = %v, want %v (never on a shared store)", got, want)
	}
	for _, want := range chs {
		got, err := s.Challenge(ctx, want.PaymentHash)
		if err != nil {
			t.Fatal(err)
		}
		assertChallenge(t, got, want)
	}
	if cur, err := s.SettleCursor(ctx); err != nil || cur != 9 {
		t.Errorf("SettleCursor = %d, %v; want 9", cur, err)
	}
	if ok, _ := s.IsRevoked(ctx, revoked); !ok {
		t.Error("revocation lost")
	}
	revs, err := s.Revocations(ctx)
	if err != nil || len(revs) != 1 || revs[0].TokenID != revoked || revs[0].Reason != "leaked" ||
		!revs[0].RevokedAt.Equal(clk.Now()) {
		t.Errorf("Revocations = %+v, %v", revs, err)
	}
	statsAfter, err := s.Stats(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	assertStats(t, statsAfter, statsBefore)
	if want := (Counters{Created: 3, Settled: 1, RevenueMsat: 21_000}); statsAfter.Total != want {
		t.Errorf("Total = %+v, want %+v", statsAfter.Total, want)
	}
}

// fullChallenge returns a pending challenge with every field set.
func fullChallenge(t testing.TB, created time.Time) *Challenge {
	t.Helper()
	return &Challenge{
		PaymentHash: randomHash(t),
		TokenID:     randomID(t),
		Resource:    "/api/weather",
		Description: "one forecast",
		Service:     "weather",
		PriceSats:   21,
		Invoice:     "lnbcrt210n1p...",
		Macaroon:    "AgEEbHNhdAJCAAA=",
		ClientID:    "key_1",
		CreatedAt:   created,
		ExpiresAt:   created.Add(10 * time.Minute),
	}
}

func assertChallenge(t testing.TB, got, want *Challenge) {
	t.Helper()
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) ||
		!got.SettledAt.Equal(want.SettledAt) {
		t.Errorf("times = %v %v %v, want %v %v %v", got.CreatedAt, got.ExpiresAt, got.SettledAt,
			want.CreatedAt, want.ExpiresAt, want.SettledAt)
	}
	g, w := *got, *want
	g.CreatedAt, g.ExpiresAt, g.SettledAt = time.Time{}, time.Time{}, time.Time{}
	w.CreatedAt, w.ExpiresAt, w.SettledAt = time.Time{}, time.Time{}, time.Time{}
	if g != w {
		t.Errorf("challenge = %+v\nwant %+v", g, w)
	}
}

func TestCorruptValuesAreErrors(t *testing.T) {
	ctx := context.Background()
	id, h := randomID(t), randomHash(t)
	tests := []struct {
		name string
		key  []byte
		call func(s *Store) error
	}{
		{"root key", rootKeyKey(id), func(s *Store) error {
			_, err := s.RootKey(ctx, id)
			return err
		}},
		{"challenge", challengeKey(h), func(s *Store) error {
			_, err := s.Challenge(ctx, h)
			return err
		}},
		{"challenge settle", challengeKey(h), func(s *Store) error {
			_, err := s.Settle(ctx, Settlement{PaymentHash: h, SettleIndex: 1})
			return err
		}},
		{"index", byCreatedKey(time.Unix(1, 0), h), func(s *Store) error {
			_, _, err := s.ListChallenges(ctx, ChallengeFilter{})
			return err
		}},
		{"cursor", settleCursorKey(3), func(s *Store) error {
			_, err := s.SettleCursor(ctx)
			return err
		}},
		{"counters", aggTotalKey(0), func(s *Store) error {
			_, err := s.Stats(ctx, time.Time{}, time.Time{})
			return err
		}},
		{"idempotency", idempotencyKey("k"), func(s *Store) error {
			_, _, err := s.Idempotency(ctx, "k")
			return err
		}},
		{"revocation", revocationKey(id), func(s *Store) error {
			_, err := s.Revocations(ctx)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, Options{RootKeyCacheSize: -1})
			rawSet(t, s, tt.key, []byte{0xff})
			err := tt.call(s)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), fmtKey(tt.key)) {
				t.Errorf("error %q does not name key %s", err, fmtKey(tt.key))
			}
		})
	}
}

func TestCorruptValueFailsOpen(t *testing.T) {
	opts := diskOptions(t)
	s := openStore(t, opts)
	rawSet(t, s, revocationKey(randomID(t)), nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	onTestBackend(t, &opts)
	s, err := Open(t.Context(), opts)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded over a corrupt revocation")
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open: %v, want ErrCorrupt", err)
	}
}

func TestDecodeChallengeTruncated(t *testing.T) {
	c := fullChallenge(t, time.Now())
	c.State = StatePending
	k := challengeKey(c.PaymentHash)
	v := encodeChallenge(c)
	for n := range len(v) {
		if _, err := decodeChallenge(k, v[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("decoding %d of %d bytes: %v, want ErrCorrupt", n, len(v), err)
		}
	}
	if _, err := decodeChallenge(k, append(v, 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing byte: %v, want ErrCorrupt", err)
	}
	got, err := decodeChallenge(k, v)
	if err != nil {
		t.Fatal(err)
	}
	assertChallenge(t, got, c)
}

func FuzzDecodeChallenge(f *testing.F) {
	c := fullChallenge(f, time.Now())
	f.Add(encodeChallenge(c))
	f.Add([]byte{challengeFormat})
	f.Fuzz(func(t *testing.T, v []byte) {
		k := challengeKey(c.PaymentHash)
		got, err := decodeChallenge(k, v)
		if err != nil {
			return
		}
		// Whatever decodes must survive a round trip.
		again, err := decodeChallenge(k, encodeChallenge(got))
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		assertChallenge(t, again, got)
	})
}

func TestMeta(t *testing.T) {
	opts := diskOptions(t)
	onTestBackend(t, &opts)
	ctx := context.Background()
	s, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Meta(ctx, "node"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if err := s.PutMeta(ctx, "node", []byte("02ab")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutMeta(ctx, "", nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty name: %v", err)
	}
	s.Close()
	s, err = Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.Meta(ctx, "node"); err != nil || string(v) != "02ab" {
		t.Fatalf("after reopen: %q %v", v, err)
	}
}
