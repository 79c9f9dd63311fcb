package storage

import (
	"context"
	"errors"
	"fmt"
)

// PutMeta durably stores a small named value, such as the node's public
// key, that l402d must remember while its Lightning node is unreachable.
func (s *Store) PutMeta(ctx context.Context, name string, value []byte) error {
	if name == "" {
		return fmt.Errorf("%w: empty meta name", ErrInvalid)
	}
	k := []byte(prefixMeta + name)
	return s.update(ctx, true, func(txn kvTxn) error { return txn.Set(k, value) })
}

// Meta returns a value stored with PutMeta, or ErrNotFound.
func (s *Store) Meta(ctx context.Context, name string) ([]byte, error) {
	k := []byte(prefixMeta + name)
	var out []byte
	err := s.db.View(ctx, func(txn kvTxn) error {
		item, err := txn.Get(k)
		if errors.Is(err, errKeyNotFound) {
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
