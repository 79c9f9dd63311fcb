//go:build itest

package itest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestBackupRestore backs up a running l402d with l402cli while creates
// are in flight, restores the backup into a fresh data dir with
// l402d restore, starts a new daemon on it, and checks that tokens issued
// before the backup verify there and that it keeps recording settlements.
func TestBackupRestore(t *testing.T) {
	n := testNet(t)
	d := startDaemon(t, n.Node("alice"))
	paid := createChallenge(t, d, "/backup/paid", 12)
	paidPre := payInvoice(t, "bob", paid.Invoice)
	waitSettled(t, d, paid.PaymentHash, 12)
	unpaid := createChallenge(t, d, "/backup/unpaid", 13)

	// Creates keep running while the backup is taken.
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	l := newLoadClient(t, d)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			_, _, _ = l.create(ctx, fmt.Sprintf("/backup/busy/%d", i))
		}
	}()
	file := filepath.Join(t.TempDir(), "l402d.backup")
	cli := exec.Command(binPath(t, "l402cli"), "--rpcserver", d.listen, "--datadir", d.dataDir, "backup", "-o", file)
	out, err := cli.CombinedOutput()
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatalf("l402cli backup: %v\n%s", err, out)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
		t.Fatalf("backup file: %v %v", fi, err)
	}

	fresh := newDaemon(t, n.Node("alice"))
	restore := exec.Command(binPath(t, "l402d"), "--datadir", fresh.dataDir, "restore", "--from", file)
	if out, err := restore.CombinedOutput(); err != nil || !strings.Contains(string(out), "restored into") {
		t.Fatalf("l402d restore: %v\n%s", err, out)
	}
	if out, err := exec.Command(binPath(t, "l402d"), "--datadir", fresh.dataDir, "restore", "--from", file).CombinedOutput(); err == nil {
		t.Fatalf("a second restore over the store was accepted:\n%s", out)
	}
	d.stop(t) // one l402d per node is the deployment; the restored one takes over
	fresh.start(t)

	if out := verifyToken(t, fresh, paid.Macaroon, paidPre, ""); !out.Valid {
		t.Fatalf("a token issued before the backup does not verify after restore: %v", out)
	}
	if code, out := fresh.call(t, "GET", "/api/l402/challenges/"+unpaid.PaymentHash, nil); code != 200 || out["state"] != "pending" {
		t.Fatalf("unpaid challenge after restore: %d %v", code, out)
	}
	unpaidPre := payInvoice(t, "bob", unpaid.Invoice)
	waitSettled(t, fresh, unpaid.PaymentHash, 13)
	if out := verifyToken(t, fresh, unpaid.Macaroon, unpaidPre, ""); !out.Valid {
		t.Fatalf("a challenge from before the backup, paid after the restore: %v", out)
	}
	_, stats := fresh.call(t, "GET", "/api/l402/stats", nil)
	if tot := stats["total"].(map[string]any); num(tot["challengesSettled"]) != 2 || num(tot["revenueSats"]) != 25 {
		t.Fatalf("stats after restore: %v", tot)
	}
}
