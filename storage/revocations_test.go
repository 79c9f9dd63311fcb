package storage

import (
	"testing"
	"time"

	"github.com/l402d/l402d/l402"
)

func TestRevocations(t *testing.T) {
	clk := newClock(t0)
	s := openStore(t, Options{Now: clk.Now})
	ctx := t.Context()
	a, b, never := randomID(t), randomID(t), randomID(t)

	if ok, err := s.IsRevoked(ctx, a); err != nil || ok {
		t.Fatalf("IsRevoked before any revocation = %v, %v", ok, err)
	}
	steps := []struct {
		id     l402.TokenID
		reason string
		at     time.Time
	}{
		{b, "leaked", t0.Add(time.Minute)},
		{a, "refunded", t0.Add(2 * time.Minute)},
		{b, "second time", t0.Add(3 * time.Minute)}, // no-op: the first record stays
	}
	for _, st := range steps {
		clk.Set(st.at)
		if err := s.Revoke(ctx, st.id, st.reason); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		id   l402.TokenID
		want bool
	}{{a, true}, {b, true}, {never, false}} {
		if ok, err := s.IsRevoked(ctx, tt.id); err != nil || ok != tt.want {
			t.Errorf("IsRevoked(%s) = %v, %v; want %v", tt.id, ok, err, tt.want)
		}
	}
	got, err := s.Revocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Revocation{{b, "leaked", t0.Add(time.Minute)}, {a, "refunded", t0.Add(2 * time.Minute)}}
	if len(got) != len(want) {
		t.Fatalf("Revocations = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].TokenID != want[i].TokenID || got[i].Reason != want[i].Reason || !got[i].RevokedAt.Equal(want[i].RevokedAt) {
			t.Errorf("Revocations[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}
