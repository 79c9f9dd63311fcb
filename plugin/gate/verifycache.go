package gate

import (
	"context"
	"crypto/sha256"
	"net/http"
	"sync"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/l402/mpp"
)

// RevocationChecker reports whether a token was revoked, from memory.
// *producer.Producer implements it; a Producer that does, lets the gate
// remember verified credentials (see verifyCache).
type RevocationChecker interface {
	IsRevoked(ctx context.Context, id l402.TokenID) (bool, error)
}

// verifyCache remembers which credentials verified for which service and
// path, so a token used again skips macaroon decoding and the HMAC chain.
// What a verification depends on is in the key (the exact credential
// headers, the service, the path) or re-checked on every hit: the token's
// expiry, and its revocation, asked of the store each time. An entry lives
// at most verifyCacheTTL, so nothing is trusted long on an old check.
// Only successes are kept; a refused credential is verified in full each
// time, as before.
type verifyCache struct {
	revoked RevocationChecker
	now     func() time.Time
	shards  [verifyCacheShards]verifyShard
}

const (
	verifyCacheShards   = 16
	verifyCachePerShard = 4096 // 64k entries of about 150 bytes: under 10 MiB
	verifyCacheTTL      = time.Minute
)

type verifyShard struct {
	mu sync.Mutex
	m  map[[32]byte]verifiedEntry
}

// verifiedEntry is what the gate needs of a verified credential.
type verifiedEntry struct {
	id         l402.TokenID
	hash       lntypes.Hash // the token's payment hash
	prepaid    bool         // prepaid credit: each hit is still debited
	amount     int64        // sats the token records as paid
	resource   string
	validUntil time.Time // zero: no expiry caveat
	storedAt   time.Time
	// session is set, and the token fields are not, for an MPP
	// session's bearer credential (see checkSession).
	session *mpp.Session
}

func newVerifyCache(revoked RevocationChecker, now func() time.Time) *verifyCache {
	c := &verifyCache{revoked: revoked, now: now}
	for i := range c.shards {
		c.shards[i].m = make(map[[32]byte]verifiedEntry)
	}
	return c
}

// credentialKey hashes what a credential check reads — every value of
// the credential headers CredentialFromHeader looks at — with the service
// and the path it was checked for. ok is false without credential
// headers.
func credentialKey(h http.Header, service, path string) (key [32]byte, ok bool) {
	auth, grpc, mac := h[l402.HeaderAuthorization], h[l402.HeaderGrpcMacaroon], h[l402.HeaderMacaroon]
	if len(auth) == 0 && len(grpc) == 0 && len(mac) == 0 {
		return key, false
	}
	// Hashed from one buffer on the stack (a token is a few hundred
	// bytes): the paid request's hot path allocates nothing here.
	var stack [2048]byte
	b := appendKeyField(stack[:0], service)
	b = appendKeyField(b, path)
	for _, vals := range [][]string{auth, grpc, mac} {
		for _, v := range vals {
			b = appendKeyField(b, v)
		}
		b = appendKeyField(b, "\xff") // ends a header's values: no value list runs into the next
	}
	return sha256.Sum256(b), true
}

// appendKeyField appends s and a NUL, which no header value contains.
func appendKeyField(b []byte, s string) []byte {
	return append(append(b, s...), 0)
}

// get returns the entry for key if it is still good: within its TTL and
// the token's validity, and the token not revoked.
func (c *verifyCache) get(ctx context.Context, key [32]byte) (verifiedEntry, bool) {
	s := &c.shards[key[0]%verifyCacheShards]
	s.mu.Lock()
	e, ok := s.m[key]
	s.mu.Unlock()
	if !ok {
		return e, false
	}
	now := c.now()
	if now.Sub(e.storedAt) >= verifyCacheTTL || (!e.validUntil.IsZero() && now.After(e.validUntil)) {
		c.drop(key)
		return e, false
	}
	if e.session != nil {
		return e, true // not a token: nothing to revoke; the store refuses a closed session
	}
	if revoked, err := c.revoked.IsRevoked(ctx, e.id); err != nil || revoked {
		c.drop(key) // the full check says why
		return e, false
	}
	return e, true
}

// put remembers a verified credential, evicting an arbitrary entry of a
// full shard.
func (c *verifyCache) put(key [32]byte, v l402.Verified) {
	c.store(key, verifiedEntry{id: v.TokenID, hash: v.PaymentHash, prepaid: v.Prepaid, amount: v.AmountSats, resource: v.Resource, validUntil: v.ValidUntil})
}

// putSession remembers a checked session bearer credential.
func (c *verifyCache) putSession(key [32]byte, v mpp.Session) {
	c.store(key, verifiedEntry{session: &v})
}

func (c *verifyCache) store(key [32]byte, e verifiedEntry) {
	e.storedAt = c.now()
	s := &c.shards[key[0]%verifyCacheShards]
	s.mu.Lock()
	if len(s.m) >= verifyCachePerShard {
		for k := range s.m {
			delete(s.m, k)
			break
		}
	}
	s.m[key] = e
	s.mu.Unlock()
}

func (c *verifyCache) drop(key [32]byte) {
	s := &c.shards[key[0]%verifyCacheShards]
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
}
