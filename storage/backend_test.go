package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/l402d/l402d/storage/pgtest"
)

// The storage tests are the conformance suite of both engines: with
// L402D_STORAGE_BACKEND=postgres every store a test opens lives in a
// database of a real PostgreSQL server that TestMain starts (a fresh
// database per in-memory store; one per directory, so reopening a
// directory reopens its database). Tests of what only Badger has (its
// files, encryption at rest, backups, the disk-space guard) say so with
// badgerOnly.

// testPG is the server of a postgres run, nil on Badger.
var testPG *pgtest.Server

// childDSNEnv gives a crash child (this binary run again) the database of
// the parent's server to write to.
const childDSNEnv = "L402D_STORAGE_CHILD_DSN"

func TestMain(m *testing.M) {
	if os.Getenv("L402D_STORAGE_BACKEND") == "postgres" && os.Getenv(childDSNEnv) == "" {
		srv, err := pgtest.Start(context.Background(), pgtest.Options{NoFsync: true})
		if err != nil {
			fmt.Fprintln(os.Stderr, "storage tests on postgres:", err)
			os.Exit(1)
		}
		testPG = srv
		code := m.Run()
		srv.Stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// debitAllowanceEnv, set to a number of msat, runs the suite with every
// store taking debits in memory up to that allowance (make unit-lazy).
const debitAllowanceEnv = "L402D_STORAGE_DEBIT_ALLOWANCE"

// onTestBackend points opts at a database of the test server when the run
// is on Postgres (a fresh one for an in-memory store, the directory's own
// otherwise), and gives it the debit allowance of a run with one.
func onTestBackend(t testing.TB, opts *Options) {
	t.Helper()
	if s := os.Getenv(debitAllowanceEnv); s != "" && testPG == nil && opts.DebitAllowanceMsat == 0 {
		// The run with debits taken in memory.
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive number of msat", debitAllowanceEnv, s)
		}
		opts.DebitAllowanceMsat = n
	}
	if testPG == nil || opts.PostgresDSN != "" {
		return
	}
	name := ""
	if !opts.InMemory && opts.Dir != "" {
		sum := sha256.Sum256([]byte(opts.Dir))
		name = "d" + hex.EncodeToString(sum[:12])
	}
	dsn, err := testPG.CreateDB(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	opts.PostgresDSN = dsn
}

// badgerOnly ends a test of something only the Badger engine has when the
// run is on Postgres.
func badgerOnly(t testing.TB) {
	t.Helper()
	if testPG != nil {
		t.Skip("tests the Badger engine only; this run is the Postgres conformance run")
	}
}
