//go:build itest

package itest

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHangupWithoutGate sends SIGHUP, the systemd unit's ExecReload, to an
// l402d without a gate: it once killed the process (only the gate caught
// the signal). It must log that there is nothing to reload and keep
// serving.
func TestHangupWithoutGate(t *testing.T) {
	d := startDaemon(t, testNet(t).Node("alice"))
	from := d.logSize()
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "l402d to log the SIGHUP", func() error {
		select {
		case <-done:
			t.Fatal("l402d exited on SIGHUP")
		default:
		}
		b, err := os.ReadFile(d.logPath)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b[from:]), "SIGHUP: nothing to reload") {
			return errors.New("not logged yet")
		}
		return nil
	})
	if ch := createChallenge(t, d, "/hangup/after", 3); ch.PaymentHash == "" {
		t.Fatal("no challenge after SIGHUP")
	}
}
