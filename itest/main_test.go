//go:build itest

package itest

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/l402d/l402d/regtest"
)

// defaultProject is the regtest project of the itests, distinct from
// `make regtest-up`'s so that both can run at once. L402D_ITEST_PROJECT
// overrides it, so that several itest runs can share a machine.
const defaultProject = "l402d-itest"

func itestProject() string {
	if p := os.Getenv("L402D_ITEST_PROJECT"); p != "" {
		return p
	}
	return defaultProject
}

// shared is the network every test uses; set by TestMain.
var shared *regtest.Network

// testNet returns the shared regtest network.
func testNet(t testing.TB) *regtest.Network {
	t.Helper()
	if shared == nil {
		t.Fatal("the regtest network is not running (TestMain did not start it)")
	}
	return shared
}

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	logDir, err := filepath.Abs(".logs")
	if err != nil {
		fmt.Fprintln(os.Stderr, "itest:", err)
		return 1
	}
	os.RemoveAll(logDir) // logs of an earlier run would mislead

	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	t0 := time.Now()
	n, err := regtest.Start(ctx, regtest.Options{Project: itestProject(), Logger: log, LogDir: logDir})
	if err != nil {
		fmt.Fprintf(os.Stderr, "itest: %v\n(node logs, if any, are in %s)\n", err, logDir)
		return 1
	}
	shared = n
	startTook := time.Since(t0)
	keep := os.Getenv("L402D_ITEST_KEEP") == "1"

	// teardown collects the logs if asked and removes the network, once.
	var once sync.Once
	teardown := func(collect bool, why string) {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if collect {
				if err := n.CollectLogs(ctx, logDir); err != nil {
					fmt.Fprintln(os.Stderr, "itest: collecting node logs:", err)
				} else {
					fmt.Fprintf(os.Stderr, "itest: %s; node logs are in %s\n", why, logDir)
				}
			}
			if keep && (why == "" || why == "tests failed") {
				fmt.Fprintf(os.Stderr, "itest: L402D_ITEST_KEEP=1: leaving the network running in %s\n", n.WorkDir())
				return
			}
			if err := n.Stop(ctx); err != nil {
				fmt.Fprintln(os.Stderr, "itest: tearing down the regtest network:", err)
			}
		})
	}

	// Tear down on SIGINT/SIGTERM, and shortly before -timeout makes the
	// test binary panic (which would leave the network behind).
	done := make(chan struct{})
	defer close(done)
	var deadline <-chan time.Time
	if d := testTimeout(); d > 0 {
		timer := time.NewTimer(d - time.Since(t0) - 30*time.Second)
		defer timer.Stop()
		deadline = timer.C
	}
	go func() {
		select {
		case <-done:
		case <-ctx.Done():
			teardown(true, "interrupted")
			os.Exit(2)
		case <-deadline:
			var stacks bytes.Buffer
			pprof.Lookup("goroutine").WriteTo(&stacks, 2)
			fmt.Fprintf(os.Stderr, "itest: -timeout expires in 30s; goroutines:\n%s\n", stacks.Bytes())
			teardown(true, "test timeout")
			os.Exit(2)
		}
	}()

	t1 := time.Now()
	code := m.Run()
	testsTook := time.Since(t1)
	if code != 0 {
		teardown(true, "tests failed")
	} else {
		teardown(false, "")
	}
	tm := n.Timings()
	fmt.Fprintf(os.Stderr, "itest: %s mode: network start %v (binaries %v, images %v, images to first routed payment %v), tests %v, total %v; stuck LND nodes restarted: %d\n",
		n.Mode(), startTook.Round(time.Millisecond), tm.Binaries.Round(time.Millisecond), tm.Images.Round(time.Millisecond),
		tm.Bootstrap.Round(time.Millisecond), testsTook.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond), n.StuckRestarts())
	return code
}

// testTimeout returns go test's -timeout (0 if none).
func testTimeout() time.Duration {
	f := flag.Lookup("test.timeout")
	if f == nil {
		return 0
	}
	if g, ok := f.Value.(flag.Getter); ok {
		if d, ok := g.Get().(time.Duration); ok {
			return d
		}
	}
	return 0
}
