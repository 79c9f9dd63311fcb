package gate

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/l402/mpp"
	"github.com/l402d/l402d/plugin/producer"
)

// countingProducer counts full verifications; it passes IsRevoked on, so
// the gate caches.
type countingProducer struct {
	*producer.Producer
	verifies atomic.Int64
}

func (c *countingProducer) Verify(ctx context.Context, cred l402.Credential, want l402.Expect) (l402.Verified, error) {
	c.verifies.Add(1)
	return c.Producer.Verify(ctx, cred, want)
}

func cachingFixture(t *testing.T, services string) (*fixture, *countingProducer) {
	t.Helper()
	var cp *countingProducer
	f := newFixture(t, services, func(c *Config) {
		cp = &countingProducer{Producer: c.Producer.(*producer.Producer)}
		c.Producer = cp
	})
	return f, cp
}

func TestVerifyCache(t *testing.T) {
	const validity = "    capabilities: [read]\n    token_validity: 10m\n"
	services := strings.Replace(testServices, "    capabilities: [read]\n", validity, 1)
	for _, tc := range []struct {
		name string
		// after runs between the first paid request (which verifies in
		// full and is cached) and the second.
		after        func(f *fixture, cp *countingProducer, auth string) (path, authz string)
		code         int
		reason       string
		fullVerifies int64
	}{
		{"a repeat is a hit", func(*fixture, *countingProducer, string) (string, string) { return "/api/x", "" }, 200, "", 1},
		{"another path under the same rule is verified", func(*fixture, *countingProducer, string) (string, string) { return "/api/y", "" }, 200, "", 2},
		{"another rule's path is refused", func(*fixture, *countingProducer, string) (string, string) { return "/api/premium/x", "" }, 402, "wrong_resource", 2},
		{"revoked is refused at once", func(f *fixture, cp *countingProducer, auth string) (string, string) {
			if _, err := cp.Revoke(context.Background(), tokenOf(f.t, auth), "test"); err != nil {
				f.t.Fatal(err)
			}
			return "/api/x", ""
		}, 402, "revoked", 2},
		{"expired is refused", func(f *fixture, _ *countingProducer, _ string) (string, string) {
			f.clock.advance(11 * time.Minute)
			return "/api/x", ""
		}, 402, "expired", 2},
		{"an old entry is verified again", func(f *fixture, _ *countingProducer, _ string) (string, string) {
			f.clock.advance(verifyCacheTTL + time.Second)
			return "/api/x", ""
		}, 200, "", 2},
		{"a changed preimage is verified and refused", func(_ *fixture, _ *countingProducer, auth string) (string, string) {
			last := auth[len(auth)-1]
			swap := byte('0')
			if last == '0' {
				swap = '1'
			}
			return "/api/x", auth[:len(auth)-1] + string(swap)
		}, 402, "wrong_preimage", 2},
		{"a second credential header is verified", func(_ *fixture, _ *countingProducer, auth string) (string, string) {
			return "/api/x", auth + "\x00second"
		}, 200, "", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, cp := cachingFixture(t, services)
			auth := f.pay(f.do("GET", "/api/x"))
			if w := f.do("GET", "/api/x", "Authorization", auth); w.Code != 200 {
				t.Fatalf("first paid request: %d %s", w.Code, w.Body)
			}
			path, authz := tc.after(f, cp, auth)
			hdr := []string{"Authorization", auth}
			if a, b, two := strings.Cut(authz, "\x00"); two {
				hdr = []string{"Authorization", a, "Authorization", b}
			} else if authz != "" {
				hdr = []string{"Authorization", authz}
			}
			w := f.do("GET", path, hdr...)
			if w.Code != tc.code || (tc.reason != "" && body(t, w)["reason"] != tc.reason) {
				t.Fatalf("second request: %d %s, want %d %s", w.Code, w.Body, tc.code, tc.reason)
			}
			if n := cp.verifies.Load(); n != tc.fullVerifies {
				t.Fatalf("%d full verifications, want %d", n, tc.fullVerifies)
			}
		})
	}
}

func TestVerifyCacheCountsHitsAsVerifications(t *testing.T) {
	f, cp := cachingFixture(t, testServices)
	auth := f.pay(f.do("GET", "/api/x"))
	for range 3 {
		if w := f.do("GET", "/api/x", "Authorization", auth); w.Code != 200 {
			t.Fatalf("paid: %d", w.Code)
		}
	}
	if n := cp.verifies.Load(); n != 1 {
		t.Fatalf("%d full verifications for 3 requests, want 1", n)
	}
	if got := counterValue(t, f, "l402d_verifications_total", "valid"); got != 3 {
		t.Fatalf("verifications{result=valid} = %v, want 3", got)
	}
}

func TestCredentialKey(t *testing.T) {
	h := func(kv ...string) map[string][]string {
		m := map[string][]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = append(m[kv[i]], kv[i+1])
		}
		return m
	}
	if _, ok := credentialKey(h("Accept", "x"), "s", "/p"); ok {
		t.Fatal("a request without credential headers has a key")
	}
	base, _ := credentialKey(h("Authorization", "L402 a:b"), "s", "/p")
	for name, other := range map[string][32]byte{
		"service":      must(credentialKey(h("Authorization", "L402 a:b"), "t", "/p")),
		"path":         must(credentialKey(h("Authorization", "L402 a:b"), "s", "/q")),
		"value":        must(credentialKey(h("Authorization", "L402 a:c"), "s", "/p")),
		"second value": must(credentialKey(h("Authorization", "L402 a:b", "Authorization", "x"), "s", "/p")),
		"macaroon":     must(credentialKey(h("Authorization", "L402 a:b", "Macaroon", "00"), "s", "/p")),
		"moved value":  must(credentialKey(h("Macaroon", "L402 a:b"), "s", "/p")),
		"split":        must(credentialKey(h("Authorization", "L402 a:"), "s", "b/p")),
	} {
		if other == base {
			t.Errorf("changing the %s keeps the key", name)
		}
	}
}

func must(k [32]byte, _ bool) [32]byte { return k }

// tokenOf is the token id of an Authorization value.
func tokenOf(t *testing.T, auth string) string {
	t.Helper()
	c, err := l402.ParseAuthorization(auth)
	if err != nil {
		t.Fatal(err)
	}
	id, err := l402.DecodeIdentifier(c.Macaroon.Id())
	if err != nil {
		t.Fatal(err)
	}
	return id.TokenID.String()
}

// counterValue reads one labelled counter of the fixture's registry.
func counterValue(t *testing.T, f *fixture, name, label string) float64 {
	t.Helper()
	mfs, err := f.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// revocationCounter counts the revocation checks a cache makes.
type revocationCounter struct{ n atomic.Int64 }

func (r *revocationCounter) IsRevoked(context.Context, l402.TokenID) (bool, error) {
	r.n.Add(1)
	return false, nil
}

// TestVerifyCacheSession: a session's bearer credential is remembered
// as a session (never read as a token), asks no revocation, and is
// forgotten after the TTL like a token.
func TestVerifyCacheSession(t *testing.T) {
	rc := &revocationCounter{}
	now := time.Unix(1_900_000_000, 0)
	c := newVerifyCache(rc, func() time.Time { return now })
	h := http.Header{"Authorization": {"Payment abc"}}
	key, _ := credentialKey(h, "s", "")
	c.putSession(key, mpp.Session{Action: mpp.ActionBearer, ID: lntypes.Hash{7}})
	e, ok := c.get(t.Context(), key)
	if !ok || e.session == nil || e.session.ID != (lntypes.Hash{7}) || e.id != (l402.TokenID{}) || rc.n.Load() != 0 {
		t.Fatalf("get = %+v %v, %d revocation checks", e, ok, rc.n.Load())
	}
	if other, _ := credentialKey(h, "s", "/p"); other == key {
		t.Fatal("a token's key (service and path) is a session's key (service only)")
	}
	now = now.Add(verifyCacheTTL)
	if _, ok := c.get(t.Context(), key); ok {
		t.Fatal("a session entry outlived the TTL")
	}
}
