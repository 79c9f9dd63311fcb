package regtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/l402d/l402d/internal/freeport"
)

// renderedCompose renders the compose file for nodes.
func renderedCompose(t *testing.T, nodes []string) []byte {
	t.Helper()
	data, err := renderCompose(nodes)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// composeServices parses the command lists of a compose file's services
// (the file is simple enough to not need a YAML parser).
func composeServices(data []byte) map[string][]string {
	services := map[string][]string{}
	var inServices, inCommand bool
	var cur string
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "services:"):
			inServices = true
		case inServices && len(line) > 0 && line[0] != ' ' && line[0] != '#':
			inServices = false
		case inServices && strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   ") && strings.HasSuffix(line, ":"):
			cur = strings.TrimSuffix(strings.TrimSpace(line), ":")
			services[cur] = nil
			inCommand = false
		case inServices && line == "    command:":
			inCommand = true
		case inCommand && strings.HasPrefix(line, "      - "):
			services[cur] = append(services[cur], strings.TrimPrefix(line, "      - "))
		case inCommand:
			inCommand = false
		}
	}
	return services
}

// TestComposeFileIsDefaultRendering checks that docker-compose.yml is what
// the launcher renders for the default nodes, so the documented file is
// the one a default network runs.
func TestComposeFileIsDefaultRendering(t *testing.T) {
	want, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if got := renderedCompose(t, LNDNodes()); string(got) != string(want) {
		t.Errorf("docker-compose.yml is not the rendering of docker-compose.yml.tmpl for %v; rendered:\n%s", LNDNodes(), got)
	}
}

// TestComposeFileMatchesArgs keeps the rendered compose file's command
// lines in step with the ones config.go builds for process mode, for the
// default nodes and for other node sets.
func TestComposeFileMatchesArgs(t *testing.T) {
	for _, nodes := range [][]string{LNDNodes(), {"alice"}, {"dave", "alice", "bob", "erin2", "frank"}} {
		data := renderedCompose(t, nodes)
		services := composeServices(data)
		want := map[string][]string{
			BtcdNode:   dockerBtcdArgs(),
			btcdBackup: dockerBackupArgs(),
		}
		for _, name := range nodes {
			want[name] = dockerLndArgs(name)
		}
		if len(services) != len(want) {
			t.Errorf("%v: compose services = %v, want %d services", nodes, slices.Sorted(mapKeys(services)), len(want))
		}
		for name, args := range want {
			got, ok := services[name]
			if !ok {
				t.Errorf("%v: compose file has no service %q", nodes, name)
				continue
			}
			if !slices.Equal(got, args) {
				t.Errorf("%v: service %s command:\n got %q\nwant %q", nodes, name, got, args)
			}
		}
		for _, name := range allNodes(nodes) {
			vol := fmt.Sprintf("  %s:\n    driver: local\n    driver_opts: {type: none, o: bind, device: \"${L402D_REGTEST_DIR}/%s\"}\n", name, name)
			if !strings.Contains(string(data), vol) {
				t.Errorf("%v: no volume for %s", nodes, name)
			}
		}
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestComposeVarsCoverFile checks that every ${VAR} the compose file reads
// is set by the launcher, and that the ports are rendered per node.
func TestComposeVarsCoverFile(t *testing.T) {
	for _, nodes := range [][]string{LNDNodes(), {"alice", "dave"}} {
		t.Run(strings.Join(nodes, ","), func(t *testing.T) { testComposeVarsCoverFile(t, nodes) })
	}
}

func testComposeVarsCoverFile(t *testing.T, nodes []string) {
	data := renderedCompose(t, nodes)
	ports := map[string]NodePorts{}
	for i, name := range allNodes(nodes) {
		ports[name] = NodePorts{RPC: 20000 + 2*i, P2P: 20001 + 2*i}
	}
	v := composeVars{
		Network: "p_regtest", Dir: "/tmp/x", User: "1000:1000",
		LndImage: "l402d-regtest-lnd:v1", BtcdImage: "l402d-regtest-btcd:v2",
		MiningAddr: "bcrt1qexample", Ports: ports, Nodes: nodes,
	}
	env := map[string]string{}
	for _, kv := range v.env() {
		k, val, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("bad env line %q", kv)
		}
		env[k] = val
	}
	var body strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			body.WriteString(line + "\n")
		}
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+)[^}]*\}`).FindAllStringSubmatch(body.String(), -1) {
		if _, ok := env[m[1]]; !ok {
			t.Errorf("docker-compose.yml reads ${%s}, which the launcher does not set", m[1])
		}
	}
	last := nodes[len(nodes)-1]
	for k, want := range map[string]string{
		"L402D_ALICE_RPC_PORT":                         fmt.Sprint(ports[Alice].RPC),
		"L402D_" + strings.ToUpper(last) + "_P2P_PORT": fmt.Sprint(ports[last].P2P),
		"L402D_BTCD_RPC_PORT":                          fmt.Sprint(ports[BtcdNode].RPC),
		"L402D_BTCD_BACKUP_RPC_PORT":                   fmt.Sprint(ports[btcdBackup].RPC),
		"L402D_BTCD_MINING_ADDR":                       "bcrt1qexample",
		"L402D_REGTEST_DIR":                            "/tmp/x",
		"L402D_USER":                                   "1000:1000",
	} {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
	if !slices.IsSorted(v.env()) {
		t.Error("env is not sorted")
	}
}

func TestProcessArgs(t *testing.T) {
	lay := layout{dir: "/w"}
	ports := map[string]NodePorts{}
	for i, name := range allNodes(LNDNodes()) {
		ports[name] = NodePorts{RPC: 30000 + 2*i, P2P: 30001 + 2*i}
	}
	btcd := processBtcdArgs(lay, BtcdNode, ports, "bcrt1qminer")
	for _, want := range []string{
		"--regtest", "--datadir=/w/btcd/data", "--rpccert=/w/btcd-rpc/rpc.cert",
		fmt.Sprintf("--rpclisten=127.0.0.1:%d", ports[BtcdNode].RPC),
		fmt.Sprintf("--addpeer=127.0.0.1:%d", ports[btcdBackup].P2P),
		"--miningaddr=bcrt1qminer",
	} {
		if !slices.Contains(btcd, want) {
			t.Errorf("btcd args %q lack %q", btcd, want)
		}
	}
	backup := processBtcdArgs(lay, btcdBackup, ports, "bcrt1qminer")
	for _, a := range backup {
		if strings.HasPrefix(a, "--miningaddr") || strings.HasPrefix(a, "--addpeer") {
			t.Errorf("btcd-backup args have %q", a)
		}
	}
	lnd := processLndArgs(lay, Bob, ports[Bob], ports[BtcdNode].RPC)
	for _, want := range []string{
		"--lnddir=/w/bob", "--alias=bob", "--tlsextradomain=bob",
		fmt.Sprintf("--btcd.rpchost=127.0.0.1:%d", ports[BtcdNode].RPC),
		fmt.Sprintf("--rpclisten=127.0.0.1:%d", ports[Bob].RPC),
		fmt.Sprintf("--listen=127.0.0.1:%d", ports[Bob].P2P),
		fmt.Sprintf("--externalip=127.0.0.1:%d", ports[Bob].P2P),
		"--bitcoin.regtest", "--bitcoin.node=btcd", "--noseedbackup",
	} {
		if !slices.Contains(lnd, want) {
			t.Errorf("lnd args %q lack %q", lnd, want)
		}
	}
}

func TestWriteRPCCert(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "rpc.cert"), filepath.Join(dir, "rpc.key")
	if err := writeRPCCert(certPath, keyPath, btcdCertHosts, time.Now()); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatalf("cert and key do not load as a pair: %v", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	for _, host := range []string{"btcd", "localhost", "127.0.0.1", "::1"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
			t.Errorf("certificate not valid for %s: %v", host, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "alice", Roots: roots}); err == nil {
		t.Error("certificate valid for alice, want only btcd's names")
	}
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}

	// A TLS handshake against a server using the pair, as lnd and the
	// launcher's btcd client do it.
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	conn, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	conn.Close()
}

func TestWaitFor(t *testing.T) {
	ctx := context.Background()
	calls := 0
	err := WaitFor(ctx, "third call", time.Second, time.Millisecond, func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("WaitFor = %v after %d calls, want nil after 3", err, calls)
	}

	last := errors.New("still down")
	err = WaitFor(ctx, "the impossible", 20*time.Millisecond, time.Millisecond, func(context.Context) error { return last })
	if !errors.Is(err, last) || !strings.Contains(err.Error(), "timed out") || !strings.Contains(err.Error(), "the impossible") {
		t.Fatalf("timeout error = %v; want it to say what was awaited and wrap the last error", err)
	}

	gone := errors.New("process exited")
	calls = 0
	err = WaitFor(ctx, "a dead process", time.Minute, time.Millisecond, func(context.Context) error {
		calls++
		return Unrecoverable(gone)
	})
	if !errors.Is(err, gone) || calls != 1 {
		t.Fatalf("Unrecoverable: err = %v after %d calls, want the error after 1", err, calls)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err = WaitFor(cctx, "a canceled wait", time.Minute, time.Millisecond, func(context.Context) error { return last })
	if !errors.Is(err, context.Canceled) || !errors.Is(err, last) {
		t.Fatalf("canceled wait = %v, want context.Canceled and the last error", err)
	}
}

func TestCheckPortsFree(t *testing.T) {
	ports, err := freeport.Ports(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkPortsFree(map[string]int{"x": ports[0]}); err != nil {
		t.Fatalf("free port reported busy: %v", err)
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ports[1]))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = checkPortsFree(map[string]int{"alice RPC": ports[1]})
	if err == nil || !strings.Contains(err.Error(), "alice RPC") || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("busy port error = %v, want it to name the port's use", err)
	}
}

func TestBinaryCacheKey(t *testing.T) {
	got := binaryCacheKey("v0.21.0-beta", "v0.25.1-0.20260310163610-1c55c7c18179", "linux", "amd64")
	want := "lnd-v0.21.0-beta_btcd-v0.25.1-0.20260310163610-1c55c7c18179_linux-amd64"
	if got != want {
		t.Fatalf("key = %q, want %q", got, want)
	}
	lnd, btcd := imageTags(Binaries{LndVersion: "v0.21.0-beta", BtcdVersion: "v0.25.1-0.x"})
	if lnd != "l402d-regtest-lnd:v0.21.0-beta" || btcd != "l402d-regtest-btcd:v0.25.1-0.x" {
		t.Fatalf("image tags = %q, %q", lnd, btcd)
	}
}

func TestPlaceholderMiningAddr(t *testing.T) {
	addr, err := btcutil.DecodeAddress(placeholderMiningAddr(), &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	if !addr.IsForNet(&chaincfg.RegressionNetParams) {
		t.Fatalf("%s is not a regtest address", addr)
	}
}

func TestCheckWorkDir(t *testing.T) {
	dir := t.TempDir()
	lay := layout{dir: filepath.Join(dir, "run")}
	if err := checkWorkDir(lay); err != nil {
		t.Fatalf("missing dir: %v", err)
	}
	if err := os.MkdirAll(lay.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkWorkDir(lay); err != nil {
		t.Fatalf("empty dir: %v", err)
	}
	os.WriteFile(filepath.Join(lay.dir, "precious.txt"), []byte("x"), 0o644)
	if err := checkWorkDir(lay); err == nil {
		t.Fatal("a dir with foreign files was accepted for deletion")
	}
	if err := prepareWorkDir(lay, []string{"alice", "dave"}); err != nil {
		t.Fatal(err)
	}
	if err := checkWorkDir(lay); err != nil {
		t.Fatalf("a prepared dir was refused: %v", err)
	}
	if _, err := os.Stat(lay.composeFile()); err != nil {
		t.Fatalf("no compose file in the work dir: %v", err)
	}
	if data, err := os.ReadFile(lay.composeFile()); err != nil || !strings.Contains(string(data), "  dave:\n") {
		t.Errorf("the work dir's compose file has no service dave: %v", err)
	}
	for _, n := range allNodes([]string{"alice", "dave"}) {
		if fi, err := os.Stat(lay.nodeDir(n)); err != nil || !fi.IsDir() {
			t.Errorf("no dir for %s: %v", n, err)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	lay := layout{dir: dir}
	st := state{
		Mode: ModeProcess, Project: "p", WorkDir: dir,
		Ports:      map[string]NodePorts{Alice: {RPC: 1, P2P: 2}},
		MiningAddr: "bcrt1q", Pubkeys: map[string]string{Alice: "02ab"},
		PIDs: map[string]int{BtcdNode: 42},
	}
	n := newNetwork(nil, lay, st)
	if err := n.save(); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(lay)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(st)
	b, _ := json.Marshal(got)
	if string(a) != string(b) {
		t.Fatalf("state after a round trip:\n%s\nwant\n%s", b, a)
	}
	node := n.Node(Alice)
	if node.RPCAddr != "127.0.0.1:1" || node.Pubkey != "02ab" || node.DockerRPCAddr != "" ||
		node.MacaroonDir != filepath.Join(dir, "alice", "data", "chain", "bitcoin", "regtest") {
		t.Fatalf("process-mode node = %+v", node)
	}
	if n.Node("dave") != nil {
		t.Fatal("Node of an unknown name is not nil")
	}
}

func TestDockerNodeAddrs(t *testing.T) {
	n := newNetwork(nil, layout{dir: t.TempDir()}, state{
		Mode:  ModeDocker,
		Ports: map[string]NodePorts{Carol: {RPC: 11, P2P: 12}, BtcdNode: {RPC: 13, P2P: 14}},
	})
	c := n.Node(Carol)
	if c.RPCAddr != "127.0.0.1:11" || c.DockerRPCAddr != "carol:10009" || c.P2PAddr != "carol:9735" || c.HostP2PAddr != "127.0.0.1:12" {
		t.Fatalf("docker-mode node = %+v", c)
	}
	if b := n.Btcd(); b.RPCAddr != "127.0.0.1:13" || b.DockerRPCAddr != "btcd:18334" {
		t.Fatalf("docker-mode btcd = %+v", b)
	}
}

func TestOptionsResolve(t *testing.T) {
	ctx := context.Background()
	base := Options{ModuleDir: t.TempDir(), Mode: ModeProcess}
	o, err := base.resolve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if o.Project != DefaultProject || o.WorkDir != filepath.Join(base.ModuleDir, ".run", DefaultProject) || o.Logger == nil {
		t.Fatalf("defaults = %+v", o)
	}
	bad := base
	bad.Project = "Has Spaces"
	if _, err := bad.resolve(ctx); err == nil {
		t.Fatal("an invalid project name was accepted")
	}
	bad = base
	bad.Mode = "vm"
	if _, err := bad.resolve(ctx); err == nil || !strings.Contains(err.Error(), EnvMode) {
		t.Fatalf("unknown mode error = %v", err)
	}
	t.Setenv(EnvMode, "process")
	env := base
	env.Mode = ""
	if o, err := env.resolve(ctx); err != nil || o.Mode != ModeProcess {
		t.Fatalf("mode from %s = %q, %v", EnvMode, o.Mode, err)
	}
}

// TestDockerUnreachable checks the message a missing docker engine gives.
func TestDockerUnreachable(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	_, err := dockerEngine(context.Background())
	if err == nil {
		t.Fatal("no error from a docker engine on a nonexistent socket")
	}
	if !strings.Contains(err.Error(), EnvMode+"=process") {
		t.Fatalf("error %q does not say how to run without docker", err)
	}
}

func TestFundingOutputs(t *testing.T) {
	got := fundingOutputs(LNDNodes(), BootstrapChannels())
	// bob opens two channels, carol one; each gets one spare output.
	if got[Bob] != 3 || got[Carol] != 2 || got[Alice] != 0 {
		t.Fatalf("funding outputs = %v", got)
	}
	// The first node pays the others and opens from its coinbases.
	got = fundingOutputs([]string{"dave", "alice"}, []ChannelSpec{{"dave", "alice"}, {"alice", "dave"}, {"alice", "dave"}})
	if len(got) != 1 || got["alice"] != 3 {
		t.Fatalf("funding outputs = %v", got)
	}
	if got := fundingOutputs([]string{"alice"}, nil); len(got) != 0 {
		t.Fatalf("funding outputs of a lone node = %v", got)
	}
}

func TestGraphOptions(t *testing.T) {
	ctx := context.Background()
	base := Options{ModuleDir: t.TempDir(), Mode: ModeProcess}
	o, err := base.resolve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.Nodes, LNDNodes()) || !slices.Equal(o.Channels, BootstrapChannels()) || !isDefaultGraph(o.Nodes, o.Channels) {
		t.Fatalf("default graph = %v %v", o.Nodes, o.Channels)
	}
	for _, tc := range []struct {
		nodes    []string
		channels []ChannelSpec
		err      string // "" when valid
	}{
		{[]string{"alice", "bob"}, []ChannelSpec{{"bob", "alice"}}, ""},
		{[]string{"alice"}, []ChannelSpec{}, ""},
		{[]string{"dave", "erin", "frank", "g0", "alice"}, []ChannelSpec{{"dave", "erin"}, {"erin", "frank"}, {"dave", "erin"}}, ""},
		{[]string{"alice", "bob"}, nil, `no node "carol"`}, // the default graph needs carol
		{[]string{"alice", "bob"}, []ChannelSpec{{"bob", "dave"}}, `no node "dave"`},
		{[]string{"alice", "bob"}, []ChannelSpec{{"bob", "bob"}}, "itself"},
		{[]string{"alice", "alice"}, []ChannelSpec{}, "twice"},
		{[]string{"alice", "btcd"}, []ChannelSpec{}, "reserved"},
		{[]string{"alice", "logs"}, []ChannelSpec{}, "reserved"},
		{[]string{"alice", "btcd-backup"}, []ChannelSpec{}, "lower case"},
		{[]string{"Alice"}, []ChannelSpec{}, "lower case"},
		{[]string{"2fast"}, []ChannelSpec{}, "lower case"},
		{[]string{""}, []ChannelSpec{}, "lower case"},
	} {
		opts := base
		opts.Nodes, opts.Channels = tc.nodes, tc.channels
		o, err := opts.resolve(ctx)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%v %v: %v", tc.nodes, tc.channels, err)
		case tc.err == "" && (!slices.Equal(o.Nodes, tc.nodes) || len(o.Channels) != len(tc.channels) || o.Channels == nil):
			t.Errorf("%v %v resolved to %v %v", tc.nodes, tc.channels, o.Nodes, o.Channels)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%v %v: error %v, want one saying %q", tc.nodes, tc.channels, err, tc.err)
		}
	}
}

// TestNetworkGraph checks that a network's node set and graph come from its
// state, defaulting for a state file that has none.
func TestNetworkGraph(t *testing.T) {
	lay := layout{dir: t.TempDir()}
	n := newNetwork(nil, lay, state{Mode: ModeProcess, Ports: map[string]NodePorts{}})
	if !slices.Equal(n.Nodes(), LNDNodes()) || !slices.Equal(n.Channels(), BootstrapChannels()) {
		t.Fatalf("graph of a state without one = %v %v", n.Nodes(), n.Channels())
	}
	st := state{Mode: ModeProcess, Project: "p", WorkDir: lay.dir, Ports: map[string]NodePorts{"dave": {RPC: 5, P2P: 6}},
		Nodes: []string{"dave", "erin"}, Channels: []ChannelSpec{}}
	n = newNetwork(nil, lay, st)
	if err := n.save(); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(lay)
	if err != nil {
		t.Fatal(err)
	}
	n = newNetwork(nil, lay, got)
	if !slices.Equal(n.Nodes(), st.Nodes) || n.Channels() == nil || len(n.Channels()) != 0 {
		t.Fatalf("graph after a round trip = %v %#v", n.Nodes(), n.Channels())
	}
	if n.Node("dave") == nil || n.Node(Alice) != nil || n.Node(BtcdNode) != nil {
		t.Fatal("Node does not follow the node set")
	}
	if err := n.checkName("erin"); err != nil {
		t.Fatal(err)
	}
	if err := n.checkName(Bob); err == nil || !strings.Contains(err.Error(), "have btcd, dave, erin") {
		t.Fatalf("checkName(bob) = %v", err)
	}
	if info := n.Info(); len(info.Nodes) != 2 || info.Nodes[0].Name != "dave" || info.Nodes[0].RPCAddr != "127.0.0.1:5" {
		t.Fatalf("info = %+v", info.Nodes)
	}
	if _, err := n.Client(Alice); err == nil {
		t.Fatal("a client of a node not in the set")
	}
}

func TestOpenRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  string
		want bool
	}{
		{"rpc error: code = Unknown desc = peer 03b7b0 disconnected", true},
		{"rpc error: code = Unknown desc = peer 03b7b0 is not online", true},
		{"server is still in the process of starting", true},
		{"not enough witness outputs to create funding transaction, need 0.1 BTC only have 0 BTC available: insufficient funds", true},
		{"channel too large", false},
		{"invalid pubkey", false},
	} {
		if got := openRetryable(errors.New(tc.err)); got != tc.want {
			t.Errorf("openRetryable(%q) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// A wait must not give up on a node because docker itself did not answer
// in time: on a loaded machine the wait's deadline killed "docker ps", and
// that was taken for the node being gone.
func TestDockerAliveWhenDockerDoesNotAnswer(t *testing.T) {
	d := &dockerBackend{project: "l402d-test-none"}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := d.alive(ctx, "bob")
	var u unrecoverable
	if err == nil || errors.As(err, &u) {
		t.Fatalf("alive with docker not answering: %v, want a recoverable error", err)
	}
	if err := WaitFor(context.Background(), "a node", 300*time.Millisecond, 10*time.Millisecond, func(ctx context.Context) error {
		return d.alive(ctx, "bob")
	}); err == nil {
		t.Fatal("waiting on a project with no containers succeeded")
	}
}
