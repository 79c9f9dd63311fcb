//go:build itest

package itest

import (
	"context"
	"testing"
	"time"

	"github.com/l402d/l402d/regtest"
	"github.com/lightningnetwork/lnd/lnrpc"
)

// TestNetworkPayments proves the bootstrap graph: every payment direction
// later tests rely on works, over the forced route.
func TestNetworkPayments(t *testing.T) {
	n := testNet(t)
	tests := []struct {
		name              string
		payer, payee, via string
	}{
		{"bob pays alice through carol", regtest.Bob, regtest.Alice, regtest.Carol},
		{"bob pays alice directly", regtest.Bob, regtest.Alice, ""},
		{"alice pays bob through carol", regtest.Alice, regtest.Bob, regtest.Carol},
		{"alice pays carol", regtest.Alice, regtest.Carol, ""},
		{"carol pays alice", regtest.Carol, regtest.Alice, ""},
		{"carol pays bob", regtest.Carol, regtest.Bob, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pay(t, n, tt.payer, tt.payee, tt.via, 2_000)
		})
	}
}

// TestNetworkRestarts checks that the network survives restarts: after
// each disruption bob pays alice through carol again, and the restarted
// node keeps its identity and addresses.
func TestNetworkRestarts(t *testing.T) {
	n := testNet(t)
	tests := []struct {
		name    string
		disrupt func(ctx context.Context, t *testing.T)
	}{
		{"before any restart", func(context.Context, *testing.T) {}},
		{"after restarting alice", restartLND(n, regtest.Alice)},
		{"after restarting carol", restartLND(n, regtest.Carol)},
		{"after restarting btcd and mining", func(ctx context.Context, t *testing.T) {
			t.Helper()
			restartAfter(t, n, regtest.BtcdNode)
			if err := n.RestartNode(ctx, regtest.BtcdNode); err != nil {
				t.Fatal(err)
			}
			if err := n.Mine(ctx, 1); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.disrupt(testCtx(t, 3*time.Minute), t)
			pay(t, n, regtest.Bob, regtest.Alice, regtest.Carol, 1_500)
		})
	}
}

// restartLND restarts an LND node and checks that its pubkey and RPC
// address did not change.
func restartLND(n *regtest.Network, name string) func(context.Context, *testing.T) {
	return func(ctx context.Context, t *testing.T) {
		t.Helper()
		before := *n.Node(name)
		restartAfter(t, n, name)
		if err := n.RestartNode(ctx, name); err != nil {
			t.Fatal(err)
		}
		c := lnd(t, n, name)
		info, err := c.Lightning.GetInfo(ctx, &lnrpc.GetInfoRequest{})
		if err != nil {
			t.Fatalf("%s: GetInfo after restart: %v", name, err)
		}
		if info.IdentityPubkey != before.Pubkey {
			t.Errorf("%s's pubkey changed across the restart: %s, was %s", name, info.IdentityPubkey, before.Pubkey)
		}
		if after := n.Node(name); after.RPCAddr != before.RPCAddr {
			t.Errorf("%s's RPC address changed across the restart: %s, was %s", name, after.RPCAddr, before.RPCAddr)
		}
	}
}
