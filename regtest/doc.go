// Package regtest runs a real regtest Lightning network for l402d's tests
// and demos: one btcd and three LND nodes wired into a small routing graph.
//
// The nodes are
//
//   - alice: the producer's node (the one l402d runs beside),
//   - bob:   a consumer's node,
//   - carol: a routing node,
//
// with the channels bob→carol, carol→alice and bob→alice, each opened with
// half its capacity pushed to the other side so that every node can both pay
// and be paid: bob pays alice through carol or directly, alice pays bob
// through carol, carol pays alice and bob directly. Options.Nodes and
// Options.Channels pick other nodes and another graph; the first node is
// the miner's payee.
//
// The binaries are built from the module versions pinned in go.mod (see
// [EnsureBinaries]) and cached under .cache/bin/<key>/ in the module. A
// network runs in one of two modes: [ModeDocker], where each node is a
// container from a FROM-scratch image on its own docker network (see
// docker-compose.yml in this directory, rendered from
// docker-compose.yml.tmpl for other node sets), or [ModeProcess], where
// the same binaries run as local processes on free loopback ports. Tests
// talk to the nodes over gRPC with TLS and the admin macaroon, so the same
// test code runs in both modes.
//
// [Start] cleans whatever an aborted run with the same project left behind,
// starts the network and bootstraps it deterministically (mine, fund, open
// channels, wait for the graph, make one payment). [Network.Stop]
// removes everything again.
package regtest
