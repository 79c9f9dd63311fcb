//go:build itest

package itest

import (
	"context"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/l402d/l402d/regtest"
)

// TestRegtestGraph starts a second, smaller network with a node set and a
// channel graph of its own (Options.Nodes, Options.Channels), as another
// project's test would, and pays over its one channel.
func TestRegtestGraph(t *testing.T) {
	ctx := testCtx(t, 10*time.Minute)
	logDir, err := filepath.Abs(filepath.Join(".logs", "graph"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := regtest.Start(ctx, regtest.Options{
		Project:  itestProject() + "-graph",
		Nodes:    []string{"alice", "bob"},
		Channels: []regtest.ChannelSpec{{From: "bob", To: "alice"}},
		LogDir:   logDir,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop(context.Background()) })

	if got := n.Nodes(); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Fatalf("Nodes() = %v", got)
	}
	if n.Node(regtest.Carol) != nil {
		t.Fatal("the two-node network has a carol")
	}
	// A second launcher finds the same graph in state.json.
	a, err := regtest.Attach(ctx, regtest.Options{Project: n.Project(), WorkDir: n.WorkDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Info(), n.Info()) || !reflect.DeepEqual(a.Channels(), n.Channels()) {
		t.Fatalf("attached network:\n%+v %v\nwant\n%+v %v", a.Info(), a.Channels(), n.Info(), n.Channels())
	}

	pay(t, n, regtest.Bob, regtest.Alice, "", 2_000)
}
