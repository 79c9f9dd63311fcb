package regtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/l402d/l402d/internal/freeport"
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
	bo, compose, err := buildOptions(ctx, o, log)
	if err != nil {
		return nil, err
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
	st, err := newState(ctx, o, lay, bo, compose, log)
	if err != nil {
		os.RemoveAll(lay.dir)
		return nil, err
	}
	n := newNetwork(log, lay, st)
	if err := n.save(); err != nil {
		return nil, err
	}
	bootStart := time.Now()
	if err := n.bootstrap(ctx); err != nil {
		n.abortStart(ctx, o.LogDir, log)
		return nil, fmt.Errorf("starting the regtest network (%s mode): %w", o.Mode, err)
	}
	if err := n.recordStart(t0, bootStart, log); err != nil {
		return nil, err
	}
	return n, nil
}

// buildOptions says how to find or build the binaries and, in docker
// mode, finds compose. Docker mode needs an engine and compose; Start
// finds out before touching anything. The binaries are built for the
// engine's platform.
func buildOptions(ctx context.Context, o Options, log *slog.Logger) (BuildOptions, []string, error) {
	bo := BuildOptions{ModuleDir: o.ModuleDir, GoCmd: o.GoCmd, Dir: o.BinDir, Logger: log}
	var compose []string
	if o.Mode == ModeDocker {
		arch, err := dockerEngine(ctx)
		if err != nil {
			return bo, nil, err
		}
		if compose, err = findCompose(ctx); err != nil {
			return bo, nil, err
		}
		bo.GOOS, bo.GOARCH = "linux", arch
	}
	return bo, compose, nil
}

// newState returns the state of a new network in lay: binaries and (in
// docker mode) images found or built, ports chosen, btcd's RPC
// certificate written.
func newState(ctx context.Context, o Options, lay layout, bo BuildOptions, compose []string, log *slog.Logger) (state, error) {
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
	if err := st.ensureArtifacts(ctx, bo, compose, log); err != nil {
		return st, err
	}
	// Ports, certificate, directories.
	all := allNodes(o.Nodes)
	ports, err := freeport.Ports(2 * len(all))
	if err != nil {
		return st, err
	}
	st.Ports = map[string]NodePorts{}
	for i, name := range all {
		st.Ports[name] = NodePorts{RPC: ports[2*i], P2P: ports[2*i+1]}
	}
	if err := writeRPCCert(lay.rpcCert(), lay.rpcKey(), btcdCertHosts, time.Now()); err != nil {
		return st, err
	}
	st.MiningAddr = placeholderMiningAddr()
	return st, nil
}

// ensureArtifacts finds or builds the binaries and, in docker mode, the
// images, timing both.
func (st *state) ensureArtifacts(ctx context.Context, bo BuildOptions, compose []string, log *slog.Logger) error {
	var err error
	t := time.Now()
	if st.Bins, err = EnsureBinaries(ctx, bo); err != nil {
		return err
	}
	st.Timings.Binaries = time.Since(t)

	t = time.Now()
	if st.Mode == ModeDocker {
		if st.LndImage, st.BtcdImage, _, err = ensureImages(ctx, st.Bins, log); err != nil {
			return err
		}
		st.Compose = compose
		st.DockerNetwork = st.Project + "_regtest"
		st.User = fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	}
	st.Timings.Images = time.Since(t)
	return nil
}

// abortStart removes a network whose bootstrap failed, after copying its
// logs to logDir if set.
func (n *Network) abortStart(ctx context.Context, logDir string, log *slog.Logger) {
	cleanCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if logDir != "" {
		if lerr := n.CollectLogs(cleanCtx, logDir); lerr != nil {
			log.Warn("collecting logs", "err", lerr)
		} else {
			log.Info("node logs collected", "dir", logDir)
		}
	}
	if serr := n.Stop(cleanCtx); serr != nil {
		log.Warn("tearing down after a failed start", "err", serr)
	}
}

// recordStart saves how long Start took (from t0, the bootstrap from
// bootStart) and logs it.
func (n *Network) recordStart(t0, bootStart time.Time, log *slog.Logger) error {
	n.mu.Lock()
	n.st.Timings.Bootstrap = time.Since(bootStart)
	n.st.Timings.Total = time.Since(t0)
	tm := n.st.Timings
	n.mu.Unlock()
	if err := n.save(); err != nil {
		return err
	}
	log.Info("regtest network up",
		"binaries", tm.Binaries.Round(time.Millisecond),
		"images", tm.Images.Round(time.Millisecond),
		"images_to_first_routed_payment", tm.Bootstrap.Round(time.Millisecond),
		"total", tm.Total.Round(time.Millisecond))
	return nil
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
