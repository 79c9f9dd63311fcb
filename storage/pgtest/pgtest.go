// Package pgtest starts a throwaway PostgreSQL server for tests: the
// system's own server binaries (Debian's postgresql package), a cluster
// in a temporary directory, listening on a loopback port. Nothing here is
// a fake; it exists so that storage tests and integration tests run
// against the real engine l402d scales out on.
//
// As root (CI), the cluster is created and run as the unprivileged
// "postgres" user the package installs, because initdb refuses root.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/l402d/l402d/internal/freeport"
)

// ErrNoPostgres is returned by Start when no PostgreSQL server binaries
// are installed.
var ErrNoPostgres = errors.New("pgtest: no PostgreSQL server binaries (install Debian's postgresql package, or set L402D_PG_BIN)")

// Server is a running PostgreSQL server.
type Server struct {
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
	cred *syscall.Credential
	bin  string
	args []string // the postmaster's
	temp bool     // dir is Start's to remove

	mu   sync.Mutex
	dbs  int
	stop sync.Once
}

// Options tunes Start. The zero value is usable.
type Options struct {
	// Dir holds the cluster; empty means a new temporary directory that
	// Stop removes.
	Dir string
	// NoFsync turns fsync off: faster, and the same semantics unless the
	// machine itself crashes (a killed server still recovers every
	// commit from the WAL its processes handed the OS). For unit tests.
	NoFsync bool
	// Log receives the server's output; nil discards it.
	Log *os.File
}

// BinDir finds the server binaries: $L402D_PG_BIN, else the newest
// /usr/lib/postgresql/<version>/bin, else the directory of pg_ctl on
// PATH.
func BinDir() (string, error) {
	if d := os.Getenv("L402D_PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", ErrNoPostgres
}

// Start creates a cluster and starts a server on a free loopback port,
// returning once it accepts connections.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin}
	if s.cred, err = credential(); err != nil {
		return nil, err
	}
	s.dir = opts.Dir
	if s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "l402d-pg-*"); err != nil {
			return nil, err
		}
		s.temp = true
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, err
	}
	if s.cred != nil {
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return nil, fmt.Errorf("pgtest: handing %s to the postgres user: %w", s.dir, err)
		}
	}
	data := filepath.Join(s.dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		initdb := s.command(ctx, "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions")
		if out, err := initdb.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("pgtest: initdb: %w: %s", err, out)
		}
	}
	// Restart brings the server back on this port.
	ports, err := freeport.Ports(1)
	if err != nil {
		return nil, err
	}
	s.port = ports[0]
	s.args = []string{"-D", data, "-p", strconv.Itoa(s.port), "-k", s.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300", "-c", "shared_buffers=64MB"}
	if opts.NoFsync {
		s.args = append(s.args, "-c", "fsync=off")
	}
	if err := s.run(ctx, opts.Log); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// run starts the postmaster and waits until it accepts connections.
func (s *Server) run(ctx context.Context, log *os.File) error {
	// Not tied to ctx: the server lives until Stop or Kill.
	s.cmd = s.command(context.WithoutCancel(ctx), "postgres", s.args...)
	s.cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	if log != nil {
		s.cmd.Stdout, s.cmd.Stderr = log, log
	}
	done := make(chan struct{})
	s.done = done
	if err := s.cmd.Start(); err != nil {
		close(done)
		return fmt.Errorf("pgtest: starting postgres: %w", err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(done)
	}()
	return s.waitReady(ctx)
}

func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd
}

// credential returns the postgres user's when running as root, else nil.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root needs the postgres user (Debian's postgresql package creates it): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		conn, err := pgx.Connect(ctx, s.DSN("postgres"))
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-s.done:
			return fmt.Errorf("pgtest: postgres exited while starting: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres not ready: %w", err)
		case <-t.C:
		}
	}
}

// Port is the server's TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// DSN returns the connection string of database db.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// CreateDB creates database name (a fresh one per call when name is
// empty) and returns its DSN. An existing database is kept.
func (s *Server) CreateDB(ctx context.Context, name string) (string, error) {
	if name == "" {
		s.mu.Lock()
		s.dbs++
		name = "t" + strconv.Itoa(s.dbs)
		s.mu.Unlock()
	}
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return "", fmt.Errorf("pgtest: creating database %s: %w", name, err)
	}
	return s.DSN(name), nil
}

// Kill stops the server at once (SIGKILL to the postmaster), as a crash
// would; Restart brings it back on the same port and data.
func (s *Server) Kill() {
	s.signal(syscall.SIGKILL)
	<-s.done
}

func (s *Server) signal(sig syscall.Signal) {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

// Restart starts a killed server again on the same port and data,
// returning once it accepts connections (after its crash recovery).
func (s *Server) Restart(ctx context.Context) error {
	select {
	case <-s.done:
	default:
		return errors.New("pgtest: Restart of a running server")
	}
	return s.run(ctx, nil)
}

// Stop shuts the server down (fast shutdown) and removes a temporary
// directory Start made.
func (s *Server) Stop() {
	s.stop.Do(func() {
		if s.done != nil {
			s.signal(syscall.SIGINT)
			select {
			case <-s.done:
			case <-time.After(30 * time.Second):
				s.signal(syscall.SIGKILL)
				<-s.done
			}
		}
		if s.temp {
			_ = os.RemoveAll(s.dir)
		}
	})
}
