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

// TestMCPWiring: /mcp is mounted behind the keys and offers each key its
// tools (LND may be down: verification needs none): the producer key the
// producer's, the spend key the consumer's, the admin key all; without
// spending enabled there is no spend key and no consumer tool.
// --mcp.disable turns it off with a clear answer.
func TestMCPWiring(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "tls.cert")
	if err := os.WriteFile(cert, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	lnd := invoices.LNDConfig{Address: "127.0.0.1:1", TLSCertPath: cert, MacaroonDir: dir, Network: "regtest", RPCTimeout: time.Second}
	p, err := New(t.Context(), Config{DataDir: filepath.Join(dir, "data"), LND: lnd, MCP: MCPConfig{ApprovalThresholdSats: 100}, Consumer: ConsumerConfig{Enable: true}})
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
	count := func(key string) int {
		cs, err := connect(key)
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
		return n
	}
	spendKey, err := os.ReadFile(filepath.Join(dir, "data", SpendKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if a, s, all := count(p.apiKey), count(strings.TrimSpace(string(spendKey))), count(p.adminKey); a != 2 || s != 12 || all != 14 {
		t.Fatalf("tools: producer key %d (want 2), spend key %d (want 12), admin key %d (want 14)", a, s, all)
	}
	cs, err := connect(p.apiKey)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "verify_l402_payment", Arguments: map[string]any{"macaroon": "AgEL", "preimage": "zz"}})
	if err != nil || !res.IsError || !strings.Contains(res.Content[0].(*sdk.TextContent).Text, `"field":"preimage"`) {
		t.Fatalf("verify with a bad preimage: %v %+v", err, res)
	}

	nospend, err := New(t.Context(), Config{DataDir: filepath.Join(dir, "data3"), LND: lnd})
	if err != nil {
		t.Fatal(err)
	}
	defer nospend.Close()
	if _, err := os.Stat(filepath.Join(dir, "data3", SpendKeyFile)); !os.IsNotExist(err) {
		t.Fatalf("spend.key created without spending enabled: %v", err)
	}
	nsrv := httptest.NewServer(nospend.API())
	defer nsrv.Close()
	srv.URL = nsrv.URL
	if n := count(nospend.adminKey); n != 2 {
		t.Fatalf("spending off: the admin key gets %d tools, want the producer's 2", n)
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
