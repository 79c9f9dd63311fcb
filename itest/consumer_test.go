//go:build itest

package itest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/invoicesrpc"
	"github.com/lightningnetwork/lnd/lntypes"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/plugin/apiclient"
	"github.com/l402d/l402d/regtest"
)

// l402Seller is a small test-only L402 HTTP server on loopback, selling
// every path for price sats. Its challenges come from alice's l402d (the
// seed REST API, so the invoices are alice's LND's), or, in hold mode,
// from a HOLD invoice on alice's LND and a token minted here, so that a
// payment stays in flight until the test settles it.
type l402Seller struct {
	t     testing.TB
	alice *daemon
	key   string
	srv   *httptest.Server
	price int64
	hold  bool
	keys  *itestKeys // hold mode's root keys

	aliceLND *regtest.Client // hold mode

	mu           sync.Mutex
	failAfterPay int                               // status for a valid credential; 0: 200
	hashes       []string                          // payment hashes of the challenges handed out
	preimages    map[lntypes.Hash]lntypes.Preimage // hold mode
	errs         []error                           // handler failures, reported when the test ends
	lastHashFor  map[string]string                 // path → last payment hash
}

func newL402Seller(t *testing.T, alice *daemon, price int64, hold bool) *l402Seller {
	t.Helper()
	s := &l402Seller{t: t, alice: alice, key: alice.apiKey(t), price: price, hold: hold,
		keys: &itestKeys{m: map[l402.TokenID][l402.RootKeySize]byte{}}, preimages: map[lntypes.Hash]lntypes.Preimage{},
		lastHashFor: map[string]string{}}
	if hold {
		s.aliceLND = lnd(t, testNet(t), "alice")
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		s.srv.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, err := range s.errs {
			t.Errorf("seller: %v", err)
		}
	})
	return s
}

func (s *l402Seller) url(path string) string { return s.srv.URL + path }

func (s *l402Seller) fail(w http.ResponseWriter, err error) {
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

func (s *l402Seller) serve(w http.ResponseWriter, r *http.Request) {
	if cred, err := l402.CredentialFromHeader(r.Header); err == nil {
		valid, err := s.verify(r.Context(), cred, r.URL.Path)
		if err != nil {
			s.fail(w, err)
			return
		}
		if valid {
			s.mu.Lock()
			status := s.failAfterPay
			s.mu.Unlock()
			if status != 0 {
				http.Error(w, "the upstream broke after payment", status)
				return
			}
			fmt.Fprintf(w, "paid content of %s", r.URL.Path)
			return
		}
	}
	mac, inv, hash, err := s.challenge(r.Context(), r.URL.Path)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.mu.Lock()
	s.hashes = append(s.hashes, hash)
	s.lastHashFor[r.URL.Path] = hash
	s.mu.Unlock()
	l402.SetChallenge(w.Header(), l402.Challenge{Macaroon: mac, Invoice: inv}, true)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusPaymentRequired)
	json.NewEncoder(w).Encode(map[string]any{"macaroon": mac, "invoice": inv, "amountSats": s.price, "paymentHash": hash, "resource": r.URL.Path})
}

// challenge makes a challenge for path.
func (s *l402Seller) challenge(ctx context.Context, path string) (mac, inv, hash string, err error) {
	if s.hold {
		var pre lntypes.Preimage
		rand.Read(pre[:])
		h := lntypes.Hash(sha256.Sum256(pre[:]))
		resp, err := s.aliceLND.Invoices.AddHoldInvoice(ctx, &invoicesrpc.AddHoldInvoiceRequest{
			Hash: h[:], Value: s.price, Expiry: 600, Memo: "itest hold " + path})
		if err != nil {
			return "", "", "", fmt.Errorf("AddHoldInvoice: %w", err)
		}
		m, _, err := l402.Mint(ctx, s.keys, l402.MintParams{PaymentHash: h, Resource: path, AmountSats: s.price})
		if err != nil {
			return "", "", "", err
		}
		mac, err := l402.EncodeMacaroon(m)
		if err != nil {
			return "", "", "", err
		}
		s.mu.Lock()
		s.preimages[h] = pre
		s.mu.Unlock()
		return mac, resp.PaymentRequest, h.String(), nil
	}
	// A fresh idempotency key: every 402 is a new challenge.
	var idem [8]byte
	rand.Read(idem[:])
	out, err := s.aliceAPI().CreateChallenge(ctx, apiclient.CreateChallengeRequest{Resource: path, PriceSats: s.price, Description: "itest " + path,
		IdempotencyKey: hex.EncodeToString(idem[:])})
	if err != nil {
		return "", "", "", err
	}
	return out.Macaroon, out.Invoice, out.PaymentHash, nil
}

// verify checks a credential: with alice's l402d, or in hold mode here.
func (s *l402Seller) verify(ctx context.Context, cred l402.Credential, path string) (bool, error) {
	if s.hold {
		v := &l402.Verifier{Keys: s.keys}
		_, err := v.Verify(ctx, cred, l402.Expect{Resource: path})
		return err == nil, nil
	}
	mac, err := l402.EncodeMacaroon(cred.Macaroon)
	if err != nil {
		return false, err
	}
	out, err := s.aliceAPI().Verify(ctx, apiclient.VerifyRequest{Macaroon: mac, Preimage: hex.EncodeToString(cred.Preimage[:]), Resource: path})
	if err != nil {
		return false, err
	}
	return out.Valid, nil
}

// aliceAPI is alice's REST API with the seller's producer key.
func (s *l402Seller) aliceAPI() *apiclient.Client { return s.alice.api(s.key) }

func (s *l402Seller) setFailAfterPay(status int) {
	s.mu.Lock()
	s.failAfterPay = status
	s.mu.Unlock()
}

func (s *l402Seller) issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hashes)
}

func (s *l402Seller) lastHash(path string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastHashFor[path]
}

// itestKeys is an in-memory root key store for the hold-mode seller.
type itestKeys struct {
	mu sync.Mutex
	m  map[l402.TokenID][l402.RootKeySize]byte
}

func (k *itestKeys) NewRootKey(_ context.Context, id l402.TokenID) ([l402.RootKeySize]byte, error) {
	var key [l402.RootKeySize]byte
	rand.Read(key[:])
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[id] = key
	return key, nil
}

func (k *itestKeys) RootKey(_ context.Context, id l402.TokenID) ([l402.RootKeySize]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, ok := k.m[id]
	if !ok {
		return key, l402.ErrUnknownToken
	}
	return key, nil
}

// startBob starts l402d beside bob as the consumer (spending enabled),
// allowed to reach the loopback seller.
func startBob(t *testing.T, extra ...string) *daemon {
	t.Helper()
	return startDaemon(t, testNet(t).Node("bob"), append([]string{"--consumer.enable", "--consumer.allow-private"}, extra...)...)
}

// bobPayments returns bob's LND payments (any state) for hash.
func bobPayments(t testing.TB, hash string) []*lnrpc.Payment {
	t.Helper()
	resp, err := lnd(t, testNet(t), "bob").Lightning.ListPayments(testCtx(t, time.Minute), &lnrpc.ListPaymentsRequest{
		IncludeIncomplete: true, Reversed: true, MaxPayments: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []*lnrpc.Payment
	for _, p := range resp.Payments {
		if p.PaymentHash == hash {
			out = append(out, p)
		}
	}
	return out
}

// access calls bob's POST /api/consumer/access.
func access(t testing.TB, bob *daemon, url string, maxSats int64) (int, map[string]any) {
	t.Helper()
	return bob.call(t, "POST", "/api/consumer/access", apiclient.AccessRequest{URL: url, MaxSats: maxSats})
}

// accessRaw is access without the test's t (for goroutines and for
// requests that a kill -9 cuts).
func accessRaw(ctx context.Context, bob *daemon, key, url string) (int, map[string]any, error) {
	return wireCall(ctx, bob.api(key), "POST", "/api/consumer/access", apiclient.AccessRequest{URL: url})
}

func obj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// TestConsumerAccessPaysOnceThenReusesToken: bob's l402d buys a resource
// from an L402 service whose challenges are alice's; the first call pays,
// the second reuses the token, and bob's LND shows one payment.
func TestConsumerAccessPaysOnceThenReusesToken(t *testing.T) {
	alice := startDaemon(t, testNet(t).Node("alice"))
	bob := startBob(t)
	s := newL402Seller(t, alice, 50, false)
	u := s.url("/api/weather/forecast")

	t0 := time.Now()
	code, out := access(t, bob, u, 0)
	paidTook := time.Since(t0)
	pay, tok := obj(out["payment"]), obj(out["token"])
	if code != 200 || out["status"] != 200.0 || out["body"] != "paid content of /api/weather/forecast" || out["paid"] != true || out["fromCache"] != false {
		t.Fatalf("first access: %d %v", code, out)
	}
	hash := str(pay["paymentHash"])
	if num(pay["amountSats"]) != 50 || pay["state"] != "succeeded" || !strings.HasPrefix(str(tok["authorization"]), "L402 ") || hash != s.lastHash("/api/weather/forecast") {
		t.Fatalf("payment %v token %v", pay, tok)
	}
	waitSettled(t, alice, hash, 50)

	t0 = time.Now()
	code, out = access(t, bob, u, 0)
	cachedTook := time.Since(t0)
	if code != 200 || out["body"] != "paid content of /api/weather/forecast" || out["paid"] != false || out["fromCache"] != true {
		t.Fatalf("second access: %d %v", code, out)
	}
	if ps := bobPayments(t, hash); len(ps) != 1 || ps[0].Status != lnrpc.Payment_SUCCEEDED {
		t.Fatalf("bob's LND has %d payments for %s: %v", len(ps), hash, ps)
	}
	if n := len(s.issued()); n != 1 {
		t.Fatalf("the seller issued %d challenges, want 1", n)
	}

	code, out = bob.call(t, "GET", "/api/consumer/payments/"+hash, nil)
	if code != 200 || out["state"] != "succeeded" || out["kind"] != "access" || out["url"] != u || out["domain"] != "127.0.0.1" {
		t.Fatalf("journal entry: %d %v", code, out)
	}
	code, out = bob.call(t, "GET", "/api/consumer/payments?state=succeeded", nil)
	if tot := obj(out["totals"]); code != 200 || tot["count"] != 1.0 || tot["amountSats"] != 50.0 {
		t.Fatalf("history: %d %v", code, out)
	}
	code, out = bob.call(t, "GET", "/api/consumer/budget", nil)
	if today := obj(out["today"]); code != 200 || num(today["spentSats"]) < 50 || today["reservedMsat"] != 0.0 {
		t.Fatalf("budget: %d %v", code, out)
	}
	code, out = bob.call(t, "GET", "/api/consumer/tokens", nil)
	toks, _ := out["tokens"].([]any)
	if code != 200 || len(toks) != 1 || obj(toks[0])["id"] != hash || obj(toks[0])["scope"] != "/api/weather/forecast" {
		t.Fatalf("tokens: %d %v", code, out)
	}

	// A quote of another resource reports its price and pays nothing.
	code, out = bob.call(t, "POST", "/api/consumer/quote", map[string]any{"url": s.url("/api/weather/radar")})
	if code != 200 || out["priceSats"] != 50.0 || out["wouldPay"] != true || out["cachedToken"] != false {
		t.Fatalf("quote: %d %v", code, out)
	}
	if qh := str(out["paymentHash"]); len(bobPayments(t, qh)) != 0 {
		t.Fatal("quoting paid")
	}

	// Latency: with a cached token vs with a payment (one run, this machine).
	var paid, cached []time.Duration
	paid = append(paid, paidTook)
	cached = append(cached, cachedTook)
	for i := range 4 {
		t0 := time.Now()
		if code, out := access(t, bob, s.url(fmt.Sprintf("/api/bench/%d", i)), 0); code != 200 || out["paid"] != true {
			t.Fatalf("paid access %d: %d %v", i, code, out)
		}
		paid = append(paid, time.Since(t0))
	}
	for range 19 {
		t0 := time.Now()
		if code, out := access(t, bob, u, 0); code != 200 || out["fromCache"] != true {
			t.Fatalf("cached access: %d %v", code, out)
		}
		cached = append(cached, time.Since(t0))
	}
	t.Logf("access latency, median: with a payment %v (n=%d), with a cached token %v (n=%d)",
		median(paid).Round(time.Millisecond), len(paid), median(cached).Round(10*time.Microsecond), len(cached))
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// TestConsumerOverBudget: a price over the budget, or over maxSats, is a
// clear error, and nothing is paid.
func TestConsumerOverBudget(t *testing.T) {
	alice := startDaemon(t, testNet(t).Node("alice"))
	bob := startBob(t, "--consumer.budget.per-payment-sats", "20")
	s := newL402Seller(t, alice, 50, false)

	code, out := access(t, bob, s.url("/api/expensive"), 0)
	if code != 403 || out["code"] != "budget_exceeded" || out["field"] != "budget.perPaymentSats" || out["priceSats"] != 50.0 ||
		!strings.Contains(str(out["error"]), "per-payment limit of 20 sat") || !strings.Contains(str(out["fix"]), "budget set") {
		t.Fatalf("over budget: %d %v", code, out)
	}
	hash := str(out["paymentHash"])
	if hash != s.lastHash("/api/expensive") {
		t.Fatalf("error names payment %q, the challenge was %q", hash, s.lastHash("/api/expensive"))
	}

	// Within the budget but above the caller's maxSats.
	if code, out := bob.callKey(t, bob.adminKey(t), "PUT", "/api/consumer/budget", map[string]any{"perPaymentSats": 1000}); code != 200 {
		t.Fatalf("raising the budget: %d %v", code, out)
	}
	code, out = access(t, bob, s.url("/api/expensive"), 49)
	if code != 403 || out["code"] != "price_above_max" || out["field"] != "maxSats" || !strings.Contains(str(out["fix"]), "50") {
		t.Fatalf("above maxSats: %d %v", code, out)
	}
	for _, h := range append(s.issued(), hash) {
		if ps := bobPayments(t, h); len(ps) != 0 {
			t.Fatalf("bob paid refused challenge %s: %v", h, ps)
		}
	}
	if code, out := bob.call(t, "GET", "/api/consumer/payments", nil); code != 200 || obj(out["totals"])["count"] != 0.0 {
		t.Fatalf("journal after refusals: %d %v", code, out)
	}
}

// TestConsumerKill9MidPayment: bob's l402d is killed while its payment of
// a HOLD invoice is in flight; the invoice is settled while it is down;
// on restart the journal resumes the payment with TrackPaymentV2, the
// token is recovered and reused, and bob's LND shows exactly one payment.
func TestConsumerKill9MidPayment(t *testing.T) {
	alice := startDaemon(t, testNet(t).Node("alice"))
	bob := startBob(t)
	s := newL402Seller(t, alice, 42, true)
	const path = "/api/held"
	aliceLND := lnd(t, testNet(t), "alice")

	key := bob.spendKey(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go accessRaw(ctx, bob, key, s.url(path)) // cut by the kill

	hash := waitHeldHTLC(t, s, path)
	code, out := bob.call(t, "GET", "/api/consumer/payments/"+hash.String(), nil)
	if code != 200 || out["state"] != "in_flight" {
		t.Fatalf("journal before the crash: %d %v", code, out)
	}

	bob.kill9(t)
	s.mu.Lock()
	pre := s.preimages[hash]
	s.mu.Unlock()
	if _, err := aliceLND.Invoices.SettleInvoice(testCtx(t, time.Minute), &invoicesrpc.SettleInvoiceMsg{Preimage: pre[:]}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "bob's LND to finish the payment", func() error {
		ps := bobPayments(t, hash.String())
		if len(ps) != 1 || ps[0].Status != lnrpc.Payment_SUCCEEDED {
			return fmt.Errorf("payments %v", ps)
		}
		return nil
	})

	bob.start(t)
	waitFor(t, 2*time.Minute, "the journal to resume the payment", func() error {
		code, out := bob.call(t, "GET", "/api/consumer/payments/"+hash.String(), nil)
		if code != 200 || out["state"] != "succeeded" || out["preimage"] != hex.EncodeToString(pre[:]) {
			return fmt.Errorf("%d %v", code, out)
		}
		return nil
	})
	// It was the resumer, on start, that recorded it.
	if logs, _ := os.ReadFile(bob.logPath); !bytes.Contains(logs, []byte("resuming payments left in flight")) ||
		!bytes.Contains(logs, []byte("resumed payment is final")) {
		t.Fatalf("bob's log shows no resume:\n%s", tail(string(logs), 30))
	}
	code, out = bob.call(t, "GET", "/api/consumer/tokens", nil)
	toks, _ := out["tokens"].([]any)
	if code != 200 || len(toks) != 1 || obj(toks[0])["id"] != hash.String() {
		t.Fatalf("recovered token: %d %v", code, out)
	}
	code, out = access(t, bob, s.url(path), 0)
	if code != 200 || out["body"] != "paid content of "+path || out["paid"] != false || out["fromCache"] != true {
		t.Fatalf("access with the recovered token: %d %v", code, out)
	}
	if ps := bobPayments(t, hash.String()); len(ps) != 1 {
		t.Fatalf("bob's LND has %d payments for the hash, want exactly 1", len(ps))
	}
	code, out = bob.call(t, "GET", "/api/consumer/budget", nil)
	if today := obj(out["today"]); code != 200 || today["reservedMsat"] != 0.0 || num(today["spentSats"]) < 42 {
		t.Fatalf("budget after resume: %d %v", code, out)
	}
}

// TestConsumerUpstreamFailsAfterPayment: the service fails the retry
// after the payment; the answer carries the token, which stays cached and
// serves once the service is back, without paying again.
func TestConsumerUpstreamFailsAfterPayment(t *testing.T) {
	alice := startDaemon(t, testNet(t).Node("alice"))
	bob := startBob(t)
	s := newL402Seller(t, alice, 21, false)
	s.setFailAfterPay(http.StatusServiceUnavailable)
	u := s.url("/api/flaky")

	code, out := access(t, bob, u, 0)
	tok, pay := obj(out["token"]), obj(out["payment"])
	if code != 200 || out["status"] != 503.0 || out["paid"] != true || str(tok["authorization"]) == "" || pay["state"] != "succeeded" {
		t.Fatalf("access with the upstream down: %d %v", code, out)
	}
	hash := str(pay["paymentHash"])
	// The returned token is good: the service verifies it.
	mac, preimage, _ := strings.Cut(strings.TrimPrefix(str(tok["authorization"]), "L402 "), ":")
	if v := verifyToken(t, alice, mac, preimage, "/api/flaky"); !v.Valid {
		t.Fatalf("returned token does not verify: %v", v)
	}
	s.setFailAfterPay(0)
	code, out = access(t, bob, u, 0)
	if code != 200 || out["body"] != "paid content of /api/flaky" || out["fromCache"] != true || out["paid"] != false {
		t.Fatalf("after the upstream recovered: %d %v", code, out)
	}
	if ps := bobPayments(t, hash); len(ps) != 1 {
		t.Fatalf("%d payments", len(ps))
	}
}

// TestConsumerConcurrentBudget: concurrent accesses to different paid
// resources against a daily budget that fits only one: exactly one pays.
func TestConsumerConcurrentBudget(t *testing.T) {
	alice := startDaemon(t, testNet(t).Node("alice"))
	// 50 sat + a 10 sat fee limit reserve 60; two would need 120.
	bob := startBob(t, "--consumer.budget.per-day-sats", "100")
	s := newL402Seller(t, alice, 50, false)
	key := bob.spendKey(t)

	const n = 5
	type result struct {
		code int
		out  map[string]any
		err  error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			code, out, err := accessRaw(testCtx(t, 2*time.Minute), bob, key, s.url(fmt.Sprintf("/api/race/%d", i)))
			results[i] = result{code, out, err}
		})
	}
	close(start)
	wg.Wait()
	paid, refused := 0, 0
	for i, r := range results {
		switch {
		case r.err != nil:
			t.Fatalf("access %d: %v", i, r.err)
		case r.code == 200 && r.out["paid"] == true:
			paid++
		case r.code == 403 && r.out["code"] == "budget_exceeded" && r.out["field"] == "budget.perDaySats":
			refused++
		default:
			t.Fatalf("access %d: %d %v", i, r.code, r.out)
		}
	}
	lndPaid := 0
	for _, h := range s.issued() {
		lndPaid += len(bobPayments(t, h))
	}
	if paid != 1 || refused != n-1 || lndPaid != 1 {
		t.Fatalf("%d paid, %d refused, %d payments in bob's LND; want 1, %d, 1", paid, refused, lndPaid, n-1)
	}
}

// TestConsumerPrivateTargetRefused: without --consumer.allow-private a
// loopback target is refused before anything is sent to it.
func TestConsumerPrivateTargetRefused(t *testing.T) {
	alice := startDaemon(t, testNet(t).Node("alice"))
	bob := startDaemon(t, testNet(t).Node("bob"), "--consumer.enable")
	s := newL402Seller(t, alice, 5, false)
	for _, u := range []string{s.url("/x"), strings.Replace(s.url("/x"), "127.0.0.1", "localhost", 1)} {
		code, out := access(t, bob, u, 0)
		if code != 403 || out["code"] != "private_target" || out["field"] != "url" || !strings.Contains(str(out["fix"]), "--consumer.allow-private") {
			t.Fatalf("%s: %d %v", u, code, out)
		}
	}
	if len(s.issued()) != 0 {
		t.Fatal("the private target was contacted")
	}
}

// l402cli runs the CLI against bob's daemon and returns its exit code,
// stdout and stderr.
func l402cli(t *testing.T, bob *daemon, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.CommandContext(testCtx(t, 3*time.Minute), binPath(t, "l402cli"),
		append([]string{"--rpcserver", bob.listen, "--datadir", bob.dataDir}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// l402cliJSON runs the CLI (piped, so it prints JSON) and decodes stdout.
func l402cliJSON(t *testing.T, bob *daemon, wantCode int, args ...string) map[string]any {
	t.Helper()
	code, stdout, stderr := l402cli(t, bob, args...)
	if code != wantCode {
		t.Fatalf("l402cli %v: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, wantCode, stdout, stderr)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("l402cli %v: stdout is not JSON: %v\n%s", args, err, stdout)
	}
	return out
}

// TestConsumerCLI drives l402cli against a running l402d: get (paying,
// then from the cache), a dry run, refusals, pay, invoices, tokens,
// budgets, payments, balance, status, and its exit codes.
func TestConsumerCLI(t *testing.T) {
	alice := startDaemon(t, testNet(t).Node("alice"))
	bob := startBob(t)
	s := newL402Seller(t, alice, 30, false)
	u := s.url("/api/cli")

	code, stdout, stderr := l402cli(t, bob, "get", u)
	if code != 0 || stdout != "paid content of /api/cli" || !strings.Contains(stderr, "price 30 sat, paid") || !strings.Contains(stderr, "HTTP 200") {
		t.Fatalf("get: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	t.Logf("l402cli get, paying:\n%s", stderr)
	code, stdout, stderr = l402cli(t, bob, "get", "-i", u)
	if code != 0 || !strings.HasPrefix(stdout, "HTTP 200 OK\r\n") || !strings.HasSuffix(stdout, "paid content of /api/cli") || !strings.Contains(stderr, "cached token") {
		t.Fatalf("get again: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	file := filepath.Join(t.TempDir(), "body")
	if code, _, stderr := l402cli(t, bob, "get", "-s", "-o", file, u); code != 0 || stderr != "" {
		t.Fatalf("get -o: exit %d %s", code, stderr)
	}
	if b, _ := os.ReadFile(file); string(b) != "paid content of /api/cli" {
		t.Fatalf("-o wrote %q", b)
	}
	if code, _, _ := l402cli(t, bob, "get", "-s", "http://127.0.0.1:1/nothing"); code != 5 {
		t.Fatalf("unreachable target: exit %d, want 5", code)
	}

	q := l402cliJSON(t, bob, 0, "get", "--dry-run", s.url("/api/cli/other"))
	if q["priceSats"] != 30.0 || q["wouldPay"] != true {
		t.Fatalf("dry run: %v", q)
	}
	q = l402cliJSON(t, bob, 3, "get", "--dry-run", "--max-cost", "10", s.url("/api/cli/other"))
	if obj(q["refusal"])["code"] != "price_above_max" {
		t.Fatalf("dry run over max: %v", q)
	}
	code, _, stderr = l402cli(t, bob, "get", "--max-cost", "10", s.url("/api/cli/other"))
	if code != 3 || !strings.Contains(stderr, "price_above_max") || !strings.Contains(stderr, "fix:") {
		t.Fatalf("get over max: exit %d %s", code, stderr)
	}

	p := l402cliJSON(t, bob, 0, "payments")
	if tot := obj(p["totals"]); tot["count"] != 1.0 || tot["succeeded"] != 1.0 || tot["amountSats"] != 30.0 {
		t.Fatalf("payments: %v", p)
	}
	toks := l402cliJSON(t, bob, 0, "tokens", "list")
	list, _ := toks["tokens"].([]any)
	if len(list) != 1 {
		t.Fatalf("tokens: %v", toks)
	}
	id := str(obj(list[0])["id"])
	if code, _, stderr := l402cli(t, bob, "tokens", "rm", id); code != 0 {
		t.Fatalf("tokens rm: %d %s", code, stderr)
	}
	if toks := l402cliJSON(t, bob, 0, "tokens", "list"); len(toks["tokens"].([]any)) != 0 {
		t.Fatalf("after rm: %v", toks)
	}
	if code, _, _ := l402cli(t, bob, "tokens", "rm", id); code != 1 {
		t.Fatalf("rm twice: exit %d, want 1", code)
	}
	// The token is gone but the journal knows the challenge is paid: a
	// fresh challenge is a new payment, the old hash is never paid again.
	if code, _, _ := l402cli(t, bob, "get", "-s", u); code != 0 {
		t.Fatalf("get after rm: %d", code)
	}
	if ps := bobPayments(t, id); len(ps) != 1 {
		t.Fatalf("%d payments for %s", len(ps), id)
	}

	b := l402cliJSON(t, bob, 0, "budget", "set", "--per-day-sats", "5000", "--deny-domain", "evil.example")
	if lim := obj(b["limits"]); lim["perDaySats"] != 5000.0 || lim["denyDomains"].([]any)[0] != "evil.example" {
		t.Fatalf("budget set: %v", b)
	}
	if b := l402cliJSON(t, bob, 0, "budget", "show"); obj(b["limits"])["perDaySats"] != 5000.0 || b["window"] != "UTC calendar day" {
		t.Fatalf("budget show: %v", b)
	}
	if code, _, stderr := l402cli(t, bob, "--adminkey", bob.apiKey(t), "budget", "set", "--per-day-sats", "1"); code != 2 || !strings.Contains(stderr, "admin") {
		t.Fatalf("budget set with the API key: exit %d %s", code, stderr)
	}

	bal := l402cliJSON(t, bob, 0, "balance")
	if num(obj(bal["channel"])["localSats"]) <= 0 {
		t.Fatalf("balance: %v", bal)
	}
	inv := l402cliJSON(t, bob, 0, "invoice", "create", "--memo", "itest", "1234")
	if look := l402cliJSON(t, bob, 0, "invoice", "lookup", str(inv["paymentHash"])); look["state"] != "open" || look["amountSats"] != 1234.0 || look["memo"] != "itest" {
		t.Fatalf("invoice lookup: %v", look)
	}

	aliceInv, err := lnd(t, testNet(t), "alice").Lightning.AddInvoice(testCtx(t, time.Minute), &lnrpc.Invoice{Value: 77, Memo: "cli pay"})
	if err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := l402cli(t, bob, "pay", "--max-cost", "76", aliceInv.PaymentRequest); code != 3 {
		t.Fatalf("pay over max: exit %d %s", code, stderr)
	}
	paid := l402cliJSON(t, bob, 0, "pay", aliceInv.PaymentRequest)
	if paid["state"] != "succeeded" || len(str(paid["preimage"])) != 64 {
		t.Fatalf("pay: %v", paid)
	}
	if again := l402cliJSON(t, bob, 0, "pay", aliceInv.PaymentRequest); again["alreadyPaid"] != true {
		t.Fatalf("pay again: %v", again)
	}
	waitFor(t, 30*time.Second, "l402cli status to report ok", func() error {
		code, stdout, _ := l402cli(t, bob, "status")
		var st struct {
			Node   struct{ Status string }
			Stats  struct{ Total map[string]any }
			Budget struct {
				Window string
				Today  struct{ SpentSats int64 }
			}
		}
		if err := json.Unmarshal([]byte(stdout), &st); code != 0 || err != nil || st.Node.Status != "ok" ||
			st.Budget.Window == "" || st.Budget.Today.SpentSats == 0 || st.Stats.Total == nil {
			return fmt.Errorf("exit %d: %s", code, stdout)
		}
		return nil
	})
	if code, _, _ := l402cli(t, bob, "--rpcserver", "127.0.0.1:1", "status"); code != 2 {
		t.Fatalf("no l402d: exit %d, want 2", code)
	}
	if code, _, _ := l402cli(t, bob, "get"); code != 1 {
		t.Fatalf("no URL: exit %d, want 1", code)
	}
}

// waitHeldHTLC waits until bob's payment for the seller's last challenge
// of path is held at alice's hold invoice (accepted, not settled) and
// returns its hash.
func waitHeldHTLC(t testing.TB, s *l402Seller, path string) lntypes.Hash {
	t.Helper()
	aliceLND := lnd(t, testNet(t), "alice")
	var hash lntypes.Hash
	waitFor(t, 2*time.Minute, "bob's HTLC to reach alice's hold invoice", func() error {
		h := s.lastHash(path)
		if h == "" {
			return errors.New("no challenge yet")
		}
		var err error
		if hash, err = lntypes.MakeHashFromStr(h); err != nil {
			return err
		}
		inv, err := aliceLND.Lightning.LookupInvoice(testCtx(t, 10*time.Second), &lnrpc.PaymentHash{RHash: hash[:]})
		if err != nil {
			return err
		}
		if inv.State != lnrpc.Invoice_ACCEPTED {
			return fmt.Errorf("hold invoice is %s", inv.State)
		}
		return nil
	})
	return hash
}
