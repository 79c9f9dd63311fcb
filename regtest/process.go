package regtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// processBackend runs the nodes as local processes. Each process gets its
// own process group, so a Ctrl-C in the terminal reaches only the launcher,
// which then stops the nodes in order (LND before btcd), and so the nodes of
// `make regtest-up` outlive the command that started them.
type processBackend struct {
	bins Binaries
	lay  layout
	// args returns the current command line of a node.
	args func(name string) []string
	// ports returns the host ports a node must be able to bind.
	ports func(name string) NodePorts
	// setPID records a started node's pid (0 when it stopped) in the state
	// file, for a later Teardown from another process.
	setPID func(name string, pid int)
	// pids returns the recorded pids.
	pids func() map[string]int
	log  *slog.Logger

	mu    sync.Mutex
	procs map[string]*proc
}

// proc is a node process this launcher started and waits for.
type proc struct {
	pid     int
	done    chan struct{}
	waitErr error
}

func (p *processBackend) logPath(name string) string {
	return filepath.Join(p.lay.logDir(), name+".log")
}

func (p *processBackend) start(ctx context.Context, names ...string) error {
	for _, name := range names {
		if err := p.startOne(name); err != nil {
			return err
		}
	}
	return nil
}

func (p *processBackend) startOne(name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr := p.procs[name]; pr != nil {
		select {
		case <-pr.done:
		default:
			return nil // already running
		}
	}
	if pid := p.pids()[name]; pid != 0 && !processGone(pid) && p.ownsPID(pid) {
		return nil // started by an earlier launcher (Attach) and running
	}
	ports := p.ports(name)
	if err := checkPortsFree(map[string]int{name + " RPC": ports.RPC, name + " P2P": ports.P2P}); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	bin := p.bins.Lnd
	if name == BtcdNode || name == btcdBackup {
		bin = p.bins.Btcd
	}
	if err := os.MkdirAll(p.lay.logDir(), 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(p.logPath(name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child keeps its own descriptor
	fmt.Fprintf(logf, "==== %s: starting %s\n", time.Now().Format(time.RFC3339Nano), name)
	cmd := exec.Command(bin, p.args(name)...)
	cmd.Dir = p.lay.nodeDir(name)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s (%s): %w", name, bin, err)
	}
	pr := &proc{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		pr.waitErr = cmd.Wait()
		close(pr.done)
	}()
	if p.procs == nil {
		p.procs = map[string]*proc{}
	}
	p.procs[name] = pr
	p.setPID(name, pr.pid)
	return nil
}

// stop sends SIGTERM and waits up to 30 s before SIGKILL.
func (p *processBackend) stop(ctx context.Context, name string) error {
	if err := p.signalAndWait(ctx, name, syscall.SIGTERM, 30*time.Second); err != nil {
		return fmt.Errorf("stopping %s: %w", name, err)
	}
	return nil
}

func (p *processBackend) signalAndWait(ctx context.Context, name string, sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	pr := p.procs[name]
	p.mu.Unlock()
	defer p.setPID(name, 0)
	if pr != nil {
		if err := syscall.Kill(pr.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
		select {
		case <-pr.done:
			return nil
		case <-time.After(grace):
			p.log.Warn("node did not exit in time; killing it", "node", name, "signal", sig, "grace", grace)
			syscall.Kill(pr.pid, syscall.SIGKILL)
			<-pr.done
			return nil
		case <-ctx.Done():
			syscall.Kill(pr.pid, syscall.SIGKILL)
			return ctx.Err()
		}
	}
	// A process of an earlier launcher (Attach, or leftovers): only its
	// recorded pid is known.
	pid := p.pids()[name]
	if pid == 0 || !p.ownsPID(pid) {
		return nil
	}
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	err := WaitFor(ctx, fmt.Sprintf("%s (pid %d) to exit", name, pid), grace, 50*time.Millisecond, func(context.Context) error {
		if processGone(pid) {
			return nil
		}
		return errors.New("still running")
	})
	if err != nil {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	return nil
}

// ownsPID reports whether pid runs one of this network's binaries with this
// network's directory, so that a recycled pid is never signalled.
func (p *processBackend) ownsPID(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		out, err := exec.Command("ps", "-o", "command=", "-p", fmt.Sprint(pid)).Output()
		if err != nil {
			return false
		}
		cmdline = out
	}
	return strings.Contains(string(cmdline), p.lay.dir+string(filepath.Separator))
}

// alive returns nil if name's process runs, else an [Unrecoverable] error
// with how it ended and its last log lines.
func (p *processBackend) alive(ctx context.Context, name string) error {
	p.mu.Lock()
	pr := p.procs[name]
	p.mu.Unlock()
	if pr == nil {
		pid := p.pids()[name]
		if pid != 0 && !processGone(pid) {
			return nil
		}
		return Unrecoverable(fmt.Errorf("%s is not running", name))
	}
	select {
	case <-pr.done:
		return Unrecoverable(fmt.Errorf("%s exited (%v); last lines of %s:\n%s", name, pr.waitErr, p.logPath(name), tailFile(p.logPath(name), 25)))
	default:
		return nil
	}
}

func (p *processBackend) logs(ctx context.Context, name string, w io.Writer) error {
	f, err := os.Open(p.logPath(name))
	if errors.Is(err, os.ErrNotExist) {
		_, err = fmt.Fprintf(w, "(%s was never started)\n", name)
		return err
	}
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// teardown kills every node (their data is about to be deleted), the LND
// nodes first.
func (p *processBackend) teardown(ctx context.Context) error {
	kill := func(names ...string) error {
		var fns []func() error
		for _, name := range names {
			fns = append(fns, func() error {
				if err := p.signalAndWait(ctx, name, syscall.SIGKILL, 10*time.Second); err != nil {
					return fmt.Errorf("killing %s: %w", name, err)
				}
				return nil
			})
		}
		return parallel(fns...)
	}
	// The LND nodes are whatever else runs: the ones this launcher
	// started and the ones the state file records.
	p.mu.Lock()
	names := map[string]bool{}
	for name := range p.procs {
		names[name] = true
	}
	p.mu.Unlock()
	for name := range p.pids() {
		names[name] = true
	}
	var lnd []string
	for name := range names {
		if name != BtcdNode && name != btcdBackup {
			lnd = append(lnd, name)
		}
	}
	return errors.Join(kill(lnd...), kill(BtcdNode, btcdBackup))
}

// processGone reports whether pid has exited (a zombie counts as exited:
// its parent, maybe an init that reaps lazily, just has not collected it).
func processGone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] == 'Z'
	}
	return false
}

// tailFile returns the last n lines of path.
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > 256<<10 {
		f.Seek(-256<<10, io.SeekEnd)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
