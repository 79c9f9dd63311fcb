package storage

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/l402d/l402d/l402"
)

// rootKey is the secret a token's macaroon is signed with.
type rootKey = [l402.RootKeySize]byte

// NewRootKey generates a random root key for id and stores it durably. It
// fails with an error wrapping ErrExists if id already has one, so a key is
// never silently replaced under an issued token.
func (s *Store) NewRootKey(ctx context.Context, id l402.TokenID) ([l402.RootKeySize]byte, error) {
	var key rootKey
	if _, err := rand.Read(key[:]); err != nil {
		return rootKey{}, fmt.Errorf("storage: reading randomness: %w", err)
	}
	k := rootKeyKey(id)
	err := s.update(ctx, false, func(txn kvTxn) error {
		switch _, err := txn.Get(k); {
		case err == nil:
			return fmt.Errorf("storage: root key for token %s: %w", id, ErrExists)
		case !errors.Is(err, errKeyNotFound):
			return fmt.Errorf("storage: reading %s: %w", fmtKey(k), err)
		}
		return txn.Set(k, key[:])
	})
	if err != nil {
		return rootKey{}, err
	}
	// Committed: cache it before anything can fail, so the cache never
	// misses a stored key while it claims to be complete.
	s.keys.put(id, key)
	if err := s.sync(); err != nil {
		return rootKey{}, err
	}
	return key, nil
}

// RootKey returns the root key of token id. It answers from memory when it
// can: from the cache, or with ErrUnknownToken straight away while the cache
// holds every stored key. Otherwise it reads Badger. It never writes to disk.
// A missing key yields an error wrapping l402.ErrUnknownToken.
func (s *Store) RootKey(ctx context.Context, id l402.TokenID) ([l402.RootKeySize]byte, error) {
	if key, ok := s.keys.get(id); ok {
		return key, nil
	}
	if s.keys.complete.Load() {
		return rootKey{}, &unknownTokenError{id}
	}
	if err := ctx.Err(); err != nil {
		return rootKey{}, err
	}
	var key rootKey
	k := rootKeyKey(id)
	err := s.db.View(ctx, func(txn kvTxn) error {
		item, err := txn.Get(k)
		if errors.Is(err, errKeyNotFound) {
			return &unknownTokenError{id}
		}
		if err != nil {
			return fmt.Errorf("storage: reading %s: %w", fmtKey(k), err)
		}
		return item.Value(func(v []byte) error {
			if len(v) != len(key) {
				return corrupt(k, "root key is %d bytes, want %d", len(v), len(key))
			}
			copy(key[:], v)
			return nil
		})
	})
	if err != nil {
		return rootKey{}, err
	}
	s.keys.put(id, key)
	return key, nil
}

// unknownTokenError wraps l402.ErrUnknownToken. Forged token ids are cheap
// to send, so the error is formatted only if someone prints it.
type unknownTokenError struct{ id l402.TokenID }

func (e *unknownTokenError) Error() string {
	return "storage: token " + e.id.String() + ": " + l402.ErrUnknownToken.Error()
}

func (e *unknownTokenError) Unwrap() error { return l402.ErrUnknownToken }

// loadRootKeys fills the cache at open. If every stored key fits, the cache
// is complete and a miss is an authoritative "unknown token": forged token
// ids then cost no disk reads.
func (s *Store) loadRootKeys(ctx context.Context) error {
	if s.keys.capacity <= 0 {
		return nil
	}
	prefix := []byte(prefixRootKey)
	err := s.db.View(ctx, func(txn kvTxn) error {
		it := txn.NewIterator(iterOptions{Prefix: prefix})
		defer it.Close()
		n := 0
		for it.Rewind(); it.Valid(); it.Next() {
			if n++; n%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			if n > s.keys.capacity {
				return nil // does not fit: stay incomplete, fill lazily
			}
			item := it.Item()
			k := item.Key()
			var id l402.TokenID
			if len(k) != len(prefix)+len(id) {
				return corrupt(k, "root key entry has a %d-byte key", len(k))
			}
			copy(id[:], k[len(prefix):])
			var key rootKey
			if err := item.Value(func(v []byte) error {
				if len(v) != len(key) {
					return corrupt(k, "root key is %d bytes, want %d", len(v), len(key))
				}
				copy(key[:], v)
				return nil
			}); err != nil {
				return err
			}
			s.keys.put(id, key)
		}
		// Another replica may write keys at any time: a shared
		// store's cache is never complete.
		s.keys.complete.Store(s.pg == nil)
		return nil
	})
	if err != nil {
		return fmt.Errorf("storage: loading root keys: %w", err)
	}
	return nil
}

// cacheShards is the number of independently locked parts of the root key
// cache; enough that parallel readers rarely share a lock.
const cacheShards = 64

// rootKeyCache is a bounded map from token id to root key, sharded so that
// concurrent readers on different cores do not contend on one lock word.
// When a shard is full, inserting evicts an arbitrary entry of that shard
// (Go map iteration order): no bookkeeping on the read path, and a hit costs
// one read lock and one map lookup.
type rootKeyCache struct {
	// capacity is the total bound; <= 0 disables the cache.
	capacity int
	perShard int
	// complete is true while the cache holds every root key in the
	// database, which makes a miss authoritative. It is cleared, for
	// good, before the first eviction.
	complete atomic.Bool
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[l402.TokenID]rootKey
	// Keep neighbouring shards' lock words on different cache lines.
	_ [128 - 32]byte
}

func newRootKeyCache(capacity int) *rootKeyCache {
	c := &rootKeyCache{capacity: capacity}
	if capacity <= 0 {
		return c
	}
	c.perShard = max(1, (capacity+cacheShards-1)/cacheShards)
	for i := range c.shards {
		c.shards[i].m = make(map[l402.TokenID]rootKey)
	}
	return c
}

// shard picks the shard of id. Token ids are random, so any of their bytes
// spread evenly.
func (c *rootKeyCache) shard(id *l402.TokenID) *cacheShard {
	return &c.shards[binary.LittleEndian.Uint64(id[:8])%cacheShards]
}

func (c *rootKeyCache) get(id l402.TokenID) (rootKey, bool) {
	if c.capacity <= 0 {
		return rootKey{}, false
	}
	sh := c.shard(&id)
	sh.mu.RLock()
	key, ok := sh.m[id]
	sh.mu.RUnlock()
	return key, ok
}

// del drops id, whose key was deleted from the database; a complete cache
// stays complete.
func (c *rootKeyCache) del(id l402.TokenID) {
	if c.capacity <= 0 {
		return
	}
	sh := c.shard(&id)
	sh.mu.Lock()
	delete(sh.m, id)
	sh.mu.Unlock()
}

func (c *rootKeyCache) put(id l402.TokenID, key rootKey) {
	if c.capacity <= 0 {
		return
	}
	sh := c.shard(&id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[id]; !ok && len(sh.m) >= c.perShard {
		// Clear complete before the victim disappears, so a reader that
		// misses it cannot still see complete == true.
		c.complete.Store(false)
		for victim := range sh.m {
			delete(sh.m, victim)
			break
		}
	}
	sh.m[id] = key
}
