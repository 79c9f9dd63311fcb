package regtest

import (
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
)

// Bootstrap amounts. Fixed, so every run builds the same graph.
const (
	// FundingOutput is the size of each on-chain output the first node
	// (alice) sends the others (bob and carol).
	FundingOutput = 100_000_000
	// ChannelCapacity is the size of each bootstrap channel.
	ChannelCapacity = 10_000_000
	// ChannelPush is the part of each channel pushed to its remote end,
	// so both ends can pay.
	ChannelPush = ChannelCapacity / 2
	// ProbeAmount is what bob pays alice through carol to prove the
	// network routes (for a custom graph: what the first channel's From
	// pays its To).
	ProbeAmount = 1_000

	// SegwitActivationHeight is the height from which btcd's regtest
	// accepts witness transactions; Start mines this many blocks first.
	SegwitActivationHeight = 432

	feeRate = 2 // sat/vbyte for bootstrap transactions
)

// ChannelSpec is one bootstrap channel: From opens it to To and pushes
// ChannelPush to To.
type ChannelSpec struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// BootstrapChannels returns the channels Start opens by default.
func BootstrapChannels() []ChannelSpec {
	return []ChannelSpec{{Bob, Carol}, {Carol, Alice}, {Bob, Alice}}
}

// fundingOutputs says how many FundingOutput outputs each node but the
// first (the miner's payee, which pays them) gets: one per channel it
// opens and one spare for tests.
func fundingOutputs(nodes []string, channels []ChannelSpec) map[string]int {
	out := map[string]int{}
	for _, c := range channels {
		if c.From != nodes[0] {
			out[c.From]++
		}
	}
	for _, n := range nodes[1:] {
		out[n]++
	}
	return out
}

// isDefaultGraph reports whether nodes and channels are the defaults, whose
// bootstrap ends with routes through carol and a payment bob→carol→alice.
func isDefaultGraph(nodes []string, channels []ChannelSpec) bool {
	return slices.Equal(nodes, LNDNodes()) && slices.Equal(channels, BootstrapChannels())
}

// andList joins names as "a", "a and b", "a, b and c".
func andList(names []string) string {
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// bootstrap starts the nodes and builds the graph. Every step waits for its
// effect by polling, with a timeout that names what it awaited.
func (n *Network) bootstrap(ctx context.Context) error {
	step := newStepper(n)
	nodes, channels := n.Nodes(), n.Channels()
	miner, others := nodes[0], nodes[1:]

	// btcd-backup, then btcd with a placeholder mining address (nothing
	// is mined to it), then the first LND node (alice), whose address
	// becomes btcd's mining address.
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
	if err := n.be.start(ctx, miner); err != nil {
		return err
	}
	if err := n.waitLnd(ctx, miner, false); err != nil {
		return err
	}
	step.done(miner + " up")
	mc, err := n.client(miner)
	if err != nil {
		return err
	}
	addr, err := mc.Lightning.NewAddress(ctx, &lnrpc.NewAddressRequest{Type: lnrpc.AddressType_WITNESS_PUBKEY_HASH})
	if err != nil {
		return fmt.Errorf("%s: NewAddress: %w", miner, err)
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
	step.done("btcd mining to " + miner)

	if len(others) > 0 {
		if err := n.be.start(ctx, others...); err != nil {
			return err
		}
		var waits []func() error
		for _, name := range others {
			waits = append(waits, func() error { return n.waitLnd(ctx, name, false) })
		}
		if err := parallel(waits...); err != nil {
			return err
		}
	}
	for _, name := range nodes {
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
	if len(others) > 0 {
		step.done(andList(others) + " up")
	}

	// Segwit (and taproot) activate by BIP9 on btcd's regtest: signalling
	// in the window 144-287 locks them in, so they are active from block
	// 432 on. That also matures plenty of the miner's coinbases (maturity
	// 100).
	if err := n.Mine(ctx, SegwitActivationHeight); err != nil {
		return err
	}
	step.done(fmt.Sprintf("mined %d blocks (segwit active)", SegwitActivationHeight))

	if want := fundingOutputs(nodes, channels); len(want) > 0 {
		if err := n.fund(ctx, miner, want); err != nil {
			return err
		}
		step.done("funded " + andList(slices.Sorted(maps.Keys(want))))
	}
	if len(channels) == 0 {
		return nil
	}

	points := make([]string, len(channels))
	var opens []func() error
	for i, c := range channels {
		opens = append(opens, func() error {
			point, err := n.openChannel(ctx, c)
			if err == nil {
				n.log.Debug("bootstrap: channel opened", "from", c.From, "to", c.To, "point", point)
				points[i] = point
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
	for _, name := range nodes {
		if err := n.waitChannelsActive(ctx, name); err != nil {
			return err
		}
	}
	step.done("channels active")

	if !isDefaultGraph(nodes, channels) {
		ids, err := n.waitGraph(ctx, channels, points)
		if err != nil {
			return err
		}
		step.done("every channel in both ends' graphs")
		c := channels[0]
		if err := n.payOver(ctx, c.From, c.To, ids[0]); err != nil {
			return err
		}
		step.done(fmt.Sprintf("first payment (%s→%s)", c.From, c.To))
		return nil
	}

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

// fund sends want[node] FundingOutput outputs from miner to each node in
// one transaction and waits until they are confirmed in their wallets.
func (n *Network) fund(ctx context.Context, miner string, want map[string]int) error {
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
	mc, err := n.client(miner)
	if err != nil {
		return err
	}
	err = WaitFor(ctx, miner+"'s coinbase to be spendable", 60*time.Second, 200*time.Millisecond, func(ctx context.Context) error {
		_, err := mc.Lightning.SendMany(ctx, &lnrpc.SendManyRequest{AddrToAmount: outputs, SatPerVbyte: feeRate, Label: "regtest bootstrap funding"})
		if err != nil && strings.Contains(err.Error(), "insufficient") {
			return err // the wallet has not seen the matured coinbase yet
		}
		return Unrecoverable(err)
	})
	if err != nil {
		return fmt.Errorf("%s funding %s: %w", miner, andList(slices.Sorted(maps.Keys(want))), err)
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
	txid, err := chainhash.NewHash(point.GetFundingTxidBytes())
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s:%d", txid, point.OutputIndex), nil
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

// waitGraph waits until each channel (opened at points, as ListChannels
// spells them) is in the graphs of both its ends, and returns their ids.
func (n *Network) waitGraph(ctx context.Context, channels []ChannelSpec, points []string) ([]uint64, error) {
	ids := make([]uint64, len(channels))
	for i, c := range channels {
		from, err := n.client(c.From)
		if err != nil {
			return nil, err
		}
		chans, err := from.Lightning.ListChannels(ctx, &lnrpc.ListChannelsRequest{})
		if err != nil {
			return nil, fmt.Errorf("%s: ListChannels: %w", c.From, err)
		}
		for _, ch := range chans.Channels {
			if ch.ChannelPoint == points[i] {
				ids[i] = ch.ChanId
			}
		}
		if ids[i] == 0 {
			return nil, fmt.Errorf("%s has no channel %s (to %s)", c.From, points[i], c.To)
		}
		for _, end := range []string{c.From, c.To} {
			ec, err := n.client(end)
			if err != nil {
				return nil, err
			}
			what := fmt.Sprintf("%s's graph to hold the channel %s→%s", end, c.From, c.To)
			err = WaitFor(ctx, what, 90*time.Second, 200*time.Millisecond, func(ctx context.Context) error {
				_, err := ec.Lightning.GetChanInfo(ctx, &lnrpc.ChanInfoRequest{ChanId: ids[i]})
				return err
			})
			if err != nil {
				return nil, err
			}
		}
	}
	return ids, nil
}

// payOver has from pay to ProbeAmount over the channel chanID.
func (n *Network) payOver(ctx context.Context, from, to string, chanID uint64) error {
	fc, err := n.client(from)
	if err != nil {
		return err
	}
	tc, err := n.client(to)
	if err != nil {
		return err
	}
	inv, err := tc.Lightning.AddInvoice(ctx, &lnrpc.Invoice{Value: ProbeAmount, Memo: "regtest bootstrap probe"})
	if err != nil {
		return fmt.Errorf("%s: AddInvoice: %w", to, err)
	}
	_, err = fc.Pay(ctx, &routerrpc.SendPaymentRequest{
		PaymentRequest:  inv.PaymentRequest,
		FeeLimitSat:     100,
		OutgoingChanIds: []uint64{chanID},
	})
	if err != nil {
		return fmt.Errorf("probe payment %s→%s: %w", from, to, err)
	}
	return nil
}
