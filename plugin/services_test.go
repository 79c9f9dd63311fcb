package plugin

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/l402d/l402d/invoices"
)

// offlinePlugin builds (does not run) a Plugin with gc as its gate and an
// LND that is not there, closed when the test ends.
func offlinePlugin(t *testing.T, gc GateConfig) *Plugin {
	t.Helper()
	dir := t.TempDir()
	cert := filepath.Join(dir, "tls.cert")
	if err := os.WriteFile(cert, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := New(t.Context(), Config{
		DataDir: filepath.Join(dir, "data"),
		LND:     invoices.LNDConfig{Address: "127.0.0.1:1", TLSCertPath: cert, MacaroonDir: dir, Network: "regtest", RPCTimeout: time.Second},
		Gate:    gc,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestAdminServicesFile: a node runner without a shell gives the gate its
// services through the admin API. A fresh install has no file (GET answers
// it empty); a file with mistakes is refused with each problem and its
// line, nothing written; a good one is written and served at once; only
// the admin key may do it.
func TestAdminServicesFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "services.yaml") // not there yet
	p := offlinePlugin(t, GateConfig{Listen: "127.0.0.1:0", ServicesFile: file, ReloadInterval: -1})
	do := func(method, key, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "/api/admin/services", strings.NewReader(body))
		r.Header.Set("X-API-Key", key)
		w := httptest.NewRecorder()
		p.API().ServeHTTP(w, r)
		return w
	}
	if w := do("GET", p.adminKey, ""); w.Code != 200 || w.Body.Len() != 0 {
		t.Fatalf("GET before any file: %d %q", w.Code, w.Body)
	}
	bad := "services:\n  - name: shop\n    path: /shop/*\n    upstream: http://127.0.0.1:1\n    price: -5\n"
	if w := do("PUT", p.adminKey, bad); w.Code != 422 || !strings.Contains(w.Body.String(), `"line":5`) || !strings.Contains(w.Body.String(), "price") {
		t.Fatalf("PUT bad: %d %s", w.Code, w.Body)
	}
	if _, err := os.Stat(file); err == nil {
		t.Fatal("a refused file was written")
	}
	good := "services:\n  - name: shop\n    path: /shop/*\n    upstream: http://127.0.0.1:1\n    price: 5\n"
	if w := do("PUT", p.apiKey, good); w.Code != 403 {
		t.Fatalf("PUT with the producer key: %d", w.Code)
	}
	if w := do("PUT", p.adminKey, good); w.Code != 200 || !strings.Contains(w.Body.String(), `"changed":true`) {
		t.Fatalf("PUT good: %d %s", w.Code, w.Body)
	}
	if n := p.Gate().Services().Len(); n != 1 {
		t.Fatalf("the gate serves %d services after PUT", n)
	}
	if w := do("GET", p.adminKey, ""); w.Code != 200 || w.Body.String() != good || w.Header().Get("Content-Type") != "application/yaml" {
		t.Fatalf("GET after PUT: %d %q", w.Code, w.Body)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file: %v %v", fi, err)
	}
	// One the parser takes but the gate refuses (no upstream) is put back.
	if w := do("PUT", p.adminKey, "services:\n  - name: shop\n    path: /shop/*\n    price: 5\n"); w.Code != 422 || !strings.Contains(w.Body.String(), "upstream") {
		t.Fatalf("PUT without an upstream: %d %s", w.Code, w.Body)
	}
	// An oversized body is refused and leaves the running file in place.
	if w := do("PUT", p.adminKey, strings.Repeat("#", 2<<20)); w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("PUT too large: %d", w.Code)
	}
	if b, _ := os.ReadFile(file); string(b) != good {
		t.Fatalf("file after refusals: %q", b)
	}
}
