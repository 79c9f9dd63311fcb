// Package storage keeps l402d's durable state in an embedded Badger
// database, or in a Postgres database shared by several l402d replicas
// (Options.PostgresDSN; kv.go, shared.go): macaroon root keys, issued challenges and their settlement,
// revocations, idempotency entries, the invoice settle cursor and revenue
// aggregates.
//
// A Store implements l402.RootKeyStore and l402.RevocationChecker. The verify
// path (RootKey, IsRevoked) is answered from memory: revocations are loaded
// into a set when the store opens, and root keys live in a bounded cache that
// is filled at open (while it fits) and on every write, so a verification
// normally costs a map lookup and never writes.
//
// Everything that a payer or the verify path depends on (root keys,
// challenges, revocations) is synced to disk before the call that wrote it
// returns, also when Options.SyncWrites is off (which see for the one gap
// that leaves). Settlements and the settle cursor are
// written in one transaction, so a crash loses at most settlements that the
// invoice watcher will replay from the cursor.
//
// The settle cursor only ever covers a contiguous prefix of LND's
// settlements: settlements found by lookup (Settlement.FromLookup) are
// recorded without moving it, and Reconciled/SetReconciled remember how
// far a completed reconciliation reached. Challenges whose invoice
// expired unpaid are deleted with their root keys by SweepCandidates and
// DeleteUnpaid once LND confirmed them unpaid; the counters behind Stats
// are kept. Backups of a store with an encryption key are encrypted with
// it (see backup.go).
//
// Exactly one process may open a directory; a second Open fails with an
// error wrapping ErrLocked. Any number may open one Postgres database. The
// key layout, the same on both engines, is documented in keys.go.
package storage
