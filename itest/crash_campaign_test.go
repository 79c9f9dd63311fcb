//go:build itest

package itest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"

	"github.com/l402d/l402d/l402"
	"github.com/l402d/l402d/regtest"
	"github.com/l402d/l402d/storage/pgtest"
)

// The crash campaign is configured from the environment.
const (
	// campaignSeedEnv replays a campaign: the seed every failure prints.
	campaignSeedEnv = "L402D_CAMPAIGN_SEED"
	// campaignKillsEnv sets how many kill -9 a run makes (default 50).
	campaignKillsEnv     = "L402D_CAMPAIGN_KILLS"
	defaultCampaignKills = 50
	// campaignPGKillsEnv sets the kills of the campaign on Postgres
	// (default 20).
	campaignPGKillsEnv     = "L402D_CAMPAIGN_PG_KILLS"
	defaultCampaignPGKills = 20
)

// TestCrashCampaign kills alice's l402d (the producer) and bob's l402d (a
// consumer buying from a service whose challenges are alice's) with
// SIGKILL at random instants of a random workload — creates, impatient
// creates, settlements, the watcher's catch-up after a downtime, consumer
// payments through access and pay, budget reservations against a tight
// daily budget — restarts the victim on the same data dir, and after
// each restart checks invariants against the two LNDs as ground truth
// (see campaign_check_test.go). The seed is printed first and with every
// failure; L402D_CAMPAIGN_SEED replays the same choices (the timing of a
// real network still varies), L402D_CAMPAIGN_KILLS scales the campaign.
func TestCrashCampaign(t *testing.T) {
	runCampaign(t, false, campaignKillsEnv, defaultCampaignKills)
}

// TestCrashCampaignPostgres is the same campaign with alice's and bob's
// l402d (and every fresh producer) on Postgres (--db.backend=postgres,
// each its own database of one server started for the campaign):
// the same invariants hold on the shared backend.
func TestCrashCampaignPostgres(t *testing.T) {
	runCampaign(t, true, campaignPGKillsEnv, defaultCampaignPGKills)
}

func runCampaign(t *testing.T, onPostgres bool, killsEnv string, defaultKills int) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(campaignSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", campaignSeedEnv, s, err)
		}
	}
	kills := defaultKills
	if s := os.Getenv(killsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", killsEnv, s)
		}
		kills = n
	}
	t.Logf("crash campaign: seed %d, %d kills (replay: %s=%d)", seed, kills, campaignSeedEnv, seed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("crash campaign FAILED with seed %d: replay with %s=%d", seed, campaignSeedEnv, seed)
		}
	})
	c := newCampaign(t, seed, onPostgres)
	c.run(kills)
}

// campaign is the state of one crash campaign.
type campaign struct {
	t     *testing.T
	seed  uint64
	rng   *rand.Rand // the main goroutine's; workers get their own
	runID string
	net   *regtest.Network
	start time.Time
	// pg, if set, holds every l402d's store (one database each).
	pg *pgtest.Server

	alice  *producerUT // alice's l402d, for the whole campaign
	gate   string      // alice's gate: prepaid sessions, one metered
	bob    *daemon
	bobKey string
	seller *campaignSeller

	aliceLND, bobLND *regtest.Client
	aliceAddIndex    uint64 // alice's LND invoice add index before the campaign
	bobPayIndex      uint64 // bob's LND payment index before the campaign
	client           *http.Client
	transport        *http.Transport

	mu          sync.Mutex
	direct      map[string]bool // hashes the test paid itself through bob's LND
	live        []violation     // seen while a workload ran
	createLat   time.Duration   // moving average of a create, for impatient clients
	accessFails map[string]int  // status and code of the accesses that failed
	budgetDay   int64           // perDaySats currently set
	tally       tally

	reported  map[string]bool            // invariants reported broken
	instances map[string]map[string]bool // invariant → instances seen broken
}

// producerUT is an l402d beside alice and what it handed out.
type producerUT struct {
	name string
	d    *daemon
	key  string
	// tag is in every challenge's description, so its invoices are told
	// apart from others in alice's LND (the memo is the description).
	tag string

	mu       sync.Mutex
	acked    map[string]challenge // payment hash → challenge handed out
	verified map[string]bool      // paid challenges verified since its last restart
}

func (p *producerUT) ack(ch challenge) {
	p.mu.Lock()
	p.acked[ch.PaymentHash] = ch
	p.mu.Unlock()
}

func (p *producerUT) restarted() {
	p.mu.Lock()
	p.verified = map[string]bool{}
	p.mu.Unlock()
}

// tally counts what the workload did, for the summary.
type tally struct {
	creates, impatient, retriedAfterCancel, directPaid          int
	accesses, accessPaid, accessCached, accessRefused, longPath int
	accessCut, accessUpstream, accessFailed                     int
	idleKills                                                   int
	sessAccesses, sessDeposits, sessCut, sessFailed             int
	consumerPays, budgetRefused                                 int
	kills, midCatchUp, doubleKills, catchUps, freshCatchUps     int
}

func newCampaign(t *testing.T, seed uint64, onPostgres bool) *campaign {
	n := testNet(t)
	tr := &http.Transport{MaxIdleConnsPerHost: 32, IdleConnTimeout: 30 * time.Second}
	c := &campaign{
		t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		runID: fmt.Sprintf("cc%x", uint32(time.Now().UnixNano())), net: n, start: time.Now(),
		aliceLND: lnd(t, n, "alice"), bobLND: lnd(t, n, "bob"),
		client: &http.Client{Transport: tr}, transport: tr,
		direct: map[string]bool{}, reported: map[string]bool{}, instances: map[string]map[string]bool{}, accessFails: map[string]int{}, createLat: 20 * time.Millisecond,
	}
	t.Cleanup(tr.CloseIdleConnections)
	if onPostgres {
		c.pg, _ = startPostgres(t, "ccsetup")
	}
	ctx := testCtx(t, time.Minute)
	inv, err := c.aliceLND.Lightning.ListInvoices(ctx, &lnrpc.ListInvoiceRequest{Reversed: true, NumMaxInvoices: 1})
	if err != nil {
		t.Fatal(err)
	}
	c.aliceAddIndex = inv.LastIndexOffset
	pays, err := c.bobLND.Lightning.ListPayments(ctx, &lnrpc.ListPaymentsRequest{Reversed: true, MaxPayments: 1, IncludeIncomplete: true})
	if err != nil {
		t.Fatal(err)
	}
	c.bobPayIndex = pays.LastIndexOffset

	up := startGateUpstreams(t)
	c.gate = freeAddr(t)
	services := filepath.Join(t.TempDir(), "services.yaml")
	// The gate's invoices carry alice's tag, so the producer checks count
	// its deposits as hers.
	if err := os.WriteFile(services, []byte(campaignServices(up.http, c.runID+"-alice")), 0o600); err != nil {
		t.Fatal(err)
	}
	aliceFlags := []string{"--gate.listen", c.gate, "--gate.services", services,
		"--gate.mint-rate", "-1", "--gate.max-pending", "-1", "--gate.max-pending-per-client", "-1"}
	if c.pg == nil {
		// On Badger alice's gate takes debits in memory (10 sats of each
		// balance off disk at most): the books must still balance after
		// every kill, and every refund must pay what they owe.
		aliceFlags = append(aliceFlags, "--db.debit-allowance-msat", "10000")
	}
	c.alice = c.newProducer("alice", aliceFlags...)
	c.alice.d.start(t)
	c.alice.key = c.alice.d.apiKey(t)
	c.bob = startBob(t, c.dbFlags()...)
	c.bobKey = c.bob.spendKey(t) // access, pay, payments, budget reads
	c.seller = newCampaignSeller(t, c)
	c.setBudget(c.rng.Int64N(100) + 40)
	t.Logf("set up in %v (building l402d, starting alice's and bob's)", time.Since(c.start).Round(time.Millisecond))
	c.start = time.Now()
	return c
}

// campaignServices is alice's gate in the campaign: a service sold in
// prepaid sessions, a metered one (per KiB) and one selling L402 prepaid
// credit, all before upstream.
func campaignServices(upstream, tag string) string {
	return fmt.Sprintf(`services:
  - name: ccsess
    path: /cs/*
    upstream: http://%[1]s
    description: %[2]s ccsess
    price: 1
    schemes: [mpp]
    session_deposit: 20
  - name: ccmeter
    path: /meter/kib/*
    upstream: http://%[1]s
    description: %[2]s ccmeter
    price: 1
    schemes: [mpp]
    session_deposit: 20
    meter: kib
    meter_price_msat: 500
    meter_block: 4
  - name: ccpre
    path: /cp/*
    upstream: http://%[1]s
    description: %[2]s ccpre
    price: 1
    prepaid_credit: 20
`, upstream, tag)
}

// newProducer prepares (does not start) an l402d beside alice with a
// fresh data dir and extra flags.
func (c *campaign) newProducer(name string, extra ...string) *producerUT {
	d := newDaemon(c.t, c.net.Node("alice"), append(c.dbFlags(), extra...)...)
	return &producerUT{name: name, d: d, tag: c.runID + "-" + name, acked: map[string]challenge{}, verified: map[string]bool{}}
}

// dbFlags are the flags of a new l402d's store: none on Badger, a fresh
// database on Postgres.
func (c *campaign) dbFlags() []string {
	if c.pg == nil {
		return nil
	}
	dsn, err := c.pg.CreateDB(c.t.Context(), "")
	if err != nil {
		c.t.Fatal(err)
	}
	return []string{"--db.backend", "postgres", "--db.postgres.dsn", dsn}
}

func (c *campaign) seedNote() string {
	return fmt.Sprintf("seed %d (replay: %s=%d)", c.seed, campaignSeedEnv, c.seed)
}

// run makes rounds until kills kill -9s were made.
func (c *campaign) run(kills int) {
	t := c.t
	defer c.summary() // also when a round ends the test
	for round := 1; c.tally.kills < kills; round++ {
		r := rand.New(rand.NewPCG(c.rng.Uint64(), c.rng.Uint64()))
		t0 := time.Now()
		var what string
		switch x := r.Float64(); {
		case x < 0.07:
			what = c.catchUpRound(r, true)
		case x < 0.20:
			what = c.catchUpRound(r, false)
		default:
			what = c.workloadRound(r, round)
		}
		t.Logf("round %d (kills %d/%d, %.0fs): %s; took %v", round, c.tally.kills, kills, time.Since(c.start).Seconds(),
			what, time.Since(t0).Round(10*time.Millisecond))
	}
	c.closeSessions()
}

func (c *campaign) summary() {
	tl := c.tally
	c.t.Logf("sessions: %d accesses with session (%d paid a deposit, %d cut by a kill, %d failed)", tl.sessAccesses, tl.sessDeposits, tl.sessCut, tl.sessFailed)
	c.t.Logf("campaign: %v, %d kills mid-work (%d mid catch-up, %d during a restart; %d catch-ups of which %d on a fresh store) and %d of an idle l402d; "+
		"%d creates (%d impatient, %d asked again after a cancel), %d paid directly; %d accesses (%d paid, %d from cache, %d refused, %d cut by a kill, "+
		"%d answered by the target without paying, %d failed %v; %d long paths); %d pay calls, %d budget refusals; %s; %s",
		time.Since(c.start).Round(time.Second), tl.kills, tl.midCatchUp, tl.doubleKills, tl.catchUps, tl.freshCatchUps, tl.idleKills,
		tl.creates, tl.impatient, tl.retriedAfterCancel, tl.directPaid, tl.accesses, tl.accessPaid, tl.accessCached, tl.accessRefused,
		tl.accessCut, tl.accessUpstream, tl.accessFailed, c.accessFails, tl.longPath, tl.consumerPays, tl.budgetRefused, c.violationSummary(), c.seedNote())
	// A kill cuts a connection or makes the target unreachable (502,
	// 503); a 500 is a bug whatever was killed, even when no money moved.
	// So is bob refusing a top-up alice's gate asked for: her 402 says
	// what is left, so only a dishonest seller is refused, and a refusal
	// here would leave bob's session stuck.
	for _, k := range sortedKeys(c.accessFails) {
		if strings.HasPrefix(k, "500 ") || strings.HasPrefix(k, "session 500 ") || strings.HasSuffix(k, " session_topup_refused") {
			c.t.Errorf("bob's l402d answered %d access(es) with %q: never an outcome of a kill; %s", c.accessFails[k], k, c.seedNote())
		}
	}
}

// workloadRound runs a random mix of workers, kills one l402d at a
// random instant, restarts it and checks.
func (c *campaign) workloadRound(r *rand.Rand, round int) string {
	t := c.t
	victim, vname := c.alice.d, "alice"
	if r.IntN(2) == 0 {
		victim, vname = c.bob, "bob"
	}
	// A tight daily budget now and then, so that concurrent
	// reservations compete at the limit; a roomy one otherwise.
	budgetNote := ""
	if r.Float64() < 0.3 {
		slack := 15 + r.Int64N(100)
		c.setBudget(slack)
		budgetNote = fmt.Sprintf(", budget %d sat left", slack)
	} else {
		c.setBudget(5000)
	}
	creators, buyers, payers, sessioners := r.IntN(3), r.IntN(4), r.IntN(3), r.IntN(3)
	if vname == "alice" && creators == 0 {
		creators = 1
	}
	if vname == "bob" && buyers+payers == 0 {
		buyers = 1
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for w := range creators {
		wr := rand.New(rand.NewPCG(r.Uint64(), uint64(w)))
		wg.Go(func() { c.creator(ctx, wr, c.alice, fmt.Sprintf("/cc/%d/c%d", round, w)) })
	}
	for w := range buyers {
		wr := rand.New(rand.NewPCG(r.Uint64(), uint64(w)))
		wg.Go(func() { c.buyer(ctx, wr, fmt.Sprintf("/cc/%d/b%d", round, w)) })
	}
	for w := range payers {
		wr := rand.New(rand.NewPCG(r.Uint64(), uint64(w)))
		wg.Go(func() { c.payer(ctx, wr, fmt.Sprintf("/cc/%d/p%d", round, w)) })
	}
	for w := range sessioners {
		wr := rand.New(rand.NewPCG(r.Uint64(), uint64(w)))
		wg.Go(func() { c.sessioner(ctx, wr, fmt.Sprintf("/%d/s%d", round, w)) })
	}
	delay := time.Duration(20+r.IntN(1800)) * time.Millisecond
	timer := time.NewTimer(delay)
	<-timer.C // the random instant is the point of the campaign
	victim.kill9(t)
	c.tally.kills++
	cancel()
	wg.Wait()
	c.transport.CloseIdleConnections()

	// Now and then the restart is killed too, somewhere in its start:
	// opening the store, the watcher's replay, the payment resumer.
	double := ""
	if r.Float64() < 0.15 {
		d2 := time.Duration(r.IntN(700)) * time.Millisecond
		victim.spawn(t)
		timer := time.NewTimer(d2)
		<-timer.C
		victim.kill9(t)
		c.tally.kills++
		c.tally.doubleKills++
		double = fmt.Sprintf(", killed again %v into its restart", d2)
	}
	c.restart(victim)
	what := fmt.Sprintf("kill %s after %v (creators %d, buyers %d, payers %d, sessioners %d%s)%s", vname, delay, creators, buyers, payers, sessioners, budgetNote, double)
	c.checkRound(what, []*producerUT{c.alice})
	return what
}

// catchUpRound stops a producer (alice's, or a fresh one whose store never
// recorded a settlement), has bob's LND pay a batch of its challenges
// while it is down, starts it and kills it after a random number of the
// settlements it catches up on were recorded.
func (c *campaign) catchUpRound(r *rand.Rand, fresh bool) string {
	t := c.t
	p := c.alice
	if fresh {
		p = c.newProducer(fmt.Sprintf("fresh%d", c.tally.freshCatchUps+1))
		p.d.start(t)
		p.key = p.d.apiKey(t)
		c.tally.freshCatchUps++
	}
	c.tally.catchUps++
	k := 5 + r.IntN(21)
	ctx := testCtx(t, 3*time.Minute)
	var chs []challenge
	for i := range k {
		ch, err := c.create(ctx, p, fmt.Sprintf("/cc/catchup/%d/%d", c.tally.catchUps, i), 1+r.Int64N(9), "")
		if err != nil {
			t.Fatalf("creating a challenge to catch up on: %v; %s", err, c.seedNote())
		}
		chs = append(chs, ch)
	}
	how := "SIGTERM"
	if r.IntN(2) == 0 {
		p.d.kill9(t) // idle: not counted as one of the campaign's kills
		c.tally.idleKills++
		how = "kill -9"
	} else {
		p.d.stop(t)
	}
	var wg sync.WaitGroup
	errs := make(chan error, k)
	for _, ch := range chs {
		wg.Go(func() {
			if _, err := c.payDirect(ctx, ch.Invoice, ch.PaymentHash); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("bob paying a challenge while %s is down: %v; %s", p.name, err, c.seedNote())
	}

	// Kill when the target'th settlement of this start is recorded.
	off := p.d.logSize()
	target := 1 + r.IntN(k-1)
	p.d.spawn(t)
	seen := 0
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	for seen < target && time.Now().Before(deadline) {
		<-tick.C
		seen = countLog(p.d.logPath, off, "settlement recorded")
	}
	tick.Stop()
	p.d.kill9(t)
	c.tally.kills++
	recorded := countLog(p.d.logPath, off, "settlement recorded")
	if recorded > 0 && recorded < k {
		c.tally.midCatchUp++
	}
	c.restart(p.d)
	p.restarted()
	what := fmt.Sprintf("catch-up of %s (%s, stopped with %s): %d paid while down, killed after %d recorded (aimed at %d)",
		p.name, map[bool]string{true: "fresh store", false: "its store"}[fresh], how, k, recorded, target)
	c.checkRound(what, []*producerUT{p})
	if fresh {
		p.d.stop(t)
	}
	return what
}

// restart starts a killed daemon again and waits until it is up (its API
// answers and, for a producer, its settlement stream is open).
func (c *campaign) restart(d *daemon) {
	t := c.t
	// Connections kept alive to the killed process are dead.
	c.transport.CloseIdleConnections()
	http.DefaultClient.CloseIdleConnections()
	d.start(t)
	if d == c.bob {
		return
	}
	if d == c.alice.d {
		c.alice.restarted()
	}
	key := d.apiKey(t)
	c.eventually(30*time.Second, "the settlement watcher of "+d.listen+" to stream", func() error {
		code, out, err := c.do(t.Context(), d, key, "GET", "/api/node", nil)
		if err != nil {
			return err
		}
		if w := obj(out["watcher"]); code != 200 || w["state"] != "streaming" {
			return fmt.Errorf("%d %v", code, out)
		}
		return nil
	})
}

// countLog counts the lines with s written to path after off.
func countLog(path string, off int64, s string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return 0
	}
	b, _ := io.ReadAll(f)
	return bytes.Count(b, []byte(s))
}

// eventually polls cond until it returns nil, failing the test with the
// seed after timeout.
func (c *campaign) eventually(timeout time.Duration, what string, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not within %v: %v; %s", what, timeout, err, c.seedNote())
		}
		<-tick.C
	}
}

// do is one JSON call to a daemon's API without the test's t (for
// workers, and for calls a kill may cut).
func (c *campaign) do(ctx context.Context, d *daemon, key, method, path string, body any, hdr ...string) (int, map[string]any, error) {
	api := d.api(key)
	api.HTTPClient = c.client
	return wireCall(ctx, api, method, path, body, hdr...)
}

// create asks producer p for a challenge; on 200 it is handed out (acked).
func (c *campaign) create(ctx context.Context, p *producerUT, resource string, price int64, idem string) (challenge, error) {
	t0 := time.Now()
	var hdr []string
	if idem != "" {
		hdr = []string{"X-Idempotency-Key", idem}
	}
	code, out, err := c.do(ctx, p.d, p.key, "POST", "/api/l402/challenges",
		map[string]any{"resource": resource, "priceSats": price, "description": p.tag + " " + resource}, hdr...)
	if err != nil {
		return challenge{}, err
	}
	if code != 200 {
		return challenge{}, fmt.Errorf("create: %d %v", code, out)
	}
	ch := challenge{Invoice: str(out["invoice"]), Macaroon: str(out["macaroon"]), PaymentHash: str(out["paymentHash"]),
		Resource: str(out["resource"]), PriceSats: int64(num(out["priceSats"]))}
	if ch.Macaroon == "" || len(ch.PaymentHash) != 64 || ch.Invoice == "" {
		return challenge{}, fmt.Errorf("create answered %v", out)
	}
	p.ack(ch)
	c.mu.Lock()
	c.tally.creates++
	c.createLat = (c.createLat*7 + time.Since(t0)) / 8
	c.mu.Unlock()
	return ch, nil
}

// payDirect has bob's LND pay an invoice itself (not through bob's
// l402d) and returns the preimage.
func (c *campaign) payDirect(ctx context.Context, invoice, hash string) (string, error) {
	c.mu.Lock()
	c.direct[hash] = true
	c.tally.directPaid++
	c.mu.Unlock()
	p, err := c.bobLND.Pay(ctx, &routerrpc.SendPaymentRequest{PaymentRequest: invoice, FeeLimitSat: 10, TimeoutSeconds: 30})
	if err != nil {
		return "", err
	}
	return p.PaymentPreimage, nil
}

// verifyLive checks, while the workload runs, that a paid challenge
// verifies; an answer (not a cut connection) saying invalid is a
// violation.
func (c *campaign) verifyLive(ctx context.Context, p *producerUT, ch challenge, preimage, how string) {
	code, out, err := c.do(ctx, p.d, p.key, "POST", "/api/l402/challenges/verify",
		map[string]any{"macaroon": ch.Macaroon, "preimage": preimage, "resource": ch.Resource})
	if err != nil || code != 200 {
		return // the producer is being killed
	}
	if out["valid"] != true {
		c.addLive(violation{"A6", ch.PaymentHash, fmt.Sprintf(
			"challenge %s (%s, %s) was paid but %s's verify says %v: %v", ch.PaymentHash, ch.Resource, how, p.name, out["reason"], out["error"])})
	}
}

func (c *campaign) addLive(v violation) {
	c.mu.Lock()
	c.live = append(c.live, v)
	c.mu.Unlock()
}

// creator issues challenges at p, some with an impatient client that
// gives up before the answer and asks again with the same idempotency
// key, and pays most of them through bob's LND and verifies them.
func (c *campaign) creator(ctx context.Context, r *rand.Rand, p *producerUT, prefix string) {
	for i := 0; ctx.Err() == nil; i++ {
		resource := fmt.Sprintf("%s/%d", prefix, i)
		price := 1 + r.Int64N(9)
		idem := fmt.Sprintf("%s%s/%d", c.runID, prefix, i)
		var ch challenge
		var err error
		replayed := false
		if r.Float64() < 0.35 {
			c.mu.Lock()
			lat := c.createLat
			c.tally.impatient++
			c.mu.Unlock()
			cctx, cancel := context.WithTimeout(ctx, time.Duration(r.Int64N(int64(lat)*6/5+1)))
			ch, err = c.create(cctx, p, resource, price, idem)
			cancel()
			replayed = err != nil
		}
		if ch.PaymentHash == "" {
			ch, err = c.create(ctx, p, resource, price, idem)
		}
		if err != nil {
			return // the producer was killed: done for this round
		}
		how := "created"
		if replayed {
			how = "returned again after the first request was canceled"
			c.mu.Lock()
			c.tally.retriedAfterCancel++
			c.mu.Unlock()
		}
		if r.Float64() < 0.6 {
			pre, err := c.payDirect(ctx, ch.Invoice, ch.PaymentHash)
			if err == nil {
				c.verifyLive(ctx, p, ch, pre, how)
			}
		}
	}
}

// buyer has bob's l402d access the seller's resources: new paths (it
// pays), paths bought before (the cached token serves) and now and then
// a path too long to be a token's scope.
func (c *campaign) buyer(ctx context.Context, r *rand.Rand, prefix string) {
	var bought []string
	for i := 0; ctx.Err() == nil; i++ {
		path := fmt.Sprintf("%s/%d", prefix, i)
		switch {
		case len(bought) > 0 && r.Float64() < 0.25:
			path = bought[r.IntN(len(bought))]
		case r.Float64() < 0.05:
			path = fmt.Sprintf("%s/long/%d/%s", prefix, i, strings.Repeat("x", 2100+r.IntN(1500)))
			c.mu.Lock()
			c.tally.longPath++
			c.mu.Unlock()
		}
		code, out, err := c.do(ctx, c.bob, c.bobKey, "POST", "/api/consumer/access", map[string]any{"url": c.seller.url(path)})
		c.mu.Lock()
		c.tally.accesses++
		switch {
		case err != nil:
			c.tally.accessCut++
		case code == 200 && out["paid"] == true:
			c.tally.accessPaid++
			bought = append(bought, path)
		case code == 200 && out["fromCache"] == true:
			c.tally.accessCached++
		case code == 403:
			c.tally.accessRefused++
			if out["code"] == "budget_exceeded" {
				c.tally.budgetRefused++
			}
		case code == 200:
			c.tally.accessUpstream++ // e.g. 503: alice is down
		default:
			c.tally.accessFailed++
			c.accessFails[fmt.Sprintf("%d %v", code, out["code"])]++
		}
		c.mu.Unlock()
		if err != nil {
			return // bob was killed: done for this round
		}
	}
}

// sessioner has bob's l402d buy from alice's gate with prepaid sessions
// and prepaid L402 credit: requests on the session service, metered
// responses of random size and requests on credit, opening and topping
// balances up as they run out.
func (c *campaign) sessioner(ctx context.Context, r *rand.Rand, prefix string) {
	for i := 0; ctx.Err() == nil; i++ {
		path, session := fmt.Sprintf("/cs%s/%d", prefix, i), true
		switch r.IntN(3) {
		case 0:
			path = fmt.Sprintf("/meter/kib%s/%d?kind=bytes&n=%d", prefix, i, r.IntN(6000))
		case 1:
			path, session = fmt.Sprintf("/cp%s/%d", prefix, i), false
		}
		code, out, err := c.do(ctx, c.bob, c.bobKey, "POST", "/api/consumer/access", map[string]any{"url": "http://" + c.gate + path, "session": session, "maxSats": 50})
		c.mu.Lock()
		c.tally.sessAccesses++
		switch {
		case err != nil:
			c.tally.sessCut++
		case code == 200 && out["paid"] == true:
			c.tally.sessDeposits++
		case code == 200:
		default:
			c.tally.sessFailed++
			c.accessFails[fmt.Sprintf("session %d %v", code, out["code"])]++
		}
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// payer has bob's l402d pay challenges of alice's directly, with
// pay/challenge or pay/invoice.
func (c *campaign) payer(ctx context.Context, r *rand.Rand, prefix string) {
	for i := 0; ctx.Err() == nil; i++ {
		ch, err := c.create(ctx, c.alice, fmt.Sprintf("%s/%d", prefix, i), 1+r.Int64N(9), "")
		if err != nil {
			return // alice was killed: done for this round
		}
		c.seller.handedToBob(ch.PaymentHash)
		path, body := "/api/consumer/pay/invoice", map[string]any{"invoice": ch.Invoice}
		if r.IntN(2) == 0 {
			path, body = "/api/consumer/pay/challenge", map[string]any{"invoice": ch.Invoice, "macaroon": ch.Macaroon}
		}
		code, out, err := c.do(ctx, c.bob, c.bobKey, "POST", path, body)
		c.mu.Lock()
		c.tally.consumerPays++
		if err == nil && code == 403 && out["code"] == "budget_exceeded" {
			c.tally.budgetRefused++
		}
		c.mu.Unlock()
		if err != nil {
			return // bob was killed: done for this round
		}
		if code != 200 {
			continue
		}
		pre := str(out["preimage"])
		if pre == "" {
			pre = str(obj(out["payment"])["preimage"])
		}
		if pre != "" {
			c.verifyLive(ctx, c.alice, ch, pre, "paid by bob's l402d with "+path)
		}
	}
}

// setBudget sets bob's daily budget to what is spent and reserved today
// plus slack sats, with the admin key (nothing is in flight: rounds set
// it before their workers start).
func (c *campaign) setBudget(slack int64) {
	t := c.t
	code, out := c.bob.callKey(t, c.bobKey, "GET", "/api/consumer/budget", nil)
	if code != 200 {
		t.Fatalf("budget: %d %v; %s", code, out, c.seedNote())
	}
	today := obj(out["today"])
	used := (int64(num(today["spentMsat"])) + int64(num(today["reservedMsat"])) + 999) / 1000
	limit := used + slack
	code, out = c.bob.callKey(t, c.bob.adminKey(t), "PUT", "/api/consumer/budget", map[string]any{"perDaySats": limit, "perPaymentSats": 100})
	if code != 200 {
		t.Fatalf("setting the budget: %d %v; %s", code, out, c.seedNote())
	}
	c.mu.Lock()
	c.budgetDay = limit
	c.mu.Unlock()
}

// campaignSeller is an L402 service on loopback whose challenges are
// alice's (the seed REST API), tolerant of alice being killed: while
// alice does not answer it answers 503, never a 402 that would make bob
// drop a good token.
type campaignSeller struct {
	c   *campaign
	srv *httptest.Server

	mu    sync.Mutex
	toBob map[string]bool // hashes of the challenges bob's l402d was given
}

func newCampaignSeller(t *testing.T, c *campaign) *campaignSeller {
	s := &campaignSeller{c: c, toBob: map[string]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *campaignSeller) url(path string) string { return s.srv.URL + path }

func (s *campaignSeller) handedToBob(hash string) {
	s.mu.Lock()
	s.toBob[hash] = true
	s.mu.Unlock()
}

// resourceFor names what a path sells. A long path sells a resource that
// is no path, so bob's token is scoped to the path itself.
func resourceFor(path string) string {
	if len(path) > 1000 {
		sum := sha256.Sum256([]byte(path))
		return "campaign-long-" + hex.EncodeToString(sum[:8])
	}
	return path
}

func (s *campaignSeller) serve(w http.ResponseWriter, r *http.Request) {
	c, alice := s.c, s.c.alice
	resource := resourceFor(r.URL.Path)
	if cred, err := l402.CredentialFromHeader(r.Header); err == nil {
		mac, err := l402.EncodeMacaroon(cred.Macaroon)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		pre := hex.EncodeToString(cred.Preimage[:])
		code, out, err := c.do(r.Context(), alice.d, alice.key, "POST", "/api/l402/challenges/verify",
			map[string]any{"macaroon": mac, "preimage": pre, "resource": resource})
		if err != nil || code != 200 {
			http.Error(w, "alice is not answering", http.StatusServiceUnavailable)
			return
		}
		if out["valid"] == true {
			fmt.Fprintf(w, "paid content of %s", r.URL.Path)
			return
		}
		// A credential whose preimage is right for a challenge we gave
		// out is a paid token: it must verify.
		if info, err := l402.Inspect(cred.Macaroon); err == nil {
			hash := hex.EncodeToString(info.Identifier.PaymentHash[:])
			sum := sha256.Sum256(cred.Preimage[:])
			s.mu.Lock()
			ours := s.toBob[hash]
			s.mu.Unlock()
			if ours && hex.EncodeToString(sum[:]) == hash {
				c.addLive(violation{"A6", hash, fmt.Sprintf("challenge %s (%s) was paid by bob's l402d but alice's verify says %v: %v",
					hash, resource, out["reason"], out["error"])})
			}
		}
	}
	var idem [8]byte
	for i := range idem {
		idem[i] = byte(rand.Uint32())
	}
	ch, err := c.create(r.Context(), alice, resource, 1+int64(len(r.URL.Path)%7), "seller-"+hex.EncodeToString(idem[:]))
	if err != nil {
		http.Error(w, "alice is not answering", http.StatusServiceUnavailable)
		return
	}
	s.handedToBob(ch.PaymentHash)
	l402.SetChallenge(w.Header(), l402.Challenge{Macaroon: ch.Macaroon, Invoice: ch.Invoice}, false)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusPaymentRequired)
	json.NewEncoder(w).Encode(map[string]any{"macaroon": ch.Macaroon, "invoice": ch.Invoice, "paymentHash": ch.PaymentHash, "resource": resource})
}
