package regtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

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
	mode, err := o.resolveMode(ctx)
	if err != nil {
		return o, err
	}
	o.Mode = mode
	return o, nil
}

// resolveNoDetect is resolve without probing docker: the mode comes from
// the saved state.
func (o Options) resolveNoDetect(ctx context.Context) (Options, error) {
	if o.Mode == "" {
		o.Mode = ModeProcess // placeholder; the state file decides
	}
	return o.resolve(ctx)
}

// resolveMode returns o.Mode, else $L402D_REGTEST_MODE, else docker if a
// docker engine and compose answer, else process.
func (o Options) resolveMode(ctx context.Context) (Mode, error) {
	if o.Mode == "" {
		o.Mode = Mode(os.Getenv(EnvMode))
	}
	switch o.Mode {
	case ModeDocker, ModeProcess:
		return o.Mode, nil
	case "":
		if _, err := dockerEngine(ctx); err != nil {
			o.Logger.Info("no docker engine; running the nodes as local processes", "reason", err)
			return ModeProcess, nil
		}
		if _, err := findCompose(ctx); err != nil {
			o.Logger.Info("no docker compose; running the nodes as local processes", "reason", err)
			return ModeProcess, nil
		}
		return ModeDocker, nil
	default:
		return "", fmt.Errorf("unknown regtest mode %q (%s): use %q or %q", o.Mode, EnvMode, ModeDocker, ModeProcess)
	}
}
