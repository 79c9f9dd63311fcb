package gate

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
	"golang.org/x/time/rate"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/storage"
)

func TestLimiterSet(t *testing.T) {
	s := newLimiterSet[netip.Addr](addrShard)
	now := time.Unix(1_700_000_000, 0)
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	// 2/s, burst 3: three at once, then one every 500 ms.
	for i := range 3 {
		if ok, _ := s.allow(a, now, 2, 3); !ok {
			t.Fatalf("request %d refused within the burst", i)
		}
	}
	ok, wait := s.allow(a, now, 2, 3)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("4th: ok=%v wait=%v, want refused for 500ms", ok, wait)
	}
	if ok, _ := s.allow(b, now, 2, 3); !ok {
		t.Fatal("another client was limited")
	}
	if ok, _ := s.allow(a, now.Add(499*time.Millisecond), 2, 3); ok {
		t.Fatal("allowed before the bucket refilled")
	}
	if ok, _ := s.allow(a, now.Add(500*time.Millisecond), 2, 3); !ok {
		t.Fatal("refused after the bucket refilled")
	}
	// A new limit applies to an existing bucket.
	if ok, _ := s.allow(a, now.Add(500*time.Millisecond), rate.Inf, 0); !ok {
		t.Fatal("infinite limit refused")
	}
}

func TestLimiterSetSweeps(t *testing.T) {
	s := newLimiterSet[l402.TokenID](tokenShard)
	now := time.Unix(1_700_000_000, 0)
	n := numShards * (sweepAt + 10)
	for i := range n {
		var id l402.TokenID
		id[0], id[1], id[2] = byte(i), byte(i>>8), byte(i>>16)
		s.allow(id, now, 1, 1)
	}
	if got := s.size(); got != n {
		t.Fatalf("size %d, want %d", got, n)
	}
	// An hour later every bucket is full again: the next new key in each
	// shard sweeps it.
	later := now.Add(time.Hour)
	for i := range numShards {
		var id l402.TokenID
		id[0], id[31] = byte(i), 0xff
		s.allow(id, later, 1, 1)
	}
	if got := s.size(); got != numShards {
		t.Fatalf("size after sweep %d, want %d", got, numShards)
	}
}

func TestClientKey(t *testing.T) {
	a := clientKey(netip.MustParseAddr("2001:db8:1:2:aaaa::1"))
	b := clientKey(netip.MustParseAddr("2001:db8:1:2:bbbb::2"))
	c := clientKey(netip.MustParseAddr("2001:db8:1:3::1"))
	if a != b || a == c {
		t.Fatalf("IPv6 /64 grouping: %v %v %v", a, b, c)
	}
	if k := clientKey(netip.MustParseAddr("::ffff:10.1.2.3")); k != netip.MustParseAddr("10.1.2.3") {
		t.Fatalf("mapped IPv4 key %v", k)
	}
}

func TestFreeCounter(t *testing.T) {
	f := newFreeCounter()
	now := time.Unix(1_700_000_000, 0)
	k := freeKey{"svc", netip.MustParseAddr("10.0.0.1")}
	for i := range 3 {
		if !f.take(k, now, 3, time.Hour) {
			t.Fatalf("free request %d refused", i)
		}
	}
	if f.take(k, now.Add(time.Minute), 3, time.Hour) {
		t.Fatal("a 4th free request in the window")
	}
	if !f.take(freeKey{"other", k.client}, now, 3, time.Hour) {
		t.Fatal("another service's freebies were used up")
	}
	if !f.take(k, now.Add(time.Hour), 3, time.Hour) {
		t.Fatal("the window did not reset")
	}
}

type fakeLookup map[lntypes.Hash]storage.ChallengeState

func (f fakeLookup) Challenge(_ context.Context, h lntypes.Hash) (*storage.Challenge, error) {
	st, ok := f[h]
	if !ok {
		return nil, storage.ErrNotFound
	}
	return &storage.Challenge{PaymentHash: h, State: st}, nil
}

func TestPendingSet(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	lookup := fakeLookup{}
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	p := newPendingSet(2, -1, lookup)
	h1, h2 := lntypes.Hash{1}, lntypes.Hash{2}
	for i, h := range []lntypes.Hash{h1, h2} {
		if why, _ := p.reserve(ctx, a, now); why != pendingOK {
			t.Fatalf("reservation %d refused", i)
		}
		p.add(a, h, now.Add(time.Duration(i+1)*10*time.Minute))
		lookup[h] = storage.StatePending
	}
	why, wait := p.reserve(ctx, b, now)
	if why != pendingNodeFull || wait != 10*time.Minute {
		t.Fatalf("over the cap: why=%v wait=%v, want node full for 10m", why, wait)
	}
	// A failed issue gives its slot back.
	lookup[h1] = storage.StateSettled
	if why, _ := p.reserve(ctx, b, now.Add(2*time.Second)); why != pendingOK {
		t.Fatal("a paid invoice still counted")
	}
	p.release(b)
	if got := p.outstanding(); got != 1 {
		t.Fatalf("outstanding %d, want 1", got)
	}
	// Expired invoices stop counting without a lookup.
	q := newPendingSet(1, -1, nil)
	q.reserve(ctx, a, now)
	q.add(a, h1, now.Add(time.Minute))
	if why, _ := q.reserve(ctx, a, now.Add(30*time.Second)); why == pendingOK {
		t.Fatal("cap ignored")
	}
	if why, _ := q.reserve(ctx, a, now.Add(time.Minute)); why != pendingOK {
		t.Fatal("an expired invoice still counted")
	}
	// Unlimited.
	u := newPendingSet(-1, -1, nil)
	for range 10 {
		if why, _ := u.reserve(ctx, a, now); why != pendingOK {
			t.Fatal("unlimited set refused")
		}
	}
}

func TestPendingSetShare(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	p := newPendingSet(-1, 2, nil) // no node cap, a share of 2
	for i := range 2 {
		if why, _ := p.reserve(ctx, a, now); why != pendingOK {
			t.Fatalf("reservation %d refused", i)
		}
		p.add(a, lntypes.Hash{byte(i)}, now.Add(time.Duration(i+1)*time.Minute))
	}
	if why, wait := p.reserve(ctx, a, now); why != pendingClientFull || wait != time.Minute {
		t.Fatalf("over the share: %v %v", why, wait)
	}
	if why, _ := p.reserve(ctx, b, now); why != pendingOK {
		t.Fatal("another client refused")
	}
	p.release(b)
	if why, _ := p.reserve(ctx, a, now.Add(time.Minute)); why != pendingOK {
		t.Fatal("an expired invoice still counted in the share")
	}
	if len(p.clients) != 1 || p.clients[a] != 2 {
		t.Fatalf("per-client counts %v", p.clients)
	}
}
