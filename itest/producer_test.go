//go:build itest

package itest

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/plugin/apiclient"
)

// challenge is the seed API's challenge as the itests read it.
type challenge = apiclient.Challenge

// createChallenge creates a challenge over REST and checks the answer.
// hdr may set one header: X-Idempotency-Key.
func createChallenge(t testing.TB, d *daemon, resource string, price int64, hdr ...string) challenge {
	t.Helper()
	req := apiclient.CreateChallengeRequest{Resource: resource, PriceSats: price, Description: "itest " + resource}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] != apiclient.HeaderIdempotencyKey {
			t.Fatalf("createChallenge sets no header %s", hdr[i])
		}
		req.IdempotencyKey = hdr[i+1]
	}
	ch, err := d.producerAPI(t).CreateChallenge(testCtx(t, 2*time.Minute), req)
	if err != nil {
		t.Fatalf("create challenge: %v", err)
	}
	c := *ch
	if !strings.HasPrefix(c.Invoice, "lnbcrt") || c.Macaroon == "" || len(c.PaymentHash) != 64 || c.Resource != resource || c.PriceSats != price {
		t.Fatalf("challenge %+v", c)
	}
	return c
}

// payInvoice has the named node pay a BOLT 11 invoice and returns the
// preimage (hex).
func payInvoice(t testing.TB, payer, invoice string) string {
	t.Helper()
	c := lnd(t, testNet(t), payer)
	p, err := c.Pay(testCtx(t, 2*time.Minute), &routerrpc.SendPaymentRequest{PaymentRequest: invoice, FeeLimitSat: 100, TimeoutSeconds: 60})
	if err != nil {
		t.Fatalf("%s paying: %v", payer, err)
	}
	return p.PaymentPreimage
}

// verifyToken verifies a token over REST; "" checks no resource.
func verifyToken(t testing.TB, d *daemon, mac, preimage, resource string) *apiclient.VerifyResponse {
	t.Helper()
	out, err := d.producerAPI(t).Verify(testCtx(t, 2*time.Minute), apiclient.VerifyRequest{Macaroon: mac, Preimage: preimage, Resource: resource})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return out
}

// waitSettled waits until the daemon records the challenge as settled.
func waitSettled(t testing.TB, d *daemon, hash string, amount int64) {
	t.Helper()
	waitFor(t, 30*time.Second, "settlement of "+hash, func() error {
		out, err := d.producerAPI(t).Challenge(testCtx(t, time.Minute), hash)
		if err != nil {
			return err
		}
		if out.State != "settled" || out.AmountPaidSats != amount {
			return fmt.Errorf("state %v paid %v", out.State, out.AmountPaidSats)
		}
		return nil
	})
}

func TestProducerPaidFlow(t *testing.T) {
	n := testNet(t)
	alice := n.Node("alice")
	d := startDaemon(t, alice)

	ch := createChallenge(t, d, "/api/weather/forecast", 50)
	pre := payInvoice(t, "bob", ch.Invoice)

	out := verifyToken(t, d, ch.Macaroon, pre, "")
	if !out.Valid || out.Resource != "/api/weather/forecast" || out.AmountSats != 50 ||
		out.MerchantID != alice.Pubkey || out.PaymentHash != ch.PaymentHash {
		t.Fatalf("paid token: %v", out)
	}
	if out := verifyToken(t, d, ch.Macaroon, pre, "/api/weather/forecast"); !out.Valid {
		t.Fatalf("paid token for its own resource: %v", out)
	}
	waitSettled(t, d, ch.PaymentHash, 50)

	t.Run("invalid tokens", func(t *testing.T) {
		wrong := strings.Repeat("ab", 32)
		tampered := tamper(t, ch.Macaroon, "resource=/api/weather/forecast", "resource=/api/weather/forecasT")
		tests := []struct {
			name, mac, pre, resource, reason, msg string
		}{
			{"wrong preimage", ch.Macaroon, wrong, "", "wrong_preimage", "does not match payment hash"},
			{"token for A verified for B", ch.Macaroon, pre, "/api/other", "wrong_resource", "not valid for this resource"},
			{"tampered caveat", tampered, pre, "", "bad_signature", "signature"},
			{"widened amount", addCaveat(t, ch.Macaroon, "amount_sats=5000"), pre, "", "caveat_widened", "widens"},
			{"caveat we cannot check", addCaveat(t, ch.Macaroon, "ip=10.0.0.1"), pre, "", "unknown_caveat", "unknown caveat"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				out := verifyToken(t, d, tt.mac, tt.pre, tt.resource)
				if out.Valid || out.Reason != tt.reason || !strings.Contains(strings.ToLower(out.Error), tt.msg) {
					t.Fatalf("got %v, want reason %s mentioning %q", out, tt.reason, tt.msg)
				}
			})
		}
	})

	t.Run("idempotent create", func(t *testing.T) {
		a := createChallenge(t, d, "/api/idem", 7)
		b := createChallenge(t, d, "/api/idem", 7)
		if a.Invoice != b.Invoice || a.Macaroon != b.Macaroon {
			t.Fatal("same client, resource and price within 60s got a fresh challenge")
		}
		k1 := createChallenge(t, d, "/api/idem", 7, "X-Idempotency-Key", "agent-1")
		k2 := createChallenge(t, d, "/api/idem", 7, "X-Idempotency-Key", "agent-2")
		k1again := createChallenge(t, d, "/api/idem", 7, "X-Idempotency-Key", "agent-1")
		if k1.Invoice == a.Invoice || k1.Invoice == k2.Invoice || k1again.Invoice != k1.Invoice {
			t.Fatal("idempotency keys do not scope challenges")
		}
		// The entry is in Badger: it survives a restart.
		d.stop(t)
		d.start(t)
		if again := createChallenge(t, d, "/api/idem", 7, "X-Idempotency-Key", "agent-1"); again.Invoice != k1.Invoice {
			t.Fatal("idempotent challenge lost across a restart")
		}
	})

	t.Run("stats and list", func(t *testing.T) {
		code, out := d.call(t, "GET", "/api/l402/stats", nil)
		total, _ := out["total"].(map[string]any)
		if code != 200 || num(total["revenueSats"]) < 50 || num(total["challengesSettled"]) < 1 {
			t.Fatalf("stats: %d %v", code, out)
		}
		code, out = d.call(t, "GET", "/api/l402/challenges?state=settled", nil)
		if code != 200 || len(out["challenges"].([]any)) < 1 {
			t.Fatalf("list settled: %d %v", code, out)
		}
	})

	t.Run("revoked", func(t *testing.T) {
		c := createChallenge(t, d, "/api/revoke-me", 3)
		p := payInvoice(t, "bob", c.Invoice)
		if code, out := d.callKey(t, d.adminKey(t), "POST", "/api/l402/tokens/revoke", map[string]any{"token": c.Macaroon, "reason": "itest"}); code != 200 {
			t.Fatalf("revoke: %d %v", code, out)
		}
		if out := verifyToken(t, d, c.Macaroon, p, ""); out.Valid || out.Reason != "revoked" {
			t.Fatalf("revoked token: %v", out)
		}
	})
}

func TestProducerExpiredToken(t *testing.T) {
	// Long enough for the payment to go through on a loaded machine
	// before the token expires.
	const validity = 10 * time.Second
	d := startDaemon(t, testNet(t).Node("alice"), "--token-validity", validity.String())
	created := time.Now()
	ch := createChallenge(t, d, "/api/short-lived", 5)
	pre := payInvoice(t, "bob", ch.Invoice)
	if out := verifyToken(t, d, ch.Macaroon, pre, ""); !out.Valid {
		t.Fatalf("fresh token, %v after it was created: %v", time.Since(created).Round(time.Millisecond), out)
	}
	waitFor(t, validity+20*time.Second, "token expiry", func() error {
		out := verifyToken(t, d, ch.Macaroon, pre, "")
		if out.Valid || out.Reason != "expired" {
			return fmt.Errorf("%v", out)
		}
		return nil
	})
}

// TestProducerSettlementWhileDown: payments made while l402d is stopped
// (cleanly or by kill -9) are recorded when it comes back.
func TestProducerSettlementWhileDown(t *testing.T) {
	for _, how := range []string{"SIGTERM", "kill -9"} {
		t.Run(how, func(t *testing.T) {
			d := startDaemon(t, testNet(t).Node("alice"))
			ch := createChallenge(t, d, "/api/while-down/"+how, 11)
			if how == "SIGTERM" {
				d.stop(t)
			} else {
				d.kill9(t)
			}
			pre := payInvoice(t, "bob", ch.Invoice)
			d.start(t)
			waitSettled(t, d, ch.PaymentHash, 11)
			if out := verifyToken(t, d, ch.Macaroon, pre, ""); !out.Valid {
				t.Fatalf("token after restart: %v", out)
			}
		})
	}
}

// TestProducerLNDRestart: with LND stopped under a running l402d, verify
// keeps working, create answers 503, and after LND returns the watcher
// reconnects and records new settlements.
func TestProducerLNDRestart(t *testing.T) {
	n := testNet(t)
	d := startDaemon(t, n.Node("alice"))
	ch := createChallenge(t, d, "/api/lnd-restart", 13)
	pre := payInvoice(t, "bob", ch.Invoice)
	waitSettled(t, d, ch.PaymentHash, 13)

	ctx := testCtx(t, 5*time.Minute)
	restartAfter(t, n, "alice")
	if err := n.StopNode(ctx, "alice"); err != nil {
		t.Fatal(err)
	}

	if out := verifyToken(t, d, ch.Macaroon, pre, ""); !out.Valid {
		t.Fatalf("verify while LND is down: %v", out)
	}
	waitFor(t, 30*time.Second, "create to fail with 503", func() error {
		code, out := d.call(t, "POST", "/api/l402/challenges", map[string]any{"resource": "/api/x", "priceSats": 1})
		if code != 503 || out["code"] != "lnd_unavailable" || !strings.Contains(str(out["error"]), "unreachable") {
			return fmt.Errorf("%d %v", code, out)
		}
		return nil
	})
	waitFor(t, 30*time.Second, "healthz to report LND down", func() error {
		_, out := d.call(t, "GET", "/healthz", nil)
		lnd, _ := out["lnd"].(map[string]any)
		if out["status"] != "degraded" || lnd["up"] != false {
			return fmt.Errorf("%v", out)
		}
		return nil
	})

	if err := n.StartNode(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if out := verifyToken(t, d, ch.Macaroon, pre, ""); !out.Valid {
		t.Fatalf("verify after LND restart: %v", out)
	}
	var after challenge
	waitFor(t, 60*time.Second, "create to work again", func() error {
		code, out := d.call(t, "POST", "/api/l402/challenges", map[string]any{"resource": "/api/after-restart", "priceSats": 17})
		if code != 200 {
			return fmt.Errorf("%d %v", code, out)
		}
		after = challenge{Invoice: str(out["invoice"]), PaymentHash: str(out["paymentHash"]), Macaroon: str(out["macaroon"])}
		return nil
	})
	payInvoice(t, "bob", after.Invoice)
	waitSettled(t, d, after.PaymentHash, 17)
	waitFor(t, 30*time.Second, "healthz ok", func() error {
		_, out := d.call(t, "GET", "/healthz", nil)
		if out["status"] != "ok" {
			return fmt.Errorf("%v", out)
		}
		return nil
	})
}

// TestProducerLeastPrivilege runs the producer with a macaroon baked with
// only info:read, invoices:read and invoices:write, as the README advises.
func TestProducerLeastPrivilege(t *testing.T) {
	n := testNet(t)
	c := lnd(t, n, "alice")
	resp, err := c.Lightning.BakeMacaroon(testCtx(t, time.Minute), &lnrpc.BakeMacaroonRequest{Permissions: []*lnrpc.MacaroonPermission{
		{Entity: "info", Action: "read"}, {Entity: "invoices", Action: "read"}, {Entity: "invoices", Action: "write"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := hex.DecodeString(resp.Macaroon)
	path := filepath.Join(t.TempDir(), "producer.macaroon")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	d := newDaemon(t, n.Node("alice"))
	d.args = withMacaroonPath(d.args, path)
	d.start(t)

	ch := createChallenge(t, d, "/api/least-privilege", 9)
	pre := payInvoice(t, "bob", ch.Invoice)
	waitSettled(t, d, ch.PaymentHash, 9)
	if out := verifyToken(t, d, ch.Macaroon, pre, ""); !out.Valid {
		t.Fatalf("verify: %v", out)
	}
}

// tamper edits a caveat inside a macaroon's bytes, keeping its signature.
func tamper(t testing.TB, macB64, from, to string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(macB64)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(raw), from, to, 1)
	if s == string(raw) || len(from) != len(to) {
		t.Fatalf("cannot tamper %q", from)
	}
	return base64.StdEncoding.EncodeToString([]byte(s))
}

// addCaveat appends a first-party caveat, as any holder can.
func addCaveat(t testing.TB, macB64, caveat string) string {
	t.Helper()
	mac, err := l402.DecodeMacaroon(macB64)
	if err != nil {
		t.Fatal(err)
	}
	if err := mac.AddFirstPartyCaveat([]byte(caveat)); err != nil {
		t.Fatal(err)
	}
	s, err := l402.EncodeMacaroon(mac)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}
