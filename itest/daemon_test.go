//go:build itest

package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/l402d/l402d/internal/freeport"
	"github.com/l402d/l402d/invoices/embedded"
	"github.com/l402d/l402d/plugin/apiclient"
	"github.com/l402d/l402d/regtest"
)

// binaries builds l402d and l402cli once per test run, from this checkout.
var binaries struct {
	once sync.Once
	dir  string
	err  error
}

// binPath returns the path of a freshly built command of this module.
func binPath(t testing.TB, name string) string {
	t.Helper()
	binaries.once.Do(func() {
		binaries.dir, binaries.err = os.MkdirTemp("", "l402d-itest-bin-")
		if binaries.err != nil {
			return
		}
		root, err := filepath.Abs("..")
		if err != nil {
			binaries.err = err
			return
		}
		// lnd's sub-server tags, as make build uses, so integrated mode
		// works; -trimpath and CGO_ENABLED=0 match the regtest lnd build,
		// so lnd's packages come from the build cache.
		cmd := exec.Command("go", "build", "-trimpath", "-tags", embedded.BuildTags, "-o", binaries.dir+string(os.PathSeparator), "./cmd/...")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binaries.err = fmt.Errorf("go build ./cmd/...: %v\n%s", err, out)
		}
	})
	if binaries.err != nil {
		t.Fatal(binaries.err)
	}
	return filepath.Join(binaries.dir, name)
}

// daemon is one l402d process beside one LND node of the network.
type daemon struct {
	t       testing.TB
	name    string
	node    regtest.Node
	dataDir string
	listen  string
	args    []string
	logPath string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	runStart int64 // the log's length when the running process started
}

// startDaemon starts l402d beside node with extra flags and waits until
// its API answers. It is stopped when the test ends.
func startDaemon(t testing.TB, node *regtest.Node, extra ...string) *daemon {
	t.Helper()
	d := newDaemon(t, node, extra...)
	d.start(t)
	return d
}

// newDaemon prepares an l402d beside node without starting it, so a test
// can adjust its arguments first. It is stopped when the test ends.
func newDaemon(t testing.TB, node *regtest.Node, extra ...string) *daemon {
	t.Helper()
	dir := t.TempDir()
	d := &daemon{
		t: t, name: node.Name, node: *node,
		dataDir: filepath.Join(dir, "data"),
		listen:  freeAddr(t),
		logPath: filepath.Join(dir, "l402d.log"),
	}
	if keep := os.Getenv("L402D_ITEST_KEEP_LOGS"); keep != "" {
		// Kept after the test, for reading what a passing run logged.
		if err := os.MkdirAll(keep, 0o755); err != nil {
			t.Fatal(err)
		}
		d.logPath = filepath.Join(keep, fmt.Sprintf("%s-%s-%d.log", strings.ReplaceAll(t.Name(), "/", "_"), node.Name, time.Now().UnixNano()))
	}
	d.args = append([]string{
		"--datadir", d.dataDir,
		"--listen", d.listen,
		"--network", "regtest",
		"--lnd.host", node.RPCAddr,
		"--lnd.tlscertpath", node.TLSCertPath,
		"--lnd.macaroondir", node.MacaroonDir,
		"--log.level", "debug",
	}, extra...)
	t.Cleanup(func() {
		d.stop(t)
		if t.Failed() {
			if b, err := os.ReadFile(d.logPath); err == nil {
				t.Logf("l402d (%s) log:\n%s", d.name, tail(string(b), 80))
			}
		}
	})
	return d
}

// withMacaroonPath replaces the macaroon dir flag with a single macaroon.
func withMacaroonPath(args []string, path string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		if args[i] == "--lnd.macaroondir" {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return append(out, "--lnd.macaroonpath", path)
}

func (d *daemon) start(t testing.TB) {
	t.Helper()
	d.spawn(t)
	d.waitAPI(t)
}

// spawn starts the process without waiting for its API, for a test that
// kills it while it starts (e.g. during the watcher's catch-up).
func (d *daemon) spawn(t testing.TB) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := logf.Stat(); err == nil {
		d.runStart = fi.Size()
	}
	cmd := exec.Command(binPath(t, "l402d"), d.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting l402d: %v", err)
	}
	d.cmd, d.done = cmd, make(chan struct{})
	go func(done chan struct{}) {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}(d.done)
}

// logSize returns the length of the daemon's log so far (all runs), so a
// test can read what one run writes.
func (d *daemon) logSize() int64 {
	fi, err := os.Stat(d.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// waitAPI waits until /healthz answers.
func (d *daemon) waitAPI(t testing.TB) {
	t.Helper()
	off := d.runStart
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-d.done:
			b, _ := os.ReadFile(d.logPath)
			t.Fatalf("l402d exited during start: %s\n%s", exitCause(b[min(off, int64(len(b))):]), tail(string(b), 40))
		default:
		}
		// Not t.Context(): a cleanup may restart a daemon.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := d.api("").Healthz(ctx, false)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("l402d did not answer on %s within 60s: %v", d.listen, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop(t testing.TB) {
	t.Helper()
	d.signal(t, syscall.SIGTERM)
}

// running reports whether the process was started and not stopped.
func (d *daemon) running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmd != nil
}

// kill9 kills the process as a crash would.
func (d *daemon) kill9(t testing.TB) {
	t.Helper()
	d.signal(t, syscall.SIGKILL)
}

func (d *daemon) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Errorf("l402d did not exit within 30s of %v", sig)
	}
}

// key reads one of the daemon's key files.
func (d *daemon) key(t testing.TB, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.dataDir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func (d *daemon) apiKey(t testing.TB) string   { return d.key(t, "api.key") }
func (d *daemon) adminKey(t testing.TB) string { return d.key(t, "admin.key") }

// spendKey is the spend key, which exists only with --consumer.enable.
func (d *daemon) spendKey(t testing.TB) string { return d.key(t, "spend.key") }

// api is the daemon's REST API with key.
func (d *daemon) api(key string) *apiclient.Client {
	return &apiclient.Client{BaseURL: "http://" + d.listen, APIKey: key}
}

// producerAPI is the daemon's REST API with the producer key.
func (d *daemon) producerAPI(t testing.TB) *apiclient.Client { return d.api(d.apiKey(t)) }

// call does an HTTP request against the daemon's API with the key the
// path needs (the spend key for the consumer's endpoints, else the
// producer key) and decodes a JSON answer.
func (d *daemon) call(t testing.TB, method, path string, body any, hdr ...string) (int, map[string]any) {
	t.Helper()
	if strings.HasPrefix(path, "/api/consumer/") {
		return d.callKey(t, d.spendKey(t), method, path, body, hdr...)
	}
	return d.callKey(t, d.apiKey(t), method, path, body, hdr...)
}

func (d *daemon) callKey(t testing.TB, key, method, path string, body any, hdr ...string) (int, map[string]any) {
	t.Helper()
	code, out, err := wireCall(testCtx(t, 2*time.Minute), d.api(key), method, path, body, hdr...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return code, out
}

// wireCall sends one call built by the REST client (key, JSON body, hdr
// pairs) and returns the status and the answer's JSON as a map: the
// itests that use it check the wire itself, errors included. An answer
// that is not JSON is {"_raw": body}.
func wireCall(ctx context.Context, api *apiclient.Client, method, path string, body any, hdr ...string) (int, map[string]any, error) {
	req, err := api.Request(ctx, method, path, body)
	if err != nil {
		return 0, nil, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	hc := api.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	var out map[string]any
	if len(raw) > 0 && json.Unmarshal(raw, &out) != nil {
		out = map[string]any{"_raw": string(raw)}
	}
	return resp.StatusCode, out, nil
}

// waitFor polls cond until it returns nil or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %v", what, d, err)
}

// freeAddr returns a loopback address with a free port outside the
// ephemeral range, so a killed daemon can listen on it again.
func freeAddr(t testing.TB) string {
	t.Helper()
	ports, err := freeport.Ports(1)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", ports[0])
}

// exitCause picks from one run's log the lines that say why it ended: its
// errors and its last line, first in a failure's message so that a
// shortened CI log still shows them.
func exitCause(log []byte) string {
	var cause []string
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	for _, l := range lines {
		if strings.Contains(l, "level=ERROR") {
			cause = append(cause, l)
		}
	}
	if last := lines[len(lines)-1]; len(cause) == 0 || cause[len(cause)-1] != last {
		cause = append(cause, last)
	}
	return strings.Join(cause, "\n")
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
