package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHealthExitCodes holds `l402d health` to StartOS's codes: 0 healthy,
// 59 disabled, 60 starting, 61 loading (with the reason), 1 failed.
func TestHealthExitCodes(t *testing.T) {
	lndUp := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("lnd") == "required" && !lndUp {
			w.WriteHeader(503)
			w.Write([]byte(`{"status":"degraded","lnd":{"up":false,"error":"dial tcp 10.0.0.3:10009: connection refused"}}`))
			return
		}
		w.Write([]byte(`{"status":"ok"}`))
	}))
	defer srv.Close()
	api := srv.Listener.Addr().String()
	// A port nothing listens on: the daemon is not up yet.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(api)

	ctx := context.Background()
	for _, tt := range []struct {
		name, check, listen, gate string
		up                        bool
		code                      int
		msg                       string
	}{
		{"api up", "api", api, "", false, 0, "answers"},
		{"api on a wildcard address", "api", "0.0.0.0:" + port, "", false, 0, "answers"},
		{"api not listening yet", "api", closed, "", false, 60, "does not answer"},
		{"lnd down", "lnd", api, "", false, 61, "connection refused"},
		{"lnd up", "lnd", api, "", true, 0, "reaches LND"},
		{"gate off", "gate", api, "", false, 59, "gate is off"},
		{"gate up", "gate", api, api, false, 0, "gate answers"},
		{"gate not listening yet", "gate", api, closed, false, 60, "does not answer"},
		{"unknown check", "disk", api, "", false, 1, "want api"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lndUp = tt.up
			code, msg := health(ctx, tt.check, tt.listen, tt.gate, "")
			if code != tt.code || !strings.Contains(msg, tt.msg) {
				t.Fatalf("got %d %q, want %d and %q", code, msg, tt.code, tt.msg)
			}
		})
	}
}

// TestKeyEnv: --api-key-env and --admin-key-env read the keys from the
// variables they name, and refuse a missing or short one clearly.
func TestKeyEnv(t *testing.T) {
	c, err := parse(t, map[string]string{"APP_PASSWORD": "0123456789abcdef0123", "L402D_ADMIN_KEY_ENV": "APP_PASSWORD"})
	if err != nil || c.AdminKey != "0123456789abcdef0123" || c.APIKey != "" {
		t.Fatalf("admin key from APP_PASSWORD: %q %q %v", c.AdminKey, c.APIKey, err)
	}
	c, err = parse(t, map[string]string{"MYKEY": "  fedcba9876543210  "}, "--api-key-env", "MYKEY")
	if err != nil || c.APIKey != "fedcba9876543210" {
		t.Fatalf("api key from MYKEY: %q %v", c.APIKey, err)
	}
	if _, err := parse(t, map[string]string{"SHORT": "abc"}, "--api-key-env", "SHORT"); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Fatalf("short key: %v", err)
	}
	if _, err := parse(t, nil, "--admin-key-env", "L402D_TEST_UNSET_VARIABLE"); err == nil || !strings.Contains(err.Error(), "not set") {
		t.Fatalf("unset variable: %v", err)
	}
}
