package plugin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/l402d/l402d/invoices"
)

// TestREADMEDocumentsEveryEndpoint keeps README.md true: every route the
// API listener mounts, with the gate, consumer, MCP and dashboard on, must
// be in it. (POST /api/node/seed, mounted in integrated mode only, is
// checked by name.)
func TestREADMEDocumentsEveryEndpoint(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	dir := t.TempDir()
	cert := filepath.Join(dir, "tls.cert")
	services := filepath.Join(dir, "services.yaml")
	for f, body := range map[string]string{cert: "x", services: "services:\n  - name: api\n    upstream: http://127.0.0.1:1\n    price: 1\n"} {
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p, err := New(t.Context(), Config{
		DataDir: filepath.Join(dir, "data"),
		LND:     invoices.LNDConfig{Address: "127.0.0.1:1", TLSCertPath: cert, MacaroonDir: dir, Network: "regtest", RPCTimeout: time.Second},
		Gate:    GateConfig{Listen: "127.0.0.1:0", ServicesFile: services, ReloadInterval: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	routes := append(p.API().Routes(), "POST /api/node/seed")
	for _, r := range routes {
		_, path, ok := strings.Cut(r, " ")
		if !ok {
			path = r
		}
		if !strings.Contains(readme, path) {
			t.Errorf("README.md does not document %s", r)
		}
	}
	if len(routes) < 25 {
		t.Fatalf("only %d routes mounted: the test no longer sees them all", len(routes))
	}
}
