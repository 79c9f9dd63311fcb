package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/l402d/l402d/invoices/embedded"
	"github.com/l402d/l402d/plugin"
)

func TestIntegratedFlags(t *testing.T) {
	dir := t.TempDir()
	nested := filepath.Join(dir, "nested.yaml")
	os.WriteFile(nested, []byte(`network: regtest
lnd-mode: integrated
lnd:
  integrated:
    rpclisten: 127.0.0.1:20019
    listen: [127.0.0.1:19735]
    alias: from-yaml
    bitcoin:
      node: btcd
    btcd:
      rpchost: 127.0.0.1:18334
      rpcuser: u
      rpcpass: p
      rpccert: /btcd/rpc.cert
    arg: ["--trickledelay=50", "--accept-keysend"]
`), 0o600)
	btcd := []string{"--lnd.integrated.bitcoin.node", "btcd", "--lnd.integrated.btcd.rpchost", "h:18334",
		"--lnd.integrated.btcd.rpcuser", "u", "--lnd.integrated.btcd.rpcpass", "p"}

	tests := []struct {
		name string
		env  map[string]string
		args []string
		want func(plugin.Config) bool
	}{
		{"remote by default", nil, nil, func(c plugin.Config) bool { return !c.Integrated.Enabled }},
		{"integrated, neutrino by default", nil, []string{"--lnd-mode", "integrated"}, func(c plugin.Config) bool {
			n := c.Integrated.Node
			return c.Integrated.Enabled && n.Chain.Node == embedded.NodeNeutrino && n.RPCListen == embedded.DefaultRPCListen &&
				n.StopTimeout == embedded.DefaultStopTimeout && !n.LogToStderr && c.LND.Network == "mainnet"
		}},
		{"flags", nil, append([]string{"--lnd-mode", "integrated", "--network", "regtest", "--log.level", "debug",
			"--lnd.integrated.listen", "127.0.0.1:1", "--lnd.integrated.listen", "127.0.0.1:2", "--lnd.integrated.alias", "a",
			"--lnd.integrated.arg=--trickledelay=50", "--lnd.integrated.arg", "--externalip=203.0.113.7",
			"--lnd.integrated.wallet-password-file", "/pw", "--lnd.integrated.stop-timeout", "5s"}, btcd...),
			func(c plugin.Config) bool {
				n := c.Integrated.Node
				return c.Integrated.Enabled && n.Chain.Node == "btcd" && n.Chain.Btcd.RPCHost == "h:18334" && n.Chain.Btcd.RPCPass == "p" &&
					slices.Equal(n.Listen, []string{"127.0.0.1:1", "127.0.0.1:2"}) && n.Alias == "a" &&
					slices.Equal(n.ExtraArgs, []string{"--trickledelay=50", "--externalip=203.0.113.7"}) &&
					n.WalletPasswordFile == "/pw" && n.StopTimeout == 5*time.Second && n.LogToStderr
			}},
		{"env", map[string]string{
			"L402D_LND_MODE": "integrated", "L402D_NETWORK": "signet",
			"L402D_LND_INTEGRATED_BITCOIN_NODE": "bitcoind", "L402D_LND_INTEGRATED_BITCOIND_RPCHOST": "b:38332",
			"L402D_LND_INTEGRATED_BITCOIND_RPCCOOKIE": "/c", "L402D_LND_INTEGRATED_BITCOIND_RPCPOLLING": "true",
			"L402D_LND_INTEGRATED_NEUTRINO_ADDPEER": "x:1,y:2", "L402D_LND_INTEGRATED_SEED_FILE": "/seed",
		}, nil, func(c plugin.Config) bool {
			b := c.Integrated.Node.Chain.Bitcoind
			return c.Integrated.Enabled && c.LND.Network == "signet" && c.Integrated.Node.Chain.Node == "bitcoind" &&
				b.RPCHost == "b:38332" && b.RPCCookie == "/c" && b.RPCPolling && c.Integrated.Node.SeedFile == "/seed" &&
				slices.Equal(c.Integrated.Node.Chain.Neutrino.AddPeers, []string{"x:1", "y:2"})
		}},
		{"config file, nested keys", nil, []string{"--config", nested}, func(c plugin.Config) bool {
			n := c.Integrated.Node
			return c.Integrated.Enabled && c.LND.Network == "regtest" && n.RPCListen == "127.0.0.1:20019" && n.Alias == "from-yaml" &&
				slices.Equal(n.Listen, []string{"127.0.0.1:19735"}) && n.Chain.Btcd.RPCCert == "/btcd/rpc.cert" &&
				slices.Equal(n.ExtraArgs, []string{"--trickledelay=50", "--accept-keysend"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse(t, tt.env, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(c) {
				t.Fatalf("config %+v", c.Integrated)
			}
		})
	}
}

func TestIntegratedFlagErrors(t *testing.T) {
	btcd := []string{"--lnd-mode", "integrated", "--network", "regtest", "--lnd.integrated.bitcoin.node", "btcd",
		"--lnd.integrated.btcd.rpchost", "h:18334", "--lnd.integrated.btcd.rpcuser", "u", "--lnd.integrated.btcd.rpcpass", "p"}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"bad mode", []string{"--lnd-mode", "embedded"}, "want remote or integrated"},
		{"btcd without password", []string{"--lnd-mode", "integrated", "--lnd.integrated.bitcoin.node", "btcd", "--lnd.integrated.btcd.rpchost", "h"}, "btcd needs"},
		{"unknown backend", []string{"--lnd-mode", "integrated", "--lnd.integrated.bitcoin.node", "electrum"}, "want btcd, bitcoind or neutrino"},
		{"neutrino on regtest without a peer", []string{"--lnd-mode", "integrated", "--network", "regtest"}, "neutrino.connect"},
		{"reserved raw arg", append(slices.Clone(btcd), "--lnd.integrated.arg=--lnddir=/x"), "--lnddir is set by l402d"},
		{"unknown raw arg", append(slices.Clone(btcd), "--lnd.integrated.arg=--frobnicate"), "unknown flag"},
		{"rpclisten without host", append(slices.Clone(btcd), "--lnd.integrated.rpclisten", ":10019"), "name the interface"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, nil, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}
