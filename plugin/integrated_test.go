package plugin

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/l402d/l402d/invoices/embedded"
)

func TestIntegratedNodeConfigDefaults(t *testing.T) {
	tests := []struct {
		name                      string
		in                        IntegratedConfig
		lndDir, walletDir, netwrk string
	}{
		{"defaults", IntegratedConfig{Enabled: true}, "/data/lnd", "/data", "regtest"},
		{"given", IntegratedConfig{Enabled: true, Node: embedded.Config{LndDir: "/x/lnd", WalletDir: "/secrets", Network: "signet"}}, "/x/lnd", "/secrets", "signet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.in.nodeConfig("/data", "regtest")
			if n.LndDir != tt.lndDir || n.WalletDir != tt.walletDir || n.Network != tt.netwrk {
				t.Fatalf("got %q %q %q", n.LndDir, n.WalletDir, n.Network)
			}
		})
	}
}

// writeSeed stores a seed file as the embedded package does.
func writeSeed(t *testing.T, dir string) {
	t.Helper()
	words := strings.Fields(strings.Repeat("abandon ", 23) + "art")
	b, _ := json.Marshal(embedded.Seed{Mnemonic: words, Network: "regtest"})
	if err := os.WriteFile(filepath.Join(dir, embedded.SeedFileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSeedHandler(t *testing.T) {
	dir := t.TempDir()
	writeSeed(t, dir)
	h := seedHandler(embedded.NewSeedStore(dir), slog.New(slog.DiscardHandler))
	remote := seedHandler(nil, slog.New(slog.DiscardHandler))

	tests := []struct {
		name       string
		h          http.Handler
		remoteAddr string
		header     [2]string
		status     int
		code       string
	}{
		{"from another machine", h, "192.0.2.7:4000", [2]string{}, http.StatusForbidden, "loopback_only"},
		{"through a proxy", h, "127.0.0.1:4000", [2]string{"X-Forwarded-For", "192.0.2.7"}, http.StatusForbidden, "loopback_only"},
		{"through a proxy (Forwarded)", h, "[::1]:4000", [2]string{"Forwarded", "for=192.0.2.7"}, http.StatusForbidden, "loopback_only"},
		{"remote mode", remote, "127.0.0.1:4000", [2]string{}, http.StatusNotFound, "not_integrated"},
		{"first time", h, "127.0.0.1:4000", [2]string{}, http.StatusOK, ""},
		{"second time", h, "[::1]:4000", [2]string{}, http.StatusGone, "seed_already_shown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/node/seed", nil)
			r.RemoteAddr = tt.remoteAddr
			if tt.header[0] != "" {
				r.Header.Set(tt.header[0], tt.header[1])
			}
			w := httptest.NewRecorder()
			tt.h.ServeHTTP(w, r)
			raw, _ := io.ReadAll(w.Body)
			var out map[string]any
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatalf("not JSON: %s", raw)
			}
			if w.Code != tt.status || (tt.code != "" && out["code"] != tt.code) {
				t.Fatalf("%d %s, want %d %s", w.Code, raw, tt.status, tt.code)
			}
			if w.Code == http.StatusOK {
				if words, _ := out["mnemonic"].([]any); len(words) != 24 || out["warning"] == "" {
					t.Fatalf("seed answer %s", raw)
				}
			}
		})
	}

	t.Run("no seed file", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/api/node/seed", nil)
		r.RemoteAddr = "127.0.0.1:4000"
		w := httptest.NewRecorder()
		seedHandler(embedded.NewSeedStore(t.TempDir()), slog.New(slog.DiscardHandler)).ServeHTTP(w, r)
		if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "no_seed") {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}
