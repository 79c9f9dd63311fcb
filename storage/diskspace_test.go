package storage

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDiskFullGuard(t *testing.T) {
	badgerOnly(t)
	dir := filepath.Join(t.TempDir(), "db")
	opts := DefaultOptions(dir)
	s := openStore(t, opts)
	c := fullChallenge(t, t0)
	c.ExpiresAt = t0.Add(time.Hour)
	if err := s.IssueChallenge(t.Context(), c, [32]byte{1}, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// A reserve larger than any disk: every write is refused, reads work.
	opts.MinFreeBytes = 1 << 62
	s = openStore(t, opts)
	err := s.PutChallenge(t.Context(), fullChallenge(t, t0))
	if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "free disk space") {
		t.Fatalf("write on a 'full' disk: %v", err)
	}
	if _, err := s.RootKey(t.Context(), c.TokenID); err != nil {
		t.Fatalf("read on a full disk: %v", err)
	}
	if _, err := s.Challenge(t.Context(), c.PaymentHash); err != nil {
		t.Fatal(err)
	}
	// Space returns: the guard asks again and writes resume.
	s.space.minFree = 1
	time.Sleep(2 * spaceCheckEvery) // the guard's own refresh interval
	if err := s.PutChallenge(t.Context(), fullChallenge(t, t0)); err != nil {
		t.Fatalf("after space returned: %v", err)
	}
}
