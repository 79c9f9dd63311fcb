//go:build itest

package itest

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/l402d/l402d/regtest"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
)

// TestRegtestExample runs the Go example of regtest/README.md ("From Go")
// on a network of its own, as another project's test would; the lines
// between the markers are the README's, which regtest's
// TestReadmeExampleInSync keeps in step.
func TestRegtestExample(t *testing.T) {
	project := itestProject() + "-example" // beside the shared network
	// README example begin
	ctx := context.Background()
	n, err := regtest.Start(ctx, regtest.Options{Project: project})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop(context.Background()) })
	alice, err := n.Client(regtest.Alice) // also: n.Node(regtest.Alice) for addresses, cert, macaroons
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob, err := n.Client(regtest.Bob)
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	inv, err := alice.Lightning.AddInvoice(ctx, &lnrpc.Invoice{Value: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Pay(ctx, &routerrpc.SendPaymentRequest{PaymentRequest: inv.PaymentRequest, FeeLimitSat: 10}); err != nil {
		t.Fatal(err)
	}
	// README example end
}

// TestRegtestInfoJSON checks what `regtest -json info` prints for non-Go
// test suites against the running network it describes.
func TestRegtestInfoJSON(t *testing.T) {
	n := testNet(t)
	ctx := testCtx(t, 3*time.Minute)
	cmd := exec.CommandContext(ctx, "go", "run", "./regtest/cmd/regtest", "-json", "-project", n.Project(), "-dir", n.WorkDir(), "info")
	cmd.Dir = filepath.Join("..")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("regtest -json info: %v\n%s", err, out)
	}
	var got regtest.Info
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("regtest -json info printed no JSON: %v\n%s", err, out)
	}
	if want := n.Info(); !reflect.DeepEqual(got, want) {
		t.Fatalf("regtest -json info:\n%+v\nwant\n%+v", got, want)
	}
	if len(got.Nodes) != len(regtest.LNDNodes()) || got.Nodes[0].Pubkey == "" || got.Btcd.RPCAddr == "" {
		t.Fatalf("incomplete info: %+v", got)
	}
	c, err := regtest.Dial(got.Nodes[1])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := c.Lightning.GetInfo(ctx, &lnrpc.GetInfoRequest{})
	if err != nil || info.IdentityPubkey != got.Nodes[1].Pubkey {
		t.Fatalf("dialing %s from the JSON: %v, %v", got.Nodes[1].Name, info, err)
	}
}
