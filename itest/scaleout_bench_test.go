//go:build itest

package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
)

// BenchmarkScaleOut measures, in one run beside alice's real LND: REST
// verify (32 connections, warm) and create (one at a time and 8 at once)
// on a Badger l402d, on one l402d on Postgres, and on one and three
// Postgres replicas behind nginx as a round-robin balancer, with raw LND
// AddInvoice for scale.
// Run: go test -tags itest -run '^$' -bench ScaleOut -benchtime 1x ./itest/
func BenchmarkScaleOut(b *testing.B) {
	n := testNet(b)
	alice := lnd(b, n, "alice")
	ctx := testCtx(b, 20*time.Minute)
	_, dsn1 := startPostgres(b, "bench1")
	_, dsn3 := startPostgres(b, "bench3")

	badger := startDaemon(b, n.Node("alice"), "--log.level", "warn")
	one := startReplicas(b, 1, dsn1, "--log.level", "warn")
	three := startReplicas(b, 3, dsn3, "--log.level", "warn")
	targets := []struct {
		name, base, key string
	}{
		{"badger", "http://" + badger.listen, badger.apiKey(b)},
		{"postgres", "http://" + one.ds[0].listen, one.ds[0].apiKey(b)},
		// Through nginx (Debian's) as the balancer, on the same two
		// cores: one replica, then three.
		{"nginx-postgres-1", "http://" + startBalancerNginx(b, one), one.ds[0].apiKey(b)},
		{"nginx-postgres-3", "http://" + startBalancerNginx(b, three), three.ds[0].apiKey(b)},
	}
	var seq atomic.Int64
	for _, tg := range targets {
		c := benchClient(32)
		body, _ := json.Marshal(map[string]any{"resource": "/bench/verify", "priceSats": 10})
		var ch challenge
		if err := postJSON(ctx, c, tg.base+"/api/l402/challenges", tg.key, body, &ch); err != nil {
			b.Fatal(err)
		}
		pre := payInvoice(b, "bob", ch.Invoice)
		verifyBody, _ := json.Marshal(map[string]any{"macaroon": ch.Macaroon, "preimage": pre})
		b.Run(tg.name+"/verify", func(b *testing.B) {
			runLoad(ctx, 32, 20000, func(ctx context.Context) error {
				var out struct{ Valid bool }
				if err := postJSON(ctx, c, tg.base+"/api/l402/challenges/verify", tg.key, verifyBody, &out); err != nil {
					return err
				}
				if !out.Valid {
					return fmt.Errorf("invalid")
				}
				return nil
			}).report(b)
		})
		create := func(ctx context.Context) error {
			body, _ := json.Marshal(map[string]any{"resource": fmt.Sprintf("/bench/c/%d", seq.Add(1)), "priceSats": 10})
			return postJSON(ctx, c, tg.base+"/api/l402/challenges", tg.key, body, nil)
		}
		b.Run(tg.name+"/create", func(b *testing.B) { runLoad(ctx, 1, 300, create).report(b) })
		b.Run(tg.name+"/create-8", func(b *testing.B) { runLoad(ctx, 8, 800, create).report(b) })
	}
	addInvoice := func(ctx context.Context) error {
		_, err := alice.Lightning.AddInvoice(ctx, &lnrpc.Invoice{Value: 10, Memo: fmt.Sprintf("raw %d", seq.Add(1)), Expiry: 600})
		return err
	}
	b.Run("lnd-addinvoice", func(b *testing.B) { runLoad(ctx, 1, 300, addInvoice).report(b) })
	b.Run("lnd-addinvoice-8", func(b *testing.B) { runLoad(ctx, 8, 800, addInvoice).report(b) })
}

// startBalancerNginx runs Debian's nginx as a round-robin balancer over
// the replicas (HTTP/1.1 with a keepalive pool, as an operator sets one
// up) and returns its address.
func startBalancerNginx(b testing.TB, rs *replicaSet) string {
	b.Helper()
	bin, err := lookBin("nginx")
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	addr := freeAddr(b)
	var servers strings.Builder
	for _, d := range rs.ds {
		fmt.Fprintf(&servers, "        server %s;\n", d.listen)
	}
	userLine := ""
	if os.Geteuid() == 0 {
		userLine = "user root root;"
	}
	conf := fmt.Sprintf(`daemon off;
worker_processes 1;
%[1]s
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    keepalive_requests 1000000;
    upstream replicas {
%[3]s        keepalive 64;
    }
    server {
        listen %[4]s;
        location / {
            proxy_pass http://replicas;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`, userLine, dir, servers.String(), addr)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	startBenchProc(b, "nginx", dir, syscall.SIGTERM, bin, "-p", dir, "-c", path)
	waitListening(b, "nginx", dir, addr)
	return addr
}
