//go:build itest

package itest

import (
	"os"
	"path/filepath"
	"testing"
)

// TestKeyRoles: on regtest, the producer key sells and cannot spend, the
// spend key spends and cannot sell, a node without --consumer.enable
// spends nothing whatever the key, a resource named through the API is a
// literal (a 1-sat "/api/*" token is no token for /api/premium/report),
// and /healthz tells a caller without a key only its status.
func TestKeyRoles(t *testing.T) {
	alice := startDaemon(t, testNet(t).Node("alice"))
	bob := startBob(t)
	before := lndPaymentCount(t)

	// Spending off on alice: no spend key, and no key spends.
	if _, err := os.Stat(filepath.Join(alice.dataDir, "spend.key")); !os.IsNotExist(err) {
		t.Fatalf("alice has a spend.key without --consumer.enable: %v", err)
	}
	ch := createChallenge(t, bob, "/roles/bob", 3)
	for _, key := range []string{alice.apiKey(t), alice.adminKey(t)} {
		if code, out := alice.callKey(t, key, "POST", "/api/consumer/pay/invoice", map[string]any{"invoice": ch.Invoice}); code != 403 || out["code"] != "spending_disabled" {
			t.Fatalf("alice paying with spending off: %d %v", code, out)
		}
	}

	// Bob spends only with the spend (or admin) key.
	ch = createChallenge(t, alice, "/roles/alice", 4)
	if code, out := bob.callKey(t, bob.apiKey(t), "POST", "/api/consumer/pay/invoice", map[string]any{"invoice": ch.Invoice}); code != 403 || out["code"] != "forbidden" {
		t.Fatalf("bob's producer key paid: %d %v", code, out)
	}
	if code, out := bob.callKey(t, bob.spendKey(t), "POST", "/api/l402/challenges", map[string]any{"resource": "/x", "priceSats": 1}); code != 403 || out["code"] != "forbidden" {
		t.Fatalf("bob's spend key created a challenge: %d %v", code, out)
	}
	if code, out := bob.callKey(t, bob.spendKey(t), "GET", "/metrics", nil); code != 403 {
		t.Fatalf("bob's spend key read metrics: %d %v", code, out)
	}
	if n := lndPaymentCount(t); n != before {
		t.Fatalf("bob's LND made %d payments for refused calls", n-before)
	}

	// A literal resource: bought "/api/*" for 1 sat, it is not a prefix.
	wild := createChallenge(t, alice, "/api/*", 1)
	code, out := bob.call(t, "POST", "/api/consumer/pay/challenge", map[string]any{"invoice": wild.Invoice, "macaroon": wild.Macaroon})
	pay := obj(out["payment"])
	if code != 200 || pay["state"] != "succeeded" {
		t.Fatalf("bob paying with the spend key: %d %v", code, out)
	}
	pre := str(pay["preimage"])
	if v := verifyToken(t, alice, wild.Macaroon, pre, "/api/premium/report"); v.Valid || v.Reason != "wrong_resource" {
		t.Fatalf("a 1-sat /api/* token verified for /api/premium/report: %v", v)
	}
	if v := verifyToken(t, alice, wild.Macaroon, pre, "/api/*"); !v.Valid {
		t.Fatalf("the token for the literal /api/*: %v", v)
	}

	// /healthz: the status only without a key.
	if _, out := alice.callKey(t, "", "GET", "/healthz", nil); len(out) != 1 || out["status"] == nil {
		t.Fatalf("/healthz without a key: %v", out)
	}
	if _, out := alice.call(t, "GET", "/healthz", nil); out["lnd"] == nil {
		t.Fatalf("/healthz with a key: %v", out)
	}
}
