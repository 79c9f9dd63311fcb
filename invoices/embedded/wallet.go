package embedded

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// statePoll is how often the wallet state is polled while starting, and
// progressEvery how often a slow start is logged.
const (
	statePoll     = 100 * time.Millisecond
	progressEvery = 30 * time.Second
)

// unlock drives LND's wallet from whatever state it is in to an active
// RPC server: it creates the wallet if there is none, unlocks it if it is
// locked, and waits for RPC_ACTIVE. It talks to LND over the same
// loopback TLS connection any client would use; the WalletUnlocker and
// State services need no macaroon.
func (n *Node) unlock(ctx context.Context) error {
	creds, err := credentials.NewClientTLSFromFile(n.lnd.TLSCertPath, "")
	if err != nil {
		return fmt.Errorf("embedded lnd: reading its TLS cert: %w", err)
	}
	conn, err := grpc.NewClient(n.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fmt.Errorf("embedded lnd: dialing %s: %w", n.addr, err)
	}
	defer conn.Close()
	state, unlocker := lnrpc.NewStateClient(conn), lnrpc.NewWalletUnlockerClient(conn)

	acted := false // created or unlocked: only wait from then on
	var last lnrpc.WalletState = -1
	progress := time.NewTicker(progressEvery)
	defer progress.Stop()
	for {
		resp, err := state.GetState(ctx, &lnrpc.GetStateRequest{})
		switch {
		case err == nil:
			if resp.State != last {
				n.log.Debug("embedded lnd wallet state", "state", resp.State.String())
				last = resp.State
			}
			switch resp.State {
			case lnrpc.WalletState_NON_EXISTING:
				if !acted {
					if err := n.createWallet(ctx, unlocker); err != nil {
						return err
					}
					acted = true
				}
			case lnrpc.WalletState_LOCKED:
				if !acted {
					if err := n.unlockWallet(ctx, unlocker); err != nil {
						return err
					}
					acted = true
				}
			case lnrpc.WalletState_RPC_ACTIVE, lnrpc.WalletState_SERVER_ACTIVE:
				return nil
			}
		case status.Code(err) == codes.Unavailable || status.Code(err) == codes.Unimplemented:
			// Not serving yet, or between the unlocker and the main
			// services: try again.
		case ctx.Err() != nil:
		default:
			return fmt.Errorf("embedded lnd: wallet state: %w", err)
		}
		select {
		case <-n.done:
			return n.exitErr("while its wallet was being opened")
		case <-ctx.Done():
			return fmt.Errorf("embedded lnd: waiting for its wallet and RPC (last state %s): %w", last, ctx.Err())
		case <-progress.C:
			n.log.Info("still waiting for the embedded lnd (is its chain backend reachable?)", "state", last.String(), "log", n.LogPath())
		case <-time.After(statePoll):
		}
	}
}

// createWallet creates the wallet: from the user's seed file, or from a
// seed stored by an earlier start that crashed before creating it, or
// from a fresh seed, which is stored (0600) before the wallet is created
// so that no wallet ever exists whose seed was not written down first.
func (n *Node) createWallet(ctx context.Context, unlocker lnrpc.WalletUnlockerClient) error {
	pw, generated, err := walletPassword(n.cfg.WalletPasswordFile, n.cfg.WalletDir, true)
	if err != nil {
		return err
	}
	req := &lnrpc.InitWalletRequest{WalletPassword: pw}
	switch seed, err := n.seeds.Load(); {
	case n.cfg.SeedFile != "":
		if req.CipherSeedMnemonic, err = readMnemonic(n.cfg.SeedFile); err != nil {
			return err
		}
		req.RecoveryWindow = DefaultRecoveryWindow
		n.log.Info("creating the embedded lnd wallet from the given seed (restoring)", "seed_file", n.cfg.SeedFile, "recovery_window", req.RecoveryWindow)
	case err == nil:
		// A seed stored earlier: a start that crashed before the
		// wallet was created, or an lnd dir that was removed. The seed
		// may hold funds, so recover its addresses.
		req.CipherSeedMnemonic, req.RecoveryWindow = seed.Mnemonic, DefaultRecoveryWindow
		n.log.Info("creating the embedded lnd wallet from the stored seed", "seed_file", n.seeds.Path(), "recovery_window", req.RecoveryWindow)
	case errors.Is(err, ErrNoSeed):
		resp, err := unlocker.GenSeed(ctx, &lnrpc.GenSeedRequest{})
		if err != nil {
			return fmt.Errorf("embedded lnd: generating a seed: %w", err)
		}
		if err := n.seeds.create(resp.CipherSeedMnemonic, n.cfg.Network, time.Now()); err != nil {
			return err
		}
		req.CipherSeedMnemonic = resp.CipherSeedMnemonic
		n.log.Warn("WARNING: created a new LND wallet; its seed is stored UNENCRYPTED in the data dir (mode 0600). "+
			"Anyone who can read it can take the node's funds. Show it once with `l402cli node seed`, write it down, "+
			"keep it offline, then delete the file", "seed_file", n.seeds.Path(), "password_generated", generated)
	default:
		return err
	}
	if _, err := unlocker.InitWallet(ctx, req); err != nil {
		return fmt.Errorf("embedded lnd: creating the wallet: %w", err)
	}
	return nil
}

// unlockWallet unlocks an existing wallet with the stored or given
// password.
func (n *Node) unlockWallet(ctx context.Context, unlocker lnrpc.WalletUnlockerClient) error {
	pw, _, err := walletPassword(n.cfg.WalletPasswordFile, n.cfg.WalletDir, false)
	if err != nil {
		return err
	}
	if _, err := unlocker.UnlockWallet(ctx, &lnrpc.UnlockWalletRequest{WalletPassword: pw}); err != nil {
		if strings.Contains(err.Error(), "invalid passphrase") {
			return fmt.Errorf("embedded lnd: the wallet password does not unlock the wallet in %s: %w", n.cfg.LndDir, err)
		}
		return fmt.Errorf("embedded lnd: unlocking the wallet: %w", err)
	}
	n.log.Info("embedded lnd wallet unlocked")
	return nil
}
