package storage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/l402d/l402d/l402"
)

// TestIssueChallengeCanceledCaller: whenever the caller's context ends
// around the group commit, what was committed is verifiable. A challenge
// that is stored (and so can be handed back by an idempotent retry and
// paid) must have its root key found by RootKey, also while the cache
// claims to hold every key.
func TestIssueChallengeCanceledCaller(t *testing.T) {
	for _, stage := range []issueStage{0, issueBatched, issueCommitted} {
		name := map[issueStage]string{0: "before hand-off", issueBatched: "batched", issueCommitted: "committed"}[stage]
		t.Run(name, func(t *testing.T) {
			s := openStore(t, Options{Now: func() time.Time { return t0 }})
			if !s.keys.complete.Load() && !s.Shared() {
				t.Fatal("an empty store's cache is not complete")
			}
			ctx, cancel := context.WithCancel(t.Context())
			returned := make(chan struct{})
			c := fullChallenge(t, t0)
			if stage == 0 {
				cancel()
			} else {
				s.issueHook = func(at issueStage) {
					if at == stage {
						cancel()
						<-returned // the caller has given up waiting
					}
				}
			}
			key := [l402.RootKeySize]byte{7, 7, 7}
			err := s.IssueChallenge(ctx, c, key, &Idempotency{Key: "create/retry", TTL: time.Minute})
			close(returned)
			if stage != 0 && !errors.Is(err, context.Canceled) {
				t.Fatalf("IssueChallenge: %v, want context.Canceled", err)
			}
			// A later issue is a barrier: the committer handles requests
			// in order, so the canceled one is finished when it returns.
			if err := s.IssueChallenge(t.Context(), fullChallenge(t, t0), [l402.RootKeySize]byte{1}, nil); err != nil {
				t.Fatal(err)
			}
			_, cerr := s.Challenge(t.Context(), c.PaymentHash)
			stored := cerr == nil
			if stage != 0 && !stored {
				t.Fatalf("challenge handed to the committer was not stored: %v", cerr)
			}
			got, kerr := s.RootKey(t.Context(), c.TokenID)
			switch {
			case stored && kerr != nil:
				t.Fatalf("challenge is stored (a retry gets it back) but RootKey: %v", kerr)
			case stored && got != key:
				t.Fatalf("RootKey = %x, want %x", got, key)
			case !stored && !errors.Is(kerr, l402.ErrUnknownToken):
				t.Fatalf("nothing stored but RootKey: %x %v", got, kerr)
			}
		})
	}
}
