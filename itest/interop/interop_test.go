package interop

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/lightninglabs/aperture/auth"
	apl402 "github.com/lightninglabs/aperture/l402"
	"github.com/lightninglabs/aperture/mint"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402"
)

// sharedSecrets is one secret store seen through both APIs: Aperture keys
// secrets by sha256(identifier), l402d by token id.
type sharedSecrets struct {
	mu    sync.Mutex
	byID  map[[32]byte][32]byte // sha256(macaroon id) -> secret
	byTok map[l402.TokenID][32]byte
	// next is the secret NewSecret/NewRootKey hands out next.
	next [32]byte
}

func newSharedSecrets() *sharedSecrets {
	return &sharedSecrets{byID: map[[32]byte][32]byte{}, byTok: map[l402.TokenID][32]byte{}}
}

func (s *sharedSecrets) fresh() [32]byte {
	s.next = sha256.Sum256(s.next[:])
	return s.next
}

// Aperture's mint.SecretStore.
func (s *sharedSecrets) NewSecret(_ context.Context, idHash [32]byte) ([32]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.fresh()
	s.byID[idHash] = k
	return k, nil
}

func (s *sharedSecrets) GetSecret(_ context.Context, idHash [32]byte) ([32]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.byID[idHash]
	if !ok {
		return k, mint.ErrSecretNotFound
	}
	return k, nil
}

func (s *sharedSecrets) RevokeSecret(_ context.Context, idHash [32]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, idHash)
	return nil
}

// l402d's RootKeyStore.
func (s *sharedSecrets) NewRootKey(_ context.Context, id l402.TokenID) ([32]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.fresh()
	s.byTok[id] = k
	return k, nil
}

func (s *sharedSecrets) RootKey(_ context.Context, id l402.TokenID) ([32]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.byTok[id]; ok {
		return k, nil
	}
	return [32]byte{}, l402.ErrUnknownToken
}

// link records, for a macaroon minted by one side, the key under the
// other side's index too: "given the same root key".
func (s *sharedSecrets) link(t *testing.T, macID []byte) {
	t.Helper()
	id, err := l402.DecodeIdentifier(macID)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := sha256.Sum256(macID)
	if k, ok := s.byID[h]; ok {
		s.byTok[id.TokenID] = k
	} else if k, ok := s.byTok[id.TokenID]; ok {
		s.byID[h] = k
	} else {
		t.Fatal("no secret to link")
	}
}

// challenger hands out a fixed invoice and a fresh payment hash, as an
// LND-backed challenger would; preimages are kept for the test to "pay".
type challenger struct {
	mu        sync.Mutex
	n         byte
	preimages map[lntypes.Hash]lntypes.Preimage
}

func (c *challenger) NewChallenge(price int64) (string, lntypes.Hash, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	p := lntypes.Preimage(sha256.Sum256([]byte{c.n}))
	c.preimages[p.Hash()] = p
	return fmt.Sprintf("lnbcrt%dn1fake", price*10), p.Hash(), nil
}

func (c *challenger) Stop() {}

// limiter gives every service a capability and a one-hour timeout.
type limiter struct{ now func() time.Time }

func (l limiter) ServiceCapabilities(_ context.Context, svcs ...apl402.Service) ([]apl402.Caveat, error) {
	var out []apl402.Caveat
	for _, s := range svcs {
		out = append(out, apl402.NewCapabilitiesCaveat(s.Name, "read"))
	}
	return out, nil
}

func (l limiter) ServiceConstraints(context.Context, ...apl402.Service) ([]apl402.Caveat, error) {
	return nil, nil
}

func (l limiter) ServiceTimeouts(_ context.Context, svcs ...apl402.Service) ([]apl402.Caveat, error) {
	var out []apl402.Caveat
	for _, s := range svcs {
		out = append(out, apl402.NewTimeoutCaveat(s.Name, 3600, l.now))
	}
	return out, nil
}

// settled is Aperture's invoice checker over a fixed set of paid hashes.
type settled map[lntypes.Hash]bool

func (s settled) VerifyInvoiceStatus(h lntypes.Hash, _ lnrpc.Invoice_InvoiceState, _ time.Duration) error {
	if !s[h] {
		return fmt.Errorf("invoice %v not settled", h)
	}
	return nil
}

func newAperture(secrets *sharedSecrets) (*mint.Mint, *challenger) {
	ch := &challenger{preimages: map[lntypes.Hash]lntypes.Preimage{}}
	return mint.New(&mint.Config{
		Secrets: secrets, Challenger: ch, ServiceLimiter: limiter{now: time.Now}, Now: time.Now,
	}), ch
}

func TestApertureMintsL402dVerifies(t *testing.T) {
	ctx := context.Background()
	secrets := newSharedSecrets()
	ap, ch := newAperture(secrets)
	mac, _, err := ap.MintL402(ctx, apl402.Service{Name: "weather", Price: 50})
	if err != nil {
		t.Fatal(err)
	}
	secrets.link(t, mac.Id())
	id, _ := l402.DecodeIdentifier(mac.Id())
	pre := ch.preimages[id.PaymentHash]

	v := &l402.Verifier{Keys: secrets}
	got, err := v.Verify(ctx, l402.Credential{Macaroon: mac, Preimage: pre}, l402.Expect{Service: "weather", Capability: "read"})
	if err != nil {
		t.Fatalf("l402d refused Aperture's token: %v", err)
	}
	if got.PaymentHash != id.PaymentHash || len(got.Services) != 1 || got.Services[0].Name != "weather" {
		t.Fatalf("verified %+v", got)
	}
	if _, err := v.Verify(ctx, l402.Credential{Macaroon: mac, Preimage: pre}, l402.Expect{Service: "maps"}); !errors.Is(err, l402.ErrWrongService) {
		t.Fatalf("other service: %v", err)
	}
	bad := pre
	bad[0] ^= 1
	if _, err := v.Verify(ctx, l402.Credential{Macaroon: mac, Preimage: bad}, l402.Expect{Service: "weather"}); !errors.Is(err, l402.ErrWrongPreimage) {
		t.Fatalf("wrong preimage: %v", err)
	}
}

func TestL402dMintsApertureVerifies(t *testing.T) {
	ctx := context.Background()
	secrets := newSharedSecrets()
	ap, _ := newAperture(secrets)
	pre := lntypes.Preimage(sha256.Sum256([]byte("l402d")))
	mac, _, err := l402.Mint(ctx, secrets, l402.MintParams{
		PaymentHash: pre.Hash(), Service: "weather", Capabilities: []string{"read"},
		ValidUntil: time.Now().Add(time.Hour), AmountSats: 50,
		Node: "02" + fmt.Sprintf("%064x", 1), Resource: "/forecast",
	})
	if err != nil {
		t.Fatal(err)
	}
	secrets.link(t, mac.Id())
	if err := ap.VerifyL402(ctx, &mint.VerificationParams{Macaroon: mac, Preimage: pre, TargetService: "weather"}); err != nil {
		t.Fatalf("Aperture refused l402d's token: %v", err)
	}
	if err := ap.VerifyL402(ctx, &mint.VerificationParams{Macaroon: mac, Preimage: pre, TargetService: "maps"}); err == nil {
		t.Fatal("Aperture accepted l402d's token for another service")
	}
	expired, _, err := l402.Mint(ctx, secrets, l402.MintParams{PaymentHash: pre.Hash(), Service: "weather", ValidUntil: time.Now().Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	secrets.link(t, expired.Id())
	if err := ap.VerifyL402(ctx, &mint.VerificationParams{Macaroon: expired, Preimage: pre, TargetService: "weather"}); err == nil {
		t.Fatal("Aperture accepted an l402d token past its validity")
	}
}

func TestApertureChallengeParsesInL402d(t *testing.T) {
	secrets := newSharedSecrets()
	ap, _ := newAperture(secrets)
	a := auth.NewL402Authenticator(ap, settled{})
	h, err := a.FreshChallengeHeader("weather", 50)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(h.Values("WWW-Authenticate")); n != 2 {
		t.Fatalf("Aperture sent %d challenges, expected its LSAT+L402 pair", n)
	}
	c, err := l402.ParseChallenge(h)
	if err != nil {
		t.Fatalf("l402d cannot parse Aperture's challenge: %v", err)
	}
	if c.Scheme != "L402" || c.Invoice != "lnbcrt500n1fake" {
		t.Fatalf("parsed %+v", c)
	}
	mac, err := l402.DecodeMacaroon(c.Macaroon)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l402.DecodeIdentifier(mac.Id()); err != nil {
		t.Fatal(err)
	}
}

func TestCredentialsCrossParse(t *testing.T) {
	ctx := context.Background()
	secrets := newSharedSecrets()
	ap, ch := newAperture(secrets)

	// Aperture's client header (LSAT then L402) read by l402d.
	apMac, _, err := ap.MintL402(ctx, apl402.Service{Name: "weather", Price: 50})
	if err != nil {
		t.Fatal(err)
	}
	secrets.link(t, apMac.Id())
	id, _ := l402.DecodeIdentifier(apMac.Id())
	pre := ch.preimages[id.PaymentHash]
	h := http.Header{}
	if err := apl402.SetHeader(&h, apMac, pre); err != nil {
		t.Fatal(err)
	}
	cred, err := l402.CredentialFromHeader(h)
	if err != nil {
		t.Fatalf("l402d cannot read Aperture's Authorization: %v", err)
	}
	if _, err := (&l402.Verifier{Keys: secrets}).Verify(ctx, cred, l402.Expect{Service: "weather"}); err != nil {
		t.Fatal(err)
	}

	// l402d's Authorization read by Aperture's server side, then verified.
	ourPre := lntypes.Preimage(sha256.Sum256([]byte("ours")))
	ourMac, _, err := l402.Mint(ctx, secrets, l402.MintParams{PaymentHash: ourPre.Hash(), Service: "weather", ValidUntil: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	secrets.link(t, ourMac.Id())
	value, err := l402.FormatCredential(l402.Credential{Macaroon: ourMac, Preimage: ourPre})
	if err != nil {
		t.Fatal(err)
	}
	gotMac, gotPre, err := apl402.FromHeader(&http.Header{"Authorization": {value}})
	if err != nil {
		t.Fatalf("Aperture cannot read l402d's Authorization: %v", err)
	}
	if gotPre != ourPre {
		t.Fatal("Aperture read another preimage")
	}
	if err := ap.VerifyL402(ctx, &mint.VerificationParams{Macaroon: gotMac, Preimage: gotPre, TargetService: "weather"}); err != nil {
		t.Fatal(err)
	}

	// And Aperture's authenticator accepts a request carrying it, once its
	// invoice checker sees the invoice settled.
	a := auth.NewL402Authenticator(ap, settled{ourPre.Hash(): true})
	if !a.Accept(&http.Header{"Authorization": {value}}, "weather") {
		t.Fatal("Aperture's authenticator refused l402d's credential")
	}
}
