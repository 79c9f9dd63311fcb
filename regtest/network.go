package regtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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

	stuckRestarts atomic.Int64 // see StuckRestarts
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
