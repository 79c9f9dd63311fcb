package regtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Start removes whatever an earlier run of the same project left behind,
// builds what is missing (binaries, images), starts btcd and the LND nodes
// and bootstraps the channel graph (see the package doc). It returns once
// the graph has carried a payment (bob paying alice through carol, for
// the default graph). On failure everything it started is
// removed again (after copying the logs to Options.LogDir, if set).
func Start(ctx context.Context, opts Options) (*Network, error) {
	t0 := time.Now()
	o, err := opts.resolve(ctx)
	if err != nil {
		return nil, err
	}
	log := o.Logger.With("project", o.Project, "mode", o.Mode)

	// Docker mode needs an engine and compose; find out before touching
	// anything. The binaries are built for the engine's platform.
	bo := BuildOptions{ModuleDir: o.ModuleDir, GoCmd: o.GoCmd, Dir: o.BinDir, Logger: log}
	var compose []string
	if o.Mode == ModeDocker {
		arch, err := dockerEngine(ctx)
		if err != nil {
			return nil, err
		}
		if compose, err = findCompose(ctx); err != nil {
			return nil, err
		}
		bo.GOOS, bo.GOARCH = "linux", arch
	}

	if err := teardown(ctx, o, log); err != nil {
		return nil, fmt.Errorf("removing what an earlier run of %q left behind: %w", o.Project, err)
	}
	lay := layout{dir: o.WorkDir}
	if err := prepareWorkDir(lay, o.Nodes); err != nil {
		return nil, err
	}
	// Until the network exists (whose Stop cleans up), a failure removes
	// the work dir again.
	removeWorkDir := true
	defer func() {
		if removeWorkDir {
			os.RemoveAll(lay.dir)
		}
	}()
	st := state{
		Mode:     o.Mode,
		Project:  o.Project,
		WorkDir:  o.WorkDir,
		Pubkeys:  map[string]string{},
		PIDs:     map[string]int{},
		Stopped:  map[string]bool{},
		Nodes:    o.Nodes,
		Channels: o.Channels,
	}

	t := time.Now()
	if st.Bins, err = EnsureBinaries(ctx, bo); err != nil {
		return nil, err
	}
	st.Timings.Binaries = time.Since(t)

	t = time.Now()
	if o.Mode == ModeDocker {
		if st.LndImage, st.BtcdImage, _, err = ensureImages(ctx, st.Bins, log); err != nil {
			return nil, err
		}
		st.Compose = compose
		st.DockerNetwork = o.Project + "_regtest"
		st.User = fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	}
	st.Timings.Images = time.Since(t)

	// Ports, certificate, directories.
	all := allNodes(o.Nodes)
	ports, err := freePorts(2 * len(all))
	if err != nil {
		return nil, err
	}
	st.Ports = map[string]NodePorts{}
	for i, name := range all {
		st.Ports[name] = NodePorts{RPC: ports[2*i], P2P: ports[2*i+1]}
	}
	if err := writeRPCCert(lay.rpcCert(), lay.rpcKey(), btcdCertHosts, time.Now()); err != nil {
		return nil, err
	}
	st.MiningAddr = placeholderMiningAddr()

	n := newNetwork(log, lay, st)
	removeWorkDir = false
	if err := n.save(); err != nil {
		return nil, err
	}
	bootStart := time.Now()
	if err := n.bootstrap(ctx); err != nil {
		cleanCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if o.LogDir != "" {
			if lerr := n.CollectLogs(cleanCtx, o.LogDir); lerr != nil {
				log.Warn("collecting logs", "err", lerr)
			} else {
				log.Info("node logs collected", "dir", o.LogDir)
			}
		}
		if serr := n.Stop(cleanCtx); serr != nil {
			log.Warn("tearing down after a failed start", "err", serr)
		}
		return nil, fmt.Errorf("starting the regtest network (%s mode): %w", o.Mode, err)
	}
	n.mu.Lock()
	n.st.Timings.Bootstrap = time.Since(bootStart)
	n.st.Timings.Total = time.Since(t0)
	tm := n.st.Timings
	n.mu.Unlock()
	if err := n.save(); err != nil {
		return nil, err
	}
	log.Info("regtest network up",
		"binaries", tm.Binaries.Round(time.Millisecond),
		"images", tm.Images.Round(time.Millisecond),
		"images_to_first_routed_payment", tm.Bootstrap.Round(time.Millisecond),
		"total", tm.Total.Round(time.Millisecond))
	return n, nil
}

// Attach returns the network a [Start] in another process left running in
// opts' work dir (for example `make regtest-up`). Stopping and starting
// nodes works; in process mode the nodes are not children of this process.
func Attach(ctx context.Context, opts Options) (*Network, error) {
	o, err := opts.resolveNoDetect(ctx)
	if err != nil {
		return nil, err
	}
	lay := layout{dir: o.WorkDir}
	st, err := loadState(lay)
	if err != nil {
		return nil, fmt.Errorf("no regtest network in %s (run make regtest-up): %w", o.WorkDir, err)
	}
	if st.Pubkeys[st.nodes()[0]] == "" {
		return nil, fmt.Errorf("the regtest network in %s never finished starting", o.WorkDir)
	}
	return newNetwork(o.Logger, lay, st), nil
}

// Teardown removes the network of opts' project and work dir whether it is
// running, stopped or half-started by an aborted run: its containers,
// volumes and docker network (found by compose labels), its processes
// (found by the pids in state.json, checked against their command lines)
// and the work dir.
func Teardown(ctx context.Context, opts Options) error {
	o, err := opts.resolveNoDetect(ctx)
	if err != nil {
		return err
	}
	return teardown(ctx, o, o.Logger.With("project", o.Project))
}

func teardown(ctx context.Context, o Options, log *slog.Logger) error {
	lay := layout{dir: o.WorkDir}
	if err := checkWorkDir(lay); err != nil {
		return err
	}
	st, serr := loadState(lay)
	var errs []error
	if _, derr := dockerEngine(ctx); derr == nil {
		network := o.Project + "_regtest"
		if serr == nil && st.DockerNetwork != "" {
			network = st.DockerNetwork
		}
		if err := dockerTeardown(ctx, o.Project, network); err != nil {
			errs = append(errs, err)
		}
	} else if serr == nil && st.Mode == ModeDocker {
		errs = append(errs, fmt.Errorf("cannot remove the containers of %q: %w", o.Project, derr))
	}
	if serr == nil && len(st.PIDs) > 0 {
		pb := &processBackend{lay: lay, log: log, pids: func() map[string]int { return st.PIDs }, setPID: func(string, int) {}}
		if err := pb.teardown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := os.RemoveAll(lay.dir); err != nil {
		return fmt.Errorf("removing %s: %w", lay.dir, err)
	}
	return nil
}

// CollectLogs writes each node's log so far to dir/<node>.log.
func (n *Network) CollectLogs(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	for _, name := range allNodes(n.Nodes()) {
		f, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			return err
		}
		if err := n.be.logs(ctx, name, f); err != nil {
			errs = append(errs, fmt.Errorf("logs of %s: %w", name, err))
		}
		f.Close()
	}
	return errors.Join(errs...)
}

// Stop removes the whole network: nodes (LND first), containers, volumes,
// the docker network and the work dir.
func (n *Network) Stop(ctx context.Context) error {
	n.mu.Lock()
	for name, c := range n.clients {
		c.Close()
		delete(n.clients, name)
	}
	n.mu.Unlock()
	if err := n.be.teardown(ctx); err != nil {
		return fmt.Errorf("tearing down the regtest network: %w", err)
	}
	if err := os.RemoveAll(n.lay.dir); err != nil {
		return fmt.Errorf("removing %s: %w", n.lay.dir, err)
	}
	return nil
}
