package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/l402d/l402d/plugin/apiclient"
)

func TestExitFor(t *testing.T) {
	tests := []struct {
		status int
		code   string
		want   int
	}{
		{400, "invalid_field", exitUsage},
		{404, "not_found", exitUsage},
		{413, "body_too_large", exitUsage},
		{401, "unauthorized", exitServer},
		{403, "forbidden", exitServer},
		{403, "budget_exceeded", exitRefused},
		{403, "private_target", exitRefused},
		{403, "price_above_max", exitRefused},
		{202, "payment_in_flight", exitPayment},
		{502, "payment_failed", exitPayment},
		{502, "upstream_unreachable", exitUpstream},
		{503, "lnd_unavailable", exitServer},
		{500, "internal", exitServer},
	}
	for _, tt := range tests {
		if got := exitFor(tt.status, tt.code); got != tt.want {
			t.Errorf("%d %s: exit %d, want %d", tt.status, tt.code, got, tt.want)
		}
	}
}

// fakeL402d answers the few calls these tests make, as l402d would: the
// consumer's endpoints (and /mcp) with the spend key "s", the others with
// the producer key "k".
func fakeL402d(t *testing.T) (addr, datadir string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := "k"
		if strings.HasPrefix(r.URL.Path, "/api/consumer/") || r.URL.Path == "/mcp" {
			want = "s"
		}
		if r.Header.Get("X-API-Key") != want {
			w.WriteHeader(401)
			json.NewEncoder(w).Encode(map[string]string{"error": "missing or invalid API key", "code": "unauthorized", "field": "X-API-Key"})
			return
		}
		var req map[string]any
		json.NewDecoder(r.Body).Decode(&req)
		switch {
		case r.URL.Path == "/api/consumer/access" && req["url"] == "https://paid.example/x":
			h := w.Header()
			h.Set(apiclient.HeaderUpstream, "1")
			h.Set(apiclient.HeaderPaid, "true")
			h.Set(apiclient.HeaderAmountSats, "50")
			h.Set(apiclient.HeaderFeeMsat, "1500")
			h.Set(apiclient.HeaderPaymentHash, "abcd")
			h.Set("X-Up", "yes")
			w.Write([]byte("the body"))
		case r.URL.Path == "/api/consumer/access" && req["url"] == "https://broken.example/x":
			w.Header().Set(apiclient.HeaderUpstream, "1")
			w.WriteHeader(503)
			w.Write([]byte("down"))
		case r.URL.Path == "/api/consumer/access":
			w.WriteHeader(403)
			json.NewEncoder(w).Encode(map[string]any{"error": "budget exceeded: …", "code": "budget_exceeded", "field": "budget.perDaySats",
				"fix": "wait", "priceSats": 50, "paymentHash": "ef01"})
		case r.URL.Path == "/api/consumer/quote":
			json.NewEncoder(w).Encode(map[string]any{"url": req["url"], "status": 402, "paymentRequired": true, "priceSats": 50,
				"wouldPay": false, "refusal": map[string]any{"code": "price_above_max", "error": "too much", "fix": "raise it"}})
		default:
			w.WriteHeader(404)
			json.NewEncoder(w).Encode(map[string]string{"error": "no such endpoint", "code": "not_found"})
		}
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "api.key"), []byte("k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "spend.key"), []byte("s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.Listener.Addr().String(), dir
}

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := newApp(strings.NewReader(""), &stdout, &stderr).Run(append([]string{"l402cli"}, args...))
	return report(&stderr, err), stdout.String(), stderr.String()
}

func TestGetAndExitCodes(t *testing.T) {
	addr, dir := fakeL402d(t)
	base := []string{"--rpcserver", addr, "--datadir", dir}

	code, out, errOut := run(t, append(base, "get", "-i", "https://paid.example/x")...)
	if code != 0 || !strings.HasPrefix(out, "HTTP 200 OK\r\n") || !strings.Contains(out, "X-Up: yes") || strings.Contains(out, "X-L402d") ||
		!strings.HasSuffix(out, "the body") || !strings.Contains(errOut, "price 50 sat, paid (routing fee 1.5 sat), payment abcd") {
		t.Fatalf("paid get: %d\n%s\n%s", code, out, errOut)
	}
	if code, out, _ := run(t, append(base, "get", "-s", "https://broken.example/x")...); code != exitUpstream || out != "down" {
		t.Fatalf("upstream 503: %d %q", code, out)
	}
	code, out, errOut = run(t, append(base, "get", "https://refused.example/x")...)
	if code != exitRefused || !strings.Contains(errOut, "[budget_exceeded]") || !strings.Contains(errOut, "price: 50 sat") ||
		!strings.Contains(errOut, "fix: wait") || out != "" {
		t.Fatalf("refused get: %d %q %q", code, out, errOut)
	}
	// Piped (not a terminal): JSON on stdout, the exit code still says refused.
	code, out, _ = run(t, append(base, "get", "--dry-run", "https://paid.example/x")...)
	var q map[string]any
	if code != exitRefused || json.Unmarshal([]byte(out), &q) != nil || q["priceSats"] != 50.0 {
		t.Fatalf("dry run: %d %q", code, out)
	}
	if code, _, errOut := run(t, "--rpcserver", addr, "--datadir", t.TempDir(), "balance"); code != exitServer || !strings.Contains(errOut, "fix:") {
		t.Fatalf("no key: %d %s", code, errOut)
	}
	if code, _, _ := run(t, append(base, "--spendkey", "wrong", "balance")...); code != exitServer {
		t.Fatalf("wrong key: %d", code)
	}
	if code, _, _ := run(t, "--rpcserver", "127.0.0.1:1", "--datadir", dir, "balance"); code != exitServer {
		t.Fatalf("no l402d: %d", code)
	}
	for _, args := range [][]string{{"get"}, {"get", "https://a/", "-o", "x"}, {"--nope"}, {"invoice", "create", "ten"}, {"budget", "set"}} {
		if code, _, _ := run(t, append(base, args...)...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

// TestSpendCommandsUseSpendKey: l402cli pays with the spend key, never the
// producer key; without a spend key it says how to get one.
func TestSpendCommandsUseSpendKey(t *testing.T) {
	addr, dir := fakeL402d(t)
	if code, _, errOut := run(t, "--rpcserver", addr, "--datadir", dir, "--spendkey", "k", "get", "https://paid.example/x"); code != exitServer || !strings.Contains(errOut, "invalid API key") {
		t.Fatalf("get with the producer key as the spend key: %d %s", code, errOut)
	}
	if err := os.Remove(filepath.Join(dir, "spend.key")); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run(t, "--rpcserver", addr, "--datadir", dir, "get", "https://paid.example/x"); code != exitServer || !strings.Contains(errOut, "--consumer.enable") {
		t.Fatalf("get without a spend key: %d %s", code, errOut)
	}
}
