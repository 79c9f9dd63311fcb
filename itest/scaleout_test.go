//go:build itest

package itest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/l402d/l402d/plugin/apiclient"
	"github.com/l402d/l402d/storage/pgtest"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/invoicesrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
)

// startPostgres starts a Postgres server (Debian's package, as the
// unprivileged postgres user) for the test and returns it with the DSN of
// a fresh database.
func startPostgres(t testing.TB, db string) (*pgtest.Server, string) {
	t.Helper()
	srv, err := pgtest.Start(t.Context(), pgtest.Options{})
	if err != nil {
		t.Fatalf("starting postgres (make deps installs it): %v", err)
	}
	t.Cleanup(srv.Stop)
	dsn, err := srv.CreateDB(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	return srv, dsn
}

// replicaSet is n l402d processes beside one LND on one Postgres
// database, sharing API keys, behind a round-robin load balancer.
type replicaSet struct {
	ds []*daemon
	lb *httptest.Server
}

func startReplicas(t testing.TB, n int, dsn string, extra ...string) *replicaSet {
	t.Helper()
	alice := testNet(t).Node("alice")
	rs := &replicaSet{}
	keys := map[string]string{"api.key": strings.Repeat("a1", 16), "admin.key": strings.Repeat("d4", 16)}
	for range n {
		d := newDaemon(t, alice, append([]string{"--db.backend", "postgres", "--db.postgres.dsn", dsn}, extra...)...)
		if err := os.MkdirAll(d.dataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		for f, k := range keys {
			if err := os.WriteFile(filepath.Join(d.dataDir, f), []byte(k+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		rs.ds = append(rs.ds, d)
	}
	var wg sync.WaitGroup
	for _, d := range rs.ds {
		wg.Go(func() { d.start(t) })
	}
	wg.Wait()
	// The load balancer: each request to the next replica that runs (as
	// a health-checking balancer would).
	var next atomic.Uint64
	rs.lb = httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			d := rs.ds[next.Add(1)%uint64(len(rs.ds))]
			for range rs.ds {
				if d.running() {
					break
				}
				d = rs.ds[next.Add(1)%uint64(len(rs.ds))]
			}
			u, _ := url.Parse("http://" + d.listen)
			r.SetURL(u)
		},
	})
	t.Cleanup(rs.lb.Close)
	return rs
}

// api is a client of the load balancer with the shared producer key.
func (rs *replicaSet) api(t testing.TB) *apiclient.Client {
	return &apiclient.Client{BaseURL: rs.lb.URL, APIKey: rs.ds[0].apiKey(t)}
}

// leader returns the index of the replica that watches settlements.
func (rs *replicaSet) leader(t testing.TB) int {
	t.Helper()
	var idx int
	waitFor(t, 30*time.Second, "one replica watching settlements", func() error {
		idx = -1
		for i, d := range rs.ds {
			h, err := d.producerAPI(t).Node(testCtx(t, 5*time.Second))
			if err != nil {
				continue // down
			}
			if h.Watcher.State == "streaming" {
				if idx >= 0 {
					return fmt.Errorf("replicas %d and %d both stream", idx, i)
				}
				idx = i
			}
		}
		if idx < 0 {
			return errors.New("no replica streams")
		}
		return nil
	})
	return idx
}

// TestScaleOutReplicas: three l402d replicas on one Postgres behave as
// one l402d: tokens minted on one verify on the others, a revocation on
// one is refused by all within a second, killing the watcher's leader
// while bob pays loses no settlement and records none twice, and with
// Postgres down the replicas keep verifying known tokens, refuse creates
// with 503 and recover.
func TestScaleOutReplicas(t *testing.T) {
	pg, dsn := startPostgres(t, "scaleout")
	rs := startReplicas(t, 3, dsn)
	lb := rs.api(t)
	ctx := testCtx(t, 10*time.Minute)

	// Minted through the balancer (so on all three), paid by bob,
	// verified on every replica.
	const first = 9
	chs := make([]apiclient.Challenge, first)
	pres := make([]string, first)
	for i := range chs {
		ch, err := lb.CreateChallenge(ctx, apiclient.CreateChallengeRequest{Resource: fmt.Sprintf("/scale/%d", i), PriceSats: 5})
		if err != nil {
			t.Fatal(err)
		}
		chs[i] = *ch
	}
	parallel(t, first, 3, func(i int) error {
		pres[i] = payInvoice(t, "bob", chs[i].Invoice)
		return nil
	})
	for i, ch := range chs {
		for j, d := range rs.ds {
			if out := verifyToken(t, d, ch.Macaroon, pres[i], ""); !out.Valid {
				t.Fatalf("token %d minted via the balancer does not verify on replica %d: %+v", i, j, out)
			}
		}
	}

	// A revocation on one replica is refused by the others within 1 s.
	start := time.Now()
	if _, err := rs.ds[0].api(rs.ds[0].adminKey(t)).Revoke(ctx, apiclient.RevokeRequest{Token: chs[0].Macaroon, Reason: "scale-out test"}); err != nil {
		t.Fatal(err)
	}
	for j := 1; j < len(rs.ds); j++ {
		waitFor(t, time.Second, fmt.Sprintf("revocation refused by replica %d", j), func() error {
			if out := verifyToken(t, rs.ds[j], chs[0].Macaroon, pres[0], ""); out.Valid {
				return errors.New("still valid")
			}
			return nil
		})
	}
	t.Logf("revocation refused by every replica %s after it was made", time.Since(start).Round(time.Millisecond))

	// Kill -9 the settlement watcher's leader while bob pays 200
	// challenges: another replica takes over and every settlement is
	// recorded exactly once.
	const n, price = 200, 3
	lead := rs.leader(t)
	settledBefore := settledCount(t, rs.ds[(lead+1)%3])
	many := make([]apiclient.Challenge, n)
	for i := range many {
		ch, err := lb.CreateChallenge(ctx, apiclient.CreateChallengeRequest{Resource: fmt.Sprintf("/failover/%d", i), PriceSats: price})
		if err != nil {
			t.Fatal(err)
		}
		many[i] = *ch
	}
	var paid atomic.Int64
	payDone := make(chan struct{})
	go func() {
		defer close(payDone)
		bob := lnd(t, testNet(t), "bob")
		parallel(t, n, 8, func(i int) error {
			p, err := bob.Pay(testCtx(t, 2*time.Minute), &routerrpc.SendPaymentRequest{PaymentRequest: many[i].Invoice, FeeLimitSat: 100, TimeoutSeconds: 60})
			if err != nil {
				return err
			}
			if p.Status != lnrpc.Payment_SUCCEEDED {
				return fmt.Errorf("payment %d: %v", i, p.Status)
			}
			paid.Add(1)
			return nil
		})
	}()
	waitFor(t, time.Minute, "a quarter of the payments made", func() error {
		if paid.Load() < n/4 {
			return fmt.Errorf("%d paid", paid.Load())
		}
		return nil
	})
	killed := time.Now()
	rs.ds[lead].kill9(t)
	t.Logf("killed the leader (replica %d) with %d of %d paid", lead, paid.Load(), n)
	others := []*daemon{rs.ds[(lead+1)%3], rs.ds[(lead+2)%3]}
	waitFor(t, 10*time.Second, "another replica watching settlements", func() error {
		for _, d := range others {
			if h, err := d.producerAPI(t).Node(testCtx(t, 5*time.Second)); err == nil && h.Watcher.State == "streaming" {
				return nil
			}
		}
		return errors.New("none streams")
	})
	t.Logf("a new leader streams %s after the kill", time.Since(killed).Round(time.Millisecond))
	waitFor(t, 10*time.Second, "one replica leading by its metrics", func() error {
		var leaders float64
		for _, d := range others {
			leaders += d.metric(t, "l402d_settlement_leader")
		}
		if leaders != 1 || others[0].metric(t, "l402d_db_up") != 1 {
			return fmt.Errorf("l402d_settlement_leader sums to %v over the live replicas", leaders)
		}
		return nil
	})
	<-payDone
	waitFor(t, 2*time.Minute, "every settlement recorded", func() error {
		if got := settledCount(t, others[0]) - settledBefore; got != n {
			return fmt.Errorf("%d of %d recorded", got, n)
		}
		return nil
	})
	rs.ds[lead].start(t)
	for i, d := range rs.ds {
		_, stats := d.call(t, "GET", "/api/l402/stats", nil)
		tot := stats["total"].(map[string]any)
		if num(tot["challengesSettled"]) != first+n || num(tot["revenueSats"]) != first*5+n*price {
			t.Fatalf("replica %d stats %v: want %d settled and %d sats, each settlement once", i, tot, first+n, first*5+n*price)
		}
	}
	// kill -9 of a replica that does not lead while creates flow through
	// the balancer: a create cut by the kill is asked again with its
	// idempotency key on another replica, and each key makes exactly one
	// challenge.
	createdBefore := createdCount(t, rs.ds[lead])
	victim := (lead + 1) % 3
	const creates = 60
	var made atomic.Int64
	parallel(t, creates, 4, func(i int) error {
		if i == creates/4 {
			rs.ds[victim].kill9(t)
		}
		req := apiclient.CreateChallengeRequest{Resource: fmt.Sprintf("/nonleader/%d", i), PriceSats: 2, IdempotencyKey: fmt.Sprintf("nl-%d", i)}
		for attempt := 0; ; attempt++ {
			_, err := lb.CreateChallenge(testCtx(t, time.Minute), req)
			if err == nil {
				made.Add(1)
				return nil
			}
			if attempt == 3 {
				return fmt.Errorf("create %d: %w", i, err)
			}
		}
	})
	if got := createdCount(t, rs.ds[lead]) - createdBefore; got != creates {
		t.Fatalf("%d challenges created for %d idempotency keys across a replica's kill, want exactly one each", got, creates)
	}
	t.Logf("killed replica %d (not leading) during %d creates through the balancer: each key made one challenge", victim, creates)
	rs.ds[victim].start(t)

	// Postgres down: verifying known tokens keeps working, creates are
	// refused with 503, and both work again when it returns.
	for _, d := range rs.ds {
		verifyToken(t, d, chs[1].Macaroon, pres[1], "") // cached on each
	}
	pg.Kill()
	downFor := 30 * time.Second
	deadline := time.Now().Add(downFor)
	var verified, refused int
	for time.Now().Before(deadline) {
		for _, d := range rs.ds {
			if out := verifyToken(t, d, chs[1].Macaroon, pres[1], ""); !out.Valid {
				t.Fatalf("a known token stopped verifying with postgres down: %+v", out)
			}
			verified++
		}
		_, err := rs.ds[refused%3].producerAPI(t).CreateChallenge(testCtx(t, 30*time.Second), apiclient.CreateChallengeRequest{Resource: "/down", PriceSats: 1})
		var ae *apiclient.Error
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("create with postgres down: %v, want 503", err)
		}
		refused++
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("postgres down %s: %d verifies of known tokens answered, %d creates refused with 503", downFor, verified, refused)
	if h, err := rs.ds[0].producerAPI(t).Node(testCtx(t, 5*time.Second)); err != nil || h.DB == nil || h.DB.Up || h.Status != "degraded" {
		t.Fatalf("health with postgres down: %+v %v; want status degraded, db down", h, err)
	}
	if err := pg.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "creates on every replica after postgres returned", func() error {
		for i, d := range rs.ds {
			if _, err := d.producerAPI(t).CreateChallenge(testCtx(t, 10*time.Second), apiclient.CreateChallengeRequest{Resource: "/up", PriceSats: 1}); err != nil {
				return fmt.Errorf("replica %d: %w", i, err)
			}
		}
		return nil
	})
	waitFor(t, 10*time.Second, "health to show the database back", func() error {
		if h, err := rs.ds[0].producerAPI(t).Node(testCtx(t, 5*time.Second)); err != nil || h.DB == nil || !h.DB.Up {
			return fmt.Errorf("%+v %v", h, err)
		}
		return nil
	})
	ch := createChallenge(t, rs.ds[0], "/after", 4)
	pre := payInvoice(t, "bob", ch.Invoice)
	waitSettled(t, rs.ds[2], ch.PaymentHash, 4)
	if out := verifyToken(t, rs.ds[1], ch.Macaroon, pre, ""); !out.Valid {
		t.Fatalf("a token minted after the outage does not verify elsewhere: %+v", out)
	}
}

// TestScaleOutMigrate: a Badger l402d's tokens still verify after
// `l402d migrate` moved its store to Postgres, and after moving it back.
func TestScaleOutMigrate(t *testing.T) {
	_, dsn := startPostgres(t, "migrated")
	alice := testNet(t).Node("alice")
	d := startDaemon(t, alice)
	const n = 4
	chs := make([]challenge, n)
	pres := make([]string, n)
	for i := range chs {
		chs[i] = createChallenge(t, d, fmt.Sprintf("/migrate/%d", i), 6)
		pres[i] = payInvoice(t, "bob", chs[i].Invoice)
		waitSettled(t, d, chs[i].PaymentHash, 6)
	}
	revokedMac := chs[n-1].Macaroon
	if _, err := d.api(d.adminKey(t)).Revoke(testCtx(t, time.Minute), apiclient.RevokeRequest{Token: revokedMac}); err != nil {
		t.Fatal(err)
	}
	d.stop(t)

	migrate := func(from, to string) {
		t.Helper()
		out, err := exec.Command(binPath(t, "l402d"), "migrate", "--from", from, "--to", to).CombinedOutput()
		if err != nil {
			t.Fatalf("l402d migrate --from %s --to %s: %v\n%s", from, to, err, out)
		}
		t.Logf("migrate: %s", strings.TrimSpace(string(out)))
	}
	check := func(where string, d *daemon) {
		t.Helper()
		for i := range n - 1 {
			if out := verifyToken(t, d, chs[i].Macaroon, pres[i], ""); !out.Valid {
				t.Fatalf("%s: token %d does not verify: %+v", where, i, out)
			}
		}
		if out := verifyToken(t, d, revokedMac, pres[n-1], ""); out.Valid {
			t.Fatalf("%s: a revoked token verifies", where)
		}
		if got := settledCount(t, d); got != n {
			t.Fatalf("%s: %d settled, want %d", where, got, n)
		}
	}

	migrate(d.dataDir, dsn)
	pgd := newDaemon(t, alice, "--db.backend", "postgres", "--db.postgres.dsn", dsn)
	pgd.dataDir = d.dataDir // its key files
	pgd.args[1] = d.dataDir
	pgd.start(t)
	check("on postgres", pgd)
	pgd.stop(t)

	backDir := filepath.Join(t.TempDir(), "back")
	migrate(dsn, backDir)
	back := newDaemon(t, alice)
	back.dataDir = backDir
	back.args[1] = backDir
	back.start(t)
	check("back on badger", back)
}

// TestScaleOutConsumer: two spending replicas beside bob on one Postgres
// act as one consumer: eight accesses of one resource spread over both
// pay once; a payment in flight on a replica killed with kill -9 is
// resumed by the other (no restart), recorded once, its token cached and
// its budget reservation settled.
func TestScaleOutConsumer(t *testing.T) {
	_, dsn := startPostgres(t, "consumer")
	alice := startDaemon(t, testNet(t).Node("alice"))
	bobNode := testNet(t).Node("bob")
	keys := map[string]string{"api.key": strings.Repeat("b1", 16), "admin.key": strings.Repeat("b2", 16), "spend.key": strings.Repeat("b3", 16)}
	var bobs []*daemon
	for range 2 {
		d := newDaemon(t, bobNode, "--consumer.enable", "--consumer.allow-private", "--db.backend", "postgres", "--db.postgres.dsn", dsn)
		if err := os.MkdirAll(d.dataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		for f, k := range keys {
			if err := os.WriteFile(filepath.Join(d.dataDir, f), []byte(k+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		d.start(t)
		bobs = append(bobs, d)
	}

	// One resource, eight accesses at once over both replicas: one
	// payment, the others served with its token.
	s := newL402Seller(t, alice, 30, false)
	const path = "/api/shared"
	var wg sync.WaitGroup
	var paid atomic.Int32
	for i := range 8 {
		wg.Go(func() {
			code, out := access(t, bobs[i%2], s.url(path), 0)
			if code != 200 || out["body"] != "paid content of "+path {
				t.Errorf("access %d: %d %v", i, code, out)
				return
			}
			if out["paid"] == true {
				paid.Add(1)
			}
		})
	}
	wg.Wait()
	// (Each access first asks unpaid, so the seller issues up to eight
	// challenges; the lock across replicas lets one be bought.)
	code, out := bobs[1].call(t, "GET", "/api/consumer/payments?state=succeeded", nil)
	if count := obj(out["totals"])["count"]; paid.Load() != 1 || code != 200 || count != 1.0 {
		t.Fatalf("%d accesses paid, the shared journal holds %v succeeded payments (%d %v); want one purchase for both replicas",
			paid.Load(), count, code, out)
	}

	// kill -9 the replica paying a held invoice; the other resumes it.
	hs := newL402Seller(t, alice, 42, true)
	const held = "/api/held-shared"
	aliceLND := lnd(t, testNet(t), "alice")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go accessRaw(ctx, bobs[0], bobs[0].spendKey(t), hs.url(held)) // cut by the kill
	hash := waitHeldHTLC(t, hs, held)
	bobs[0].kill9(t)
	hs.mu.Lock()
	pre := hs.preimages[hash]
	hs.mu.Unlock()
	if _, err := aliceLND.Invoices.SettleInvoice(testCtx(t, time.Minute), &invoicesrpc.SettleInvoiceMsg{Preimage: pre[:]}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "the other replica to resume the payment", func() error {
		code, out := bobs[1].call(t, "GET", "/api/consumer/payments/"+hash.String(), nil)
		if code != 200 || out["state"] != "succeeded" || out["preimage"] != hex.EncodeToString(pre[:]) {
			return fmt.Errorf("%d %v", code, out)
		}
		return nil
	})
	code, out = access(t, bobs[1], hs.url(held), 0)
	if code != 200 || out["paid"] != false || out["fromCache"] != true {
		t.Fatalf("access on the surviving replica with the resumed token: %d %v", code, out)
	}
	if ps := bobPayments(t, hash.String()); len(ps) != 1 {
		t.Fatalf("bob's LND has %d payments for the hash, want exactly 1", len(ps))
	}
	code, out = bobs[1].call(t, "GET", "/api/consumer/budget", nil)
	if today := obj(out["today"]); code != 200 || today["reservedMsat"] != 0.0 || num(today["spentSats"]) != 30+42 {
		t.Fatalf("budget after the resume: %d %v; want nothing reserved and 72 sats spent", code, out)
	}
}

// createdCount is the challenges a daemon's stats count as created.
func createdCount(t testing.TB, d *daemon) int {
	t.Helper()
	code, stats := d.call(t, "GET", "/api/l402/stats", nil)
	if code != 200 {
		t.Fatalf("stats: %d %v", code, stats)
	}
	return int(num(stats["total"].(map[string]any)["challengesCreated"]))
}
