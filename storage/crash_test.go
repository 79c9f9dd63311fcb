//go:build unix

package storage

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/l402d/l402d/l402"
)

// Environment of the crash child: the database directory and whether it
// runs with SyncWrites.
const (
	crashDirEnv  = "L402D_STORAGE_CRASH_DIR"
	crashSyncEnv = "L402D_STORAGE_CRASH_SYNC"
)

// TestCrashKeepsAcknowledgedRootKeys runs this test binary again as a child
// that creates root keys in a loop and prints each one once NewRootKey has
// returned, kills it with SIGKILL mid-stream, and checks that every printed
// key survives. It crashes the same directory twice so the second child
// starts from a recovered database.
func TestCrashKeepsAcknowledgedRootKeys(t *testing.T) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(dir, os.Getenv(crashSyncEnv) == "1")
		return
	}
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	tests := []struct {
		name       string
		syncWrites bool
	}{
		{"sync writes", true},
		{"explicit sync", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			acked := make(map[l402.TokenID][l402.RootKeySize]byte)
			for round := range 2 {
				n := runCrashChild(t, dir, tt.syncWrites, acked)
				t.Logf("round %d: %d keys acknowledged before SIGKILL", round, n)
			}
			opts := DefaultOptions(dir)
			opts.Logger = quietLogger()
			s := openStore(t, opts)
			for id, want := range acked {
				got, err := s.RootKey(t.Context(), id)
				if err != nil {
					t.Fatalf("acknowledged root key %s lost: %v", id, err)
				}
				if got != want {
					t.Fatalf("root key %s = %x after the crash, acknowledged %x", id, got, want)
				}
			}
		})
	}
}

// runCrashChild starts a child on dir, reads its acknowledgements into
// acked until it has printed a few hundred, kills it and returns how many
// it acknowledged.
func runCrashChild(t *testing.T, dir string, syncWrites bool, acked map[l402.TokenID][l402.RootKeySize]byte) int {
	t.Helper()
	syncFlag := "0"
	if syncWrites {
		syncFlag = "1"
	}
	return runKilledChild(t, "TestCrashKeepsAcknowledgedRootKeys", []string{crashDirEnv + "=" + dir, crashSyncEnv + "=" + syncFlag}, 300,
		func(line string) bool {
			id, key, ok := parseAck(line)
			if ok {
				acked[id] = key
			}
			return ok
		})
}

// runKilledChild runs this test binary again as a child running only
// test, with env added, feeds every stdout line to ack (which reports
// whether the line acknowledged something), SIGKILLs the child after
// killAfter acknowledgements, and returns how many lines it acknowledged
// in all (lines finished before it died count too).
func runKilledChild(t *testing.T, test string, env []string, killAfter int, ack func(line string) bool) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	if testPG != nil {
		// The child writes to the parent's server, in the database of
		// the directory it was given.
		dir := strings.SplitN(env[0], "=", 2)[1]
		opts := DefaultOptions(dir)
		onTestBackend(t, &opts)
		cmd.Env = append(cmd.Env, childDSNEnv+"="+opts.PostgresDSN)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	n, killed := 0, false
	r := bufio.NewReader(out)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			break // EOF after the kill; a line without '\n' was never acknowledged
		}
		if !ack(line) {
			continue // test framework output
		}
		if n++; n == killAfter && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
			// Keep reading: lines the child finished before dying were
			// acknowledged too.
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !killed || !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL after %d acks (err %v); stderr:\n%s", n, err, stderr.String())
	}
	return n
}

func parseAck(line string) (l402.TokenID, [l402.RootKeySize]byte, bool) {
	var id l402.TokenID
	var key [l402.RootKeySize]byte
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "ack" {
		return id, key, false
	}
	i, err1 := hex.DecodeString(f[1])
	k, err2 := hex.DecodeString(f[2])
	if err1 != nil || err2 != nil || len(i) != len(id) || len(k) != len(key) {
		return id, key, false
	}
	copy(id[:], i)
	copy(key[:], k)
	return id, key, true
}

// crashChild is the child's side: create root keys until killed. It gives up
// on its own after a while so an orphan cannot run forever.
func crashChild(dir string, syncWrites bool) {
	ctx := context.Background()
	opts := DefaultOptions(dir)
	opts.SyncWrites = syncWrites
	opts.Logger = quietLogger()
	opts.PostgresDSN = os.Getenv(childDSNEnv)
	s, err := Open(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		os.Exit(2)
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		id, err := l402.NewTokenID()
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		key, err := s.NewRootKey(ctx, id)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child: NewRootKey:", err)
			os.Exit(2)
		}
		// One write per line, so a line is either whole or missing.
		line := "ack " + id.String() + " " + hex.EncodeToString(key[:]) + "\n"
		if _, err := os.Stdout.WriteString(line); err != nil {
			os.Exit(2)
		}
	}
	fmt.Fprintln(os.Stderr, "child: not killed within a minute")
	os.Exit(3)
}
