package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/btcsuite/btclog/v2"
	"github.com/jessevdk/go-flags"
	"github.com/lightninglabs/lndclient"
	"github.com/lightningnetwork/lnd"
	"github.com/lightningnetwork/lnd/build"
	"github.com/lightningnetwork/lnd/signal"

	"github.com/l402d/l402d/invoices"
)

// Node is a running embedded LND.
type Node struct {
	cfg   Config
	log   *slog.Logger
	lnd   *lnd.Config // validated
	ic    signal.Interceptor
	addr  string // where to dial the gRPC server
	seeds *SeedStore

	done    chan struct{} // closed when lnd.Main has returned
	mainErr error         // lnd.Main's result; read after done

	stopOnce sync.Once
	stopErr  error
}

// Start runs LND inside this process and returns once its wallet is
// unlocked (created first if there is none) and its RPC server is
// active: the node answers GetInfo, though it may still be syncing to the
// chain. If ctx ends first, or anything fails, LND is stopped again
// before Start returns.
//
// Only one Node may run per process, and only once (see the package doc).
func Start(ctx context.Context, cfg Config) (_ *Node, err error) {
	cfg = cfg.withDefaults()
	lcfg, parser, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	ic, vcfg, err := interceptAndValidate(lcfg, parser)
	if err != nil {
		return nil, err
	}
	// l402d binds the gRPC listener itself, so a port in use fails here
	// with a clear message, and so it learns when LND serves on it.
	lis, err := net.Listen("tcp", cfg.RPCListen)
	if err != nil {
		ic.RequestShutdown()
		return nil, fmt.Errorf("embedded lnd: rpclisten %s: %w (set --lnd.integrated.rpclisten)", cfg.RPCListen, err)
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger, lnd: vcfg, ic: ic,
		addr:  dialAddr(lis.Addr().String()),
		seeds: NewSeedStore(cfg.WalletDir),
		done:  make(chan struct{}),
	}
	n.log.Info("starting embedded lnd", "lnddir", cfg.LndDir, "network", cfg.Network, "chain", cfg.Chain.Node,
		"rpc", n.addr, "log", n.LogPath())
	ready := n.runMain(lis)
	defer func() {
		if err != nil {
			// Nothing runs on LND yet; a stuck LND (a chain backend
			// that does not answer keeps it from stopping) is left to
			// the process exit sooner.
			if serr := n.stop(min(cfg.StopTimeout, abortStopTimeout)); serr != nil {
				n.log.Warn("stopping embedded lnd after a failed start", "err", serr)
			}
		}
	}()
	if err := n.awaitUnlocked(ctx, ready); err != nil {
		return nil, err
	}
	if seed, err := n.seeds.Load(); err == nil && seed.ShownAt == nil {
		n.log.Warn("WARNING: the embedded LND wallet's seed has not been backed up: show it once with `l402cli node seed` "+
			"(POST /api/node/seed, admin key, from this machine) and write it down", "seed_file", n.seeds.Path())
	}
	n.log.Info("embedded lnd ready", "rpc", n.addr)
	return n, nil
}

// prepare checks cfg and the binary's build tags, builds LND's config
// from cfg, creates the lnd dir and points LND's sub-loggers at its log
// file (and at standard error when cfg.LogToStderr).
func prepare(cfg Config) (*lnd.Config, *flags.Parser, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if missing := missingTags(build.Tags(), lndclient.DefaultBuildTags); len(missing) > 0 {
		return nil, nil, buildTagsError(missing)
	}
	lcfg, parser, err := cfg.lndConfig()
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(cfg.LndDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("embedded lnd: lnd dir: %w", err)
	}
	if cfg.WalletPasswordFile != "" && groupReadable(cfg.WalletPasswordFile) {
		cfg.Logger.Warn("the wallet password file is readable by group or others; chmod 600 it", "file", cfg.WalletPasswordFile)
	}

	// lnd's own log goes to its file under the lnd dir; to l402d's
	// standard error only when asked (l402d's debug level).
	var handlers []btclog.Handler
	if !lcfg.LogConfig.File.Disable {
		handlers = append(handlers, btclog.NewDefaultHandler(lcfg.LogRotator, lcfg.LogConfig.File.HandlerOptions()...))
	}
	if cfg.LogToStderr {
		handlers = append(handlers, btclog.NewDefaultHandler(os.Stderr, lcfg.LogConfig.Console.HandlerOptions()...))
	}
	lcfg.SubLogMgr = build.NewSubLoggerManager(handlers...)
	return lcfg, parser, nil
}

// interceptAndValidate takes the process's one LND signal interceptor,
// detaches it from the OS signals (l402d handles those) and validates
// LND's config. When it fails after taking the interceptor it shuts the
// interceptor down again.
func interceptAndValidate(lcfg *lnd.Config, parser *flags.Parser) (signal.Interceptor, *lnd.Config, error) {
	ic, err := signal.Intercept()
	if err != nil {
		return ic, nil, fmt.Errorf("embedded lnd: %w (only one embedded LND can run per process)", err)
	}
	if err := detachOSSignals(&ic); err != nil {
		ic.RequestShutdown()
		return ic, nil, err
	}
	vcfg, err := lnd.ValidateConfig(*lcfg, ic, parser, parser)
	if err != nil {
		ic.RequestShutdown()
		return ic, nil, fmt.Errorf("embedded lnd: config: %w", err)
	}
	return ic, vcfg, nil
}

// runMain runs lnd.Main on lis in its own goroutine, which closes n.done
// when Main returns. The channel it returns is closed once LND serves RPC
// on lis.
func (n *Node) runMain(lis net.Listener) <-chan struct{} {
	ready := make(chan struct{})
	implCfg := n.lnd.ImplementationConfig(n.ic)
	go func() {
		defer close(n.done)
		n.mainErr = lnd.Main(n.lnd, lnd.ListenerCfg{RPCListeners: []*lnd.ListenerWithSignal{{Listener: lis, Ready: ready}}}, implCfg, n.ic)
		_ = lis.Close()
		// Main can return on its own (an error, or lncli stop); end the
		// interceptor's goroutine too.
		n.ic.RequestShutdown()
		if n.mainErr != nil {
			n.log.Error("embedded lnd stopped", "err", n.mainErr, "log", n.LogPath())
		} else {
			n.log.Info("embedded lnd stopped")
		}
	}()
	return ready
}

// awaitUnlocked waits, within cfg.StartTimeout, for LND's RPC server and
// then unlocks (or creates) the wallet.
func (n *Node) awaitUnlocked(ctx context.Context, ready <-chan struct{}) error {
	sctx, cancel := context.WithTimeout(ctx, n.cfg.StartTimeout)
	defer cancel()
	select {
	case <-ready:
	case <-n.done:
		return n.exitErr("before its RPC server started")
	case <-sctx.Done():
		return fmt.Errorf("embedded lnd: waiting for its RPC server: %w", sctx.Err())
	}
	return n.unlock(sctx)
}

// exitErr describes lnd.Main having returned at an unexpected time.
func (n *Node) exitErr(when string) error {
	if n.mainErr != nil {
		return fmt.Errorf("embedded lnd stopped %s: %w (see %s)", when, n.mainErr, n.LogPath())
	}
	return fmt.Errorf("embedded lnd stopped %s (see %s)", when, n.LogPath())
}

// LNDConfig says how l402d's backend reaches this node: its gRPC address,
// TLS cert and admin macaroon, as for any remote LND.
func (n *Node) LNDConfig() invoices.LNDConfig {
	return invoices.LNDConfig{
		Address:      n.addr,
		TLSCertPath:  n.lnd.TLSCertPath,
		MacaroonPath: n.lnd.AdminMacPath,
		Network:      n.cfg.Network,
	}
}

// LogPath is LND's own log file.
func (n *Node) LogPath() string {
	if n.lnd == nil {
		return ""
	}
	return filepath.Join(n.lnd.LogDir, "lnd.log")
}

// Seeds is the stored seed (for showing it once).
func (n *Node) Seeds() *SeedStore { return n.seeds }

// Done is closed when LND has stopped, for whatever reason.
func (n *Node) Done() <-chan struct{} { return n.done }

// Err is why LND stopped, once Done is closed: nil after a requested
// shutdown, else what made lnd.Main return.
func (n *Node) Err() error {
	select {
	case <-n.done:
		return n.mainErr
	default:
		return nil
	}
}

// Stop asks LND to shut down and waits up to Config.StopTimeout for
// lnd.Main to return. LND's stores are crash-safe, so a node that does
// not stop in time is abandoned to the process exit. Safe to call more
// than once and after LND stopped on its own.
func (n *Node) Stop() error { return n.stop(n.cfg.StopTimeout) }

// abortStopTimeout bounds the wait for LND to stop after a failed start.
const abortStopTimeout = 10 * time.Second

func (n *Node) stop(timeout time.Duration) error {
	n.stopOnce.Do(func() {
		select {
		case <-n.done:
			return
		default:
		}
		n.log.Info("stopping embedded lnd")
		start := time.Now()
		n.ic.RequestShutdown()
		select {
		case <-n.done:
			n.log.Info("embedded lnd shut down", "took", time.Since(start).Round(time.Millisecond))
		case <-time.After(timeout):
			n.stopErr = fmt.Errorf("embedded lnd did not stop within %v (see %s)", timeout, n.LogPath())
		}
	})
	return n.stopErr
}
