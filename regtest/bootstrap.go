package regtest

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
)

// Bootstrap amounts. Fixed, so every run builds the same graph.
const (
	// FundingOutput is the size of each on-chain output alice sends bob
	// and carol.
	FundingOutput = 100_000_000
	// ChannelCapacity is the size of each bootstrap channel.
	ChannelCapacity = 10_000_000
	// ChannelPush is the part of each channel pushed to its remote end,
	// so both ends can pay.
	ChannelPush = ChannelCapacity / 2
	// ProbeAmount is what bob pays alice through carol to prove the
	// network routes.
	ProbeAmount = 1_000

	// SegwitActivationHeight is the height from which btcd's regtest
	// accepts witness transactions; Start mines this many blocks first.
	SegwitActivationHeight = 432

	feeRate = 2 // sat/vbyte for bootstrap transactions
)

// ChannelSpec is one bootstrap channel: From opens it to To and pushes
// ChannelPush to To.
type ChannelSpec struct{ From, To string }

// BootstrapChannels returns the channels Start opens.
func BootstrapChannels() []ChannelSpec {
	return []ChannelSpec{{Bob, Carol}, {Carol, Alice}, {Bob, Alice}}
}

// fundingOutputs says how many FundingOutput outputs each node gets: one
// per channel it opens and one spare for tests.
func fundingOutputs() map[string]int {
	out := map[string]int{}
	for _, c := range BootstrapChannels() {
		if c.From != Alice {
			out[c.From]++
		}
	}
	for _, n := range []string{Bob, Carol} {
		out[n]++
	}
	return out
}

// bootstrap starts the nodes and builds the graph. Every step waits for its
// effect by polling, with a timeout that names what it awaited.
func (n *Network) bootstrap(ctx context.Context) error {
	step := newStepper(n)

	// btcd-backup, then btcd with a placeholder mining address (nothing
	// is mined to it), then alice, whose address becomes btcd's mining
	// address.
	if err := n.be.start(ctx, btcdBackup); err != nil {
		return err
	}
	if err := n.waitBtcdRPC(ctx, btcdBackup, n.backup); err != nil {
		return err
	}
	if err := n.be.start(ctx, BtcdNode); err != nil {
		return err
	}
	if err := n.waitBtcd(ctx); err != nil {
		return err
	}
	step.done("btcd and btcd-backup up")
	if err := n.be.start(ctx, Alice); err != nil {
		return err
	}
	if err := n.waitLnd(ctx, Alice, false); err != nil {
		return err
	}
	step.done("alice up")
	alice, err := n.client(Alice)
	if err != nil {
		return err
	}
	addr, err := alice.Lightning.NewAddress(ctx, &lnrpc.NewAddressRequest{Type: lnrpc.AddressType_WITNESS_PUBKEY_HASH})
	if err != nil {
		return fmt.Errorf("alice: NewAddress: %w", err)
	}
	n.mu.Lock()
	n.st.MiningAddr = addr.Address
	n.mu.Unlock()
	if err := n.save(); err != nil {
		return err
	}
	// Recreate btcd with --miningaddr; its chain stays in its volume.
	if err := n.be.stop(ctx, BtcdNode); err != nil {
		return err
	}
	if err := n.be.start(ctx, BtcdNode); err != nil {
		return err
	}
	if err := n.waitBtcd(ctx); err != nil {
		return err
	}
	step.done("btcd mining to alice")

	if err := n.be.start(ctx, Bob, Carol); err != nil {
		return err
	}
	if err := parallel(
		func() error { return n.waitLnd(ctx, Bob, false) },
		func() error { return n.waitLnd(ctx, Carol, false) },
	); err != nil {
		return err
	}
	for _, name := range LNDNodes() {
		info, err := n.getInfo(ctx, name)
		if err != nil {
			return err
		}
		n.mu.Lock()
		n.st.Pubkeys[name] = info.IdentityPubkey
		n.mu.Unlock()
	}
	if err := n.save(); err != nil {
		return err
	}
	step.done("bob and carol up")

	// Segwit (and taproot) activate by BIP9 on btcd's regtest: signalling
	// in the window 144-287 locks them in, so they are active from block
	// 432 on. That also matures plenty of alice's coinbases (maturity 100).
	if err := n.Mine(ctx, SegwitActivationHeight); err != nil {
		return err
	}
	step.done(fmt.Sprintf("mined %d blocks (segwit active)", SegwitActivationHeight))

	if err := n.fund(ctx); err != nil {
		return err
	}
	step.done("funded bob and carol")

	var opens []func() error
	for _, c := range BootstrapChannels() {
		opens = append(opens, func() error {
			point, err := n.openChannel(ctx, c)
			if err == nil {
				n.log.Debug("bootstrap: channel opened", "from", c.From, "to", c.To, "point", point)
			}
			return err
		})
	}
	if err := parallel(opens...); err != nil {
		return err
	}
	step.done("opened channels")
	// Six confirmations: channels are announced to the graph at six.
	if err := n.Mine(ctx, 6); err != nil {
		return err
	}
	for _, name := range LNDNodes() {
		if err := n.waitChannelsActive(ctx, name); err != nil {
			return err
		}
	}
	step.done("channels active")

	if err := n.waitRoutes(ctx); err != nil {
		return err
	}
	step.done("graph routes bob→carol→alice and alice→carol→bob")

	if err := n.probe(ctx); err != nil {
		return err
	}
	step.done("first routed payment (bob→carol→alice)")
	return nil
}

// stepper logs how long each bootstrap step took.
type stepper struct {
	n           *Network
	start, last time.Time
}

func newStepper(n *Network) *stepper {
	now := time.Now()
	return &stepper{n: n, start: now, last: now}
}

func (s *stepper) done(what string) {
	now := time.Now()
	s.n.log.Info("bootstrap: "+what, "step", now.Sub(s.last).Round(time.Millisecond), "elapsed", now.Sub(s.start).Round(time.Millisecond))
	s.last = now
}

// fund sends FundingOutput outputs from alice to bob and carol in one
// transaction and waits until they are confirmed in their wallets.
func (n *Network) fund(ctx context.Context) error {
	want := fundingOutputs()
	outputs := map[string]int64{}
	for name, count := range want {
		c, err := n.client(name)
		if err != nil {
			return err
		}
		for range count {
			a, err := c.Lightning.NewAddress(ctx, &lnrpc.NewAddressRequest{Type: lnrpc.AddressType_WITNESS_PUBKEY_HASH})
			if err != nil {
				return fmt.Errorf("%s: NewAddress: %w", name, err)
			}
			outputs[a.Address] = FundingOutput
		}
	}
	alice, err := n.client(Alice)
	if err != nil {
		return err
	}
	err = WaitFor(ctx, "alice's coinbase to be spendable", 60*time.Second, 200*time.Millisecond, func(ctx context.Context) error {
		_, err := alice.Lightning.SendMany(ctx, &lnrpc.SendManyRequest{AddrToAmount: outputs, SatPerVbyte: feeRate, Label: "regtest bootstrap funding"})
		if err != nil && strings.Contains(err.Error(), "insufficient") {
			return err // the wallet has not seen the matured coinbase yet
		}
		return Unrecoverable(err)
	})
	if err != nil {
		return fmt.Errorf("alice funding bob and carol: %w", err)
	}
	if err := n.Mine(ctx, 1); err != nil {
		return err
	}
	for name, count := range want {
		c, err := n.client(name)
		if err != nil {
			return err
		}
		wantBal := int64(count) * FundingOutput
		err = WaitFor(ctx, fmt.Sprintf("%s's confirmed balance of %d sat", name, wantBal), 60*time.Second, 100*time.Millisecond, func(ctx context.Context) error {
			b, err := c.Lightning.WalletBalance(ctx, &lnrpc.WalletBalanceRequest{})
			if err != nil {
				return err
			}
			if b.ConfirmedBalance < wantBal {
				return fmt.Errorf("confirmed %d, unconfirmed %d", b.ConfirmedBalance, b.UnconfirmedBalance)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// openChannel connects c.From to c.To and opens the channel, returning its
// funding outpoint.
func (n *Network) openChannel(ctx context.Context, spec ChannelSpec) (string, error) {
	from, err := n.client(spec.From)
	if err != nil {
		return "", err
	}
	to := n.Node(spec.To)
	if err := n.connect(ctx, spec.From, *to); err != nil {
		return "", err
	}
	pub, err := hex.DecodeString(to.Pubkey)
	if err != nil {
		return "", err
	}
	var point *lnrpc.ChannelPoint
	what := fmt.Sprintf("%s to open a channel to %s", spec.From, spec.To)
	err = WaitFor(ctx, what, 60*time.Second, 200*time.Millisecond, func(ctx context.Context) error {
		point, err = from.Lightning.OpenChannelSync(ctx, &lnrpc.OpenChannelRequest{
			NodePubkey:         pub,
			LocalFundingAmount: ChannelCapacity,
			PushSat:            ChannelPush,
			SatPerVbyte:        feeRate,
			Memo:               "regtest bootstrap",
		})
		if err != nil && openRetryable(err) {
			return err
		}
		return Unrecoverable(err)
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%x:%d", point.GetFundingTxidBytes(), point.OutputIndex), nil
}

// openRetryable reports whether an OpenChannel error is one of the
// transient states of a network still settling: the peer not (or no
// longer) connected, a node still starting, funds not yet confirmed. The
// peers are permanent, so LND reconnects a dropped one by itself, and a
// funding flow that failed this way broadcast nothing.
func openRetryable(err error) bool {
	for _, s := range []string{"not online", "is not connected", "disconnected", "peer exited",
		"still in the process of starting", "insufficient"} {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}

// connect makes from a permanent peer of to, dialing to.P2PAddr.
func (n *Network) connect(ctx context.Context, from string, to Node) error {
	c, err := n.client(from)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("%s to connect to %s at %s", from, to.Name, to.P2PAddr)
	return WaitFor(ctx, what, 60*time.Second, 200*time.Millisecond, func(ctx context.Context) error {
		peers, err := c.Lightning.ListPeers(ctx, &lnrpc.ListPeersRequest{})
		if err != nil {
			return err
		}
		for _, p := range peers.Peers {
			if p.PubKey == to.Pubkey {
				return nil
			}
		}
		_, err = c.Lightning.ConnectPeer(ctx, &lnrpc.ConnectPeerRequest{
			Addr:    &lnrpc.LightningAddress{Pubkey: to.Pubkey, Host: to.P2PAddr},
			Perm:    true,
			Timeout: 10,
		})
		if err != nil && !strings.Contains(err.Error(), "already connected") {
			return err
		}
		return fmt.Errorf("connect requested")
	})
}

// waitRoutes waits until the graph lets bob route to alice via carol and
// alice route to bob via carol.
func (n *Network) waitRoutes(ctx context.Context) error {
	for _, r := range []struct{ from, to string }{{Bob, Alice}, {Alice, Bob}} {
		if err := n.waitRoute(ctx, r.from, r.to, Carol, ProbeAmount); err != nil {
			return err
		}
	}
	return nil
}

// waitRoute waits until QueryRoutes finds a route from → via → to.
func (n *Network) waitRoute(ctx context.Context, from, to, via string, amt int64) error {
	c, err := n.client(from)
	if err != nil {
		return err
	}
	dst, hop := n.Node(to), n.Node(via)
	first, err := c.ChannelWith(ctx, hop.Pubkey)
	if err != nil {
		return fmt.Errorf("%s has no channel with %s: %w", from, via, err)
	}
	lastHop, _ := hex.DecodeString(hop.Pubkey)
	what := fmt.Sprintf("the graph to route %s→%s→%s", from, via, to)
	return WaitFor(ctx, what, 90*time.Second, 200*time.Millisecond, func(ctx context.Context) error {
		resp, err := c.Lightning.QueryRoutes(ctx, &lnrpc.QueryRoutesRequest{
			PubKey:          dst.Pubkey,
			Amt:             amt,
			OutgoingChanIds: []uint64{first.ChanId},
			LastHopPubkey:   lastHop,
		})
		if err != nil {
			return err
		}
		if len(resp.Routes) == 0 || len(resp.Routes[0].Hops) != 2 {
			return fmt.Errorf("no two-hop route")
		}
		return nil
	})
}

// probe has bob pay alice ProbeAmount through carol.
func (n *Network) probe(ctx context.Context) error {
	alice, err := n.client(Alice)
	if err != nil {
		return err
	}
	bob, err := n.client(Bob)
	if err != nil {
		return err
	}
	inv, err := alice.Lightning.AddInvoice(ctx, &lnrpc.Invoice{Value: ProbeAmount, Memo: "regtest bootstrap probe"})
	if err != nil {
		return fmt.Errorf("alice: AddInvoice: %w", err)
	}
	carol := n.Node(Carol)
	first, err := bob.ChannelWith(ctx, carol.Pubkey)
	if err != nil {
		return err
	}
	lastHop, _ := hex.DecodeString(carol.Pubkey)
	_, err = bob.Pay(ctx, &routerrpc.SendPaymentRequest{
		PaymentRequest:  inv.PaymentRequest,
		FeeLimitSat:     100,
		OutgoingChanIds: []uint64{first.ChanId},
		LastHopPubkey:   lastHop,
	})
	if err != nil {
		return fmt.Errorf("probe payment bob→carol→alice: %w", err)
	}
	return nil
}
