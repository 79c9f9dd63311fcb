// Command regtest starts, inspects and removes the l402d regtest network
// (btcd and the LND nodes alice, bob and carol, or the ones -nodes names)
// for demos and manual tests.
//
// Usage:
//
//	go run ./regtest/cmd/regtest [flags] up|down|info|bins
//
//	up    start a fresh network, print how to reach it and leave it running
//	down  remove the network (containers, volumes, processes, state dir)
//	info  print how to reach the running network
//	bins  build (or find) the binaries and, with docker, the images
//
// Flags:
//
//	-dir      state dir (default .run/regtest)
//	-project  project name, also the compose project (default l402d-regtest)
//	-mode     docker or process (default $L402D_REGTEST_MODE, else docker if available)
//	-go       go command used to build the binaries (default go)
//	-json     up and info print the connection details as JSON
//	-nodes    up: the LND nodes, comma-separated, the first being the miner's
//	          payee (default alice,bob,carol)
//	-channels up: the channels from:to, comma-separated, each opened by from
//	          (default bob:carol,carol:alice,bob:alice; "none" for none)
//	-v        log debug detail
//
// For example, two nodes with one channel:
//
//	go run ./regtest/cmd/regtest -nodes alice,bob -channels bob:alice up
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/l402d/l402d/regtest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "regtest:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("regtest", flag.ExitOnError)
	dir := fs.String("dir", filepath.Join(".run", "regtest"), "state dir")
	project := fs.String("project", regtest.DefaultProject, "project name (compose project)")
	mode := fs.String("mode", "", "docker or process (default $"+regtest.EnvMode+", else docker if available)")
	goCmd := fs.String("go", "go", "go command used to build the binaries")
	verbose := fs.Bool("v", false, "log debug detail")
	asJSON := fs.Bool("json", false, "up and info print how to reach the network as one JSON document (for non-Go test suites)")
	nodes := fs.String("nodes", "", "up: the LND nodes, comma-separated, the first being the miner's payee (default alice,bob,carol)")
	channels := fs.String("channels", "", `up: the channels from:to, comma-separated (default bob:carol,carol:alice,bob:alice; "none" for none)`)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: regtest [flags] up|down|info|bins")
		fs.PrintDefaults()
	}
	fs.Parse(os.Args[1:])
	if fs.NArg() != 1 {
		fs.Usage()
		os.Exit(2)
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	opts := regtest.Options{
		Mode:    regtest.Mode(*mode),
		Project: *project,
		WorkDir: *dir,
		GoCmd:   *goCmd,
		Logger:  log,
	}
	var err error
	if opts.Nodes, opts.Channels, err = parseGraph(*nodes, *channels); err != nil {
		return err
	}
	switch fs.Arg(0) {
	case "up":
		// Node logs of a failed start go next to the state dir, which
		// the failure removes.
		opts.LogDir = filepath.Clean(*dir) + "-failed-logs"
		os.RemoveAll(opts.LogDir)
		n, err := regtest.Start(ctx, opts)
		if err != nil {
			if _, serr := os.Stat(opts.LogDir); serr == nil {
				return fmt.Errorf("%w\n(node logs: %s)", err, opts.LogDir)
			}
			return err
		}
		return printInfo(os.Stdout, n, *asJSON)
	case "down":
		if err := regtest.Teardown(ctx, opts); err != nil {
			return err
		}
		fmt.Println("regtest network removed")
		return nil
	case "info":
		n, err := regtest.Attach(ctx, opts)
		if err != nil {
			return err
		}
		return printInfo(os.Stdout, n, *asJSON)
	case "bins":
		return bins(ctx, opts, log)
	default:
		fs.Usage()
		os.Exit(2)
	}
	return nil
}

// parseGraph parses the -nodes and -channels flags; empty means the
// default.
func parseGraph(nodes, channels string) ([]string, []regtest.ChannelSpec, error) {
	var ns []string
	if nodes != "" {
		ns = strings.Split(nodes, ",")
	}
	var cs []regtest.ChannelSpec
	switch channels {
	case "":
	case "none":
		cs = []regtest.ChannelSpec{}
	default:
		for _, c := range strings.Split(channels, ",") {
			from, to, ok := strings.Cut(c, ":")
			if !ok {
				return nil, nil, fmt.Errorf("-channels: %q is not from:to", c)
			}
			cs = append(cs, regtest.ChannelSpec{From: from, To: to})
		}
	}
	return ns, cs, nil
}

// bins builds the host's binaries and, when docker is available, the
// docker platform's binaries and the images.
func bins(ctx context.Context, opts regtest.Options, log *slog.Logger) error {
	mod, err := regtest.FindModuleDir(ctx, opts.GoCmd, "")
	if err != nil {
		return err
	}
	b, err := regtest.EnsureBinaries(ctx, regtest.BuildOptions{ModuleDir: mod, GoCmd: opts.GoCmd, Dir: os.Getenv(regtest.EnvBinDir), Logger: log})
	if err != nil {
		return err
	}
	fmt.Println("binaries:", b.Dir)
	if opts.Mode == regtest.ModeProcess || (opts.Mode == "" && os.Getenv(regtest.EnvMode) == string(regtest.ModeProcess)) {
		return nil
	}
	imgs, err := regtest.EnsureImages(ctx, regtest.BuildOptions{ModuleDir: mod, GoCmd: opts.GoCmd, Dir: os.Getenv(regtest.EnvBinDir), Logger: log})
	if err != nil {
		if opts.Mode == regtest.ModeDocker {
			return err
		}
		fmt.Println("images: skipped:", err)
		return nil
	}
	fmt.Println("images:", strings.Join(imgs, " "))
	return nil
}

// printInfo prints how to reach n, as text for people or as JSON.
func printInfo(w io.Writer, n *regtest.Network, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(n.Info())
	}
	b := n.Btcd()
	tm := n.Timings()
	fmt.Fprintf(w, "\nl402d regtest network %q (%s mode), state in %s\n", n.Project(), n.Mode(), n.WorkDir())
	if tm.Total > 0 {
		fmt.Fprintf(w, "started in %v (binaries %v, images %v, images to first routed payment %v)\n",
			tm.Total.Round(1e6), tm.Binaries.Round(1e6), tm.Images.Round(1e6), tm.Bootstrap.Round(1e6))
	}
	if dn := n.DockerNetwork(); dn != "" {
		fmt.Fprintf(w, "docker network: %s\n", dn)
	}
	lncli := n.Binaries().Lncli
	btcctl := n.Binaries().Btcctl
	if n.Mode() == regtest.ModeDocker && n.Binaries().GOOS+"/"+n.Binaries().GOARCH != runtime.GOOS+"/"+runtime.GOARCH {
		lncli, btcctl = "lncli", "btcctl" // the cached ones are for the images' platform
	}
	fmt.Fprintf(w, "\nbtcd\n  rpc:       %s", b.RPCAddr)
	if b.DockerRPCAddr != "" {
		fmt.Fprintf(w, " (in docker: %s)", b.DockerRPCAddr)
	}
	fmt.Fprintf(w, "\n  rpc cert:  %s\n  rpc user:  %s / %s\n  mines to:  %s\n", b.RPCCertPath, b.RPCUser, b.RPCPass, b.MiningAddr)
	fmt.Fprintf(w, "  btcctl:    %s --regtest --configfile=/dev/null --rpcserver=%s --rpccert=%s --rpcuser=%s --rpcpass=%s generate 1\n",
		btcctl, b.RPCAddr, b.RPCCertPath, b.RPCUser, b.RPCPass)
	for _, name := range n.Nodes() {
		node := n.Node(name)
		fmt.Fprintf(w, "\n%s\n  pubkey:    %s\n  rpc:       %s", name, node.Pubkey, node.RPCAddr)
		if node.DockerRPCAddr != "" {
			fmt.Fprintf(w, " (in docker: %s)", node.DockerRPCAddr)
		}
		fmt.Fprintf(w, "\n  p2p:       %s", node.HostP2PAddr)
		if node.P2PAddr != node.HostP2PAddr {
			fmt.Fprintf(w, " (in docker: %s)", node.P2PAddr)
		}
		fmt.Fprintf(w, "\n  tls cert:  %s\n  macaroons: %s\n", node.TLSCertPath, node.MacaroonDir)
		fmt.Fprintf(w, "  lncli:     %s --network=regtest --rpcserver=%s --tlscertpath=%s --macaroonpath=%s getinfo\n",
			lncli, node.RPCAddr, node.TLSCertPath, node.AdminMacaroonPath)
	}
	fmt.Fprintln(w, "\nremove with: make regtest-down")
	return nil
}
