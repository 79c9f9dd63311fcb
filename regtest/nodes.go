package regtest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
)

// Running reports whether name runs, as far as the network knows: false
// after StopNode until StartNode.
func (n *Network) Running(name string) bool { return n.running(name) }

func (n *Network) running(name string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.st.Stopped[name]
}

func (n *Network) setStopped(name string, stopped bool) {
	n.mu.Lock()
	if stopped {
		n.st.Stopped[name] = true
	} else {
		delete(n.st.Stopped, name)
	}
	n.mu.Unlock()
	if err := n.save(); err != nil {
		n.log.Warn("saving state", "err", err)
	}
}

func (n *Network) checkName(name string) error {
	nodes := n.Nodes()
	if name == BtcdNode || slices.Contains(nodes, name) {
		return nil
	}
	return fmt.Errorf("no node %q (have btcd, %s)", name, strings.Join(nodes, ", "))
}

// StopNode stops one node gracefully, keeping its data and its ports. With
// btcd stopped the LND nodes keep running (and reconnect when it is back);
// stopping btcd before the LND nodes is fine, but Stop tears down LND
// first, since an LND without btcd takes long to shut down.
func (n *Network) StopNode(ctx context.Context, name string) error {
	if err := n.checkName(name); err != nil {
		return err
	}
	if !n.running(name) {
		return nil
	}
	n.log.Info("stopping node", "node", name)
	if name == BtcdNode {
		// btcd comes back empty and resyncs from btcd-backup, which
		// must hold every block first.
		if err := n.waitBackup(ctx); err != nil {
			return err
		}
	}
	if err := n.be.stop(ctx, name); err != nil {
		return err
	}
	n.setStopped(name, true)
	return nil
}

// StartNode starts a stopped node on its old ports and waits until it is
// ready. For btcd: until its RPC answers, it has resynced the chain from
// btcd-backup (btcd empties its regtest database at every start), and every
// running LND node follows the chain again, proven by a probe block each of
// them reports synced (see [Network.Mine] for why a probe and not a look at
// the height). For an LND node: until its RPC answers, it is synced to
// btcd's chain (if btcd runs) and its channels with running peers are
// active on both ends.
func (n *Network) StartNode(ctx context.Context, name string) error {
	if err := n.checkName(name); err != nil {
		return err
	}
	n.log.Info("starting node", "node", name)
	if err := n.be.start(ctx, name); err != nil {
		return err
	}
	n.setStopped(name, false)
	if name == BtcdNode {
		if err := n.waitBtcd(ctx); err != nil {
			return err
		}
		if err := n.waitBtcdResynced(ctx); err != nil {
			return err
		}
		// Right after btcd returns, an LND node reports synced at the old
		// tip while its chain notifier may still be reconnecting: a
		// block mined then would reach its wallet but not its notifier.
		// Only a block every node processes proves they all follow again.
		return n.Mine(ctx, 1)
	}
	if err := n.waitLnd(ctx, name, n.running(BtcdNode)); err != nil {
		return err
	}
	if err := n.reconnectPeers(ctx, name); err != nil {
		return err
	}
	return n.waitChannelsActive(ctx, name)
}

// reconnectPeers connects name to each running node it has a channel with.
// The nodes reconnect by themselves too (they announce their addresses),
// but a restarted node's peers back off between attempts.
func (n *Network) reconnectPeers(ctx context.Context, name string) error {
	c, err := n.client(name)
	if err != nil {
		return err
	}
	chans, err := c.Lightning.ListChannels(ctx, &lnrpc.ListChannelsRequest{})
	if err != nil {
		return fmt.Errorf("%s: ListChannels: %w", name, err)
	}
	byPub, _ := n.nodesByPubkey(name)
	seen := map[string]bool{}
	for _, ch := range chans.Channels {
		peer := byPub[ch.RemotePubkey]
		if peer == "" || seen[peer] || !n.running(peer) {
			continue
		}
		seen[peer] = true
		if err := n.connect(ctx, name, *n.Node(peer)); err != nil {
			return err
		}
	}
	return nil
}

// RestartNode stops and starts a node; see StopNode and StartNode.
func (n *Network) RestartNode(ctx context.Context, name string) error {
	if err := n.StopNode(ctx, name); err != nil {
		return err
	}
	return n.StartNode(ctx, name)
}

func (n *Network) getInfo(ctx context.Context, name string) (*lnrpc.GetInfoResponse, error) {
	c, err := n.client(name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.Lightning.GetInfo(ctx, &lnrpc.GetInfoRequest{})
}

// startWait bounds the wait for a starting node's RPC. Each failed attempt
// also asks whether the node still runs, so a node that died fails the wait
// at once; the bound only catches a node that runs but never answers. It is
// generous because a live node on a loaded machine is slow, not stuck: with
// two networks starting on two busy cores, an LND took over 90 s to answer.
const startWait = 3 * time.Minute

// waitBtcd waits until btcd's RPC answers.
func (n *Network) waitBtcd(ctx context.Context) error {
	return n.waitBtcdRPC(ctx, BtcdNode, n.btcd)
}

// waitBtcdRPC waits until the RPC of btcd or btcd-backup answers.
func (n *Network) waitBtcdRPC(ctx context.Context, name string, c *btcdClient) error {
	return WaitFor(ctx, name+" RPC to answer", startWait, 100*time.Millisecond, func(ctx context.Context) error {
		_, err := c.BlockCount(ctx)
		if err != nil {
			if aerr := n.be.alive(ctx, name); aerr != nil {
				return aerr
			}
		}
		return err
	})
}

// waitLnd waits until name's RPC answers GetInfo and, if synced, until it
// is synced to btcd's tip.
func (n *Network) waitLnd(ctx context.Context, name string, synced bool) error {
	what := name + " RPC to answer"
	if synced {
		what = name + " to answer and sync to btcd's tip"
	}
	node := n.Node(name)
	return WaitFor(ctx, what, startWait, 100*time.Millisecond, func(ctx context.Context) error {
		err := n.lndReady(ctx, *node, synced)
		if err != nil {
			if aerr := n.be.alive(ctx, name); aerr != nil {
				return aerr
			}
		}
		return err
	})
}

func (n *Network) lndReady(ctx context.Context, node Node, synced bool) error {
	if _, err := os.Stat(node.AdminMacaroonPath); err != nil {
		return fmt.Errorf("%s has no admin macaroon yet: %w", node.Name, err)
	}
	if !synced {
		_, err := n.getInfo(ctx, node.Name)
		return err
	}
	height, err := n.btcd.BlockCount(ctx)
	if err != nil {
		return err
	}
	return n.lndSynced(ctx, node.Name, height)
}

// waitChannelsActive waits until each of name's channels whose peer runs is
// active on both ends, reconnecting to the peers if needed.
func (n *Network) waitChannelsActive(ctx context.Context, name string) error {
	return WaitFor(ctx, name+"'s channels to be active on both ends", 90*time.Second, 200*time.Millisecond,
		func(ctx context.Context) error { return n.channelsActive(ctx, name) })
}

func (n *Network) channelsActive(ctx context.Context, name string) error {
	c, err := n.client(name)
	if err != nil {
		return err
	}
	chans, err := c.Lightning.ListChannels(ctx, &lnrpc.ListChannelsRequest{})
	if err != nil {
		return err
	}
	byPub, self := n.nodesByPubkey(name)
	for _, ch := range chans.Channels {
		peer := byPub[ch.RemotePubkey]
		if peer == "" || !n.running(peer) {
			continue
		}
		if !ch.Active {
			return fmt.Errorf("%s's channel %d with %s is inactive", name, ch.ChanId, peer)
		}
		pc, err := n.client(peer)
		if err != nil {
			return err
		}
		theirs, err := pc.ChannelWith(ctx, self)
		if err != nil {
			return fmt.Errorf("%s: %w", peer, err)
		}
		if !theirs.Active {
			return fmt.Errorf("%s's channel %d with %s is inactive", peer, theirs.ChanId, name)
		}
	}
	return nil
}

// nodesByPubkey returns the LND nodes' names by their pubkeys, and name's
// pubkey.
func (n *Network) nodesByPubkey(name string) (byPub map[string]string, pubkey string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	byPub = map[string]string{}
	for nm, pk := range n.st.Pubkeys {
		byPub[pk] = nm
	}
	return byPub, n.st.Pubkeys[name]
}
