package plugin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	services := filepath.Join(t.TempDir(), "services.yaml")
	if err := os.WriteFile(services, []byte("services:\n  - name: api\n    upstream: http://127.0.0.1:1\n    price: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := offlinePlugin(t, GateConfig{Listen: "127.0.0.1:0", ServicesFile: services, ReloadInterval: -1})
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
