package storage

import "errors"

// Errors returned by the store, always wrapped with detail; branch on them
// with errors.Is.
var (
	// ErrNotFound: nothing is stored under the requested key.
	ErrNotFound = errors.New("not found")
	// ErrExists: a create found the key already taken.
	ErrExists = errors.New("already exists")
	// ErrLocked: another process (most likely another l402d) holds the
	// database directory.
	ErrLocked = errors.New("database directory is locked")
	// ErrDiskFull: the store's filesystem has less free space than the
	// reserve; writes are refused until space returns, reads still work.
	ErrDiskFull = errors.New("not enough free disk space")
	// ErrSchema: the database was written with a key schema this build
	// cannot read, or its schema entry is damaged.
	ErrSchema = errors.New("unsupported database schema")
	// ErrEncryptionKey: the encryption key is missing, wrong or malformed
	// for this database.
	ErrEncryptionKey = errors.New("wrong or missing encryption key")
	// ErrCorrupt: a stored value could not be decoded. The error names the
	// key.
	ErrCorrupt = errors.New("corrupt value")
	// ErrInvalid: an argument was rejected before anything was written.
	ErrInvalid = errors.New("invalid argument")
	// ErrUnavailable: the shared database (Postgres) cannot be reached.
	// Nothing was written; reads answered from memory (verification of
	// known tokens) keep working.
	ErrUnavailable = errors.New("database unavailable")
)
