package storage

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

// copyBatch is how many entries Copy writes per transaction.
const copyBatch = 512

// Copy writes every entry of src into dst, which must be empty (a store
// just opened, holding only its schema stamp), and returns how many it
// copied. It moves a store between engines (Badger to Postgres and back):
// keys and values are the same on both, entries with a time to live keep
// what is left of it, and expired ones are left behind. src is read at
// one snapshot; stop every l402d using it first, or what they write
// meanwhile stays behind. dst's in-memory state is not refreshed: close it
// and open it again before use.
func Copy(ctx context.Context, src, dst *Store) (int, error) {
	schema := []byte(keySchema)
	if err := dst.db.View(ctx, func(txn kvTxn) error {
		it := txn.NewIterator(iterOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if k := it.Item().Key(); !bytes.Equal(k, schema) {
				return fmt.Errorf("storage: %w: the destination already holds data (%s); copy into an empty store",
					ErrExists, fmtKey(k))
			}
		}
		return nil
	}); err != nil {
		return 0, err
	}
	now := time.Now()
	n := 0
	var batch []*kvItem
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := dst.update(ctx, true, func(txn kvTxn) error {
			for _, e := range batch {
				var err error
				if e.expiresAt.IsZero() {
					err = txn.Set(e.key, e.value)
				} else {
					err = txn.SetTTL(e.key, e.value, e.expiresAt.Sub(now))
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("storage: copying: %w", err)
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	err := src.db.View(ctx, func(txn kvTxn) error {
		it := txn.NewIterator(iterOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			e := it.Item()
			if bytes.Equal(e.key, schema) || (!e.expiresAt.IsZero() && !e.expiresAt.After(now)) {
				continue
			}
			batch = append(batch, e)
			if len(batch) == copyBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return flush()
	})
	return n, err
}
