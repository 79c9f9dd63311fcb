package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"

	"github.com/l402d/l402d/invoices/embedded"
	"github.com/l402d/l402d/plugin"
)

// LND modes.
const (
	lndModeRemote     = "remote"
	lndModeIntegrated = "integrated"
)

// integratedFlags are the flags of the embedded LND. Each is also an
// L402D_LND_INTEGRATED_* variable and a key of the --config file (e.g.
// lnd.integrated.btcd.rpchost, or nested under lnd: integrated: btcd:).
func integratedFlags() []cli.Flag {
	str := func(name, value, usage string) cli.Flag {
		return altsrc.NewStringFlag(&cli.StringFlag{Name: "lnd.integrated." + name, EnvVars: []string{integratedEnv(name)}, Value: value, Usage: usage})
	}
	list := func(name, usage string) cli.Flag {
		return altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "lnd.integrated." + name, EnvVars: []string{integratedEnv(name)}, Usage: usage})
	}
	return []cli.Flag{
		altsrc.NewStringFlag(&cli.StringFlag{Name: "lnd-mode", EnvVars: []string{"L402D_LND_MODE"}, Value: lndModeRemote,
			Usage: "remote: use the LND at --lnd.host; integrated: run LND inside l402d, with its data in <datadir>/lnd and the --lnd.integrated.* flags " +
				"(the remote --lnd.host, --lnd.dir, --lnd.tlscertpath and --lnd.macaroon* flags are then ignored; --network applies to both)"}),
		str("rpclisten", embedded.DefaultRPCListen, "integrated: the embedded LND's gRPC `HOST:PORT` (for l402d and lncli)"),
		list("listen", "integrated: the embedded LND's P2P `HOST:PORT` (repeatable; default LND's :9735)"),
		str("alias", "", "integrated: the node's alias"),
		str("bitcoin.node", embedded.NodeNeutrino, "integrated: chain backend: btcd, bitcoind or neutrino"),
		str("btcd.rpchost", "", "integrated: btcd's RPC `HOST:PORT`"),
		str("btcd.rpcuser", "", "integrated: btcd's RPC user"),
		str("btcd.rpcpass", "", "integrated: btcd's RPC password"),
		str("btcd.rpccert", "", "integrated: btcd's RPC certificate `FILE`"),
		str("bitcoind.rpchost", "", "integrated: bitcoind's RPC `HOST:PORT`"),
		str("bitcoind.rpcuser", "", "integrated: bitcoind's RPC user"),
		str("bitcoind.rpcpass", "", "integrated: bitcoind's RPC password"),
		str("bitcoind.rpccookie", "", "integrated: bitcoind's RPC cookie `FILE` (instead of user and password)"),
		str("bitcoind.zmqpubrawblock", "", "integrated: bitcoind's ZMQ raw block `ADDR` (tcp://host:port)"),
		str("bitcoind.zmqpubrawtx", "", "integrated: bitcoind's ZMQ raw transaction `ADDR`"),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "lnd.integrated.bitcoind.rpcpolling", EnvVars: []string{integratedEnv("bitcoind.rpcpolling")},
			Usage: "integrated: poll bitcoind's RPC instead of using ZMQ"}),
		list("neutrino.connect", "integrated: neutrino connects only to this `PEER` (repeatable)"),
		list("neutrino.addpeer", "integrated: neutrino also connects to this `PEER` (repeatable)"),
		str("wallet-password-file", "", "integrated: `FILE` with the wallet password (default: generated into <datadir>/"+embedded.PasswordFileName+", 0600)"),
		str("seed-file", "", "integrated: `FILE` with a 24-word aezeed seed to create the wallet from (restore) if none exists (default: a new seed, stored in <datadir>/"+embedded.SeedFileName+", 0600, shown once by l402cli node seed)"),
		list("arg", "integrated: a raw lnd flag for anything else, e.g. --lnd.integrated.arg=--externalip=203.0.113.7 (repeatable; flags l402d sets itself are refused)"),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "lnd.integrated.stop-timeout", EnvVars: []string{integratedEnv("stop-timeout")}, Value: embedded.DefaultStopTimeout,
			Usage: "integrated: how long to wait for LND to shut down after l402d has"}),
	}
}

// integratedEnv is the environment variable of lnd.integrated.<name>.
func integratedEnv(name string) string {
	return "L402D_LND_INTEGRATED_" + strings.NewReplacer(".", "_", "-", "_").Replace(strings.ToUpper(name))
}

// applyIntegratedFlags fills cfg.Integrated.
func applyIntegratedFlags(c *cli.Context, cfg *plugin.Config) error {
	switch mode := c.String("lnd-mode"); mode {
	case lndModeRemote:
		return nil
	case lndModeIntegrated:
	default:
		return fmt.Errorf("--lnd-mode %q: want %s or %s", mode, lndModeRemote, lndModeIntegrated)
	}
	s := func(name string) string { return c.String("lnd.integrated." + name) }
	l := func(name string) []string { return c.StringSlice("lnd.integrated." + name) }
	ic := plugin.IntegratedConfig{
		Enabled: true,
		Node: embedded.Config{
			RPCListen: s("rpclisten"),
			Listen:    l("listen"),
			Alias:     s("alias"),
			Chain: embedded.Chain{
				Node: s("bitcoin.node"),
				Btcd: embedded.Btcd{RPCHost: s("btcd.rpchost"), RPCUser: s("btcd.rpcuser"), RPCPass: s("btcd.rpcpass"), RPCCert: s("btcd.rpccert")},
				Bitcoind: embedded.Bitcoind{
					RPCHost: s("bitcoind.rpchost"), RPCUser: s("bitcoind.rpcuser"), RPCPass: s("bitcoind.rpcpass"), RPCCookie: s("bitcoind.rpccookie"),
					ZMQPubRawBlock: s("bitcoind.zmqpubrawblock"), ZMQPubRawTx: s("bitcoind.zmqpubrawtx"), RPCPolling: c.Bool("lnd.integrated.bitcoind.rpcpolling"),
				},
				Neutrino: embedded.Neutrino{Connect: l("neutrino.connect"), AddPeers: l("neutrino.addpeer")},
			},
			WalletPasswordFile: s("wallet-password-file"),
			SeedFile:           s("seed-file"),
			ExtraArgs:          l("arg"),
			LogToStderr:        strings.EqualFold(c.String("log.level"), "debug"),
			StopTimeout:        c.Duration("lnd.integrated.stop-timeout"),
		},
	}
	if err := ic.Validate(cfg.DataDir, cfg.LND.Network); err != nil {
		return fmt.Errorf("--lnd-mode=integrated: %w", err)
	}
	cfg.Integrated = ic
	return nil
}
