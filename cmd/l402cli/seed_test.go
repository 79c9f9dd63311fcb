package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSeedL402d answers POST /api/node/seed as l402d does: the words once
// to the admin key, then 410.
func fakeSeedL402d(t *testing.T) (addr, datadir string) {
	t.Helper()
	var mu sync.Mutex
	shown := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Method != "POST" || r.URL.Path != "/api/node/seed":
			w.WriteHeader(404)
			json.NewEncoder(w).Encode(map[string]string{"error": "no such endpoint", "code": "not_found"})
		case r.Header.Get("X-API-Key") != "admin":
			w.WriteHeader(403)
			json.NewEncoder(w).Encode(map[string]string{"error": "this endpoint needs the admin key", "code": "forbidden"})
		case shown:
			w.WriteHeader(410)
			json.NewEncoder(w).Encode(map[string]string{"error": "the wallet seed was already shown", "code": "seed_already_shown", "fix": "read the seed file"})
		default:
			shown = true
			words := make([]string, 24)
			for i := range words {
				words[i] = "word" + string(rune('a'+i))
			}
			json.NewEncoder(w).Encode(map[string]any{"mnemonic": words, "network": "regtest", "createdAt": "2026-11-21T08:00:00Z", "warning": "keep it offline"})
		}
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	for f, k := range map[string]string{"api.key": "api", "admin.key": "admin"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(k+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return srv.Listener.Addr().String(), dir
}

func TestNodeSeed(t *testing.T) {
	addr, dir := fakeSeedL402d(t)
	runSeed := func(args ...string) (int, string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		err := newApp(strings.NewReader(""), &stdout, &stderr).Run(append([]string{"l402cli", "--rpcserver", addr, "--datadir", dir}, args...))
		return report(&stderr, err), stdout.String(), stderr.String()
	}

	// Not a terminal and no --yes: refused before anything is spent.
	if code, _, errOut := runSeed("node", "seed"); code != exitUsage || !strings.Contains(errOut, "--yes") {
		t.Fatalf("without --yes: %d %q", code, errOut)
	}
	code, out, errOut := runSeed("node", "seed", "--yes")
	var got struct{ Mnemonic []string }
	if code != exitOK || json.Unmarshal([]byte(out), &got) != nil || len(got.Mnemonic) != 24 || got.Mnemonic[23] != "wordx" {
		t.Fatalf("first showing: %d %q %q", code, out, errOut)
	}
	code, _, errOut = runSeed("node", "seed", "--yes")
	if code != exitUsage || !strings.Contains(errOut, "already shown") || !strings.Contains(errOut, "[seed_already_shown]") {
		t.Fatalf("second showing: %d %q", code, errOut)
	}
	if code, _, _ := runSeed("--adminkey", "api", "node", "seed", "--yes"); code != exitServer {
		t.Fatalf("with the API key: %d", code)
	}
}

func TestPrintSeed(t *testing.T) {
	words := make([]string, 24)
	for i := range words {
		words[i] = "w" + string(rune('a'+i))
	}
	var out bytes.Buffer
	printSeed(&client{stdout: &out}, words, "mainnet", time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC), "keep it offline")
	lines := strings.Split(out.String(), "\n")
	// Four columns, read top to bottom: the first row holds 1, 7, 13, 19.
	var first string
	for _, l := range lines {
		if strings.Contains(l, " 1. wa") {
			first = l
		}
	}
	for _, w := range []string{" 1. wa", " 7. wg", "13. wm", "19. ws"} {
		if !strings.Contains(first, w) {
			t.Fatalf("first row %q lacks %q:\n%s", first, w, out.String())
		}
	}
	if !strings.Contains(out.String(), "WARNING: keep it offline") || !strings.Contains(out.String(), "network: mainnet") {
		t.Fatalf("output:\n%s", out.String())
	}
}
