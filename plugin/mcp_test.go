package plugin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/l402d/l402d/invoices"
)

type mcpKeyTransport struct{ key string }

func (k mcpKeyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if k.key != "" {
		r.Header.Set("X-API-Key", k.key)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestMCPWiring: /mcp is mounted behind the API key and offers every
// tool (LND may be down: verification needs none); --mcp.disable turns it
// off with a clear answer.
func TestMCPWiring(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "tls.cert")
	if err := os.WriteFile(cert, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	lnd := invoices.LNDConfig{Address: "127.0.0.1:1", TLSCertPath: cert, MacaroonDir: dir, Network: "regtest", RPCTimeout: time.Second}
	p, err := New(t.Context(), Config{DataDir: filepath.Join(dir, "data"), LND: lnd, MCP: MCPConfig{ApprovalThresholdSats: 100}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	srv := httptest.NewServer(p.API())
	defer srv.Close()

	connect := func(key string) (*sdk.ClientSession, error) {
		c := sdk.NewClient(&sdk.Implementation{Name: "t", Version: "1"}, nil)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		return c.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: srv.URL + "/mcp", HTTPClient: &http.Client{Transport: mcpKeyTransport{key}}}, nil)
	}
	if _, err := connect(""); err == nil {
		t.Fatal("connected without a key")
	}
	cs, err := connect(p.apiKey)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	n := 0
	for _, err := range cs.Tools(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 12 {
		t.Fatalf("%d tools, want 12", n)
	}
	res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "verify_l402_payment", Arguments: map[string]any{"macaroon": "AgEL", "preimage": "zz"}})
	if err != nil || !res.IsError || !strings.Contains(res.Content[0].(*sdk.TextContent).Text, `"field":"preimage"`) {
		t.Fatalf("verify with a bad preimage: %v %+v", err, res)
	}

	off, err := New(t.Context(), Config{DataDir: filepath.Join(dir, "data2"), LND: lnd, MCP: MCPConfig{Disable: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	req := httptest.NewRequest("POST", "/mcp", strings.NewReader("{}"))
	req.Header.Set("X-API-Key", off.apiKey)
	w := httptest.NewRecorder()
	off.API().ServeHTTP(w, req)
	if w.Code != 404 || !strings.Contains(w.Body.String(), "mcp_disabled") {
		t.Fatalf("disabled: %d %s", w.Code, w.Body.String())
	}
}
