package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// PutMeta durably stores a small named value, such as the node's public
// key, that l402d must remember while its Lightning node is unreachable.
func (s *Store) PutMeta(ctx context.Context, name string, value []byte) error {
	if name == "" {
		return fmt.Errorf("%w: empty meta name", ErrInvalid)
	}
	k := []byte(prefixMeta + name)
	return s.update(ctx, true, func(txn *badger.Txn) error { return txn.Set(k, value) })
}

// Meta returns a value stored with PutMeta, or ErrNotFound.
func (s *Store) Meta(_ context.Context, name string) ([]byte, error) {
	k := []byte(prefixMeta + name)
	var out []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(k)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("%w: meta %q", ErrNotFound, name)
		}
		if err != nil {
			return fmt.Errorf("storage: reading %s: %w", fmtKey(k), err)
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	return out, err
}
