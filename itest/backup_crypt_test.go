//go:build itest

package itest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupEncrypted: l402d with --db.keyfile writes backups that do not
// hold its challenges' secrets in clear, and l402d restore takes such a
// backup only with the same key file; restored, the token paid before the
// backup verifies.
func TestBackupEncrypted(t *testing.T) {
	n := testNet(t)
	keyFile := filepath.Join(t.TempDir(), "db.key")
	d := startDaemon(t, n.Node("alice"), "--db.keyfile", keyFile)
	paid := createChallenge(t, d, "/backup/sealed", 14)
	pre := payInvoice(t, "bob", paid.Invoice)
	waitSettled(t, d, paid.PaymentHash, 14)

	file := filepath.Join(t.TempDir(), "l402d.backup")
	if out, err := exec.Command(binPath(t, "l402cli"), "--rpcserver", d.listen, "--datadir", d.dataDir, "backup", "-o", file).CombinedOutput(); err != nil {
		t.Fatalf("l402cli backup: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// The store keeps the macaroon and the invoice next to the root key:
	// in a clear backup both would be there verbatim.
	for _, secret := range []string{paid.Macaroon, paid.Invoice, paid.Resource} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Fatalf("the backup holds %.24s… in clear", secret)
		}
	}

	restore := func(args ...string) (string, error) {
		dir := filepath.Join(t.TempDir(), "data")
		out, err := exec.Command(binPath(t, "l402d"), append(append([]string{"--datadir", dir}, args...), "restore", "--from", file)...).CombinedOutput()
		return string(out), err
	}
	if out, err := restore(); err == nil || !strings.Contains(out, "encrypted") {
		t.Fatalf("restore without the key file: %v\n%s", err, out)
	}
	if out, err := restore("--db.keyfile", filepath.Join(t.TempDir(), "other.key")); err == nil || !strings.Contains(out, "another key") {
		t.Fatalf("restore with another key file: %v\n%s", err, out)
	}

	fresh := newDaemon(t, n.Node("alice"), "--db.keyfile", keyFile)
	cmd := exec.Command(binPath(t, "l402d"), "--datadir", fresh.dataDir, "--db.keyfile", keyFile, "restore", "--from", file)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "restored into") {
		t.Fatalf("restore with the key file: %v\n%s", err, out)
	}
	d.stop(t)
	fresh.start(t)
	if out := verifyToken(t, fresh, paid.Macaroon, pre, ""); !out.Valid {
		t.Fatalf("a token paid before the backup does not verify after restore: %v", out)
	}
}
