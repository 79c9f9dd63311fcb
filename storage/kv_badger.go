package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// badgerKV is the embedded engine: a Badger database that one process
// owns.
type badgerKV struct{ db *badger.DB }

func (b badgerKV) View(ctx context.Context, fn func(kvTxn) error) error {
	return b.db.View(func(txn *badger.Txn) error { return fn(badgerTxn{txn}) })
}

func (b badgerKV) Update(ctx context.Context, fn func(kvTxn) error) error {
	err := b.db.Update(func(txn *badger.Txn) error { return fn(badgerTxn{txn}) })
	if errors.Is(err, badger.ErrConflict) {
		return fmt.Errorf("%w: %w", errConflict, err)
	}
	return err
}

func (b badgerKV) Sync() error  { return b.db.Sync() }
func (b badgerKV) Close() error { return b.db.Close() }

type badgerTxn struct{ txn *badger.Txn }

func (t badgerTxn) Get(key []byte) (*kvItem, error) {
	item, err := t.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, errKeyNotFound
	}
	if err != nil {
		return nil, err
	}
	return badgerItem(item)
}

func badgerItem(item *badger.Item) (*kvItem, error) {
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	return &kvItem{key: item.KeyCopy(nil), value: v}, nil
}

func (t badgerTxn) Set(key, value []byte) error { return t.txn.Set(key, value) }

func (t badgerTxn) SetTTL(key, value []byte, ttl time.Duration) error {
	return t.txn.SetEntry(badger.NewEntry(key, value).WithTTL(ttl))
}

func (t badgerTxn) Delete(key []byte) error { return t.txn.Delete(key) }

func (t badgerTxn) NewIterator(opts iterOptions) kvIterator {
	return &badgerIter{it: t.txn.NewIterator(badger.IteratorOptions{
		Prefix: opts.Prefix, Reverse: opts.Reverse, PrefetchValues: false,
	})}
}

// badgerIter reads each value as it is asked for, so walks over keys
// alone stay cheap.
type badgerIter struct {
	it *badger.Iterator
}

func (i *badgerIter) Rewind()         { i.it.Rewind() }
func (i *badgerIter) Seek(key []byte) { i.it.Seek(key) }
func (i *badgerIter) Valid() bool     { return i.it.Valid() }
func (i *badgerIter) Next()           { i.it.Next() }
func (i *badgerIter) Close()          { i.it.Close() }

func (i *badgerIter) Item() *kvItem {
	bi := i.it.Item()
	item, err := badgerItem(bi)
	if err != nil {
		// A value Badger cannot read: hand back the key with no value,
		// which every decoder refuses as corrupt.
		return &kvItem{key: bi.KeyCopy(nil)}
	}
	if at := bi.ExpiresAt(); at != 0 {
		item.expiresAt = time.Unix(int64(at), 0)
	}
	return item
}

// prefixEnd returns the smallest key greater than every key with prefix,
// or nil when there is none (a prefix of 0xff bytes).
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
