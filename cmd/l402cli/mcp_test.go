package main

import (
	"strings"
	"testing"
)

// TestMCPFailsFast: l402cli mcp with no daemon, or a refused key, exits 2
// with the fix on stderr and writes nothing to stdout (the MCP channel).
func TestMCPFailsFast(t *testing.T) {
	addr, dir := fakeL402d(t) // answers 401 without the key, 404 for /mcp
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--rpcserver", "127.0.0.1:1", "--datadir", dir, "mcp"}, "is l402d running"},
		{[]string{"--rpcserver", addr, "--datadir", dir, "--spendkey", "wrong", "mcp"}, "refused the API key"},
		{[]string{"--rpcserver", addr, "--datadir", dir, "--apikey", "wrong", "mcp", "--role", "producer"}, "refused the API key"},
		{[]string{"--rpcserver", addr, "--datadir", dir, "mcp"}, "serves no MCP"},
		{[]string{"--rpcserver", addr, "--datadir", t.TempDir(), "mcp"}, "reading the key"},
	} {
		code, out, errOut := run(t, tc.args...)
		if code != exitServer || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, out, errOut, exitServer, tc.want)
		}
	}
}
