package regtest

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// BlockHeight returns btcd's chain height.
func (n *Network) BlockHeight(ctx context.Context) (int64, error) {
	return n.btcd.BlockCount(ctx)
}

// Mine mines blocks (paying the first LND node, alice by default) and waits until every running LND node
// is synced to the tip and btcd-backup holds it.
//
// LND's synced_to_chain needs its wallet, its graph and its block-beat
// dispatcher (fed by its chain notifier) at btcd's tip. Each of them has
// its own connection to btcd, reconnecting on its own schedule after btcd
// restarts (every 5 s, backing off to a minute). A block mined while the
// notifier is still reconnecting reaches the wallet but never the notifier,
// which catches up on missed blocks only when the next block arrives: the
// node would stay "not synced" for ever. So while some node sits at the
// tip unsynced for [nudgeAfter], Mine mines one more block, until all are
// synced or [syncTimeout] has passed.
func (n *Network) Mine(ctx context.Context, blocks int) error {
	if !n.running(BtcdNode) {
		return errors.New("mine: btcd is stopped")
	}
	if _, err := n.btcd.Generate(ctx, blocks); err != nil {
		return fmt.Errorf("mining %d blocks: %w", blocks, err)
	}
	if err := n.waitFollowing(ctx); err != nil {
		return err
	}
	return n.waitBackup(ctx)
}

const (
	// syncTimeout bounds how long Mine and StartNode wait for the LND nodes
	// to sync. LND's btcd client backs off up to a minute between
	// reconnects, so after a long btcd outage a node can take that long
	// to come back.
	syncTimeout = 3 * time.Minute
	// nudgeAfter is how long a node may report btcd's tip without being
	// synced to it before Mine mines another block to wake its notifier.
	nudgeAfter = 20 * time.Second
	// restartAfterNudges is how many nudge blocks a stuck node may ignore
	// before waitFollowing restarts it. After a btcd restart LND's
	// notifier can back off for minutes and sleep through every nudge;
	// a restarted LND connects at once.
	restartAfterNudges = 2
)

// waitFollowing waits until every running LND node is synced at btcd's tip,
// mining a block whenever one has sat at the tip unsynced for nudgeAfter,
// and restarting a node that stayed stuck through restartAfterNudges
// nudges (counted in [Network.StuckRestarts], so the workaround stays
// visible). A node whose GetInfo fails or times out (it blocks while LND
// reconnects to btcd, and is slow on a loaded machine) neither proves nor
// disproves that it is stuck, so it keeps the time it was first seen stuck.
func (n *Network) waitFollowing(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	stuckSince := map[string]time.Time{}
	nudged := map[string]int{} // nudges each stuck node has slept through
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		height, err := n.btcd.BlockCount(ctx)
		if err != nil {
			return fmt.Errorf("btcd's height: %w", err)
		}
		var waiting []error
		nudge := false
		for _, name := range n.Nodes() {
			if !n.running(name) {
				continue
			}
			err := n.lndSynced(ctx, name, height)
			switch {
			case err == nil:
				delete(stuckSince, name)
				delete(nudged, name)
				continue
			case errors.Is(err, errStuckAtTip):
				if stuckSince[name].IsZero() {
					stuckSince[name] = time.Now()
				}
				nudge = nudge || time.Since(stuckSince[name]) >= nudgeAfter
			case errors.Is(err, errBehind):
				delete(stuckSince, name)
				delete(nudged, name)
			default:
				if aerr := n.be.alive(ctx, name); aerr != nil {
					return aerr
				}
			}
			waiting = append(waiting, err)
		}
		if len(waiting) == 0 {
			return nil
		}
		if nudge {
			restarted, err := n.restartStuck(ctx, stuckSince, nudged)
			if err != nil {
				return fmt.Errorf("restarting a stuck LND node (%w): %w", errors.Join(waiting...), err)
			}
			if restarted {
				clear(stuckSince)
				continue
			}
			n.log.Info("an LND node is at the tip but not synced; mining a block to wake its chain notifier",
				"height", height, "err", errors.Join(waiting...))
			if _, err := n.btcd.Generate(ctx, 1); err != nil {
				return fmt.Errorf("mining a nudge block (%w): %w", errors.Join(waiting...), err)
			}
			for name, since := range stuckSince {
				if time.Since(since) >= nudgeAfter {
					nudged[name]++
				}
			}
			clear(stuckSince)
			continue
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out after %v waiting for the LND nodes to sync to height %d: %w", syncTimeout, height, errors.Join(waiting...))
		case <-ticker.C:
		}
	}
}

// restartStuck restarts each node that has been stuck at the tip for
// nudgeAfter after sleeping through restartAfterNudges nudges, and reports
// whether it restarted any.
func (n *Network) restartStuck(ctx context.Context, stuckSince map[string]time.Time, nudged map[string]int) (bool, error) {
	restarted := false
	for name, since := range stuckSince {
		if nudged[name] < restartAfterNudges || time.Since(since) < nudgeAfter {
			continue
		}
		n.log.Warn("an LND node slept through nudge blocks at the tip; restarting it", "node", name, "nudges", nudged[name])
		if err := n.be.stop(ctx, name); err != nil {
			return restarted, err
		}
		if err := n.be.start(ctx, name); err != nil {
			return restarted, err
		}
		if err := n.waitLnd(ctx, name, false); err != nil {
			return restarted, err
		}
		if err := n.reconnectPeers(ctx, name); err != nil {
			return restarted, err
		}
		n.stuckRestarts.Add(1)
		delete(nudged, name)
		restarted = true
	}
	return restarted, nil
}

// StuckRestarts returns how many times waitFollowing restarted an LND node
// that stayed at the tip unsynced through its nudge blocks.
func (n *Network) StuckRestarts() int64 { return n.stuckRestarts.Load() }

// waitBackup waits until btcd-backup has btcd's best block. A backup that
// lags (it ignores blocks announced by a peer that is not its sync peer
// while its own tip is old, as at the start) is told to connect to btcd,
// which makes btcd its sync peer.
func (n *Network) waitBackup(ctx context.Context) error {
	nudged := false
	return WaitFor(ctx, "btcd-backup to hold btcd's chain", 60*time.Second, 50*time.Millisecond, func(ctx context.Context) error {
		want, err := n.btcd.BestBlockHash(ctx)
		if err != nil {
			return err
		}
		got, err := n.backup.BestBlockHash(ctx)
		if err != nil {
			if aerr := n.be.alive(ctx, btcdBackup); aerr != nil {
				return aerr
			}
			return err
		}
		if got == want {
			return nil
		}
		if !nudged {
			if err := n.backup.ConnectPeer(ctx, n.btcdP2PFromBackup()); err != nil {
				return err
			}
			nudged = true
		}
		return fmt.Errorf("btcd-backup at %s, btcd at %s", got, want)
	})
}

// waitBtcdResynced waits until a restarted btcd has the backup's chain.
func (n *Network) waitBtcdResynced(ctx context.Context) error {
	return WaitFor(ctx, "btcd to resync the chain from btcd-backup", 90*time.Second, 50*time.Millisecond, func(ctx context.Context) error {
		want, err := n.backup.BestBlockHash(ctx)
		if err != nil {
			return err
		}
		got, err := n.btcd.BestBlockHash(ctx)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("btcd at %s, btcd-backup at %s", got, want)
		}
		return nil
	})
}

// btcdP2PFromBackup is btcd's P2P address as btcd-backup dials it.
func (n *Network) btcdP2PFromBackup() string {
	if n.st.Mode == ModeDocker {
		return fmt.Sprintf("127.0.0.1:%d", dockerBtcdP2PPort) // shared namespace
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprintf("127.0.0.1:%d", n.st.Ports[BtcdNode].P2P)
}

// errStuckAtTip marks a node that reports btcd's tip as its height without
// being synced to it (see [Network.Mine]); errBehind one still below it.
var (
	errStuckAtTip = errors.New("at the tip but not synced to chain")
	errBehind     = errors.New("below the tip")
)

// lndSynced returns nil if name reports synced_to_chain at height (or any
// height if height is 0).
func (n *Network) lndSynced(ctx context.Context, name string, height int64) error {
	info, err := n.getInfo(ctx, name)
	if err != nil {
		return err
	}
	if height > 0 && int64(info.BlockHeight) < height {
		return fmt.Errorf("%s at height %d: %w", name, info.BlockHeight, errBehind)
	}
	if !info.SyncedToChain {
		return fmt.Errorf("%s at height %d: %w", name, info.BlockHeight, errStuckAtTip)
	}
	return nil
}
