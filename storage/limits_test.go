package storage

import (
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// FuzzLimitsAgree: the journal and the token cache apply one table of
// limits, so a journal entry the store accepts yields a token it accepts
// too (for the non-empty, NUL-free origin and scope the consumer
// derives), and its encoding round-trips. The consumer's side of the
// promise is FuzzLimits in plugin/consumer.
func FuzzLimitsAgree(f *testing.F) {
	f.Add("https://a.example", "/"+strings.Repeat("x", 3<<10), "a.example", strings.Repeat("m", 100), "svc", int64(0))
	f.Add("https://a.example", "service:"+strings.Repeat("s", 2<<10), "a.example", "m", "", int64(1<<62))
	f.Add(strings.Repeat("o", MaxOriginLen), strings.Repeat("s", MaxScopeLen), strings.Repeat("d", MaxDomainLen), strings.Repeat("m", MaxMacaroonLen), "", int64(-1))
	f.Fuzz(func(t *testing.T, origin, scope, domain, mac, service string, expiry int64) {
		var pre lntypes.Preimage
		copy(pre[:], origin+scope)
		h := lntypes.Hash(sha256.Sum256(pre[:]))
		p := &Payment{PaymentHash: h, State: PaymentSucceeded, Kind: KindAccess, Invoice: "lnbcrt1", AmountMsat: 1000, Domain: domain,
			URL: origin + scope, Origin: origin, Scope: scope, Macaroon: mac}
		if len(p.URL) > MaxURLLen {
			p.URL = p.URL[:MaxURLLen]
		}
		if validatePayment(p) != nil || origin == "" || scope == "" || mac == "" ||
			strings.ContainsRune(origin, 0) || strings.ContainsRune(scope, 0) || len(service) > MaxServiceLen {
			return
		}
		tok := &Token{Origin: origin, Scope: scope, PaymentHash: h, Preimage: pre, Macaroon: mac, Service: service}
		if expiry != 0 { // 0 is the encoding of "no expiry"
			tok.ExpiresAt = ClampTime(time.Unix(expiry, 0))
		}
		if err := validateToken(tok); err != nil {
			t.Fatalf("journal accepts origin %d, scope %d bytes; token cache refuses: %v", len(origin), len(scope), err)
		}
		got, err := decodeToken(tokenKey(origin, scope), encodeToken(tok))
		if err != nil || got.Scope != scope || got.Origin != origin || !got.ExpiresAt.Equal(tok.ExpiresAt) {
			t.Fatalf("token round trip: %+v %v", got, err)
		}
		if _, err := decodePayment(paymentKey(h), encodePayment(p)); err != nil {
			t.Fatalf("payment round trip: %v", err)
		}
	})
}
