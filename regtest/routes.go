package regtest

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
)

// firstPayment proves the graph carries payments: for the default graph
// routes both ways through carol and a probe payment bob→carol→alice;
// otherwise every channel in both ends' graphs and a payment over the
// first channel.
func (n *Network) firstPayment(ctx context.Context, nodes []string, channels []ChannelSpec, points []string, step *stepper) error {
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
