package gate

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
	"golang.org/x/time/rate"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/storage"
)

const (
	numShards = 16
	// sweepAt is the size from which a shard drops full (idle) buckets,
	// at most once per sweepEvery.
	sweepAt    = 256
	sweepEvery = 10 * time.Second
	// maxPerShard bounds a shard; past it, arbitrary buckets are dropped
	// (their clients start over with a full bucket).
	maxPerShard = 1 << 16
	// maxFreeClients bounds the freebie counters; past it, requests are
	// charged rather than the map grown.
	maxFreeClients = 1 << 18
)

// limiterSet is a token bucket per key (a client address or a token id),
// sharded so that concurrent requests of different clients rarely share
// a lock. A bucket that has refilled completely is the same as no bucket,
// so such buckets are dropped lazily.
type limiterSet[K comparable] struct {
	shards  [numShards]limiterShard[K]
	shardOf func(K) uint8
}

type limiterShard[K comparable] struct {
	mu        sync.Mutex
	m         map[K]*rate.Limiter
	nextSweep time.Time
}

func newLimiterSet[K comparable](shardOf func(K) uint8) *limiterSet[K] {
	s := &limiterSet[K]{shardOf: shardOf}
	for i := range s.shards {
		s.shards[i].m = map[K]*rate.Limiter{}
	}
	return s
}

// allow takes a token from key's bucket, creating it full at limit and
// burst. When the bucket is empty it returns false and how long until it
// holds a token again. An infinite limit always allows.
func (s *limiterSet[K]) allow(key K, now time.Time, limit rate.Limit, burst int) (bool, time.Duration) {
	if limit == rate.Inf {
		return true, 0
	}
	sh := &s.shards[s.shardOf(key)%numShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	lim, ok := sh.m[key]
	if !ok {
		sh.sweep(now)
		lim = rate.NewLimiter(limit, burst)
		sh.m[key] = lim
	} else if lim.Limit() != limit || lim.Burst() != burst {
		// The services file changed this service's limit.
		lim.SetLimitAt(now, limit)
		lim.SetBurstAt(now, burst)
	}
	if lim.AllowN(now, 1) {
		return true, 0
	}
	wait := time.Duration((1 - lim.TokensAt(now)) / float64(limit) * float64(time.Second))
	return false, max(wait, time.Millisecond)
}

// sweep drops full buckets when the shard has grown; the caller holds mu.
func (sh *limiterShard[K]) sweep(now time.Time) {
	if len(sh.m) < sweepAt || now.Before(sh.nextSweep) && len(sh.m) < maxPerShard {
		return
	}
	sh.nextSweep = now.Add(sweepEvery)
	for k, lim := range sh.m {
		if lim.TokensAt(now) >= float64(lim.Burst()) {
			delete(sh.m, k)
		}
	}
	for k := range sh.m {
		if len(sh.m) < maxPerShard {
			break
		}
		delete(sh.m, k)
	}
}

// size returns the number of buckets, for tests.
func (s *limiterSet[K]) size() int {
	n := 0
	for i := range s.shards {
		s.shards[i].mu.Lock()
		n += len(s.shards[i].m)
		s.shards[i].mu.Unlock()
	}
	return n
}

func tokenShard(id l402.TokenID) uint8 { return id[0] }

func addrShard(a netip.Addr) uint8 {
	b := a.As16()
	return b[15] ^ b[7]
}

// clientKey is the rate-limit identity of an address: the address
// itself for IPv4, its /64 for IPv6 (one subscriber usually holds a
// whole /64).
func clientKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}

// freeCounter counts the unpaid requests each client made to each
// freebie service in the current window.
type freeCounter struct {
	mu        sync.Mutex
	m         map[freeKey]freeEntry
	nextSweep time.Time
}

type freeKey struct {
	service string
	client  netip.Addr
}

type freeEntry struct {
	used  int
	until time.Time
}

func newFreeCounter() *freeCounter { return &freeCounter{m: map[freeKey]freeEntry{}} }

// take uses one of the client's n free requests per window, if any is
// left.
func (f *freeCounter) take(k freeKey, now time.Time, n int, window time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.m[k]
	if !ok || !now.Before(e.until) {
		if !ok && len(f.m) >= sweepAt && !now.Before(f.nextSweep) {
			f.nextSweep = now.Add(sweepEvery)
			for k, e := range f.m {
				if !now.Before(e.until) {
					delete(f.m, k)
				}
			}
		}
		if !ok && len(f.m) >= maxFreeClients {
			return false
		}
		e = freeEntry{until: now.Add(window)}
	}
	if e.used >= n {
		return false
	}
	e.used++
	f.m[k] = e
	return true
}

// ChallengeLookup reports what became of a challenge the gate issued.
// *producer.Producer implements it; the gate uses it to stop counting
// paid invoices as outstanding before they expire.
type ChallengeLookup interface {
	Challenge(ctx context.Context, hash lntypes.Hash) (*storage.Challenge, error)
}

// pendingSet bounds the gate's outstanding unpaid invoices: each costs the
// node an invoice record, and a client that never pays can ask for many.
// Besides the node-wide cap, each client (clientKey: an IPv4 address or
// an IPv6 /64) has a share of it, so one client staying within its mint
// rate cannot hold every slot.
type pendingSet struct {
	max       int
	perClient int             // <= 0: no share
	lookup    ChallengeLookup // may be nil

	mu        sync.Mutex
	m         map[lntypes.Hash]pendingEntry
	clients   map[netip.Addr]int // outstanding and reserved, per client
	reserved  int
	nextCheck time.Time
}

type pendingEntry struct {
	expires time.Time
	client  netip.Addr
}

// Why reserve refused.
const (
	pendingOK = iota
	pendingNodeFull
	pendingClientFull
)

func newPendingSet(maxPending, perClient int, lookup ChallengeLookup) *pendingSet {
	return &pendingSet{max: maxPending, perClient: perClient, lookup: lookup,
		m: map[lntypes.Hash]pendingEntry{}, clients: map[netip.Addr]int{}}
}

// limited reports whether anything is counted.
func (p *pendingSet) limited() bool { return p.max > 0 || p.perClient > 0 }

// reserve claims a slot for an invoice about to be created for client
// (a clientKey). When the node's cap or the client's share is taken it
// returns which, and when the first slot frees up.
func (p *pendingSet) reserve(ctx context.Context, client netip.Addr, now time.Time) (int, time.Duration) {
	if !p.limited() {
		return pendingOK, 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if why := p.full(client); why == pendingOK {
		p.take(client)
		return pendingOK, 0
	}
	p.prune(ctx, now)
	why := p.full(client)
	if why == pendingOK {
		p.take(client)
		return pendingOK, 0
	}
	var earliest time.Time
	for _, e := range p.m {
		if (why == pendingNodeFull || e.client == client) && (earliest.IsZero() || e.expires.Before(earliest)) {
			earliest = e.expires
		}
	}
	wait := time.Second
	if !earliest.IsZero() {
		wait = max(earliest.Sub(now), time.Second)
	}
	return why, wait
}

// full says whether a slot is free for client; the caller holds mu.
func (p *pendingSet) full(client netip.Addr) int {
	switch {
	case p.max > 0 && len(p.m)+p.reserved >= p.max:
		return pendingNodeFull
	case p.perClient > 0 && p.clients[client] >= p.perClient:
		return pendingClientFull
	}
	return pendingOK
}

func (p *pendingSet) take(client netip.Addr) {
	p.reserved++
	p.clients[client]++
}

func (p *pendingSet) drop(client netip.Addr) {
	if n := p.clients[client]; n > 1 {
		p.clients[client] = n - 1
	} else {
		delete(p.clients, client)
	}
}

// prune forgets expired invoices and, at most once a second, paid ones.
// The caller holds mu.
func (p *pendingSet) prune(ctx context.Context, now time.Time) {
	check := p.lookup != nil && !now.Before(p.nextCheck)
	if check {
		p.nextCheck = now.Add(time.Second)
	}
	for h, e := range p.m {
		if !now.Before(e.expires) {
			delete(p.m, h)
			p.drop(e.client)
			continue
		}
		if check {
			c, err := p.lookup.Challenge(ctx, h)
			if errors.Is(err, storage.ErrNotFound) || (err == nil && c.State != storage.StatePending) {
				delete(p.m, h)
				p.drop(e.client)
			}
		}
	}
}

// add turns client's reservation into an outstanding invoice.
func (p *pendingSet) add(client netip.Addr, h lntypes.Hash, expires time.Time) {
	if !p.limited() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reserved--
	p.m[h] = pendingEntry{expires: expires, client: client}
}

// release gives back client's reservation whose invoice was not created.
func (p *pendingSet) release(client netip.Addr) {
	if !p.limited() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reserved--
	p.drop(client)
}

// outstanding returns the number of invoices counted.
func (p *pendingSet) outstanding() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m) + p.reserved
}
