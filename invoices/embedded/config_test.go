package embedded

import (
	"slices"
	"strings"
	"testing"
)

// base is a valid btcd regtest config for the tests to vary.
func base(t *testing.T) Config {
	t.Helper()
	return Config{
		LndDir: "/data/lnd", WalletDir: "/data", Network: "regtest",
		Chain: Chain{Node: NodeBtcd, Btcd: Btcd{RPCHost: "127.0.0.1:18334", RPCUser: "u", RPCPass: "p", RPCCert: "/btcd/rpc.cert"}},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr string // empty: valid
	}{
		{"btcd", func(*Config) {}, ""},
		{"no lnd dir", func(c *Config) { c.LndDir = "" }, "lnd dir is required"},
		{"no wallet dir", func(c *Config) { c.WalletDir = "" }, "wallet dir is required"},
		{"unknown network", func(c *Config) { c.Network = "bitcoin-cash" }, "unknown network"},
		{"rpclisten without port", func(c *Config) { c.RPCListen = "127.0.0.1" }, "want host:port"},
		{"rpclisten without host", func(c *Config) { c.RPCListen = ":10019" }, "name the interface"},
		{"rpclisten wildcard", func(c *Config) { c.RPCListen = "0.0.0.0:10019" }, ""},
		{"bad p2p listen", func(c *Config) { c.Listen = []string{"nope"} }, "listen \"nope\""},
		{"p2p port only", func(c *Config) { c.Listen = []string{":9735"} }, ""},
		{"btcd without user", func(c *Config) { c.Chain.Btcd.RPCUser = "" }, "btcd needs"},
		{"unknown backend", func(c *Config) { c.Chain.Node = "electrum" }, "want btcd, bitcoind or neutrino"},
		{"bitcoind with zmq", func(c *Config) {
			c.Chain = Chain{Node: NodeBitcoind, Bitcoind: Bitcoind{RPCHost: "h", RPCUser: "u", RPCPass: "p", ZMQPubRawBlock: "tcp://h:28332", ZMQPubRawTx: "tcp://h:28333"}}
		}, ""},
		{"bitcoind with cookie and polling", func(c *Config) {
			c.Chain = Chain{Node: NodeBitcoind, Bitcoind: Bitcoind{RPCHost: "h", RPCCookie: "/b/.cookie", RPCPolling: true}}
		}, ""},
		{"bitcoind without auth", func(c *Config) {
			c.Chain = Chain{Node: NodeBitcoind, Bitcoind: Bitcoind{RPCHost: "h", RPCPolling: true}}
		}, "rpcuser and rpcpass, or rpccookie"},
		{"bitcoind without zmq", func(c *Config) {
			c.Chain = Chain{Node: NodeBitcoind, Bitcoind: Bitcoind{RPCHost: "h", RPCUser: "u", RPCPass: "p"}}
		}, "zmqpubrawblock"},
		{"neutrino default on mainnet", func(c *Config) { c.Network, c.Chain = "mainnet", Chain{} }, ""},
		{"neutrino on regtest without peers", func(c *Config) { c.Chain = Chain{Node: NodeNeutrino} }, "no DNS seeds"},
		{"neutrino on regtest with a peer", func(c *Config) {
			c.Chain = Chain{Node: NodeNeutrino, Neutrino: Neutrino{Connect: []string{"127.0.0.1:18444"}}}
		}, ""},
		{"extra arg", func(c *Config) { c.ExtraArgs = []string{"--trickledelay=50", "--accept-keysend"} }, ""},
		{"extra arg, separate value", func(c *Config) { c.ExtraArgs = []string{"--externalip", "203.0.113.7"} }, ""},
		{"unknown extra arg", func(c *Config) { c.ExtraArgs = []string{"--no-such-flag"} }, "unknown flag"},
		{"positional extra arg", func(c *Config) { c.ExtraArgs = []string{"trickledelay=50"} }, "is not a flag"},
		{"reserved: lnddir", func(c *Config) { c.ExtraArgs = []string{"--lnddir=/elsewhere"} }, "--lnddir is set by l402d"},
		{"reserved: rpclisten", func(c *Config) { c.ExtraArgs = []string{"--rpclisten", "0.0.0.0:10009"} }, "--rpclisten is set by l402d"},
		{"reserved: network", func(c *Config) { c.ExtraArgs = []string{"--bitcoin.mainnet"} }, "--bitcoin.mainnet is set by l402d"},
		{"reserved: noseedbackup", func(c *Config) { c.ExtraArgs = []string{"--noseedbackup"} }, "--noseedbackup is set by l402d"},
		{"reserved: no-macaroons", func(c *Config) { c.ExtraArgs = []string{"--no-macaroons"} }, "--no-macaroons"},
		{"debuglevel show", func(c *Config) { c.ExtraArgs = []string{"--debuglevel=show"} }, "exit the process"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base(t)
			tt.edit(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Validate: nil, want an error mentioning %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("Validate: %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestLndArgs(t *testing.T) {
	tests := []struct {
		name       string
		edit       func(*Config)
		want, not  []string
		wantSuffix []string // ExtraArgs come last, in order
	}{
		{
			name: "btcd regtest",
			edit: func(*Config) {},
			want: []string{"--lnddir=/data/lnd", "--bitcoin.regtest", "--bitcoin.node=btcd", "--rpclisten=" + DefaultRPCListen, "--norest",
				"--btcd.rpchost=127.0.0.1:18334", "--btcd.rpcuser=u", "--btcd.rpcpass=p", "--btcd.rpccert=/btcd/rpc.cert"},
			not: []string{"--alias=", "--listen="},
		},
		{
			name: "listen, alias, rest asked for",
			edit: func(c *Config) {
				c.Network, c.Alias, c.Listen = "testnet", "my node", []string{"0.0.0.0:9735", "[::]:9735"}
				c.RPCListen = "127.0.0.1:20019"
				c.ExtraArgs = []string{"--restlisten=127.0.0.1:8081", "--trickledelay=50"}
			},
			want:       []string{"--bitcoin.testnet", "--alias=my node", "--listen=0.0.0.0:9735", "--listen=[::]:9735", "--rpclisten=127.0.0.1:20019"},
			not:        []string{"--norest", "--bitcoin.regtest"},
			wantSuffix: []string{"--restlisten=127.0.0.1:8081", "--trickledelay=50"},
		},
		{
			name: "bitcoind",
			edit: func(c *Config) {
				c.Network = "signet"
				c.Chain = Chain{Node: NodeBitcoind, Bitcoind: Bitcoind{RPCHost: "h:38332", RPCCookie: "/b/.cookie", RPCPolling: true}}
			},
			want: []string{"--bitcoin.signet", "--bitcoin.node=bitcoind", "--bitcoind.rpchost=h:38332", "--bitcoind.rpccookie=/b/.cookie", "--bitcoind.rpcpolling"},
			not:  []string{"--bitcoind.rpcuser=", "--bitcoind.zmqpubrawblock=", "--btcd.rpchost="},
		},
		{
			name: "neutrino",
			edit: func(c *Config) {
				c.Network = "mainnet"
				c.Chain = Chain{Neutrino: Neutrino{AddPeers: []string{"a:8333", "b:8333"}}}
			},
			want: []string{"--bitcoin.mainnet", "--bitcoin.node=neutrino", "--neutrino.addpeer=a:8333", "--neutrino.addpeer=b:8333"},
			not:  []string{"--neutrino.connect="},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base(t)
			tt.edit(&c)
			args, err := c.lndArgs()
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !slices.Contains(args, w) {
					t.Errorf("args lack %q: %q", w, args)
				}
			}
			for _, n := range tt.not {
				for _, a := range args {
					if strings.HasPrefix(a, n) {
						t.Errorf("args have %q: %q", a, args)
					}
				}
			}
			if len(tt.wantSuffix) > 0 && !slices.Equal(args[len(args)-len(tt.wantSuffix):], tt.wantSuffix) {
				t.Errorf("args do not end with %q: %q", tt.wantSuffix, args)
			}
		})
	}
}

// TestLndConfig checks that the flags land in lnd's own config struct.
func TestLndConfig(t *testing.T) {
	c := base(t)
	c.Alias = "l402d-test"
	c.Listen = []string{"127.0.0.1:19735"}
	c.ExtraArgs = []string{"--trickledelay=50", "--bitcoin.defaultchanconfs=1"}
	cfg, p, err := c.lndConfig()
	if err != nil {
		t.Fatal(err)
	}
	if p == nil {
		t.Fatal("no parser for ValidateConfig")
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"lnddir", cfg.LndDir, "/data/lnd"},
		{"regtest", cfg.Bitcoin.RegTest, true},
		{"mainnet", cfg.Bitcoin.MainNet, false},
		{"node", cfg.Bitcoin.Node, "btcd"},
		{"rpclisten", strings.Join(cfg.RawRPCListeners, ","), DefaultRPCListen},
		{"listen", strings.Join(cfg.RawListeners, ","), "127.0.0.1:19735"},
		{"alias", cfg.Alias, "l402d-test"},
		{"norest", cfg.DisableRest, true},
		{"btcd host", cfg.BtcdMode.RPCHost, "127.0.0.1:18334"},
		{"btcd cert", cfg.BtcdMode.RPCCert, "/btcd/rpc.cert"},
		{"trickle delay", cfg.TrickleDelay, 50},
		{"chan confs", cfg.Bitcoin.DefaultNumChanConfs, 1},
		{"seed backup on", cfg.NoSeedBackup, false},
		{"macaroons on", cfg.NoMacaroons, false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestDialAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1:10019", "127.0.0.1:10019"},
		{"0.0.0.0:10019", "127.0.0.1:10019"},
		{"[::]:10019", "[::1]:10019"},
		{"10.1.2.3:10019", "10.1.2.3:10019"},
		{"localhost:10019", "localhost:10019"},
	}
	for _, tt := range tests {
		if got := dialAddr(tt.in); got != tt.want {
			t.Errorf("dialAddr(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMissingTags(t *testing.T) {
	want := []string{"signrpc", "walletrpc", "chainrpc", "invoicesrpc"}
	tests := []struct {
		have, missing []string
	}{
		{nil, want},
		{[]string{"signrpc", "walletrpc", "chainrpc", "invoicesrpc", "routerrpc"}, nil},
		{[]string{"routerrpc", "walletrpc"}, []string{"signrpc", "chainrpc", "invoicesrpc"}},
	}
	for _, tt := range tests {
		if got := missingTags(tt.have, want); !slices.Equal(got, tt.missing) {
			t.Errorf("missingTags(%q) = %q, want %q", tt.have, got, tt.missing)
		}
	}
	if err := buildTagsError([]string{"signrpc"}); !strings.Contains(err.Error(), "go build -tags '"+BuildTags+"'") {
		t.Errorf("the error does not say how to build: %v", err)
	}
}
