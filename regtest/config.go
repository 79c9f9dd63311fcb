package regtest

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
)

// Fixed in-container ports (docker mode). Host ports are picked at start.
// btcd and btcd-backup share one network namespace, so their ports differ.
const (
	dockerLndRPCPort    = 10009
	dockerLndP2PPort    = 9735
	dockerBtcdRPCPort   = 18334
	dockerBtcdP2PPort   = 18444
	dockerBackupRPCPort = 18335
	dockerBackupP2PPort = 18445
)

// btcd RPC credentials. The network only listens on loopback and a private
// docker network, so fixed values keep manual btcctl use simple.
const (
	btcdRPCUser = "l402d"
	btcdRPCPass = "l402d-regtest"
)

// btcdArgsConfig holds the values that differ between modes in btcd's
// command line.
type btcdArgsConfig struct {
	DataDir, LogDir      string
	RPCUser, RPCPass     string
	RPCCert, RPCKey      string
	RPCListen, P2PListen string
	// AddPeer, if set, is a peer btcd keeps connected (the backup).
	AddPeer string
	// MiningAddr, if set, is where generated blocks pay.
	MiningAddr string
}

// btcdArgs is btcd's (and btcd-backup's) command line. docker-compose.yml
// spells out the same arguments for docker mode; a unit test keeps the two
// in step.
func btcdArgs(c btcdArgsConfig) []string {
	args := []string{
		"--regtest",
		"--datadir=" + c.DataDir,
		"--logdir=" + c.LogDir,
		"--rpcuser=" + c.RPCUser,
		"--rpcpass=" + c.RPCPass,
		"--rpccert=" + c.RPCCert,
		"--rpckey=" + c.RPCKey,
		"--rpclisten=" + c.RPCListen,
		"--listen=" + c.P2PListen,
		"--txindex",
	}
	if c.AddPeer != "" {
		args = append(args, "--addpeer="+c.AddPeer)
	}
	if c.MiningAddr != "" {
		args = append(args, "--miningaddr="+c.MiningAddr)
	}
	return args
}

// lndArgsConfig holds the values that differ between nodes and modes in
// lnd's command line.
type lndArgsConfig struct {
	Name                 string
	LndDir               string
	BtcdHost             string
	RPCUser, RPCPass     string
	RPCCert              string
	RPCListen, P2PListen string
	// ExternalIP is the address the node announces, so that its peers
	// can reconnect to it after it restarts (lnd replaces a peer's known
	// addresses with the ones it announces, and without one it would
	// announce none).
	ExternalIP string
}

// lndArgs is lnd's command line. docker-compose.yml spells out the same
// arguments for docker mode; a unit test keeps the two in step.
//
// Besides the flags a regtest node needs, it shortens gossip and graph
// delays (as lnd's own itests do) so that new channels become routable in
// seconds, accepts channels after one confirmation, and turns off the chain
// backend health check so that a test can keep btcd down for a while
// without lnd shutting itself down.
func lndArgs(c lndArgsConfig) []string {
	return []string{
		"--lnddir=" + c.LndDir,
		"--alias=" + c.Name,
		"--tlsextradomain=" + c.Name,
		"--noseedbackup",
		"--bitcoin.active",
		"--bitcoin.regtest",
		"--bitcoin.node=btcd",
		"--btcd.rpchost=" + c.BtcdHost,
		"--btcd.rpcuser=" + c.RPCUser,
		"--btcd.rpcpass=" + c.RPCPass,
		"--btcd.rpccert=" + c.RPCCert,
		"--rpclisten=" + c.RPCListen,
		"--listen=" + c.P2PListen,
		"--externalip=" + c.ExternalIP,
		"--norest",
		"--nobootstrap",
		"--accept-keysend",
		"--debuglevel=info",
		"--trickledelay=50",
		"--gossip.sub-batch-delay=5ms",
		"--caches.rpc-graph-cache-duration=100ms",
		"--db.batch-commit-interval=10ms",
		"--bitcoin.defaultchanconfs=1",
		"--healthcheck.chainbackend.attempts=0",
	}
}

// dockerBtcdArgs is btcd's command line inside its container, with the
// compose variables it takes from the launcher.
func dockerBtcdArgs() []string {
	c := dockerBtcdConfig(dockerBtcdRPCPort, fmt.Sprintf("0.0.0.0:%d", dockerBtcdP2PPort))
	c.AddPeer = fmt.Sprintf("127.0.0.1:%d", dockerBackupP2PPort)
	c.MiningAddr = "${L402D_BTCD_MINING_ADDR}"
	return btcdArgs(c)
}

// dockerBackupArgs is btcd-backup's command line inside its container.
func dockerBackupArgs() []string {
	return btcdArgs(dockerBtcdConfig(dockerBackupRPCPort, fmt.Sprintf("127.0.0.1:%d", dockerBackupP2PPort)))
}

// dockerBtcdConfig is the configuration btcd and btcd-backup share inside
// their containers (data, logs, RPC credentials and certificate), with
// the RPC port and P2P listen address of one of them.
func dockerBtcdConfig(rpcPort int, p2pListen string) btcdArgsConfig {
	return btcdArgsConfig{
		DataDir:   "/btcd/data",
		LogDir:    "/btcd/logs",
		RPCUser:   "${L402D_BTCD_RPC_USER}",
		RPCPass:   "${L402D_BTCD_RPC_PASS}",
		RPCCert:   "/rpc/rpc.cert",
		RPCKey:    "/rpc/rpc.key",
		RPCListen: fmt.Sprintf("0.0.0.0:%d", rpcPort),
		P2PListen: p2pListen,
	}
}

// dockerLndArgs is lnd's command line inside the named container.
func dockerLndArgs(name string) []string {
	return lndArgs(lndArgsConfig{
		Name:       name,
		LndDir:     "/lnd",
		BtcdHost:   fmt.Sprintf("btcd:%d", dockerBtcdRPCPort),
		RPCUser:    "${L402D_BTCD_RPC_USER}",
		RPCPass:    "${L402D_BTCD_RPC_PASS}",
		RPCCert:    "/rpc/rpc.cert",
		RPCListen:  fmt.Sprintf("0.0.0.0:%d", dockerLndRPCPort),
		P2PListen:  fmt.Sprintf("0.0.0.0:%d", dockerLndP2PPort),
		ExternalIP: fmt.Sprintf("%s:%d", name, dockerLndP2PPort),
	})
}

// NodePorts are the host ports of one node, on 127.0.0.1.
type NodePorts struct {
	RPC int `json:"rpc"`
	P2P int `json:"p2p"`
}

// layout says where one network's files live on the host.
type layout struct{ dir string }

func (l layout) nodeDir(name string) string { return filepath.Join(l.dir, name) }
func (l layout) rpcCertDir() string         { return filepath.Join(l.dir, "btcd-rpc") }
func (l layout) rpcCert() string            { return filepath.Join(l.rpcCertDir(), "rpc.cert") }
func (l layout) rpcKey() string             { return filepath.Join(l.rpcCertDir(), "rpc.key") }
func (l layout) logDir() string             { return filepath.Join(l.dir, "logs") }
func (l layout) composeFile() string        { return filepath.Join(l.dir, "docker-compose.yml") }
func (l layout) composeEnvFile() string     { return filepath.Join(l.dir, "compose.env") }
func (l layout) stateFile() string          { return filepath.Join(l.dir, "state.json") }
func (l layout) markerFile() string         { return filepath.Join(l.dir, ".l402d-regtest") }

// processBtcdArgs is the command line of btcd or btcd-backup in process
// mode. btcd keeps the backup as a peer and mines to miningAddr.
func processBtcdArgs(l layout, name string, ports map[string]NodePorts, miningAddr string) []string {
	p := ports[name]
	c := btcdArgsConfig{
		DataDir:   filepath.Join(l.nodeDir(name), "data"),
		LogDir:    filepath.Join(l.nodeDir(name), "logs"),
		RPCUser:   btcdRPCUser,
		RPCPass:   btcdRPCPass,
		RPCCert:   l.rpcCert(),
		RPCKey:    l.rpcKey(),
		RPCListen: fmt.Sprintf("127.0.0.1:%d", p.RPC),
		P2PListen: fmt.Sprintf("127.0.0.1:%d", p.P2P),
	}
	if name == BtcdNode {
		c.AddPeer = fmt.Sprintf("127.0.0.1:%d", ports[btcdBackup].P2P)
		c.MiningAddr = miningAddr
	}
	return btcdArgs(c)
}

// processLndArgs is lnd's command line in process mode.
func processLndArgs(l layout, name string, p NodePorts, btcdRPCPort int) []string {
	return lndArgs(lndArgsConfig{
		Name:       name,
		LndDir:     l.nodeDir(name),
		BtcdHost:   fmt.Sprintf("127.0.0.1:%d", btcdRPCPort),
		RPCUser:    btcdRPCUser,
		RPCPass:    btcdRPCPass,
		RPCCert:    l.rpcCert(),
		RPCListen:  fmt.Sprintf("127.0.0.1:%d", p.RPC),
		P2PListen:  fmt.Sprintf("127.0.0.1:%d", p.P2P),
		ExternalIP: fmt.Sprintf("127.0.0.1:%d", p.P2P),
	})
}

// composeVars are the variables docker-compose.yml reads.
type composeVars struct {
	Network    string
	Dir        string
	User       string
	LndImage   string
	BtcdImage  string
	MiningAddr string
	Ports      map[string]NodePorts
	Nodes      []string // the LND nodes
}

// env renders v as sorted KEY=VALUE lines for the compose command's
// environment and for compose.env.
func (v composeVars) env() []string {
	m := map[string]string{
		"L402D_NETWORK":          v.Network,
		"L402D_REGTEST_DIR":      v.Dir,
		"L402D_USER":             v.User,
		"L402D_LND_IMAGE":        v.LndImage,
		"L402D_BTCD_IMAGE":       v.BtcdImage,
		"L402D_BTCD_RPC_USER":    btcdRPCUser,
		"L402D_BTCD_RPC_PASS":    btcdRPCPass,
		"L402D_BTCD_MINING_ADDR": v.MiningAddr,
	}
	for _, name := range allNodes(v.Nodes) {
		p := v.Ports[name]
		up := strings.ReplaceAll(strings.ToUpper(name), "-", "_")
		m["L402D_"+up+"_RPC_PORT"] = fmt.Sprint(p.RPC)
		m["L402D_"+up+"_P2P_PORT"] = fmt.Sprint(p.P2P)
	}
	out := make([]string, 0, len(m))
	for k, val := range m {
		out = append(out, k+"="+val)
	}
	sort.Strings(out)
	return out
}

// placeholderMiningAddr is a valid regtest address nobody holds the key
// for. btcd needs some --miningaddr before the first LND node exists to give it a real
// one; nothing is mined while it is in place.
func placeholderMiningAddr() string {
	addr, err := btcutil.NewAddressWitnessPubKeyHash(make([]byte, 20), &chaincfg.RegressionNetParams)
	if err != nil {
		panic(err) // a 20-byte hash is always valid
	}
	return addr.EncodeAddress()
}
