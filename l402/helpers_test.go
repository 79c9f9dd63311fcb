package l402

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"

	"gopkg.in/macaroon.v2"
)

// memKeys is an in-memory RootKeyStore and RevocationChecker for tests of
// the pure protocol logic.
type memKeys struct {
	mu      sync.RWMutex
	keys    map[TokenID][RootKeySize]byte
	revoked map[TokenID]bool
	next    byte
}

func newMemKeys() *memKeys {
	return &memKeys{keys: map[TokenID][RootKeySize]byte{}, revoked: map[TokenID]bool{}}
}

func (m *memKeys) NewRootKey(_ context.Context, id TokenID) ([RootKeySize]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[id]; ok {
		return [RootKeySize]byte{}, fmt.Errorf("token %s exists", id)
	}
	m.next++
	k := sha256.Sum256([]byte{m.next})
	m.keys[id] = k
	return k, nil
}

func (m *memKeys) RootKey(_ context.Context, id TokenID) ([RootKeySize]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	k, ok := m.keys[id]
	if !ok {
		return k, ErrUnknownToken
	}
	return k, nil
}

func (m *memKeys) IsRevoked(_ context.Context, id TokenID) (bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.revoked[id], nil
}

// testPreimage returns a deterministic preimage and its hash.
func testPreimage(seed byte) ([32]byte, [32]byte) {
	p := sha256.Sum256([]byte{'p', seed})
	return p, sha256.Sum256(p[:])
}

// mintTest mints a token for p over keys, filling in the payment hash
// from a preimage derived from seed.
func mintTest(t testing.TB, keys RootKeyStore, seed byte, p MintParams) (*macaroon.Macaroon, [32]byte) {
	t.Helper()
	pre, hash := testPreimage(seed)
	p.PaymentHash = hash
	mac, _, err := Mint(context.Background(), keys, p)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	return mac, pre
}

func mustEncode(t testing.TB, mac *macaroon.Macaroon) string {
	t.Helper()
	s, err := EncodeMacaroon(mac)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
