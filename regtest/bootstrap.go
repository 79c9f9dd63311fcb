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
	if err := n.startBtcds(ctx); err != nil {
		return err
	}
	step.done("btcd and btcd-backup up")
	if err := n.startMiner(ctx, miner, step); err != nil {
		return err
	}
	step.done("btcd mining to " + miner)
	if err := n.startOthers(ctx, nodes, others); err != nil {
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

	points, err := n.openChannels(ctx, nodes, channels, step)
	if err != nil {
		return err
	}
	return n.firstPayment(ctx, nodes, channels, points, step)
}

// startBtcds starts btcd-backup and then btcd (mining to the placeholder
// address) and waits for their RPCs.
func (n *Network) startBtcds(ctx context.Context) error {
	if err := n.be.start(ctx, btcdBackup); err != nil {
		return err
	}
	if err := n.waitBtcdRPC(ctx, btcdBackup, n.backup); err != nil {
		return err
	}
	if err := n.be.start(ctx, BtcdNode); err != nil {
		return err
	}
	return n.waitBtcd(ctx)
}

// startMiner starts the first LND node and restarts btcd with one of its
// addresses as the mining address.
func (n *Network) startMiner(ctx context.Context, miner string, step *stepper) error {
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
	return n.waitBtcd(ctx)
}

// startOthers starts the other LND nodes, waits for them and records
// every node's pubkey.
func (n *Network) startOthers(ctx context.Context, nodes, others []string) error {
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
	return n.save()
}

// openChannels opens the channel graph, confirms it and waits until every
// channel is active on both ends. It returns the channel points, in the
// order of channels.
func (n *Network) openChannels(ctx context.Context, nodes []string, channels []ChannelSpec, step *stepper) ([]string, error) {
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
		return nil, err
	}
	step.done("opened channels")
	// Six confirmations: channels are announced to the graph at six.
	if err := n.Mine(ctx, 6); err != nil {
		return nil, err
	}
	for _, name := range nodes {
		if err := n.waitChannelsActive(ctx, name); err != nil {
			return nil, err
		}
	}
	step.done("channels active")
	return points, nil
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
