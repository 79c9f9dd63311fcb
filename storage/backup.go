package storage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// backupMagic starts every backup stream, so a wrong file is refused with
// a clear error instead of a Badger decoding failure.
const backupMagic = "l402d-backup v1\n"

// Backup writes a consistent snapshot of the whole store to w while the
// store stays in use (Badger's own backup, at one read timestamp). The
// stream holds the root keys in clear: keep it as secret as the store.
func (s *Store) Backup(ctx context.Context, w io.Writer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := io.WriteString(w, backupMagic); err != nil {
		return fmt.Errorf("storage: writing backup: %w", err)
	}
	if _, err := s.db.Backup(w, 0); err != nil {
		return fmt.Errorf("storage: writing backup: %w", err)
	}
	return nil
}

// Restore loads a backup into a new store at opts.Dir, which must not
// hold a store yet, and checks that the result opens. The store is
// closed again; open it with Open.
func Restore(ctx context.Context, opts Options, r io.Reader) error {
	if opts.InMemory {
		return fmt.Errorf("%w: restore needs a directory", ErrInvalid)
	}
	if entries, err := os.ReadDir(opts.Dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%w: %s is not empty; restore into a fresh data dir", ErrExists, opts.Dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("storage: %w", err)
	}
	br := bufio.NewReader(r)
	head := make([]byte, len(backupMagic))
	if _, err := io.ReadFull(br, head); err != nil || string(head) != backupMagic {
		return fmt.Errorf("%w: not an l402d backup (it does not start with %q)", ErrInvalid, backupMagic[:len(backupMagic)-1])
	}
	bopts, err := badgerOptions(&opts)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	db, err := openBadger(bopts, opts)
	if err != nil {
		return err
	}
	if err := db.Load(br, 256); err != nil {
		db.Close()
		return fmt.Errorf("storage: loading backup: %w", err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("storage: closing restored store: %w", err)
	}
	s, err := Open(ctx, opts)
	if err != nil {
		return fmt.Errorf("storage: restored store does not open: %w", err)
	}
	return s.Close()
}
