//go:build itest

package itest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/l402d/l402d/plugin/apiclient"
)

// loadClient is what the fault tests use to hammer a daemon: creates and
// verifies over keep-alive connections, recording every challenge whose
// creation was acknowledged with 200.
type loadClient struct {
	d      *daemon
	api    *apiclient.Client // the producer key, keep-alive connections
	mu     sync.Mutex
	acked  []challenge
	codes  map[int]int
	worstF time.Duration // slowest failed create
}

func newLoadClient(t testing.TB, d *daemon) *loadClient {
	api := d.producerAPI(t)
	api.HTTPClient = benchClient(16)
	return &loadClient{d: d, api: api, codes: map[int]int{}}
}

// create issues one challenge and records the outcome.
func (l *loadClient) create(ctx context.Context, resource string) (challenge, int, error) {
	start := time.Now()
	ch, err := l.api.CreateChallenge(ctx, apiclient.CreateChallengeRequest{Resource: resource, PriceSats: 3})
	code := http.StatusOK
	var ae *apiclient.Error
	var de *apiclient.DecodeError
	switch {
	case errors.As(err, &ae):
		code = ae.StatusCode
	case errors.As(err, &de):
		code = de.StatusCode
	case err != nil:
		return challenge{}, 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.codes[code]++
	if ae != nil {
		l.worstF = max(l.worstF, time.Since(start))
		return challenge{}, code, err
	}
	if err != nil {
		return challenge{}, code, err
	}
	l.acked = append(l.acked, *ch)
	return *ch, code, nil
}

// verify checks a token and returns whether it was valid.
func (l *loadClient) verify(ctx context.Context, mac, pre string) (bool, error) {
	out, err := l.api.Verify(ctx, apiclient.VerifyRequest{Macaroon: mac, Preimage: pre})
	if err != nil {
		return false, err
	}
	return out.Valid, nil
}

// hammer runs creates and verifies of a paid token from workers until
// ctx ends, and reports how many verifies failed.
func (l *loadClient) hammer(ctx context.Context, workers int, prefix, mac, pre string) (badVerifies *atomic.Int64, wait func()) {
	var wg sync.WaitGroup
	bad := new(atomic.Int64)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				if w%2 == 0 {
					_, _, _ = l.create(ctx, fmt.Sprintf("%s/%d/%d", prefix, w, i))
					continue
				}
				if ok, err := l.verify(ctx, mac, pre); err == nil && !ok {
					bad.Add(1)
				}
			}
		}()
	}
	return bad, wg.Wait
}

// TestFaultKill9UnderLoad kills l402d with SIGKILL while creates and
// verifies are in flight. Every challenge acknowledged before the kill
// must still verify once paid, the settle cursor resumes, and nothing is
// counted twice.
func TestFaultKill9UnderLoad(t *testing.T) {
	d := startDaemon(t, testNet(t).Node("alice"), "--log.level", "info")
	paid := createChallenge(t, d, "/fault/kill9/paid", 3)
	paidPre := payInvoice(t, "bob", paid.Invoice)
	waitSettled(t, d, paid.PaymentHash, 3)
	l := newLoadClient(t, d)

	ctx, cancel := context.WithCancel(t.Context())
	bad, wait := l.hammer(ctx, 8, "/fault/kill9", paid.Macaroon, paidPre)
	waitFor(t, 30*time.Second, "some creates acknowledged", func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if len(l.acked) < 30 {
			return fmt.Errorf("%d so far", len(l.acked))
		}
		return nil
	})
	d.kill9(t)
	cancel()
	wait()
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d verifies of a paid token said invalid before the kill", n)
	}
	l.mu.Lock()
	acked := slices.Clone(l.acked)
	l.mu.Unlock()
	t.Logf("acknowledged %d challenges before kill -9; status codes %v", len(acked), l.codes)

	d.start(t)
	// Pay every acknowledged challenge (a sample keeps the test short,
	// spread over the whole run) and check each verifies and settles once.
	sample := acked
	if len(sample) > 25 {
		step := len(sample) / 25
		sample = nil
		for i := 0; i < len(acked); i += step {
			sample = append(sample, acked[i])
		}
	}
	for _, c := range sample {
		pre := payInvoice(t, "bob", c.Invoice)
		if out := verifyToken(t, d, c.Macaroon, pre, ""); !out.Valid {
			t.Fatalf("challenge acknowledged before the crash does not verify: %v", out)
		}
	}
	for _, c := range sample {
		waitSettled(t, d, c.PaymentHash, 3)
	}
	_, stats := d.call(t, "GET", "/api/l402/stats", nil)
	total := stats["total"].(map[string]any)
	if got, want := int(num(total["challengesSettled"])), len(sample)+1; got != want {
		t.Fatalf("settled counter %d, want %d (double-counted or missed)", got, want)
	}
	if got, want := int64(num(total["revenueSats"])), int64(3*(len(sample)+1)); got != want {
		t.Fatalf("revenue %d, want %d", got, want)
	}
	if int(num(total["challengesCreated"])) < len(acked)+1 {
		t.Fatalf("created counter %v lost acknowledged challenges (%d)", total["challengesCreated"], len(acked)+1)
	}
}

// TestFaultLNDDownUnderLoad stops alice's LND for 30 s under load:
// creates fail fast with 503, verifies keep working, and once LND is back
// creates work and the watcher records new settlements.
func TestFaultLNDDownUnderLoad(t *testing.T) {
	n := testNet(t)
	d := startDaemon(t, n.Node("alice"))
	paid := createChallenge(t, d, "/fault/lnd/paid", 3)
	paidPre := payInvoice(t, "bob", paid.Invoice)
	l := newLoadClient(t, d)

	ctx, cancel := context.WithCancel(t.Context())
	bad, wait := l.hammer(ctx, 6, "/fault/lnd", paid.Macaroon, paidPre)
	stopCtx := testCtx(t, 3*time.Minute)
	restartAfter(t, n, "alice")
	if err := n.StopNode(stopCtx, "alice"); err != nil {
		cancel()
		t.Fatal(err)
	}
	down := time.Now()
	time.Sleep(30 * time.Second) // the fault itself lasts 30 s, as specified
	l.mu.Lock()
	codes503, worst := l.codes[503], l.worstF
	l.mu.Unlock()
	if err := n.StartNode(stopCtx, "alice"); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Logf("LND down %s: %d creates answered 503, slowest failed create %s", time.Since(down).Round(time.Second), codes503, worst)
	if codes503 == 0 {
		t.Fatal("no create answered 503 while LND was down")
	}
	waitFor(t, 60*time.Second, "creates to succeed again", func() error {
		_, code, err := l.create(t.Context(), "/fault/lnd/after")
		if code != 200 {
			return fmt.Errorf("%d %v", code, err)
		}
		return nil
	})
	cancel()
	wait()
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d verifies of a paid token failed while LND was down", n)
	}
	after := createChallenge(t, d, "/fault/lnd/settle-after", 5)
	payInvoice(t, "bob", after.Invoice)
	waitSettled(t, d, after.PaymentHash, 5)
}

// TestFaultBtcdRestart stops btcd under a running l402d: l402d stays up,
// keeps creating and verifying (neither needs the chain), and /healthz
// reports LND's view honestly; after btcd returns and a block is mined the
// new height shows.
func TestFaultBtcdRestart(t *testing.T) {
	n := testNet(t)
	d := startDaemon(t, n.Node("alice"))
	ctx := testCtx(t, 5*time.Minute)
	health := func() map[string]any {
		_, out := d.call(t, "GET", "/healthz", nil)
		lnd, _ := out["lnd"].(map[string]any)
		return lnd
	}
	waitFor(t, 30*time.Second, "health with a block height", func() error {
		if num(health()["blockHeight"]) == 0 {
			return errors.New("no height yet")
		}
		return nil
	})
	before := num(health()["blockHeight"])
	paid := createChallenge(t, d, "/fault/btcd/before", 4)
	paidPre := payInvoice(t, "bob", paid.Invoice)

	restartAfter(t, n, "btcd")
	if err := n.StopNode(ctx, "btcd"); err != nil {
		t.Fatal(err)
	}
	// Payments wait for the chain backend, but issuing and verifying do not.
	during := createChallenge(t, d, "/fault/btcd/during", 6)
	if out := verifyToken(t, d, paid.Macaroon, paidPre, ""); !out.Valid {
		t.Fatalf("verify with btcd down: %v", out)
	}
	// LND stays up; what l402d must report is that its chain backend is
	// gone (LND's GetInfo hangs then, which once read as "LND down").
	waitFor(t, 30*time.Second, "health to report LND up with its chain backend unresponsive", func() error {
		_, out := d.call(t, "GET", "/healthz", nil)
		lnd, _ := out["lnd"].(map[string]any)
		if lnd["up"] != true {
			t.Fatalf("l402d reports LND down while only btcd is: %v", out)
		}
		if lnd["chainBackend"] != "unresponsive" || out["status"] != "degraded" {
			return fmt.Errorf("%v", out)
		}
		return nil
	})

	if err := n.StartNode(ctx, "btcd"); err != nil {
		t.Fatal(err)
	}
	if err := n.Mine(ctx, 1); err != nil {
		t.Fatal(err)
	}
	payInvoice(t, "bob", during.Invoice)
	waitSettled(t, d, during.PaymentHash, 6)
	waitFor(t, 30*time.Second, "health to show the new block", func() error {
		h := health()
		if num(h["blockHeight"]) <= before || h["syncedToChain"] != true || h["chainBackend"] != nil {
			return fmt.Errorf("%v (before %v)", h, before)
		}
		return nil
	})
}

// TestFaultDiskFull runs l402d with its data dir on a small tmpfs and
// fills it: creates answer 507 with a clear message, verifies keep
// working, a settlement that arrives meanwhile is recorded once space
// returns, and nothing is corrupt after a restart.
func TestFaultDiskFull(t *testing.T) {
	fs := filepath.Join(t.TempDir(), "fs")
	if err := os.MkdirAll(fs, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=200m", "tmpfs", fs).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tmpfs needs root (CI runs as root): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", fs).Run() })

	d := newDaemon(t, testNet(t).Node("alice"))
	d.dataDir = filepath.Join(fs, "data")
	d.args = setFlag(d.args, "--datadir", d.dataDir)
	d.start(t)
	paid := createChallenge(t, d, "/fault/disk/paid", 8)
	paidPre := payInvoice(t, "bob", paid.Invoice)
	waitSettled(t, d, paid.PaymentHash, 8)
	pending := createChallenge(t, d, "/fault/disk/pending", 9)

	// Leave 30 MiB free, under the 64 MiB reserve.
	var st syscall.Statfs_t
	if err := syscall.Statfs(fs, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	filler := filepath.Join(fs, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, free-30<<20)); err != nil {
		t.Fatal(err)
	}
	f.Close()

	var msg string
	waitFor(t, 10*time.Second, "creates to be refused with 507", func() error {
		code, out := d.call(t, "POST", "/api/l402/challenges", map[string]any{"resource": "/fault/disk/x", "priceSats": 1})
		if code != 507 || out["code"] != "disk_full" {
			return fmt.Errorf("%d %v", code, out)
		}
		msg = str(out["error"])
		return nil
	})
	if !strings.Contains(msg, "MiB free") {
		t.Fatalf("disk-full message does not say what is wrong: %q", msg)
	}
	if out := verifyToken(t, d, paid.Macaroon, paidPre, ""); !out.Valid {
		t.Fatalf("verify on a full disk: %v", out)
	}
	pendingPre := payInvoice(t, "bob", pending.Invoice)
	if code, out := d.call(t, "GET", "/api/l402/challenges/"+pending.PaymentHash, nil); code != 200 || out["state"] != "pending" {
		t.Fatalf("settlement recorded on a full disk? %d %v", code, out)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitSettled(t, d, pending.PaymentHash, 9)
	createChallenge(t, d, "/fault/disk/after", 1)
	d.stop(t)
	d.start(t)
	for _, c := range []struct{ mac, pre string }{{paid.Macaroon, paidPre}, {pending.Macaroon, pendingPre}} {
		if out := verifyToken(t, d, c.mac, c.pre, ""); !out.Valid {
			t.Fatalf("after the disk filled and emptied and a restart: %v", out)
		}
	}
}

// setFlag replaces a flag's value in an argument list.
func setFlag(args []string, flag, value string) []string {
	out := slices.Clone(args)
	for i := range out {
		if out[i] == flag && i+1 < len(out) {
			out[i+1] = value
		}
	}
	return out
}
