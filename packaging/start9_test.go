package packaging

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const start9 = "start9"

// TestStart9Consistent holds the StartOS 0.3.5 package to what `embassy-sdk
// pack` and StartOS need (conventions read in Start9Labs'
// ride-the-lightning-startos at 4faab14, its last 0.3.5 manifest): every
// asset the manifest names exists (license, icon, instructions); every
// volume a procedure mounts is declared in volumes (BACKUP is StartOS's
// own); an assets volume's files are in assets/<volume id>/, including the
// config spec the compat image is given; every config_spec key is one of
// l402d's flags; the pointer volume is LND's main volume, read-only, at
// /public.
func TestStart9Consistent(t *testing.T) {
	var m map[string]any
	readYAML(t, filepath.Join(start9, "manifest.yaml"), &m)
	assets, _ := m["assets"].(map[string]any)
	for _, k := range []string{"license", "icon", "instructions"} {
		f, _ := assets[k].(string)
		if f == "" {
			t.Errorf("assets.%s not set", k)
			continue
		}
		if _, err := os.Stat(filepath.Join(start9, f)); err != nil {
			t.Errorf("assets.%s: %v", k, err)
		}
	}
	vols, _ := m["volumes"].(map[string]any)
	// Every mounts: map anywhere in the manifest.
	var mounts []map[string]any
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if k == "mounts" {
					if mm, ok := c.(map[string]any); ok {
						mounts = append(mounts, mm)
					}
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(m)
	if len(mounts) < 4 {
		t.Fatalf("found only %d mounts: the test no longer reads the manifest", len(mounts))
	}
	assetDirs := map[string]string{} // mount path → assets dir
	for _, mm := range mounts {
		for id, path := range mm {
			if id == "BACKUP" {
				continue
			}
			v, ok := vols[id].(map[string]any)
			if !ok {
				t.Errorf("volume %q is mounted but not declared in volumes", id)
				continue
			}
			if v["type"] == "assets" {
				dir := filepath.Join(start9, "assets", id)
				if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
					t.Errorf("assets volume %q: %s is missing", id, dir)
				}
				assetDirs[fmt.Sprint(path)] = dir
			}
		}
	}
	// Paths into an assets volume that a procedure's args name exist.
	b, _ := os.ReadFile(filepath.Join(start9, "manifest.yaml"))
	for mount, dir := range assetDirs {
		for _, ref := range regexp.MustCompile(regexp.QuoteMeta(mount)+`/([\w./-]+)`).FindAllStringSubmatch(string(b), -1) {
			if _, err := os.Stat(filepath.Join(dir, ref[1])); err != nil {
				t.Errorf("%s/%s is named but not in %s", mount, ref[1], dir)
			}
		}
	}
	lnd, _ := vols["lnd"].(map[string]any)
	if lnd["type"] != "pointer" || lnd["package-id"] != "lnd" || lnd["volume-id"] != "main" || lnd["path"] != "/public" || lnd["readonly"] != true {
		t.Errorf("lnd volume: %v", lnd)
	}
	if deps, _ := m["dependencies"].(map[string]any); deps["lnd"] == nil {
		t.Error("no lnd dependency")
	}
	spec := start9Spec(t)
	help, err := exec.Command(l402dBin(t), "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("l402d --help: %v\n%s", err, help)
	}
	for k := range spec {
		if !strings.Contains(string(help), "--"+k+" ") && !strings.Contains(string(help), "--"+k+"=") {
			t.Errorf("config_spec key %q is not an l402d flag", k)
		}
	}
}

// start9Spec reads the config spec.
func start9Spec(t *testing.T) map[string]map[string]any {
	var spec map[string]map[string]any
	readYAML(t, filepath.Join(start9, "assets", "compat", "config_spec.yaml"), &spec)
	return spec
}

// TestStart9DefaultConfigStarts runs the built l402d with the config the
// package gives on a fresh install (each config_spec default, the
// manifest's args; no LND: l402d starts without it) and checks that it
// stays up, serves, and that the manifest's health checks answer: api 0,
// lnd 61 (loading: no LND), gate 0. Paths under /data and the listen
// ports are moved into a temporary directory and free ports.
func TestStart9DefaultConfigStarts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs l402d")
	}
	dir := t.TempDir()
	bin := l402dBin(t)
	// LND's public volume: the platform guarantees its files (the LND
	// dependency is required); placeholders do here, since l402d starts
	// without reaching LND.
	lndPub := filepath.Join(dir, "lnd")
	os.MkdirAll(lndPub, 0o700)
	os.WriteFile(filepath.Join(lndPub, "tls.cert"), []byte("placeholder"), 0o600)
	os.WriteFile(filepath.Join(lndPub, "admin.macaroon"), []byte("placeholder"), 0o600)
	cfg := map[string]any{}
	for k, v := range start9Spec(t) {
		if d, ok := v["default"]; ok && d != nil {
			if s, ok := d.(string); ok {
				d = strings.ReplaceAll(s, "/mnt/lnd", lndPub)
			}
			cfg[k] = d
		}
	}
	gateDefault, _ := cfg["gate.listen"].(string)
	if gateDefault == "" {
		t.Fatal("the default config has no gate: this test checks the gate starts without a services file")
	}
	data := filepath.Join(dir, "data")
	os.MkdirAll(filepath.Join(data, "start9"), 0o700)
	raw, _ := yaml.Marshal(cfg)
	cfgFile := filepath.Join(data, "start9", "config.yaml")
	os.WriteFile(cfgFile, raw, 0o600)

	var m struct {
		Main struct{ Args []string }
	}
	readYAML(t, filepath.Join(start9, "manifest.yaml"), &m)
	api, gate := freePort(t), freePort(t)
	move := func(args []string) []string {
		out := make([]string, len(args))
		for i, a := range args {
			out[i] = strings.ReplaceAll(a, "/data", data)
		}
		return append(out, "--datadir", data, "--listen", api, "--gate.listen", gate)
	}
	args := move(m.Main.Args)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "L402D_LISTEN=", "L402D_GATE_LISTEN=")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("l402d %s\n%s", strings.Join(args, " "), log.String())
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			t.Fatalf("l402d exited with the default config: %v", err)
		default:
		}
		resp, err := http.Get("http://" + api + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("l402d's API did not answer")
		}
		time.Sleep(200 * time.Millisecond)
	}
	var hc struct {
		HealthChecks map[string]struct{ Args []string } `yaml:"health-checks"`
	}
	readYAML(t, filepath.Join(start9, "manifest.yaml"), &hc)
	want := map[string]int{"api": 0, "lnd": 61, "gate": 0}
	for name, code := range want {
		c, ok := hc.HealthChecks[name]
		if !ok {
			t.Errorf("no %s health check", name)
			continue
		}
		// The daemon's overrides go before the subcommand, as global flags.
		hargs := append(move(nil), c.Args...)
		for i, a := range hargs {
			hargs[i] = strings.ReplaceAll(a, "/data", data)
		}
		var out bytes.Buffer
		h := exec.Command(bin, hargs...)
		h.Env = cmd.Env
		h.Stdout, h.Stderr = &out, &out
		err := h.Run()
		got := 0
		if ee, ok := err.(*exec.ExitError); ok {
			got = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if got != code {
			t.Errorf("health check %s: exit %d (%s), want %d", name, got, strings.TrimSpace(out.String()), code)
		}
	}
}

var built struct {
	once sync.Once
	bin  string
	err  error
	out  []byte
}

// l402dBin builds cmd/l402d once per run.
func l402dBin(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "l402d-packaging-")
		if err != nil {
			built.err = err
			return
		}
		built.bin = filepath.Join(dir, "l402d")
		built.out, built.err = exec.Command("go", "build", "-o", built.bin, "../cmd/l402d").CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("go build ../cmd/l402d: %v\n%s", built.err, built.out)
	}
	return built.bin
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
