package storage

import (
	"errors"
	"testing"

	"github.com/l402d/l402d/l402"
)

func TestRootKeys(t *testing.T) {
	tests := []struct {
		name      string
		cacheSize int
	}{
		{"default cache", 0},
		{"tiny cache", 3},
		{"no cache", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, Options{RootKeyCacheSize: tt.cacheSize})
			ctx := t.Context()
			keys := make(map[l402.TokenID][l402.RootKeySize]byte)
			for range 50 {
				id := randomID(t)
				key, err := s.NewRootKey(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if key == ([l402.RootKeySize]byte{}) {
					t.Fatal("NewRootKey returned the zero key")
				}
				keys[id] = key
			}
			for id, want := range keys {
				got, err := s.RootKey(ctx, id)
				if err != nil || got != want {
					t.Fatalf("RootKey = %x, %v; want %x", got, err, want)
				}
				if _, err := s.NewRootKey(ctx, id); !errors.Is(err, ErrExists) {
					t.Fatalf("NewRootKey over an existing id: %v, want ErrExists", err)
				}
				if got, _ := s.RootKey(ctx, id); got != want {
					t.Fatal("failed NewRootKey replaced the key")
				}
			}
			if _, err := s.RootKey(ctx, randomID(t)); !errors.Is(err, l402.ErrUnknownToken) {
				t.Fatalf("RootKey of an unknown id: %v, want ErrUnknownToken", err)
			}
		})
	}
}

func TestRootKeyCacheBounded(t *testing.T) {
	s := openStore(t, Options{RootKeyCacheSize: cacheShards})
	for range 10 * cacheShards {
		if _, err := s.NewRootKey(t.Context(), randomID(t)); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for i := range s.keys.shards {
		n += len(s.keys.shards[i].m)
	}
	if n > cacheShards {
		t.Errorf("cache holds %d keys, bound is %d", n, cacheShards)
	}
	if s.keys.complete.Load() {
		t.Error("cache claims to be complete after evicting")
	}
}

func TestRootKeyCacheCompleteness(t *testing.T) {
	tests := []struct {
		name         string
		cacheSize    int
		stored       int
		wantComplete bool
	}{
		{"all fit", 1000, 100, true},
		{"too many", 2, 100, false},
		{"empty", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := diskOptions(t)
			opts.RootKeyCacheSize = tt.cacheSize
			s := openStore(t, opts)
			keys := make(map[l402.TokenID][l402.RootKeySize]byte)
			for range tt.stored {
				id := randomID(t)
				key, err := s.NewRootKey(t.Context(), id)
				if err != nil {
					t.Fatal(err)
				}
				keys[id] = key
			}
			s = reopen(t, s, opts)
			if got := s.keys.complete.Load(); got != (tt.wantComplete && !s.Shared()) {
				t.Errorf("complete = %v, want %v", got, tt.wantComplete)
			}
			for id, want := range keys {
				if got, err := s.RootKey(t.Context(), id); err != nil || got != want {
					t.Fatalf("RootKey after reopen = %x, %v; want %x", got, err, want)
				}
			}
			if _, err := s.RootKey(t.Context(), randomID(t)); !errors.Is(err, l402.ErrUnknownToken) {
				t.Fatalf("RootKey of an unknown id: %v, want ErrUnknownToken", err)
			}
		})
	}
}
