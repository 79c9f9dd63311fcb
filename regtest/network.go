package regtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/l402d/l402d/storage/atomicfile"
	"github.com/lightningnetwork/lnd/lnrpc"
)

// Mode says how the nodes run.
type Mode string

const (
	// ModeDocker runs each node as a container (docker compose). It is the
	// default when a docker engine and compose answer.
	ModeDocker Mode = "docker"
	// ModeProcess runs the same binaries as local processes on free
	// loopback ports, for machines without docker.
	ModeProcess Mode = "process"
)

// Node names. BtcdNode is accepted wherever a node name is, for stopping,
// starting and logs.
const (
	Alice    = "alice"
	Bob      = "bob"
	Carol    = "carol"
	BtcdNode = "btcd"
)

// btcdBackup is a second btcd that only keeps a copy of the chain. btcd
// deletes its regtest database at every start, so a restarted btcd would
// come back empty; instead it resyncs from this peer (btcd's regtest only
// syncs from peers on 127.0.0.1, so in docker mode btcd runs in
// btcd-backup's network namespace). It is never stopped on its own.
const btcdBackup = "btcd-backup"

// LNDNodes returns the names of the default LND nodes (Options.Nodes
// left empty); [Network.Nodes] returns a network's own.
func LNDNodes() []string { return []string{Alice, Bob, Carol} }

// allNodes returns every node of a network with the LND nodes lnd, in start
// order.
func allNodes(lnd []string) []string { return append([]string{btcdBackup, BtcdNode}, lnd...) }

// nodeNameRE is what an LND node name may look like: it names a compose
// service, a docker host, a directory and (upper-cased) compose variables.
var nodeNameRE = regexp.MustCompile(`^[a-z][a-z0-9]*$`)

// reservedNames are names an LND node may not take: btcd's, and the work
// dir's own entries.
var reservedNames = []string{BtcdNode, "logs"}

// checkGraph checks a node set and a channel graph (see Options.Nodes and
// Options.Channels).
func checkGraph(nodes []string, channels []ChannelSpec) error {
	if len(nodes) == 0 {
		return errors.New("no LND nodes")
	}
	seen := map[string]bool{}
	for _, name := range nodes {
		if !nodeNameRE.MatchString(name) {
			return fmt.Errorf("node name %q: use lower case letters and digits, starting with a letter", name)
		}
		if slices.Contains(reservedNames, name) {
			return fmt.Errorf("node name %q is reserved", name)
		}
		if seen[name] {
			return fmt.Errorf("node %q listed twice", name)
		}
		seen[name] = true
	}
	for _, c := range channels {
		for _, end := range []string{c.From, c.To} {
			if !seen[end] {
				return fmt.Errorf("channel %s→%s: no node %q (have %s)", c.From, c.To, end, strings.Join(nodes, ", "))
			}
		}
		if c.From == c.To {
			return fmt.Errorf("channel %s→%s: a node cannot open a channel to itself", c.From, c.To)
		}
	}
	return nil
}

// Environment variables read by [Start].
const (
	// EnvMode selects the mode ("docker" or "process") when
	// Options.Mode is empty.
	EnvMode = "L402D_REGTEST_MODE"
	// EnvBinDir names a directory of prebuilt btcd, btcctl, lnd and lncli
	// binaries to use instead of building them.
	EnvBinDir = "L402D_REGTEST_BIN_DIR"
)

// DefaultProject is the project name [Start] uses when none is given.
const DefaultProject = "l402d-regtest"

// Options configures [Start], [Attach] and [Teardown]. The zero value
// works from inside the l402d checkout.
type Options struct {
	// Mode is docker or process; empty means $L402D_REGTEST_MODE, else
	// docker if a docker engine and compose answer, else process.
	Mode Mode
	// Project names the network: the compose project, the docker
	// network (<project>_regtest) and the default WorkDir. Two networks
	// with different projects can run side by side. Lower case letters,
	// digits, '-' and '_'. Default DefaultProject.
	Project string
	// WorkDir holds all state: node data, btcd's RPC certificate, logs
	// (process mode), state.json. Default <module>/.run/<project>. It is
	// deleted by Stop and Teardown, so it must be empty or a directory an
	// earlier run created.
	WorkDir string
	// ModuleDir is the l402d module root; default found with go env GOMOD
	// from the current directory.
	ModuleDir string
	// GoCmd is the go command used to build the binaries; default "go".
	GoCmd string
	// BinDir is a directory of prebuilt binaries; default
	// $L402D_REGTEST_BIN_DIR, else built into <module>/.cache/bin/<key>.
	BinDir string
	// LogDir, if set, receives every node's log when Start fails.
	LogDir string
	// Logger receives progress; default discards.
	Logger *slog.Logger
	// Nodes names the LND nodes; default [LNDNodes] (alice, bob, carol).
	// Names are lower case letters and digits starting with a letter,
	// unique, and not "btcd" (or "logs"). The first node is the miner's
	// payee: btcd's blocks pay it and it funds the others' channels. Any
	// number from one up.
	Nodes []string
	// Channels is the channel graph the bootstrap opens, each with
	// ChannelCapacity and ChannelPush; nil means [BootstrapChannels]
	// (which needs alice, bob and carol), an empty non-nil slice no
	// channels. Every endpoint must be one of Nodes; no channel may
	// connect a node to itself.
	Channels []ChannelSpec
}

// Node is one LND node and how to reach it.
type Node struct {
	Name   string `json:"name"`
	Pubkey string `json:"pubkey"` // identity pubkey, hex
	// RPCAddr is the gRPC address reachable from the host (127.0.0.1).
	RPCAddr string `json:"rpcAddr"`
	// DockerRPCAddr is the gRPC address inside the docker network
	// ("alice:10009"); empty in process mode.
	DockerRPCAddr string `json:"dockerRpcAddr,omitempty"`
	// P2PAddr is the peer address the other nodes dial: "alice:9735" in
	// docker mode, 127.0.0.1:<port> in process mode.
	P2PAddr string `json:"p2pAddr"`
	// HostP2PAddr is the peer address reachable from the host.
	HostP2PAddr string `json:"hostP2pAddr"`
	// LndDir is the node's lnd directory on the host.
	LndDir string `json:"lndDir"`
	// TLSCertPath is the node's TLS certificate on the host. It is valid
	// for localhost, 127.0.0.1 and the node's name.
	TLSCertPath string `json:"tlsCertPath"`
	// MacaroonDir holds admin.macaroon, invoice.macaroon, ...
	// (<LndDir>/data/chain/bitcoin/regtest), as lndclient expects.
	MacaroonDir       string `json:"macaroonDir"`
	AdminMacaroonPath string `json:"adminMacaroonPath"`
}

// Btcd says how to reach the network's btcd.
type Btcd struct {
	// RPCAddr is the JSON-RPC address reachable from the host.
	RPCAddr string `json:"rpcAddr"`
	// DockerRPCAddr is the RPC address inside the docker network
	// ("btcd:18334"); empty in process mode.
	DockerRPCAddr string `json:"dockerRpcAddr,omitempty"`
	// P2PAddr is the peer address reachable from the host.
	P2PAddr string `json:"p2pAddr"`
	RPCUser string `json:"rpcUser"`
	RPCPass string `json:"rpcPass"`
	// RPCCertPath is btcd's RPC certificate on the host (SANs btcd,
	// localhost, 127.0.0.1).
	RPCCertPath string `json:"rpcCertPath"`
	// MiningAddr is where generated blocks pay (an address of the first
	// LND node's, alice's by default).
	MiningAddr string `json:"miningAddr"`
}

// Info is how to reach a running network, for test suites in any language
// (`go run ./regtest/cmd/regtest -json up` prints it).
type Info struct {
	Project string `json:"project"`
	Mode    Mode   `json:"mode"`
	WorkDir string `json:"workDir"`
	// DockerNetwork is the docker network the nodes are on; empty in
	// process mode.
	DockerNetwork string `json:"dockerNetwork,omitempty"`
	Btcd          Btcd   `json:"btcd"`
	// Nodes are the LND nodes, in the order of [Network.Nodes].
	Nodes []Node `json:"nodes"`
}

// Timings are how long the phases of [Start] took.
type Timings struct {
	Binaries time.Duration `json:"binaries"` // find or build the binaries
	Images   time.Duration `json:"images"`   // find or build the images (docker)
	// Bootstrap runs from built images (or binaries, in process mode) to
	// the first routed payment.
	Bootstrap time.Duration `json:"bootstrap"`
	Total     time.Duration `json:"total"`
}

// state is everything needed to find a running network again; it is saved
// as state.json in the work dir.
type state struct {
	Mode          Mode                 `json:"mode"`
	Project       string               `json:"project"`
	WorkDir       string               `json:"work_dir"`
	DockerNetwork string               `json:"docker_network,omitempty"`
	Compose       []string             `json:"compose,omitempty"`
	User          string               `json:"user,omitempty"`
	LndImage      string               `json:"lnd_image,omitempty"`
	BtcdImage     string               `json:"btcd_image,omitempty"`
	Bins          Binaries             `json:"binaries"`
	Ports         map[string]NodePorts `json:"ports"`
	MiningAddr    string               `json:"mining_addr"`
	Pubkeys       map[string]string    `json:"pubkeys"`
	PIDs          map[string]int       `json:"pids,omitempty"`
	Stopped       map[string]bool      `json:"stopped,omitempty"`
	Timings       Timings              `json:"timings"`
	// Nodes and Channels are the network's LND nodes and channel graph;
	// absent (from a state file of an older version) they are the
	// defaults.
	Nodes    []string      `json:"nodes,omitempty"`
	Channels []ChannelSpec `json:"channels"`
}

// nodes returns the LND nodes of st.
func (st *state) nodes() []string {
	if len(st.Nodes) == 0 {
		return LNDNodes()
	}
	return st.Nodes
}

// channels returns the channel graph of st.
func (st *state) channels() []ChannelSpec {
	if st.Channels == nil {
		return BootstrapChannels()
	}
	return st.Channels
}

// backend starts and stops nodes in one mode.
type backend interface {
	// start starts the named nodes with their current configuration, or
	// recreates them if it changed; it does not wait for readiness.
	start(ctx context.Context, names ...string) error
	// stop stops one node gracefully, keeping its data.
	stop(ctx context.Context, name string) error
	// alive returns nil while name runs, else an Unrecoverable error
	// saying how it ended.
	alive(ctx context.Context, name string) error
	// logs writes name's output so far to w.
	logs(ctx context.Context, name string, w io.Writer) error
	// teardown removes every node and its runtime resources.
	teardown(ctx context.Context) error
}

// Network is a running regtest network. Its methods are safe for
// concurrent use, but tests that stop nodes should not run in parallel with
// tests that need them.
type Network struct {
	log    *slog.Logger
	lay    layout
	be     backend
	btcd   *btcdClient
	backup *btcdClient

	saveMu  sync.Mutex // serializes writes of the state file
	mu      sync.Mutex // guards st and clients
	st      state
	clients map[string]*Client
}

var projectRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// resolve fills in o's defaults and checks the mode's requirements.
func (o Options) resolve(ctx context.Context) (Options, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Project == "" {
		o.Project = DefaultProject
	}
	if !projectRE.MatchString(o.Project) {
		return o, fmt.Errorf("project %q: use lower case letters, digits, '-' and '_'", o.Project)
	}
	if len(o.Nodes) == 0 {
		o.Nodes = LNDNodes()
	}
	if o.Channels == nil {
		o.Channels = BootstrapChannels()
	}
	if err := checkGraph(o.Nodes, o.Channels); err != nil {
		return o, err
	}
	o.Nodes = slices.Clone(o.Nodes)
	o.Channels = append([]ChannelSpec{}, o.Channels...)
	if o.GoCmd == "" {
		o.GoCmd = "go"
	}
	if o.ModuleDir == "" {
		dir, err := FindModuleDir(ctx, o.GoCmd, "")
		if err != nil {
			return o, err
		}
		o.ModuleDir = dir
	}
	if o.WorkDir == "" {
		o.WorkDir = filepath.Join(o.ModuleDir, ".run", o.Project)
	}
	abs, err := filepath.Abs(o.WorkDir)
	if err != nil {
		return o, err
	}
	o.WorkDir = abs
	if o.BinDir == "" {
		o.BinDir = os.Getenv(EnvBinDir)
	}
	if o.Mode == "" {
		o.Mode = Mode(os.Getenv(EnvMode))
	}
	switch o.Mode {
	case ModeDocker, ModeProcess:
	case "":
		if _, err := dockerEngine(ctx); err != nil {
			o.Logger.Info("no docker engine; running the nodes as local processes", "reason", err)
			o.Mode = ModeProcess
		} else if _, err := findCompose(ctx); err != nil {
			o.Logger.Info("no docker compose; running the nodes as local processes", "reason", err)
			o.Mode = ModeProcess
		} else {
			o.Mode = ModeDocker
		}
	default:
		return o, fmt.Errorf("unknown regtest mode %q (%s): use %q or %q", o.Mode, EnvMode, ModeDocker, ModeProcess)
	}
	return o, nil
}

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

// resolveNoDetect is resolve without probing docker: the mode comes from
// the saved state.
func (o Options) resolveNoDetect(ctx context.Context) (Options, error) {
	if o.Mode == "" {
		o.Mode = ModeProcess // placeholder; the state file decides
	}
	return o.resolve(ctx)
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

// checkWorkDir refuses a work dir that holds something other than an
// earlier network, since Stop and Teardown delete it.
func checkWorkDir(lay layout) error {
	entries, err := os.ReadDir(lay.dir)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := os.Stat(lay.markerFile()); err != nil {
		return fmt.Errorf("work dir %s is not empty and was not made by regtest; refusing to use (and delete) it", lay.dir)
	}
	return nil
}

func prepareWorkDir(lay layout, nodes []string) error {
	for _, d := range append([]string{lay.dir, lay.rpcCertDir(), lay.logDir()}, nodeDirs(lay, nodes)...) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(lay.markerFile(), []byte("made by github.com/l402d/l402d/regtest; deleted with the network\n"), 0o644); err != nil {
		return err
	}
	compose, err := renderCompose(nodes)
	if err != nil {
		return err
	}
	return os.WriteFile(lay.composeFile(), compose, 0o644)
}

func nodeDirs(lay layout, nodes []string) []string {
	var dirs []string
	for _, n := range allNodes(nodes) {
		dirs = append(dirs, lay.nodeDir(n))
	}
	return dirs
}

func loadState(lay layout) (state, error) {
	var st state
	data, err := os.ReadFile(lay.stateFile())
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("decoding %s: %w", lay.stateFile(), err)
	}
	return st, nil
}

// save writes the state file and, in docker mode, compose.env.
func (n *Network) save() error {
	n.saveMu.Lock()
	defer n.saveMu.Unlock()
	n.mu.Lock()
	data, err := json.MarshalIndent(n.st, "", "  ")
	env := n.composeVarsLocked().env()
	mode := n.st.Mode
	n.mu.Unlock()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(n.lay.stateFile(), data); err != nil {
		return err
	}
	if mode == ModeDocker {
		return writeFileAtomic(n.lay.composeEnvFile(), []byte(strings.Join(env, "\n")+"\n"))
	}
	return nil
}

// writeFileAtomic writes a state file (mode 0644) so that a crash leaves
// the old one or the new one, whole.
func writeFileAtomic(path string, data []byte) error {
	return atomicfile.Write(path, data, atomicfile.Options{Perm: 0o644})
}

func newNetwork(log *slog.Logger, lay layout, st state) *Network {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if st.PIDs == nil {
		st.PIDs = map[string]int{}
	}
	if st.Stopped == nil {
		st.Stopped = map[string]bool{}
	}
	if st.Pubkeys == nil {
		st.Pubkeys = map[string]string{}
	}
	n := &Network{log: log, lay: lay, st: st, clients: map[string]*Client{}}
	switch st.Mode {
	case ModeDocker:
		n.be = &dockerBackend{
			compose: st.Compose,
			project: st.Project,
			network: st.DockerNetwork,
			file:    lay.composeFile(),
			env: func() []string {
				n.mu.Lock()
				defer n.mu.Unlock()
				return n.composeVarsLocked().env()
			},
			log: log,
		}
	default:
		n.be = &processBackend{
			bins: st.Bins,
			lay:  lay,
			args: func(name string) []string {
				n.mu.Lock()
				defer n.mu.Unlock()
				if name == BtcdNode || name == btcdBackup {
					return processBtcdArgs(lay, name, n.st.Ports, n.st.MiningAddr)
				}
				return processLndArgs(lay, name, n.st.Ports[name], n.st.Ports[BtcdNode].RPC)
			},
			ports: func(name string) NodePorts {
				n.mu.Lock()
				defer n.mu.Unlock()
				return n.st.Ports[name]
			},
			setPID: func(name string, pid int) {
				n.mu.Lock()
				if pid == 0 {
					delete(n.st.PIDs, name)
				} else {
					n.st.PIDs[name] = pid
				}
				n.mu.Unlock()
				if err := n.save(); err != nil {
					log.Warn("saving state", "err", err)
				}
			},
			pids: func() map[string]int {
				n.mu.Lock()
				defer n.mu.Unlock()
				return maps.Clone(n.st.PIDs)
			},
			log: log,
		}
	}
	for name, c := range map[string]**btcdClient{BtcdNode: &n.btcd, btcdBackup: &n.backup} {
		addr := fmt.Sprintf("127.0.0.1:%d", st.Ports[name].RPC)
		cl, err := newBtcdClient(addr, btcdRPCUser, btcdRPCPass, lay.rpcCert())
		if err != nil {
			log.Warn("btcd client", "node", name, "err", err)
		}
		*c = cl
	}
	return n
}

func (n *Network) composeVarsLocked() composeVars {
	return composeVars{
		Network:    n.st.DockerNetwork,
		Dir:        n.lay.dir,
		User:       n.st.User,
		LndImage:   n.st.LndImage,
		BtcdImage:  n.st.BtcdImage,
		MiningAddr: n.st.MiningAddr,
		Ports:      n.st.Ports,
		Nodes:      n.st.nodes(),
	}
}

// Mode returns how the nodes run.
func (n *Network) Mode() Mode { return n.st.Mode }

// Project returns the network's project name.
func (n *Network) Project() string { return n.st.Project }

// WorkDir returns the directory holding the network's state.
func (n *Network) WorkDir() string { return n.lay.dir }

// DockerNetwork returns the name of the docker network the nodes are on,
// for running more containers beside them; empty in process mode.
func (n *Network) DockerNetwork() string { return n.st.DockerNetwork }

// Timings returns how long the phases of Start took.
func (n *Network) Timings() Timings {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st.Timings
}

// Nodes returns the names of the network's LND nodes, the first being the
// one btcd's blocks pay.
func (n *Network) Nodes() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.st.nodes())
}

// Channels returns the channel graph the bootstrap opened.
func (n *Network) Channels() []ChannelSpec {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.st.channels())
}

// Binaries returns the binaries the network runs (in docker mode, the ones
// inside the images, built for linux).
func (n *Network) Binaries() Binaries { return n.st.Bins }

// Node returns the LND node called name, or nil if there is none.
func (n *Network) Node(name string) *Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !slices.Contains(n.st.nodes(), name) {
		return nil
	}
	node := n.nodeLocked(name)
	return &node
}

func (n *Network) nodeLocked(name string) Node {
	dir := n.lay.nodeDir(name)
	macDir := filepath.Join(dir, "data", "chain", "bitcoin", "regtest")
	p := n.st.Ports[name]
	node := Node{
		Name:              name,
		Pubkey:            n.st.Pubkeys[name],
		RPCAddr:           fmt.Sprintf("127.0.0.1:%d", p.RPC),
		HostP2PAddr:       fmt.Sprintf("127.0.0.1:%d", p.P2P),
		P2PAddr:           fmt.Sprintf("127.0.0.1:%d", p.P2P),
		LndDir:            dir,
		TLSCertPath:       filepath.Join(dir, "tls.cert"),
		MacaroonDir:       macDir,
		AdminMacaroonPath: filepath.Join(macDir, "admin.macaroon"),
	}
	if n.st.Mode == ModeDocker {
		node.DockerRPCAddr = fmt.Sprintf("%s:%d", name, dockerLndRPCPort)
		node.P2PAddr = fmt.Sprintf("%s:%d", name, dockerLndP2PPort)
	}
	return node
}

// Info returns how to reach the network and each of its nodes.
func (n *Network) Info() Info {
	info := Info{Project: n.Project(), Mode: n.Mode(), WorkDir: n.WorkDir(), DockerNetwork: n.DockerNetwork(), Btcd: n.Btcd()}
	for _, name := range n.Nodes() {
		info.Nodes = append(info.Nodes, *n.Node(name))
	}
	return info
}

// Btcd returns how to reach btcd.
func (n *Network) Btcd() Btcd {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.st.Ports[BtcdNode]
	b := Btcd{
		RPCAddr:     fmt.Sprintf("127.0.0.1:%d", p.RPC),
		P2PAddr:     fmt.Sprintf("127.0.0.1:%d", p.P2P),
		RPCUser:     btcdRPCUser,
		RPCPass:     btcdRPCPass,
		RPCCertPath: n.lay.rpcCert(),
		MiningAddr:  n.st.MiningAddr,
	}
	if n.st.Mode == ModeDocker {
		b.DockerRPCAddr = fmt.Sprintf("btcd:%d", dockerBtcdRPCPort)
	}
	return b
}

// Client dials the LND node called name from the host. The caller closes
// it.
func (n *Network) Client(name string) (*Client, error) {
	node := n.Node(name)
	if node == nil {
		return nil, fmt.Errorf("no LND node %q (have %s)", name, strings.Join(n.Nodes(), ", "))
	}
	return Dial(*node)
}

// client returns the network's own cached client for name.
func (n *Network) client(name string) (*Client, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c := n.clients[name]; c != nil {
		return c, nil
	}
	node := n.nodeLocked(name)
	c, err := Dial(node)
	if err != nil {
		return nil, err
	}
	n.clients[name] = c
	return c, nil
}

// Running reports whether name runs, as far as the network knows: false
// after StopNode until StartNode.
func (n *Network) Running(name string) bool { return n.running(name) }

func (n *Network) running(name string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.st.Stopped[name]
}

func (n *Network) setStopped(name string, stopped bool) {
	n.mu.Lock()
	if stopped {
		n.st.Stopped[name] = true
	} else {
		delete(n.st.Stopped, name)
	}
	n.mu.Unlock()
	if err := n.save(); err != nil {
		n.log.Warn("saving state", "err", err)
	}
}

func (n *Network) checkName(name string) error {
	nodes := n.Nodes()
	if name == BtcdNode || slices.Contains(nodes, name) {
		return nil
	}
	return fmt.Errorf("no node %q (have btcd, %s)", name, strings.Join(nodes, ", "))
}

// StopNode stops one node gracefully, keeping its data and its ports. With
// btcd stopped the LND nodes keep running (and reconnect when it is back);
// stopping btcd before the LND nodes is fine, but Stop tears down LND
// first, since an LND without btcd takes long to shut down.
func (n *Network) StopNode(ctx context.Context, name string) error {
	if err := n.checkName(name); err != nil {
		return err
	}
	if !n.running(name) {
		return nil
	}
	n.log.Info("stopping node", "node", name)
	if name == BtcdNode {
		// btcd comes back empty and resyncs from btcd-backup, which
		// must hold every block first.
		if err := n.waitBackup(ctx); err != nil {
			return err
		}
	}
	if err := n.be.stop(ctx, name); err != nil {
		return err
	}
	n.setStopped(name, true)
	return nil
}

// StartNode starts a stopped node on its old ports and waits until it is
// ready. For btcd: until its RPC answers, it has resynced the chain from
// btcd-backup (btcd empties its regtest database at every start), and every
// running LND node follows the chain again, proven by a probe block each of
// them reports synced (see [Network.Mine] for why a probe and not a look at
// the height). For an LND node: until its RPC answers, it is synced to
// btcd's chain (if btcd runs) and its channels with running peers are
// active on both ends.
func (n *Network) StartNode(ctx context.Context, name string) error {
	if err := n.checkName(name); err != nil {
		return err
	}
	n.log.Info("starting node", "node", name)
	if err := n.be.start(ctx, name); err != nil {
		return err
	}
	n.setStopped(name, false)
	if name == BtcdNode {
		if err := n.waitBtcd(ctx); err != nil {
			return err
		}
		if err := n.waitBtcdResynced(ctx); err != nil {
			return err
		}
		// Right after btcd returns, an LND node reports synced at the old
		// tip while its chain notifier may still be reconnecting: a
		// block mined then would reach its wallet but not its notifier.
		// Only a block every node processes proves they all follow again.
		return n.Mine(ctx, 1)
	}
	if err := n.waitLnd(ctx, name, n.running(BtcdNode)); err != nil {
		return err
	}
	if err := n.reconnectPeers(ctx, name); err != nil {
		return err
	}
	return n.waitChannelsActive(ctx, name)
}

// reconnectPeers connects name to each running node it has a channel with.
// The nodes reconnect by themselves too (they announce their addresses),
// but a restarted node's peers back off between attempts.
func (n *Network) reconnectPeers(ctx context.Context, name string) error {
	c, err := n.client(name)
	if err != nil {
		return err
	}
	chans, err := c.Lightning.ListChannels(ctx, &lnrpc.ListChannelsRequest{})
	if err != nil {
		return fmt.Errorf("%s: ListChannels: %w", name, err)
	}
	n.mu.Lock()
	byPub := map[string]string{}
	for nm, pk := range n.st.Pubkeys {
		byPub[pk] = nm
	}
	n.mu.Unlock()
	seen := map[string]bool{}
	for _, ch := range chans.Channels {
		peer := byPub[ch.RemotePubkey]
		if peer == "" || seen[peer] || !n.running(peer) {
			continue
		}
		seen[peer] = true
		if err := n.connect(ctx, name, *n.Node(peer)); err != nil {
			return err
		}
	}
	return nil
}

// RestartNode stops and starts a node; see StopNode and StartNode.
func (n *Network) RestartNode(ctx context.Context, name string) error {
	if err := n.StopNode(ctx, name); err != nil {
		return err
	}
	return n.StartNode(ctx, name)
}

// BlockHeight returns btcd's chain height.
func (n *Network) BlockHeight(ctx context.Context) (int64, error) {
	return n.btcd.BlockCount(ctx)
}

// Mine mines blocks (paying the first LND node, alice by default) and waits until every running LND node
// is synced to the tip and btcd-backup holds it.
//
// LND's synced_to_chain needs its wallet, its graph and its block-beat
// dispatcher (fed by its chain notifier) at btcd's tip. Each of them has
// its own connection to btcd, reconnecting on its own schedule after btcd
// restarts (every 5 s, backing off to a minute). A block mined while the
// notifier is still reconnecting reaches the wallet but never the notifier,
// which catches up on missed blocks only when the next block arrives: the
// node would stay "not synced" for ever. So while some node sits at the
// tip unsynced for [nudgeAfter], Mine mines one more block, until all are
// synced or [syncTimeout] has passed.
func (n *Network) Mine(ctx context.Context, blocks int) error {
	if !n.running(BtcdNode) {
		return errors.New("mine: btcd is stopped")
	}
	if _, err := n.btcd.Generate(ctx, blocks); err != nil {
		return fmt.Errorf("mining %d blocks: %w", blocks, err)
	}
	if err := n.waitFollowing(ctx); err != nil {
		return err
	}
	return n.waitBackup(ctx)
}

const (
	// syncTimeout bounds how long Mine and StartNode wait for the LND nodes
	// to sync. LND's btcd client backs off up to a minute between
	// reconnects, so after a long btcd outage a node can take that long
	// to come back.
	syncTimeout = 3 * time.Minute
	// nudgeAfter is how long a node may report btcd's tip without being
	// synced to it before Mine mines another block to wake its notifier.
	nudgeAfter = 20 * time.Second
)

// waitFollowing waits until every running LND node is synced at btcd's tip,
// mining a block whenever one has sat at the tip unsynced for nudgeAfter.
// A node whose GetInfo fails or times out (it blocks while LND reconnects
// to btcd, and is slow on a loaded machine) neither proves nor disproves
// that it is stuck, so it keeps the time it was first seen stuck.
func (n *Network) waitFollowing(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	stuckSince := map[string]time.Time{}
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		height, err := n.btcd.BlockCount(ctx)
		if err != nil {
			return fmt.Errorf("btcd's height: %w", err)
		}
		var waiting []error
		nudge := false
		for _, name := range n.Nodes() {
			if !n.running(name) {
				continue
			}
			err := n.lndSynced(ctx, name, height)
			switch {
			case err == nil:
				delete(stuckSince, name)
				continue
			case errors.Is(err, errStuckAtTip):
				if stuckSince[name].IsZero() {
					stuckSince[name] = time.Now()
				}
				nudge = nudge || time.Since(stuckSince[name]) >= nudgeAfter
			case errors.Is(err, errBehind):
				delete(stuckSince, name)
			default:
				if aerr := n.be.alive(ctx, name); aerr != nil {
					return aerr
				}
			}
			waiting = append(waiting, err)
		}
		if len(waiting) == 0 {
			return nil
		}
		if nudge {
			n.log.Info("an LND node is at the tip but not synced; mining a block to wake its chain notifier",
				"height", height, "err", errors.Join(waiting...))
			if _, err := n.btcd.Generate(ctx, 1); err != nil {
				return fmt.Errorf("mining a nudge block (%w): %w", errors.Join(waiting...), err)
			}
			clear(stuckSince)
			continue
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out after %v waiting for the LND nodes to sync to height %d: %w", syncTimeout, height, errors.Join(waiting...))
		case <-ticker.C:
		}
	}
}

// waitBackup waits until btcd-backup has btcd's best block. A backup that
// lags (it ignores blocks announced by a peer that is not its sync peer
// while its own tip is old, as at the start) is told to connect to btcd,
// which makes btcd its sync peer.
func (n *Network) waitBackup(ctx context.Context) error {
	nudged := false
	return WaitFor(ctx, "btcd-backup to hold btcd's chain", 60*time.Second, 50*time.Millisecond, func(ctx context.Context) error {
		want, err := n.btcd.BestBlockHash(ctx)
		if err != nil {
			return err
		}
		got, err := n.backup.BestBlockHash(ctx)
		if err != nil {
			if aerr := n.be.alive(ctx, btcdBackup); aerr != nil {
				return aerr
			}
			return err
		}
		if got == want {
			return nil
		}
		if !nudged {
			if err := n.backup.ConnectPeer(ctx, n.btcdP2PFromBackup()); err != nil {
				return err
			}
			nudged = true
		}
		return fmt.Errorf("btcd-backup at %s, btcd at %s", got, want)
	})
}

// waitBtcdResynced waits until a restarted btcd has the backup's chain.
func (n *Network) waitBtcdResynced(ctx context.Context) error {
	return WaitFor(ctx, "btcd to resync the chain from btcd-backup", 90*time.Second, 50*time.Millisecond, func(ctx context.Context) error {
		want, err := n.backup.BestBlockHash(ctx)
		if err != nil {
			return err
		}
		got, err := n.btcd.BestBlockHash(ctx)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("btcd at %s, btcd-backup at %s", got, want)
		}
		return nil
	})
}

// btcdP2PFromBackup is btcd's P2P address as btcd-backup dials it.
func (n *Network) btcdP2PFromBackup() string {
	if n.st.Mode == ModeDocker {
		return fmt.Sprintf("127.0.0.1:%d", dockerBtcdP2PPort) // shared namespace
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprintf("127.0.0.1:%d", n.st.Ports[BtcdNode].P2P)
}

// errStuckAtTip marks a node that reports btcd's tip as its height without
// being synced to it (see [Network.Mine]); errBehind one still below it.
var (
	errStuckAtTip = errors.New("at the tip but not synced to chain")
	errBehind     = errors.New("below the tip")
)

// lndSynced returns nil if name reports synced_to_chain at height (or any
// height if height is 0).
func (n *Network) lndSynced(ctx context.Context, name string, height int64) error {
	info, err := n.getInfo(ctx, name)
	if err != nil {
		return err
	}
	if height > 0 && int64(info.BlockHeight) < height {
		return fmt.Errorf("%s at height %d: %w", name, info.BlockHeight, errBehind)
	}
	if !info.SyncedToChain {
		return fmt.Errorf("%s at height %d: %w", name, info.BlockHeight, errStuckAtTip)
	}
	return nil
}

func (n *Network) getInfo(ctx context.Context, name string) (*lnrpc.GetInfoResponse, error) {
	c, err := n.client(name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.Lightning.GetInfo(ctx, &lnrpc.GetInfoRequest{})
}

// waitBtcd waits until btcd's RPC answers.
func (n *Network) waitBtcd(ctx context.Context) error {
	return n.waitBtcdRPC(ctx, BtcdNode, n.btcd)
}

// waitBtcdRPC waits until the RPC of btcd or btcd-backup answers.
func (n *Network) waitBtcdRPC(ctx context.Context, name string, c *btcdClient) error {
	return WaitFor(ctx, name+" RPC to answer", 60*time.Second, 100*time.Millisecond, func(ctx context.Context) error {
		_, err := c.BlockCount(ctx)
		if err != nil {
			if aerr := n.be.alive(ctx, name); aerr != nil {
				return aerr
			}
		}
		return err
	})
}

// waitLnd waits until name's RPC answers GetInfo and, if synced, until it
// is synced to btcd's tip.
func (n *Network) waitLnd(ctx context.Context, name string, synced bool) error {
	what := name + " RPC to answer"
	if synced {
		what = name + " to answer and sync to btcd's tip"
	}
	node := n.Node(name)
	return WaitFor(ctx, what, 90*time.Second, 100*time.Millisecond, func(ctx context.Context) error {
		err := n.lndReady(ctx, *node, synced)
		if err != nil {
			if aerr := n.be.alive(ctx, name); aerr != nil {
				return aerr
			}
		}
		return err
	})
}

func (n *Network) lndReady(ctx context.Context, node Node, synced bool) error {
	if _, err := os.Stat(node.AdminMacaroonPath); err != nil {
		return fmt.Errorf("%s has no admin macaroon yet: %w", node.Name, err)
	}
	if !synced {
		_, err := n.getInfo(ctx, node.Name)
		return err
	}
	height, err := n.btcd.BlockCount(ctx)
	if err != nil {
		return err
	}
	return n.lndSynced(ctx, node.Name, height)
}

// waitChannelsActive waits until each of name's channels whose peer runs is
// active on both ends, reconnecting to the peers if needed.
func (n *Network) waitChannelsActive(ctx context.Context, name string) error {
	return WaitFor(ctx, name+"'s channels to be active on both ends", 90*time.Second, 200*time.Millisecond,
		func(ctx context.Context) error { return n.channelsActive(ctx, name) })
}

func (n *Network) channelsActive(ctx context.Context, name string) error {
	c, err := n.client(name)
	if err != nil {
		return err
	}
	chans, err := c.Lightning.ListChannels(ctx, &lnrpc.ListChannelsRequest{})
	if err != nil {
		return err
	}
	n.mu.Lock()
	byPub := map[string]string{}
	for nm, pk := range n.st.Pubkeys {
		byPub[pk] = nm
	}
	self := n.st.Pubkeys[name]
	n.mu.Unlock()
	for _, ch := range chans.Channels {
		peer := byPub[ch.RemotePubkey]
		if peer == "" || !n.running(peer) {
			continue
		}
		if !ch.Active {
			return fmt.Errorf("%s's channel %d with %s is inactive", name, ch.ChanId, peer)
		}
		pc, err := n.client(peer)
		if err != nil {
			return err
		}
		theirs, err := pc.ChannelWith(ctx, self)
		if err != nil {
			return fmt.Errorf("%s: %w", peer, err)
		}
		if !theirs.Active {
			return fmt.Errorf("%s's channel %d with %s is inactive", peer, theirs.ChanId, name)
		}
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
