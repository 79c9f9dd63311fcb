//go:build itest

package itest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"

	"github.com/l402d/l402d/invoices/embedded"
	"github.com/l402d/l402d/regtest"
)

// integrated is an integrated-mode l402d: a daemon whose LND runs inside
// it, on the regtest network's btcd.
type integrated struct {
	*daemon
	rpc, p2p string // the embedded LND's gRPC and P2P addresses
	lndDir   string
}

// newIntegrated prepares an integrated-mode l402d without starting it.
func newIntegrated(t *testing.T, n *regtest.Network) *integrated {
	t.Helper()
	dir := t.TempDir()
	b := n.Btcd()
	d := &integrated{
		daemon: &daemon{
			t: t, name: "integrated",
			dataDir: filepath.Join(dir, "data"),
			listen:  freeAddr(t),
			logPath: filepath.Join(dir, "l402d.log"),
		},
		rpc: freeAddr(t), p2p: freeAddr(t),
	}
	d.lndDir = filepath.Join(d.dataDir, "lnd")
	d.args = []string{
		"--datadir", d.dataDir,
		"--listen", d.listen,
		"--network", "regtest",
		"--log.level", "info",
		"--lnd-mode", "integrated",
		"--consumer.enable",
		"--lnd.integrated.rpclisten", d.rpc,
		"--lnd.integrated.listen", d.p2p,
		"--lnd.integrated.alias", "l402d-integrated",
		"--lnd.integrated.bitcoin.node", "btcd",
		"--lnd.integrated.btcd.rpchost", b.RPCAddr,
		"--lnd.integrated.btcd.rpcuser", b.RPCUser,
		"--lnd.integrated.btcd.rpcpass", b.RPCPass,
		"--lnd.integrated.btcd.rpccert", b.RPCCertPath,
		// Gossip as fast as the network's nodes do, so that bob learns
		// the new channel within seconds.
		"--lnd.integrated.arg=--trickledelay=50",
	}
	t.Cleanup(func() {
		d.stop(t)
		if t.Failed() {
			for _, f := range []string{d.logPath, filepath.Join(d.lndDir, "logs", "bitcoin", "regtest", "lnd.log")} {
				if b, err := os.ReadFile(f); err == nil {
					t.Logf("%s:\n%s", f, tail(string(b), 60))
				}
			}
		}
	})
	return d
}

// start starts the integrated daemon and waits until it is ready: LND up
// and the settlement watcher streaming. It returns the time from process
// start to ready.
func (d *integrated) start(t testing.TB) time.Duration {
	t.Helper()
	binPath(t, "l402d") // built before the clock starts
	t0 := time.Now()
	d.daemon.start(t)
	waitDaemonHealthy(t, d.daemon)
	return time.Since(t0)
}

// waitDaemonHealthy waits until d's /healthz reports LND up and the
// watcher streaming, and returns it.
func waitDaemonHealthy(t testing.TB, d *daemon) map[string]any {
	t.Helper()
	var h map[string]any
	waitFor(t, 2*time.Minute, d.name+" ready", func() error {
		code, out := d.call(t, "GET", "/healthz", nil)
		lnd, _ := out["lnd"].(map[string]any)
		w, _ := out["watcher"].(map[string]any)
		if code != http.StatusOK || lnd["up"] != true || w["state"] != "streaming" {
			return fmt.Errorf("healthz %d %v", code, out)
		}
		h = out
		return nil
	})
	return h
}

// client dials the embedded LND like any other node of the network.
func (d *integrated) client(t testing.TB) *regtest.Client {
	t.Helper()
	c, err := regtest.Dial(regtest.Node{
		Name: "integrated", RPCAddr: d.rpc,
		TLSCertPath:       filepath.Join(d.lndDir, "tls.cert"),
		AdminMacaroonPath: filepath.Join(d.lndDir, "data", "chain", "bitcoin", "regtest", "admin.macaroon"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitEmbeddedSynced waits until the embedded LND is synced at btcd's height.
func waitEmbeddedSynced(t testing.TB, n *regtest.Network, c *regtest.Client) {
	t.Helper()
	ctx := testCtx(t, 2*time.Minute)
	height, err := n.BlockHeight(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = regtest.WaitFor(ctx, "the embedded lnd to sync", 90*time.Second, 100*time.Millisecond, func(ctx context.Context) error {
		info, err := c.Lightning.GetInfo(ctx, &lnrpc.GetInfoRequest{})
		if err != nil {
			return err
		}
		if int64(info.BlockHeight) < height || !info.SyncedToChain {
			return fmt.Errorf("at height %d of %d, synced %v", info.BlockHeight, height, info.SyncedToChain)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitEmbeddedChannelActive waits until c's channel with peer is active.
func waitEmbeddedChannelActive(t testing.TB, c *regtest.Client, peer string) *lnrpc.Channel {
	t.Helper()
	var ch *lnrpc.Channel
	err := regtest.WaitFor(testCtx(t, 2*time.Minute), "the channel with "+peer[:12]+" to be active", 90*time.Second, 100*time.Millisecond,
		func(ctx context.Context) error {
			var err error
			if ch, err = c.ChannelWith(ctx, peer); err != nil {
				return err
			}
			if !ch.Active {
				return fmt.Errorf("channel %d is inactive", ch.ChanId)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// TestIntegratedMode runs l402d with LND inside it on the regtest network:
// fund it, open a channel with carol, earn (bob pays its challenge, it
// verifies), spend (it pays a challenge of alice's l402d), then restart it
// (SIGTERM, then kill -9) and check that all of it still holds.
func TestIntegratedMode(t *testing.T) {
	n := testNet(t)
	ctx := testCtx(t, 20*time.Minute)
	d := newIntegrated(t, n)
	took := d.start(t)
	t.Logf("integrated l402d: first start (new wallet) to ready in %v, RSS %d MiB", took.Round(time.Millisecond), d.rss(t)>>20)

	// The wallet: a seed and a password, 0600, in the data dir; the
	// seed is shown once, to the admin key, from loopback.
	for _, f := range []string{embedded.SeedFileName, embedded.PasswordFileName} {
		fi, err := os.Stat(filepath.Join(d.dataDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	if code, out := d.call(t, "POST", "/api/node/seed", nil); code != http.StatusForbidden {
		t.Fatalf("seed with the API key: %d %v", code, out)
	}
	code, out := d.callKey(t, d.adminKey(t), "POST", "/api/node/seed", nil)
	if words, _ := out["mnemonic"].([]any); code != http.StatusOK || len(words) != 24 {
		t.Fatalf("seed, first time: %d %v", code, out)
	}
	if code, out := d.callKey(t, d.adminKey(t), "POST", "/api/node/seed", nil); code != http.StatusGone || out["code"] != "seed_already_shown" {
		t.Fatalf("seed, second time: %d %v", code, out)
	}

	c := d.client(t)
	info, err := c.Lightning.GetInfo(ctx, &lnrpc.GetInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	pubkey := info.IdentityPubkey
	if h := waitDaemonHealthy(t, d.daemon); h["lnd"].(map[string]any)["pubkey"] != pubkey {
		t.Fatalf("healthz reports pubkey %v, the embedded lnd %s", h["lnd"], pubkey)
	}

	// Fund it from alice, and open a channel to carol with part of it
	// pushed to carol, so that it can both pay and be paid through her.
	// (carol, in docker, cannot dial the host: the embedded node dials.)
	addr, err := c.Lightning.NewAddress(ctx, &lnrpc.NewAddressRequest{Type: lnrpc.AddressType_TAPROOT_PUBKEY})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lnd(t, n, "alice").Lightning.SendCoins(ctx, &lnrpc.SendCoinsRequest{Addr: addr.Address, Amount: 5_000_000}); err != nil {
		t.Fatalf("alice funding the embedded node: %v", err)
	}
	if err := n.Mine(ctx, 6); err != nil {
		t.Fatal(err)
	}
	waitEmbeddedSynced(t, n, c)
	waitFor(t, time.Minute, "the funds to confirm", func() error {
		wb, err := c.Lightning.WalletBalance(ctx, &lnrpc.WalletBalanceRequest{})
		if err != nil {
			return err
		}
		if wb.ConfirmedBalance < 5_000_000 {
			return fmt.Errorf("confirmed %d sat", wb.ConfirmedBalance)
		}
		return nil
	})
	carol := n.Node("carol")
	if _, err := c.Lightning.ConnectPeer(ctx, &lnrpc.ConnectPeerRequest{Addr: &lnrpc.LightningAddress{Pubkey: carol.Pubkey, Host: carol.HostP2PAddr}, Timeout: 30}); err != nil {
		t.Fatalf("connecting to carol: %v", err)
	}
	waitFor(t, 30*time.Second, "carol as a peer", func() error {
		peers, err := c.Lightning.ListPeers(ctx, &lnrpc.ListPeersRequest{})
		if err != nil {
			return err
		}
		for _, p := range peers.Peers {
			if p.PubKey == carol.Pubkey {
				return nil
			}
		}
		return fmt.Errorf("%d peers, carol not among them", len(peers.Peers))
	})
	if _, err := c.Lightning.OpenChannelSync(ctx, &lnrpc.OpenChannelRequest{
		NodePubkeyString: carol.Pubkey, LocalFundingAmount: 2_000_000, PushSat: 800_000,
	}); err != nil {
		t.Fatalf("opening a channel to carol: %v", err)
	}
	// Six blocks: open, and announced so that bob can route to it.
	if err := n.Mine(ctx, 6); err != nil {
		t.Fatal(err)
	}
	waitEmbeddedSynced(t, n, c)
	ch := waitEmbeddedChannelActive(t, c, carol.Pubkey)
	waitBobKnowsChannel(t, n, ch.ChanId)

	// Earn: a challenge on the embedded node, paid by bob through carol.
	earn := func(t *testing.T, resource string, price int64) (mac, pre string) {
		t.Helper()
		chl := createChallenge(t, d.daemon, resource, price)
		pre = payInvoice(t, "bob", chl.Invoice)
		out := verifyToken(t, d.daemon, chl.Macaroon, pre, "")
		if !out.Valid || out.MerchantID != pubkey || out.AmountSats != price {
			t.Fatalf("paid token: %v", out)
		}
		waitSettled(t, d.daemon, chl.PaymentHash, price)
		return chl.Macaroon, pre
	}
	// Spend: a challenge of alice's l402d, paid by the embedded node
	// through l402d's consumer API, and accepted by alice.
	alice := startDaemon(t, n.Node("alice"))
	spend := func(t *testing.T, resource string, price int64) {
		t.Helper()
		chl := createChallenge(t, alice, resource, price)
		code, out := d.call(t, "POST", "/api/consumer/pay/challenge", map[string]any{"invoice": chl.Invoice, "macaroon": chl.Macaroon})
		pay, _ := out["payment"].(map[string]any)
		if code != http.StatusOK || pay["state"] != "succeeded" || pay["preimage"] == nil {
			t.Fatalf("the integrated node paying alice's challenge: %d %v", code, out)
		}
		if out := verifyToken(t, alice, chl.Macaroon, str(pay["preimage"]), ""); !out.Valid {
			t.Fatalf("alice verifying the token the integrated node bought: %v", out)
		}
	}

	var macs, pres []string
	t.Run("earn", func(t *testing.T) {
		m, p := earn(t, "/api/integrated/earn", 25)
		macs, pres = append(macs, m), append(pres, p)
	})
	t.Run("spend", func(t *testing.T) { spend(t, "/api/integrated/spend", 15) })
	if t.Failed() {
		return
	}

	// Restart, gracefully and by crash: the same node, its channel back,
	// old tokens valid, new challenges earned and paid.
	for _, how := range []string{"SIGTERM", "kill -9"} {
		t.Run("after "+how, func(t *testing.T) {
			if how == "SIGTERM" {
				t0 := time.Now()
				d.stop(t)
				t.Logf("SIGTERM to exit: %v", time.Since(t0).Round(time.Millisecond))
			} else {
				d.kill9(t)
			}
			took := d.start(t)
			t.Logf("integrated l402d: restart after %s to ready in %v", how, took.Round(time.Millisecond))
			h := waitDaemonHealthy(t, d.daemon)
			if got := h["lnd"].(map[string]any)["pubkey"]; got != pubkey {
				t.Fatalf("pubkey after restart %v, want %s", got, pubkey)
			}
			waitEmbeddedChannelActive(t, c, carol.Pubkey)
			for i := range macs {
				if out := verifyToken(t, d.daemon, macs[i], pres[i], ""); !out.Valid {
					t.Fatalf("token %d after restart: %v", i, out)
				}
			}
			m, p := earn(t, "/api/integrated/earn-after-"+strings.ReplaceAll(how, " ", ""), 20)
			macs, pres = append(macs, m), append(pres, p)
			spend(t, "/api/integrated/spend-after-"+strings.ReplaceAll(how, " ", ""), 10)
		})
		if t.Failed() {
			return
		}
	}
	t.Logf("integrated l402d: RSS after the runs %d MiB", d.rss(t)>>20)
}

// waitBobKnowsChannel waits until bob's graph holds the channel with carol's
// policy, so that bob can route a payment through carol over it.
func waitBobKnowsChannel(t testing.TB, n *regtest.Network, chanID uint64) {
	t.Helper()
	bob := lnd(t, n, "bob")
	carol := n.Node("carol").Pubkey
	err := regtest.WaitFor(testCtx(t, 2*time.Minute), "bob to learn the new channel", 90*time.Second, 200*time.Millisecond, func(ctx context.Context) error {
		e, err := bob.Lightning.GetChanInfo(ctx, &lnrpc.ChanInfoRequest{ChanId: chanID})
		if err != nil {
			return err
		}
		if (e.Node1Pub == carol && e.Node1Policy == nil) || (e.Node2Pub == carol && e.Node2Policy == nil) {
			return fmt.Errorf("carol's policy of channel %d is unknown to bob", chanID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
