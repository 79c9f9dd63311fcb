//go:build itest

package itest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// umbrelAppPassword stands for the $APP_PASSWORD Umbrel derives for the
// app (deterministicPassword: true); the compose file makes it the admin
// key.
const umbrelAppPassword = "umbrel-app-password-0123456789abcdef"

// umbrelCompose copies packaging/umbrel/l402d/docker-compose.yml into dir
// with the gate's published port ("8403:8403", a fixed host port Umbrel
// reserves for the app) moved to gateAddr, so runs do not collide, and
// returns the copy's path.
func umbrelCompose(t *testing.T, dir, gateAddr string) string {
	t.Helper()
	root, _ := filepath.Abs("..")
	b, err := os.ReadFile(filepath.Join(root, "packaging/umbrel/l402d/docker-compose.yml"))
	must(t, err)
	if !strings.Contains(string(b), `"8403:8403"`) {
		t.Fatal(`the Umbrel compose file no longer publishes the gate as "8403:8403"`)
	}
	out := filepath.Join(dir, "docker-compose.yml")
	must(t, os.WriteFile(out, []byte(strings.Replace(string(b), `"8403:8403"`, `"`+gateAddr+`:8403"`, 1)), 0o644))
	return out
}

// dockerRun starts a container named name (docker run -d, args after the
// name), removed when the test ends, its log shown if the test failed.
func dockerRun(t *testing.T, name string, args ...string) {
	t.Helper()
	_ = exec.Command("docker", "rm", "-f", name).Run()
	if out, err := exec.Command("docker", append([]string{"run", "-d", "--name", name}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("docker run: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", name).CombinedOutput()
			t.Logf("container log:\n%s", tail(string(out), 60))
		}
		_ = exec.Command("docker", "rm", "-f", name).Run()
	})
}

// dockerGateway is the host's address on the regtest docker network.
func dockerGateway(t *testing.T) string {
	t.Helper()
	gw, err := exec.Command("docker", "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", testNet(t).DockerNetwork()).Output()
	if err != nil || net.ParseIP(strings.TrimSpace(string(gw))) == nil {
		t.Fatalf("the docker network's gateway: %q %v", gw, err)
	}
	return strings.TrimSpace(string(gw))
}

// sellThroughPublishedGate: the Umbrel container's admin key is the app
// password; with it the node runner gives the gate a service (no shell:
// through the admin API), and a buyer outside reaches it through the
// published gate port: 402, bob pays, 200.
func sellThroughPublishedGate(t *testing.T, c container, gateAddr string) {
	t.Helper()
	upstream := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "umbrel sells %s", r.URL.Path)
	}))
	l, err := net.Listen("tcp", "0.0.0.0:0")
	must(t, err)
	upstream.Listener = l
	upstream.Start()
	t.Cleanup(upstream.Close)
	_, port, _ := net.SplitHostPort(l.Addr().String())
	d := &daemon{t: t, name: c.name, listen: c.listen, dataDir: c.dataDir}
	if code, out := d.callKey(t, umbrelAppPassword, "GET", "/api/gate/services", nil); code != 200 {
		t.Fatalf("the app password is not the admin key: %d %v", code, out)
	}
	services := fmt.Sprintf("services:\n  - name: umbrelshop\n    path: /shop/*\n    upstream: http://%s:%s\n    price: 13\n", dockerGateway(t), port)
	putServices(t, d, umbrelAppPassword, services)

	url := "http://" + gateAddr + "/shop/item"
	var ch map[string]any
	waitFor(t, 30*time.Second, "the published gate port to answer 402", func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 402 {
			return fmt.Errorf("%s", resp.Status)
		}
		return json.NewDecoder(resp.Body).Decode(&ch)
	})
	pre := payInvoice(t, "bob", str(ch["invoice"]))
	req, _ := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	req.Header.Set("Authorization", "L402 "+str(ch["macaroon"])+":"+pre)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "umbrel sells /shop/item" {
		t.Fatalf("paid request through the published gate port: %s %s", resp.Status, body)
	}
}

// putServices gives the gate its services file the way a node runner
// without a shell does: PUT /api/admin/services with the admin key.
func putServices(t *testing.T, d *daemon, adminKey, services string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "PUT", "http://"+d.listen+"/api/admin/services", strings.NewReader(services))
	req.Header.Set("X-API-Key", adminKey)
	req.Header.Set("Content-Type", "application/yaml")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("PUT /api/admin/services: %s %s", resp.Status, body)
	}
}
