package storage

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
)

// Backup stream formats. Each starts with a magic line, so a wrong file is
// refused with a clear error instead of a Badger decoding failure.
//
// v1 is Badger's backup stream in clear, written by a store that is not
// encrypted at rest.
//
// v2 is written by a store with an encryption key, because the stream
// holds root keys (which forge tokens) and cached tokens (bearer
// credentials) and Badger's backup decrypts them:
//
//	magic ‖ salt 32 ‖ key check 32 ‖ frames
//	frame: final flag 1 ‖ uint32 BE length ‖ AES-256-GCM ciphertext
//
// The AES key and the key check are derived from the store's key and the
// salt with HKDF-SHA256, so every backup has its own key and the nonce can
// be the frame counter. A frame's additional data is magic ‖ salt ‖ final
// flag, and the stream must end with exactly one final frame, so frames
// cannot be reordered, dropped or cut off unnoticed. The key check tells a
// wrong key apart from a damaged file before anything is written.
const (
	backupMagic       = "l402d-backup v1\n"
	backupMagicSealed = "l402d-backup v2 aes-256-gcm\n"

	sealSaltSize  = 32
	sealCheckSize = 32
	sealChunk     = 64 << 10
)

// Backup writes a consistent snapshot of the whole store to w while the
// store stays in use (Badger's own backup, at one read timestamp). A store
// encrypted at rest writes it encrypted with its key (format v2), which
// Restore then needs; otherwise the stream holds the root keys in clear:
// keep it as secret as the store.
func (s *Store) Backup(ctx context.Context, w io.Writer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.bdb == nil {
		return fmt.Errorf("storage: %w: a store on Postgres is backed up with Postgres's own tools "+
			"(pg_dump of the l402d tables), or moved back to Badger with l402d migrate", ErrInvalid)
	}
	if len(s.encKey) == 0 {
		if _, err := io.WriteString(w, backupMagic); err != nil {
			return fmt.Errorf("storage: writing backup: %w", err)
		}
		if _, err := s.bdb.Backup(w, 0); err != nil {
			return fmt.Errorf("storage: writing backup: %w", err)
		}
		return nil
	}
	sw, err := newSealWriter(w, s.encKey)
	if err != nil {
		return err
	}
	if _, err := s.bdb.Backup(sw, 0); err != nil {
		return fmt.Errorf("storage: writing backup: %w", err)
	}
	return sw.Close()
}

// Restore loads a backup into a new store at opts.Dir, which must not
// hold a store yet, and checks that the result opens. An encrypted backup
// needs opts.EncryptionKey to be the key of the store it was taken from;
// without it or with another key Restore fails with an error wrapping
// ErrEncryptionKey before writing anything. A failed load leaves the
// directory empty again. The store is closed again; open it with Open.
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
	in, err := openBackup(br, opts.EncryptionKey)
	if err != nil {
		return err
	}
	bopts, err := badgerOptions(&opts)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	if err := load(bopts, opts, in); err != nil {
		if cerr := emptyDir(opts.Dir); cerr != nil {
			return fmt.Errorf("%w (and clearing %s: %v)", err, opts.Dir, cerr)
		}
		return err
	}
	s, err := Open(ctx, opts)
	if err != nil {
		return fmt.Errorf("storage: restored store does not open: %w", err)
	}
	return s.Close()
}

// openBackup reads the magic line and returns the Badger stream after it,
// decrypting a v2 backup with key.
func openBackup(br *bufio.Reader, key []byte) (io.Reader, error) {
	head, err := br.ReadSlice('\n')
	switch {
	case err == nil && string(head) == backupMagic:
		return br, nil
	case err == nil && string(head) == backupMagicSealed:
		if len(key) == 0 {
			return nil, fmt.Errorf("storage: %w: the backup is encrypted; restore it with the key file "+
				"(--db.keyfile) of the l402d it was taken from", ErrEncryptionKey)
		}
		return newOpenReader(br, key)
	}
	return nil, fmt.Errorf("%w: not an l402d backup (it does not start with %q or %q)", ErrInvalid,
		backupMagic[:len(backupMagic)-1], backupMagicSealed[:len(backupMagicSealed)-1])
}

func load(bopts badger.Options, opts Options, in io.Reader) error {
	db, err := openBadger(bopts, opts)
	if err != nil {
		return err
	}
	if err := db.Load(in, 256); err != nil {
		db.Close()
		return fmt.Errorf("storage: loading backup: %w", err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("storage: closing restored store: %w", err)
	}
	return nil
}

// emptyDir removes everything inside dir, which Restore found empty.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// sealKeys derives a backup's AES-256 key and key check from the store's
// key and the backup's salt.
func sealKeys(key, salt []byte) (cipher.AEAD, []byte, error) {
	k, err := hkdf.Key(sha256.New, key, salt, "l402d backup v2 aes-256-gcm", 32)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: deriving the backup key: %w", err)
	}
	check, err := hkdf.Key(sha256.New, key, salt, "l402d backup v2 key check", sealCheckSize)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: deriving the backup key check: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: %w", err)
	}
	return aead, check, nil
}

func sealAD(salt []byte, final bool) []byte {
	ad := append([]byte(backupMagicSealed), salt...)
	if final {
		return append(ad, 1)
	}
	return append(ad, 0)
}

func sealNonce(aead cipher.AEAD, n uint64) []byte {
	nonce := make([]byte, aead.NonceSize())
	binary.BigEndian.PutUint64(nonce[len(nonce)-8:], n)
	return nonce
}

// sealWriter encrypts a backup stream in frames of sealChunk bytes.
type sealWriter struct {
	w    io.Writer
	aead cipher.AEAD
	salt []byte
	n    uint64
	buf  []byte
}

func newSealWriter(w io.Writer, key []byte) (*sealWriter, error) {
	salt := make([]byte, sealSaltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("storage: reading randomness: %w", err)
	}
	aead, check, err := sealKeys(key, salt)
	if err != nil {
		return nil, err
	}
	head := append(append([]byte(backupMagicSealed), salt...), check...)
	if _, err := w.Write(head); err != nil {
		return nil, fmt.Errorf("storage: writing backup: %w", err)
	}
	return &sealWriter{w: w, aead: aead, salt: salt, buf: make([]byte, 0, sealChunk)}, nil
}

func (s *sealWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(sealChunk-len(s.buf), len(p))
		s.buf = append(s.buf, p[:k]...)
		p = p[k:]
		if len(s.buf) == sealChunk {
			if err := s.frame(false); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// Close writes the final frame (possibly empty).
func (s *sealWriter) Close() error { return s.frame(true) }

func (s *sealWriter) frame(final bool) error {
	ct := s.aead.Seal(nil, sealNonce(s.aead, s.n), s.buf, sealAD(s.salt, final))
	s.n++
	s.buf = s.buf[:0]
	var hdr [5]byte
	if final {
		hdr[0] = 1
	}
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(ct)))
	if _, err := s.w.Write(hdr[:]); err != nil {
		return fmt.Errorf("storage: writing backup: %w", err)
	}
	if _, err := s.w.Write(ct); err != nil {
		return fmt.Errorf("storage: writing backup: %w", err)
	}
	return nil
}

// openReader decrypts what sealWriter wrote, frame by frame; it fails
// rather than return anything unauthenticated.
type openReader struct {
	r     io.Reader
	aead  cipher.AEAD
	salt  []byte
	n     uint64
	plain []byte
	done  bool
}

func newOpenReader(r io.Reader, key []byte) (*openReader, error) {
	head := make([]byte, sealSaltSize+sealCheckSize)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, fmt.Errorf("%w: the encrypted backup is cut short in its header", ErrInvalid)
	}
	salt, check := head[:sealSaltSize], head[sealSaltSize:]
	aead, want, err := sealKeys(key, salt)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(check, want) != 1 {
		return nil, fmt.Errorf("storage: %w: the backup was encrypted with another key; restore it with "+
			"the key file (--db.keyfile) of the l402d it was taken from", ErrEncryptionKey)
	}
	return &openReader{r: r, aead: aead, salt: bytes.Clone(salt)}, nil
}

func (o *openReader) Read(p []byte) (int, error) {
	for len(o.plain) == 0 {
		if o.done {
			return 0, io.EOF
		}
		if err := o.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, o.plain)
	o.plain = o.plain[n:]
	return n, nil
}

func (o *openReader) next() error {
	var hdr [5]byte
	if _, err := io.ReadFull(o.r, hdr[:]); err != nil {
		return fmt.Errorf("%w: the encrypted backup is cut short after %d frames", ErrCorrupt, o.n)
	}
	final := hdr[0] == 1
	size := binary.BigEndian.Uint32(hdr[1:])
	if hdr[0] > 1 || size > sealChunk+uint32(o.aead.Overhead()) {
		return fmt.Errorf("%w: bad frame %d in the encrypted backup", ErrCorrupt, o.n)
	}
	ct := make([]byte, size)
	if _, err := io.ReadFull(o.r, ct); err != nil {
		return fmt.Errorf("%w: the encrypted backup is cut short in frame %d", ErrCorrupt, o.n)
	}
	plain, err := o.aead.Open(ct[:0], sealNonce(o.aead, o.n), ct, sealAD(o.salt, final))
	if err != nil {
		return fmt.Errorf("%w: frame %d of the encrypted backup does not authenticate (damaged)", ErrCorrupt, o.n)
	}
	o.n++
	o.plain = plain
	if final {
		o.done = true
		var extra [1]byte
		if n, _ := io.ReadFull(o.r, extra[:]); n > 0 {
			return fmt.Errorf("%w: data after the end of the encrypted backup", ErrCorrupt)
		}
	}
	return nil
}
