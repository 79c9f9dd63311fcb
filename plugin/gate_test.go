package plugin

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/l402d/l402d/invoices"
)

// TestGateWiring runs a Plugin with the gate on and LND unreachable:
// the gate listens on its own address, serves discovery, answers 503
// where it would issue a challenge (verification needs no LND, issuing
// does), and the admin routes reload its services file.
func TestGateWiring(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "tls.cert")
	if err := os.WriteFile(cert, []byte("not a cert"), 0o600); err != nil {
		t.Fatal(err)
	}
	services := filepath.Join(dir, "services.yaml")
	writeServices := func(price string) {
		t.Helper()
		if err := os.WriteFile(services, []byte("services:\n  - name: api\n    upstream: http://127.0.0.1:1\n    price: "+price+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeServices("10")
	gateAddr := gateTestAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	p, err := New(ctx, Config{
		DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0",
		LND:  invoices.LNDConfig{Address: "127.0.0.1:1", TLSCertPath: cert, MacaroonDir: dir, Network: "regtest", RPCTimeout: time.Second},
		Gate: GateConfig{Listen: gateAddr, ServicesFile: services, ReloadInterval: -1},
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := p.Listen(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	api := "http://" + p.Addr().String()

	get := func(url, key string) (int, map[string]any) {
		t.Helper()
		var resp *http.Response
		deadline := time.Now().Add(10 * time.Second)
		for {
			req, _ := http.NewRequest("GET", url, nil)
			if key != "" {
				req.Header.Set("X-API-Key", key)
			}
			resp, err = http.DefaultClient.Do(req)
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if code, doc := get("http://"+gateAddr+"/.well-known/l402.json", ""); code != 200 || len(doc["services"].([]any)) != 1 {
		t.Fatalf("discovery: %d %v", code, doc)
	}
	if code, out := get("http://"+gateAddr+"/x", ""); code != 503 || out["code"] != "lnd_unavailable" {
		t.Fatalf("challenge without LND: %d %v", code, out)
	}
	if code, _ := get(api+"/api/gate/services", p.apiKey); code != 403 {
		t.Fatalf("services with the API key: %d", code)
	}
	writeServices("25")
	req, _ := http.NewRequest("POST", api+"/api/gate/reload", nil)
	req.Header.Set("X-API-Key", p.adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("reload: %d", resp.StatusCode)
	}
	code, out := get(api+"/api/gate/services", p.adminKey)
	svcs, _ := out["services"].([]any)
	if code != 200 || len(svcs) != 1 || svcs[0].(map[string]any)["priceSats"] != 25.0 {
		t.Fatalf("services after reload: %d %v", code, out)
	}
	if p.Gate() == nil || !strings.HasSuffix(p.Gate().Status().File, "services.yaml") {
		t.Fatal("Gate() does not expose the gate")
	}
}

func TestGateDisabledRoutes(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "tls.cert")
	if err := os.WriteFile(cert, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := New(ctx, Config{DataDir: filepath.Join(dir, "data"), LND: invoices.LNDConfig{Address: "127.0.0.1:1", TLSCertPath: cert, MacaroonDir: dir, Network: "regtest", RPCTimeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	req, _ := http.NewRequest("GET", "/api/gate/services", nil)
	req.Header.Set("X-API-Key", p.adminKey)
	w := &gateTestRecorder{h: http.Header{}}
	p.API().ServeHTTP(w, req)
	if w.code != 404 || !strings.Contains(w.body.String(), "gate_disabled") {
		t.Fatalf("%d %s", w.code, w.body.String())
	}
	if _, err := New(ctx, Config{DataDir: filepath.Join(dir, "data2"), Gate: GateConfig{ServicesFile: "x.yaml"},
		LND: invoices.LNDConfig{Address: "127.0.0.1:1", TLSCertPath: cert, MacaroonDir: dir, Network: "regtest"}}); err == nil {
		t.Fatal("a services file without a gate address was accepted")
	}
}

type gateTestRecorder struct {
	h    http.Header
	code int
	body strings.Builder
}

func (r *gateTestRecorder) Header() http.Header { return r.h }
func (r *gateTestRecorder) WriteHeader(c int)   { r.code = c }
func (r *gateTestRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = 200
	}
	return r.body.Write(b)
}

func gateTestAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
