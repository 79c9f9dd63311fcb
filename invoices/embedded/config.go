package embedded

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/jessevdk/go-flags"
	"github.com/lightningnetwork/lnd"
)

// Defaults.
const (
	// DefaultRPCListen is the embedded LND's gRPC address: loopback, and
	// not 10009, so that it does not clash with a standalone LND.
	DefaultRPCListen = "127.0.0.1:10019"
	// DefaultStartTimeout bounds the wait for LND's RPC to become active
	// (wallet created or unlocked, chain backend reached).
	DefaultStartTimeout = 5 * time.Minute
	// DefaultStopTimeout bounds the wait for lnd.Main to return after a
	// shutdown request.
	DefaultStopTimeout = 30 * time.Second
	// DefaultRecoveryWindow is the address look-ahead used when a wallet
	// is created from a seed that may already hold funds.
	DefaultRecoveryWindow = 2500

	// PasswordFileName and SeedFileName are the generated secrets in
	// Config.WalletDir.
	PasswordFileName = "lnd-wallet.password"
	SeedFileName     = "lnd-seed.json"
)

// Chain backends.
const (
	NodeBtcd     = "btcd"
	NodeBitcoind = "bitcoind"
	NodeNeutrino = "neutrino"
)

// Config is what l402d tells the embedded LND. Everything else is LND's
// default or comes from ExtraArgs.
type Config struct {
	// LndDir is LND's directory (l402d uses <datadir>/lnd).
	LndDir string
	// WalletDir holds the generated wallet password and seed files
	// (l402d uses its data dir).
	WalletDir string
	// Network is "mainnet", "testnet", "testnet4", "signet", "regtest"
	// or "simnet".
	Network string
	// RPCListen is LND's gRPC host:port; default DefaultRPCListen. l402d
	// and lncli reach the node here.
	RPCListen string
	// Listen are LND's P2P addresses; empty means LND's default (:9735).
	Listen []string
	// Alias is the node's alias; empty means LND's default.
	Alias string
	// Chain is the chain backend.
	Chain Chain

	// WalletPasswordFile, if set, holds the wallet password (the user's).
	// If empty, a random password is generated into
	// WalletDir/PasswordFileName (0600) when the wallet is created.
	WalletPasswordFile string
	// SeedFile, if set, holds a 24-word aezeed mnemonic to create the
	// wallet from (a restore) when no wallet exists yet. If empty, LND
	// generates a seed, stored in WalletDir/SeedFileName (0600).
	SeedFile string

	// ExtraArgs are raw lnd flags ("--trickledelay=50") applied after
	// the ones above, for anything this Config does not name. Flags that
	// the embedding relies on are refused (see reservedOptions).
	ExtraArgs []string

	// LogToStderr also writes LND's log to standard error; LND always
	// logs to <LndDir>/logs/bitcoin/<network>/lnd.log.
	LogToStderr bool
	// StartTimeout and StopTimeout; zero means the defaults.
	StartTimeout time.Duration
	StopTimeout  time.Duration
	Logger       *slog.Logger
}

// Chain selects and configures the chain backend.
type Chain struct {
	// Node is NodeBtcd, NodeBitcoind or NodeNeutrino (the default).
	Node     string
	Btcd     Btcd
	Bitcoind Bitcoind
	Neutrino Neutrino
}

// Btcd is a btcd RPC server.
type Btcd struct {
	RPCHost, RPCUser, RPCPass string
	// RPCCert is btcd's RPC certificate file.
	RPCCert string
}

// Bitcoind is a bitcoind RPC server with either ZMQ or RPC polling.
type Bitcoind struct {
	RPCHost, RPCUser, RPCPass string
	// RPCCookie is bitcoind's cookie file, instead of user and password.
	RPCCookie                   string
	ZMQPubRawBlock, ZMQPubRawTx string
	// RPCPolling polls the RPC instead of using ZMQ.
	RPCPolling bool
}

// Neutrino is the light client's peers; with none, LND finds peers
// through DNS seeds (mainnet, testnet, signet).
type Neutrino struct {
	Connect  []string
	AddPeers []string
}

// networkFlags maps l402d's network names to lnd's flags.
var networkFlags = map[string]string{
	"mainnet":  "bitcoin.mainnet",
	"testnet":  "bitcoin.testnet",
	"testnet4": "bitcoin.testnet4",
	"signet":   "bitcoin.signet",
	"regtest":  "bitcoin.regtest",
	"simnet":   "bitcoin.simnet",
}

// reservedOptions are lnd options that ExtraArgs may not set: the
// embedding sets them itself (paths, network, chain backend, RPC
// listener) or relies on their defaults (macaroons, TLS, the seed-based
// wallet flow).
var reservedOptions = []string{
	"lnddir", "configfile", "datadir", "logdir",
	"tlscertpath", "tlskeypath",
	"no-macaroons", "adminmacaroonpath", "readonlymacaroonpath", "invoicemacaroonpath",
	"noseedbackup", "wallet-unlock-password-file", "wallet-unlock-allow-create",
	"rpclisten",
	"bitcoin.mainnet", "bitcoin.testnet", "bitcoin.testnet4", "bitcoin.signet", "bitcoin.regtest", "bitcoin.simnet",
	"bitcoin.node",
	"remotesigner.enable",
}

// withDefaults fills the zero values.
func (c Config) withDefaults() Config {
	if c.RPCListen == "" {
		c.RPCListen = DefaultRPCListen
	}
	if c.Chain.Node == "" {
		c.Chain.Node = NodeNeutrino
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate checks c (after defaults) without touching the disk.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.LndDir == "" {
		return errors.New("embedded lnd: the lnd dir is required")
	}
	if c.WalletDir == "" {
		return errors.New("embedded lnd: the wallet dir is required")
	}
	if _, ok := networkFlags[c.Network]; !ok {
		return fmt.Errorf("embedded lnd: unknown network %q (want mainnet, testnet, testnet4, signet, regtest or simnet)", c.Network)
	}
	host, port, err := net.SplitHostPort(c.RPCListen)
	if err != nil || port == "" {
		return fmt.Errorf("embedded lnd: rpclisten %q: want host:port, e.g. %s", c.RPCListen, DefaultRPCListen)
	}
	if host == "" {
		return fmt.Errorf("embedded lnd: rpclisten %q: name the interface, e.g. 127.0.0.1:%s (the gRPC port serves the admin macaroon's holder)", c.RPCListen, port)
	}
	for _, l := range c.Listen {
		if _, _, err := net.SplitHostPort(l); err != nil {
			return fmt.Errorf("embedded lnd: listen %q: want host:port or :port: %w", l, err)
		}
	}
	switch ch := c.Chain; ch.Node {
	case NodeBtcd:
		if ch.Btcd.RPCHost == "" || ch.Btcd.RPCUser == "" || ch.Btcd.RPCPass == "" {
			return errors.New("embedded lnd: btcd needs rpchost, rpcuser and rpcpass")
		}
	case NodeBitcoind:
		b := ch.Bitcoind
		if b.RPCHost == "" {
			return errors.New("embedded lnd: bitcoind needs rpchost")
		}
		if b.RPCCookie == "" && (b.RPCUser == "" || b.RPCPass == "") {
			return errors.New("embedded lnd: bitcoind needs rpcuser and rpcpass, or rpccookie")
		}
		if !b.RPCPolling && (b.ZMQPubRawBlock == "" || b.ZMQPubRawTx == "") {
			return errors.New("embedded lnd: bitcoind needs zmqpubrawblock and zmqpubrawtx, or rpcpolling")
		}
	case NodeNeutrino:
		if (c.Network == "regtest" || c.Network == "simnet") && len(ch.Neutrino.Connect)+len(ch.Neutrino.AddPeers) == 0 {
			return fmt.Errorf("embedded lnd: neutrino on %s has no DNS seeds: give it a peer (neutrino.connect)", c.Network)
		}
	default:
		return fmt.Errorf("embedded lnd: bitcoin.node %q: want btcd, bitcoind or neutrino", ch.Node)
	}
	if _, err := c.lndArgs(); err != nil {
		return err
	}
	return nil
}

// lndArgs turns c into lnd command-line flags, ExtraArgs last. It checks
// ExtraArgs against lnd's flag set and the reserved options.
func (c Config) lndArgs() ([]string, error) {
	c = c.withDefaults()
	extra, err := parseExtraArgs(c.ExtraArgs)
	if err != nil {
		return nil, err
	}
	args := []string{
		"--lnddir=" + c.LndDir,
		"--" + networkFlags[c.Network],
		"--bitcoin.node=" + c.Chain.Node,
		"--rpclisten=" + c.RPCListen,
	}
	for _, l := range c.Listen {
		args = append(args, "--listen="+l)
	}
	if c.Alias != "" {
		args = append(args, "--alias="+c.Alias)
	}
	// REST is lnd's gRPC gateway on another port; l402d does not need
	// it, so it stays off unless asked for.
	if !extra.isSet("restlisten") {
		args = append(args, "--norest")
	}
	opt := func(name, v string) {
		if v != "" {
			args = append(args, "--"+name+"="+v)
		}
	}
	switch ch := c.Chain; ch.Node {
	case NodeBtcd:
		opt("btcd.rpchost", ch.Btcd.RPCHost)
		opt("btcd.rpcuser", ch.Btcd.RPCUser)
		opt("btcd.rpcpass", ch.Btcd.RPCPass)
		opt("btcd.rpccert", ch.Btcd.RPCCert)
	case NodeBitcoind:
		b := ch.Bitcoind
		opt("bitcoind.rpchost", b.RPCHost)
		opt("bitcoind.rpcuser", b.RPCUser)
		opt("bitcoind.rpcpass", b.RPCPass)
		opt("bitcoind.rpccookie", b.RPCCookie)
		opt("bitcoind.zmqpubrawblock", b.ZMQPubRawBlock)
		opt("bitcoind.zmqpubrawtx", b.ZMQPubRawTx)
		if b.RPCPolling {
			args = append(args, "--bitcoind.rpcpolling")
		}
	case NodeNeutrino:
		for _, p := range ch.Neutrino.Connect {
			opt("neutrino.connect", p)
		}
		for _, p := range ch.Neutrino.AddPeers {
			opt("neutrino.addpeer", p)
		}
	}
	return append(args, c.ExtraArgs...), nil
}

// parsedArgs is a parser that has parsed some flags into a scratch
// config.
type parsedArgs struct{ p *flags.Parser }

func (a parsedArgs) isSet(long string) bool {
	o := a.p.FindOptionByLongName(long)
	return o != nil && o.IsSet()
}

// parseExtraArgs checks raw lnd flags: they must be lnd's, take no
// positional arguments and leave the reserved options alone.
func parseExtraArgs(extra []string) (parsedArgs, error) {
	scratch := lnd.DefaultConfig()
	p := flags.NewParser(&scratch, flags.None)
	rest, err := p.ParseArgs(extra)
	if err != nil {
		return parsedArgs{}, fmt.Errorf("embedded lnd: extra lnd arguments: %w", err)
	}
	if len(rest) > 0 {
		return parsedArgs{}, fmt.Errorf("embedded lnd: extra lnd arguments: %q is not a flag (write --name=value)", rest[0])
	}
	a := parsedArgs{p}
	for _, name := range reservedOptions {
		if a.isSet(name) {
			return parsedArgs{}, fmt.Errorf("embedded lnd: extra lnd argument --%s is set by l402d itself; use l402d's own flag, if there is one", name)
		}
	}
	if scratch.DebugLevel == "show" {
		return parsedArgs{}, errors.New("embedded lnd: --debuglevel=show would exit the process")
	}
	return a, nil
}

// lndConfig parses c's flags over lnd's defaults. The parser is returned
// for lnd.ValidateConfig, which asks it which options were set.
func (c Config) lndConfig() (*lnd.Config, *flags.Parser, error) {
	args, err := c.lndArgs()
	if err != nil {
		return nil, nil, err
	}
	cfg := lnd.DefaultConfig()
	p := flags.NewParser(&cfg, flags.None)
	rest, err := p.ParseArgs(args)
	if err != nil {
		return nil, nil, fmt.Errorf("embedded lnd: %w", err)
	}
	if len(rest) > 0 {
		return nil, nil, fmt.Errorf("embedded lnd: unexpected argument %q", rest[0])
	}
	return &cfg, p, nil
}

// dialAddr is the address to reach a listener on: a wildcard host is
// reached over loopback.
func dialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if ip.To4() == nil {
			host = "::1"
		} else {
			host = "127.0.0.1"
		}
	}
	return net.JoinHostPort(host, port)
}

// missingTags returns the lnd sub-server build tags in want that the
// running binary was not built with.
func missingTags(have, want []string) []string {
	var out []string
	for _, t := range want {
		if !slices.Contains(have, t) {
			out = append(out, t)
		}
	}
	return out
}

// BuildTags are the tags l402d must be built with for integrated mode:
// lndclient needs the sub-servers they compile into lnd.
const BuildTags = "signrpc walletrpc chainrpc invoicesrpc routerrpc peersrpc"

// buildTagsError explains a build without the sub-server tags.
func buildTagsError(missing []string) error {
	return fmt.Errorf("embedded lnd: this l402d was built without lnd's sub-server build tags (missing: %s); "+
		"integrated mode needs them: go build -tags '%s' ./cmd/l402d", strings.Join(missing, " "), BuildTags)
}
