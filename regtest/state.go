package regtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strings"

	"github.com/l402d/l402d/storage/atomicfile"
)

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
		n.be = n.dockerBackend()
	default:
		n.be = n.processBackend()
	}
	n.dialBtcd()
	return n
}

// dockerBackend returns the backend of a docker-mode network.
func (n *Network) dockerBackend() *dockerBackend {
	return &dockerBackend{
		compose: n.st.Compose,
		project: n.st.Project,
		network: n.st.DockerNetwork,
		file:    n.lay.composeFile(),
		env: func() []string {
			n.mu.Lock()
			defer n.mu.Unlock()
			return n.composeVarsLocked().env()
		},
		log: n.log,
	}
}

// processBackend returns the backend of a process-mode network.
func (n *Network) processBackend() *processBackend {
	return &processBackend{
		bins: n.st.Bins,
		lay:  n.lay,
		args: func(name string) []string {
			n.mu.Lock()
			defer n.mu.Unlock()
			if name == BtcdNode || name == btcdBackup {
				return processBtcdArgs(n.lay, name, n.st.Ports, n.st.MiningAddr)
			}
			return processLndArgs(n.lay, name, n.st.Ports[name], n.st.Ports[BtcdNode].RPC)
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
				n.log.Warn("saving state", "err", err)
			}
		},
		pids: func() map[string]int {
			n.mu.Lock()
			defer n.mu.Unlock()
			return maps.Clone(n.st.PIDs)
		},
		log: n.log,
	}
}

// dialBtcd makes the clients of btcd and btcd-backup.
func (n *Network) dialBtcd() {
	for name, c := range map[string]**btcdClient{BtcdNode: &n.btcd, btcdBackup: &n.backup} {
		addr := fmt.Sprintf("127.0.0.1:%d", n.st.Ports[name].RPC)
		cl, err := newBtcdClient(addr, btcdRPCUser, btcdRPCPass, n.lay.rpcCert())
		if err != nil {
			n.log.Warn("btcd client", "node", name, "err", err)
		}
		*c = cl
	}
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
