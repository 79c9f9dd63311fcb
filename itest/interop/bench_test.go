package interop

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/lightninglabs/aperture/aperturedb"
	apl402 "github.com/lightninglabs/aperture/l402"
	"github.com/lightninglabs/aperture/mint"
	"github.com/lightningnetwork/lnd/lntypes"
	"gopkg.in/macaroon.v2"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/storage"
)

// sideBySide mints one token with Aperture's mint over Aperture's sqlite
// secret store, and gives l402d's Badger store the same root key, so both
// verifiers check the very same token shape on the same machine.
type sideBySide struct {
	ap       *mint.Mint
	store    *storage.Store
	mac      *macaroon.Macaroon
	preimage lntypes.Preimage
}

func newSideBySide(b *testing.B) *sideBySide {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	db, err := aperturedb.NewSqliteStore(&aperturedb.SqliteConfig{DatabaseFileName: filepath.Join(dir, "aperture.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.DB.Close() })
	secrets := aperturedb.NewSecretsStore(aperturedb.NewTransactionExecutor(db.BaseDB,
		func(tx *sql.Tx) aperturedb.SecretsDB { return db.BaseDB.WithTx(tx) }))
	ch := &challenger{preimages: map[lntypes.Hash]lntypes.Preimage{}}
	ap := mint.New(&mint.Config{Secrets: secrets, Challenger: ch, ServiceLimiter: limiter{now: time.Now}, Now: time.Now})
	mac, _, err := ap.MintL402(ctx, apl402.Service{Name: "weather", Price: 50})
	if err != nil {
		b.Fatal(err)
	}
	id, err := l402.DecodeIdentifier(mac.Id())
	if err != nil {
		b.Fatal(err)
	}
	secret, err := secrets.GetSecret(ctx, sha256.Sum256(mac.Id()))
	if err != nil {
		b.Fatal(err)
	}
	store, err := storage.Open(ctx, storage.DefaultOptions(filepath.Join(dir, "l402d")))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	rec := &storage.Challenge{PaymentHash: id.PaymentHash, TokenID: id.TokenID, Resource: "weather", PriceSats: 50, ExpiresAt: time.Now().Add(time.Hour)}
	if err := store.IssueChallenge(ctx, rec, secret, nil); err != nil {
		b.Fatal(err)
	}
	return &sideBySide{ap: ap, store: store, mac: mac, preimage: ch.preimages[id.PaymentHash]}
}

// BenchmarkVerifyAperture is Aperture v0.5.0's verification: its mint
// over its sqlite secret store.
func BenchmarkVerifyAperture(b *testing.B) {
	s := newSideBySide(b)
	ctx := context.Background()
	p := &mint.VerificationParams{Macaroon: s.mac, Preimage: s.preimage, TargetService: "weather"}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.ap.VerifyL402(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyL402d is l402d's verification of the same token over its
// Badger store (warm), revocations included.
func BenchmarkVerifyL402d(b *testing.B) {
	s := newSideBySide(b)
	ctx := context.Background()
	v := &l402.Verifier{Keys: s.store, Revocations: s.store}
	cred := l402.Credential{Macaroon: s.mac, Preimage: s.preimage}
	want := l402.Expect{Service: "weather", Capability: "read"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, cred, want); err != nil {
			b.Fatal(err)
		}
	}
}

// The same two from the Authorization header, as a server sees them.

func BenchmarkVerifyHeaderAperture(b *testing.B) {
	s := newSideBySide(b)
	ctx := context.Background()
	h := headerFor(b, s)
	b.ReportAllocs()
	for b.Loop() {
		mac, pre, err := apl402.FromHeader(&h)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.ap.VerifyL402(ctx, &mint.VerificationParams{Macaroon: mac, Preimage: pre, TargetService: "weather"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyHeaderL402d(b *testing.B) {
	s := newSideBySide(b)
	ctx := context.Background()
	h := headerFor(b, s)
	v := &l402.Verifier{Keys: s.store, Revocations: s.store}
	want := l402.Expect{Service: "weather", Capability: "read"}
	b.ReportAllocs()
	for b.Loop() {
		cred, err := l402.CredentialFromHeader(h)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.Verify(ctx, cred, want); err != nil {
			b.Fatal(err)
		}
	}
}

func headerFor(b *testing.B, s *sideBySide) http.Header {
	b.Helper()
	v, err := l402.FormatCredential(l402.Credential{Macaroon: s.mac, Preimage: s.preimage})
	if err != nil {
		b.Fatal(err)
	}
	return http.Header{"Authorization": {v}}
}
