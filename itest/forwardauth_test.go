//go:build itest

package itest

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/l402d/l402d/l402"
)

// The forward-auth recipes of docs/gate.md, run as they are written there
// with the values filled in: the proxy asks the gate's /auth whether to
// let a request through and answers 402 with the gate's challenge when
// not. Keep these in step with the docs (TestForwardAuthRecipesInDocs).

const nginxRecipe = `
    # Every request under this location asks l402d first.
    location / {
        auth_request /_l402;
        auth_request_set $l402_challenge $upstream_http_www_authenticate;
        auth_request_set $l402_body      $upstream_http_x_l402_body;
        auth_request_set $l402_service   $upstream_http_x_l402_service;
        auth_request_set $l402_token     $upstream_http_x_l402_token_id;
        error_page 401 = @l402;

        proxy_set_header X-L402-Service  $l402_service;
        proxy_set_header X-L402-Token-Id $l402_token;
        proxy_set_header Authorization   "";  # the L402 credential is l402d's
        proxy_pass http://{{UPSTREAM}};
    }

    location = /.well-known/l402.json {
        proxy_pass http://{{GATE}};  # the price list, for buyers
    }

    location /l402/ {
        proxy_pass http://{{GATE}};  # the OpenAPI document and the quote endpoint
        proxy_set_header X-Forwarded-For $remote_addr;
    }

    location = /_l402 {
        internal;
        proxy_pass http://{{GATE}}/auth;
        proxy_pass_request_body off;
        proxy_set_header Content-Length    "";
        proxy_set_header X-Original-Method $request_method;
        proxy_set_header X-Original-URI    $request_uri;
        proxy_set_header Host              $host;
        proxy_set_header X-Forwarded-For   $remote_addr;
    }

    # auth_request passes on only 2xx, 401 and 403: l402d answers an
    # unpaid request 401 with the challenge, and this turns it into 402.
    location @l402 {
        add_header WWW-Authenticate $l402_challenge always;
        add_header Cache-Control no-store always;
        default_type application/json;
        return 402 $l402_body;
    }
`

const caddyRecipe = `
    @l402d path /.well-known/l402.json /l402/*
    handle @l402d {
        reverse_proxy {{GATE}}  # prices, the OpenAPI document, quotes
    }
    handle {
        forward_auth {{GATE}} {
            uri /auth
            copy_headers X-L402-Service X-L402-Token-Id
        }
        reverse_proxy {{UPSTREAM}} {
            header_up -Authorization  # the L402 credential is l402d's
        }
    }
`

func fill(recipe, gate, upstream string) string {
	return strings.NewReplacer("{{GATE}}", gate, "{{UPSTREAM}}", upstream).Replace(recipe)
}

// startNginx runs nginx (Debian's package) on listen with the recipe, in
// the foreground as the test's child, and returns its address.
func startNginx(t *testing.T, listen, gate, upstream string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/nginx") // not on a user's PATH
	}
	if err != nil {
		t.Fatalf("nginx is not installed (make deps installs it): %v", err)
	}
	dir := t.TempDir()
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    server {
        listen %[2]s;
%[3]s
    }
}
`, dir, listen, fill(nginxRecipe, gate, upstream))
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	startProxy(t, "nginx", listen, filepath.Join(dir, "error.log"), bin, "-p", dir, "-c", path)
	return listen
}

// startCaddy runs caddy (Debian's package) on listen with the recipe.
func startCaddy(t *testing.T, listen, gate, upstream string) string {
	t.Helper()
	bin, err := exec.LookPath("caddy")
	if err != nil {
		t.Fatalf("caddy is not installed (make deps installs it): %v", err)
	}
	dir := t.TempDir()
	conf := fmt.Sprintf(`{
    admin off
    auto_https off
    storage file_system %[1]s/data
}
http://%[2]s {
%[3]s
}
`, dir, listen, fill(caddyRecipe, gate, upstream))
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	startProxy(t, "caddy", listen, "", bin, "run", "--config", path, "--adapter", "caddyfile")
	return listen
}

// startProxy runs a proxy until the test ends and waits for it to listen.
func startProxy(t *testing.T, name, listen, logFile, bin string, args ...string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			logs, _ := os.ReadFile(logFile)
			t.Logf("%s output:\n%s\n%s", name, tail(out.String(), 40), tail(string(logs), 40))
		}
	})
	waitFor(t, 30*time.Second, name+" to listen on "+listen, func() error {
		select {
		case <-exited:
			t.Fatalf("%s exited: %s", name, out.String())
		default:
		}
		resp, err := http.Get("http://" + listen + "/api/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

// TestForwardAuth puts alice's gate behind nginx (auth_request) and
// Caddy (forward_auth) as docs/gate.md shows: the proxies serve the
// upstream, and l402d only decides. Unpaid → 402 with a payable
// challenge; paid → the upstream, which sees the service and token id
// the gate vouched for and never the credential; a wrong or revoked
// token → 402; a path of no service → refused.
func TestForwardAuth(t *testing.T) {
	u := startGateUpstreams(t)
	g := startGateDaemon(t, gateServices(u, 6), "--gate.mint-rate", "100", "--gate.mint-burst", "1000",
		"--trusted-proxy", "127.0.0.1/32")
	proxies := map[string]string{
		"nginx": startNginx(t, freeAddr(t), g.gate, u.http),
		"caddy": startCaddy(t, freeAddr(t), g.gate, u.http),
	}
	for _, name := range []string{"nginx", "caddy"} {
		addr := proxies[name]
		t.Run(name, func(t *testing.T) {
			get := func(t *testing.T, path string, hdr ...string) gateResp {
				t.Helper()
				return (&gateDaemon{gate: addr}).get(t, path, hdr...)
			}

			// Buyers find the prices through the proxy.
			if d := get(t, "/.well-known/l402.json"); d.code != 200 || !strings.Contains(d.raw, `"/api/*"`) {
				t.Fatalf("discovery: %d %s", d.code, d.raw)
			}
			if d := get(t, "/l402/openapi.json"); d.code != 200 || !strings.Contains(d.raw, `"x-l402-pricing"`) {
				t.Fatalf("openapi: %d %s", d.code, d.raw)
			}

			unpaid := get(t, "/api/"+name+"/data")
			if unpaid.code != http.StatusPaymentRequired {
				t.Fatalf("unpaid: %d %v %s", unpaid.code, unpaid.header, unpaid.raw)
			}
			checkChallenge(t, unpaid, 6)
			if unpaid.json["service"] != "api" || unpaid.json["resource"] != "/api/*" {
				t.Fatalf("challenge body %v", unpaid.json)
			}
			pre := payInvoice(t, "bob", str(unpaid.json["invoice"]))
			auth := "L402 " + str(unpaid.json["macaroon"]) + ":" + pre

			paid := get(t, "/api/"+name+"/data?x=1", "Authorization", auth, "X-L402-Token-Id", "forged")
			mac, err := l402.DecodeMacaroon(str(unpaid.json["macaroon"]))
			if err != nil {
				t.Fatal(err)
			}
			id, err := l402.DecodeIdentifier(mac.Id())
			if err != nil {
				t.Fatal(err)
			}
			if paid.code != 200 || paid.json["path"] != "/api/"+name+"/data" || paid.json["authorization"] != "" ||
				paid.json["l402Service"] != "api" || paid.json["l402TokenId"] != id.TokenID.String() {
				t.Fatalf("paid: %d %s (want token id %s)", paid.code, paid.raw, id.TokenID)
			}

			// A free path passes, and what the client claims in the
			// gate's headers does not reach the upstream.
			free := get(t, "/api/health", "X-L402-Token-Id", "forged", "X-L402-Service", "forged")
			if free.code != 200 || free.json["l402TokenId"] == "forged" || free.json["l402Service"] == "forged" {
				t.Fatalf("free path: %d %s", free.code, free.raw)
			}

			// A client naming a free path in the other proxy's header is
			// refused, never let through to the paid one.
			for _, spoof := range []string{"X-Original-URI", "X-Forwarded-Uri"} {
				if r := get(t, "/api/"+name+"/data", spoof, "/api/health"); r.code < 400 {
					t.Fatalf("%s: /api/health: %d %s", spoof, r.code, r.raw)
				}
			}

			wrong := get(t, "/api/"+name+"/data", "Authorization", "L402 "+str(unpaid.json["macaroon"])+":"+strings.Repeat("0", 64))
			if wrong.code != http.StatusPaymentRequired || wrong.json["reason"] == "" {
				t.Fatalf("wrong preimage: %d %s", wrong.code, wrong.raw)
			}

			if code, out := g.callKey(t, g.adminKey(t), "POST", "/api/l402/tokens/revoke", map[string]any{"token": str(unpaid.json["macaroon"]), "reason": "itest"}); code != 200 {
				t.Fatalf("revoke: %d %v", code, out)
			}
			revoked := get(t, "/api/"+name+"/data", "Authorization", auth)
			if revoked.code != http.StatusPaymentRequired || revoked.json["reason"] != "revoked" {
				t.Fatalf("revoked: %d %s", revoked.code, revoked.raw)
			}

			// No service is priced at /nothing: refused, never let through.
			none := get(t, "/nothing/here")
			if none.code < 400 || none.code == http.StatusPaymentRequired {
				t.Fatalf("unpriced path: %d %s", none.code, none.raw)
			}
		})
	}
}

// TestForwardAuthRecipesInDocs keeps docs/gate.md's recipes the ones
// the test runs.
func TestForwardAuthRecipesInDocs(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "gate.md"))
	if err != nil {
		t.Fatal(err)
	}
	for name, recipe := range map[string]string{"nginx": nginxRecipe, "caddy": caddyRecipe} {
		want := fill(recipe, "127.0.0.1:8403", "127.0.0.1:8080")
		if !bytes.Contains(doc, []byte(want)) {
			t.Errorf("docs/gate.md does not hold the %s recipe the test runs; paste this:\n%s", name, want)
		}
	}
}
