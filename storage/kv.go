package storage

import (
	"context"
	"errors"
	"time"
)

// The store keeps every record as a key and a value in an ordered
// key-value engine with serializable transactions: Badger embedded (one
// process owns the directory), or one table in Postgres shared by several
// replicas. The record code above is written once against kvDB and kvTxn;
// an engine only has to keep keys in byte order, see a transaction's own
// writes, and refuse a commit whose reads another commit changed
// (errConflict), which update retries.
var (
	// errKeyNotFound is what kvTxn.Get returns for a missing key.
	errKeyNotFound = errors.New("key not found")
	// errConflict is what kvDB.Update returns when another transaction
	// changed what this one read; the transaction can be run again.
	errConflict = errors.New("transaction conflict")
)

// kvDB is the engine under a Store.
type kvDB interface {
	// View runs fn in a read-only transaction on one snapshot.
	View(ctx context.Context, fn func(kvTxn) error) error
	// Update runs fn in a read-write transaction and commits it if fn
	// returns nil. It returns errConflict (wrapped) for a commit that lost
	// a race; it does not retry.
	Update(ctx context.Context, fn func(kvTxn) error) error
	// Sync makes every committed write durable.
	Sync() error
	// Close releases the engine.
	Close() error
}

// kvTxn is one transaction.
type kvTxn interface {
	// Get returns the entry at key, or errKeyNotFound.
	Get(key []byte) (*kvItem, error)
	// Set writes value at key.
	Set(key, value []byte) error
	// SetTTL writes value at key for ttl, after which the entry is gone.
	SetTTL(key, value []byte, ttl time.Duration) error
	// Delete removes key (a missing key is no error).
	Delete(key []byte) error
	// NewIterator walks the entries under opts.Prefix in key order.
	NewIterator(opts iterOptions) kvIterator
}

// iterOptions selects what an iterator walks.
type iterOptions struct {
	// Prefix bounds the walk to keys that start with it.
	Prefix []byte
	// Reverse walks from the greatest key down.
	Reverse bool
}

// kvIterator walks entries the way Badger's iterator does: Rewind or Seek,
// then Item and Next while Valid; Close when done.
type kvIterator interface {
	// Rewind moves to the first entry. Reverse walks start with Seek.
	Rewind()
	// Seek moves to the first entry at or after key (at or before it
	// when Reverse).
	Seek(key []byte)
	Valid() bool
	Next()
	Item() *kvItem
	Close()
}

// kvItem is one entry. Its slices belong to the caller.
type kvItem struct {
	key, value []byte
	// expiresAt is when an entry written with SetTTL goes; zero for
	// none. Only iterators fill it (for Copy).
	expiresAt time.Time
}

// Key returns the entry's key.
func (i *kvItem) Key() []byte { return i.key }

// Value calls fn with the entry's value.
func (i *kvItem) Value(fn func([]byte) error) error { return fn(i.value) }

// ValueCopy returns the entry's value appended to dst.
func (i *kvItem) ValueCopy(dst []byte) ([]byte, error) { return append(dst[:0], i.value...), nil }
