// Package itest holds l402d's integration tests. They run against a real
// regtest Lightning network (btcd and the LND nodes alice, bob and carol,
// see package regtest) that TestMain starts once per `go test` run and
// removes afterwards, also when a test fails, the run is interrupted
// (SIGINT, SIGTERM) or -timeout is about to expire. Whatever an earlier,
// killed run left behind is removed before starting. When a test fails,
// every node's log is written to itest/.logs/.
//
// Run with `make itest`, or `go test -tags itest ./itest/`; set
// L402D_REGTEST_MODE=process to run the nodes as local processes instead of
// docker containers, and L402D_ITEST_KEEP=1 to leave the network running
// after the tests (inspect it with `go run ./regtest/cmd/regtest -project
// l402d-itest -dir .run/l402d-itest info`, remove it with `... down`).
package itest
