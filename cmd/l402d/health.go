package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

// Exit codes of `l402d health`, those StartOS (0.3.x) gives meaning to in
// a health check (start-os backend/src/status/health_check.rs: 0 success,
// 59 disabled, 60 starting, 61 loading with the message on stderr, any
// other a failure).
const (
	exitHealthy  = 0
	exitDisabled = 59
	exitStarting = 60
	exitLoading  = 61
	exitFailed   = 1
)

// healthCommand is `l402d health`: one check, answered in exit codes a
// platform understands. It reads the same flags and --config as the
// daemon, so it finds the listeners and keys where the daemon put them.
func healthCommand() *cli.Command {
	return &cli.Command{
		Name: "health",
		Usage: "check a running l402d for a platform's health check, exiting 0 healthy, 59 disabled, 60 starting, " +
			"61 loading (message on stderr) or 1 failed (StartOS's codes); --check api, lnd or gate",
		Flags: []cli.Flag{&cli.StringFlag{Name: "check", Value: "api",
			Usage: "`WHAT` to check: api (the API answers), lnd (l402d reaches LND: /healthz?lnd=required), gate (the gate's port answers; 59 when the gate is off)"}},
		Action: func(c *cli.Context) error {
			code, msg := health(c.Context, c.String("check"), c.String("listen"), c.String("gate.listen"), healthKey(c))
			if code == exitHealthy {
				if msg != "" {
					fmt.Println(msg)
				}
				return nil
			}
			return cli.Exit(msg, code)
		},
	}
}

// healthKey is a key for /healthz's detail (LND's error), if one can be
// read without creating anything: the key env flags, else the key files.
func healthKey(c *cli.Context) string {
	for _, f := range []string{"api-key-env", "admin-key-env"} {
		if k, err := keyFromEnv(f, c.String(f)); err == nil && k != "" {
			return k
		}
	}
	for _, f := range []string{"api.key", "admin.key"} {
		if b, err := os.ReadFile(filepath.Join(c.String("datadir"), f)); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}

// health runs one check and returns its exit code and message.
func health(ctx context.Context, check, listen, gateListen, key string) (int, string) {
	switch check {
	case "api", "lnd":
	case "gate":
		if gateListen == "" {
			return exitDisabled, "the gate is off (no --gate.listen)"
		}
		addr, err := loopback(gateListen)
		if err != nil {
			return exitFailed, "--gate.listen: " + err.Error()
		}
		conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			return startingOr(err, "the gate does not answer at "+addr)
		}
		conn.Close()
		return exitHealthy, "the gate answers at " + addr
	default:
		return exitFailed, fmt.Sprintf("--check %q: want api, lnd or gate", check)
	}
	addr, err := loopback(listen)
	if err != nil {
		return exitFailed, "--listen: " + err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	url := "http://" + addr + "/healthz"
	if check == "lnd" {
		url += "?lnd=required"
	}
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return exitFailed, err.Error()
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return startingOr(err, "the API does not answer at "+addr)
	}
	defer resp.Body.Close()
	var h struct {
		Status string
		LND    struct {
			Up            bool
			Error         string
			SyncedToChain bool
		}
	}
	_ = json.NewDecoder(resp.Body).Decode(&h)
	switch {
	case check == "api" && resp.StatusCode == http.StatusOK:
		return exitHealthy, "the API answers (" + h.Status + ")"
	case check == "lnd" && resp.StatusCode == http.StatusOK:
		return exitHealthy, "l402d reaches LND"
	case check == "lnd" && resp.StatusCode == http.StatusServiceUnavailable:
		msg := "waiting for LND"
		if h.LND.Error != "" {
			msg += ": " + h.LND.Error
		}
		return exitLoading, msg
	}
	return exitFailed, "/healthz answered " + resp.Status
}

// startingOr calls a refused connection "starting" (the process is up but
// not listening yet, or restarting) and anything else a failure.
func startingOr(err error, msg string) (int, string) {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return exitStarting, msg + " yet"
	}
	return exitFailed, msg + ": " + err.Error()
}

// loopback turns a listen address into one to dial: a wildcard host is
// reached over loopback.
func loopback(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}
