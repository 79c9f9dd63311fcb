package storage

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBackupRestore(t *testing.T) {
	badgerOnly(t)
	ctx := t.Context()
	src := openStore(t, DefaultOptions(filepath.Join(t.TempDir(), "src")))
	c := fullChallenge(t, t0)
	c.ExpiresAt = t0.Add(time.Hour)
	key := [32]byte{1, 2, 3}
	if err := src.IssueChallenge(ctx, c, key, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Settle(ctx, Settlement{PaymentHash: c.PaymentHash, AmountPaidMsat: 5000, SettleIndex: 7}); err != nil {
		t.Fatal(err)
	}
	if err := src.Revoke(ctx, [32]byte{4}, "abuse"); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := src.Backup(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	// The source keeps working after a backup.
	if _, err := src.RootKey(ctx, c.TokenID); err != nil {
		t.Fatal(err)
	}

	dst := DefaultOptions(filepath.Join(t.TempDir(), "dst"))
	if err := Restore(ctx, dst, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dst)
	if got, err := s.RootKey(ctx, c.TokenID); err != nil || got != key {
		t.Fatalf("root key after restore: %v", err)
	}
	got, err := s.Challenge(ctx, c.PaymentHash)
	if err != nil || got.State != StateSettled || got.AmountPaidMsat != 5000 {
		t.Fatalf("challenge after restore: %+v %v", got, err)
	}
	if cur, _ := s.SettleCursor(ctx); cur != 7 {
		t.Fatalf("cursor %d", cur)
	}
	if r, _ := s.IsRevoked(ctx, [32]byte{4}); !r {
		t.Fatal("revocation lost")
	}

	if err := Restore(ctx, dst, bytes.NewReader(buf.Bytes())); !errors.Is(err, ErrExists) {
		t.Fatalf("restore over a store: %v", err)
	}
	other := DefaultOptions(filepath.Join(t.TempDir(), "x"))
	if err := Restore(ctx, other, strings.NewReader("garbage that is long enough")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("garbage: %v", err)
	}
}
