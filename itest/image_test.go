//go:build itest

package itest

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/l402d/l402d/regtest"
)

// imageTag is the tag the tests build l402d's image under: `make image`'s
// l402d:latest, or $L402D_ITEST_IMAGE so that runs sharing a docker engine
// do not swap each other's image.
var imageTag = cmp.Or(os.Getenv("L402D_ITEST_IMAGE"), "l402d:latest")

var builtImage struct {
	once sync.Once
	err  error
}

// imageNet returns the regtest network for a test of the image, with the
// image built. Only a run that asked for process mode may go without the
// image (the test is skipped); one that fell back to it because docker is
// missing must not pass for a run that tested the image.
func imageNet(t *testing.T) *regtest.Network {
	t.Helper()
	n := testNet(t)
	if n.Mode() != regtest.ModeDocker {
		if os.Getenv(regtest.EnvMode) != string(regtest.ModeProcess) {
			t.Fatalf("the regtest network fell back to process mode (no docker engine or compose), so the image cannot be tested; install docker, or set %s=process to run without the image test", regtest.EnvMode)
		}
		t.Skipf("%s=process: the image needs the regtest docker network", regtest.EnvMode)
	}
	buildImage(t)
	return n
}

// buildImage builds l402d's container image from packaging/docker with
// this checkout's static binaries, once per run, as `make image` does.
func buildImage(t *testing.T) {
	t.Helper()
	l402d := binPath(t, "l402d")
	builtImage.once.Do(func() {
		ctx, err := os.MkdirTemp("", "l402d-image-")
		if err != nil {
			builtImage.err = err
			return
		}
		defer os.RemoveAll(ctx)
		for _, b := range []string{l402d, filepath.Join(filepath.Dir(l402d), "l402cli")} {
			raw, err := os.ReadFile(b)
			if err == nil {
				err = os.WriteFile(filepath.Join(ctx, filepath.Base(b)), raw, 0o755)
			}
			if err != nil {
				builtImage.err = err
				return
			}
		}
		if err := os.Mkdir(filepath.Join(ctx, "data"), 0o755); err != nil {
			builtImage.err = err
			return
		}
		root, _ := filepath.Abs("..")
		out, err := exec.Command("docker", "build", "-q", "-f", filepath.Join(root, "packaging/docker/Dockerfile"), "-t", imageTag, ctx).CombinedOutput()
		if err != nil {
			builtImage.err = fmt.Errorf("docker build: %v\n%s", err, out)
		}
	})
	if builtImage.err != nil {
		t.Fatal(builtImage.err)
	}
}

// container is l402d running in its image, reached over a published port.
type container struct {
	name, listen, dataDir string
}

// TestImage runs the built image on the regtest docker network against
// alice's LND, with LND's files mounted the way each node platform mounts
// them, and uses it: /healthz, the image's own health check, a challenge
// created, paid by bob and verified through it.
func TestImage(t *testing.T) {
	n := imageNet(t)
	alice := n.Node("alice")
	uid := fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())

	t.Run("umbrel", func(t *testing.T) {
		// The real packaging/umbrel compose file, with Umbrel's variables
		// set as Umbrel sets them for an app that depends on LND, plus an
		// override for this test: the regtest network, a published port,
		// and the user that owns the regtest files (Umbrel runs LND and
		// its apps as the same user, 1000), the image just built instead
		// of the pinned release, and the gate's port published on a free
		// loopback port instead of 8403.
		dir := t.TempDir()
		appData := filepath.Join(dir, "app")
		listen, gateAddr := freeAddr(t), freeAddr(t)
		composeFile := umbrelCompose(t, dir, gateAddr)
		override := filepath.Join(dir, "override.yml")
		must(t, os.WriteFile(override, []byte(fmt.Sprintf(`version: "3.7"
services:
  app_proxy:
    image: %s
    profiles: ["umbrel-only"]
  web:
    image: %[1]s
    user: "%[2]s"
    ports: ["%[3]s:8402"]
networks:
  default:
    external: true
    name: %[4]s
`, imageTag, uid, listen, n.DockerNetwork())), 0o644))
		must(t, os.MkdirAll(filepath.Join(appData, "data"), 0o700))
		project := "l402d-umbrel-" + strings.ReplaceAll(strings.ToLower(n.Project()), "_", "-")
		compose := func(args ...string) ([]byte, error) {
			cmd := exec.Command("docker-compose", append([]string{"-p", project, "-f", composeFile, "-f", override}, args...)...)
			cmd.Env = append(os.Environ(),
				"APP_DATA_DIR="+appData,
				"APP_LIGHTNING_NODE_DATA_DIR="+alice.LndDir,
				"APP_LIGHTNING_NODE_IP=alice",
				"APP_LIGHTNING_NODE_GRPC_PORT=10009",
				"APP_BITCOIN_NETWORK=regtest",
				"APP_PASSWORD="+umbrelAppPassword,
			)
			return cmd.CombinedOutput()
		}
		if out, err := compose("up", "-d", "web"); err != nil {
			t.Fatalf("docker-compose up: %v\n%s", err, out)
		}
		t.Cleanup(func() {
			if t.Failed() {
				out, _ := compose("logs", "--no-color", "web")
				t.Logf("container log:\n%s", tail(string(out), 60))
			}
			_, _ = compose("down", "-v", "--remove-orphans")
		})
		c := container{name: project + "_web_1", listen: listen, dataDir: filepath.Join(appData, "data")}
		useImage(t, c)
		sellThroughPublishedGate(t, c, gateAddr)
	})

	t.Run("startos", func(t *testing.T) {
		// StartOS publishes LND's tls.cert and admin.macaroon in its
		// public volume (mounted at /mnt/lnd) and writes the settings of
		// packaging/start9/config-spec.yaml to /data/start9/config.yaml.
		dir := t.TempDir()
		lndPub, data := filepath.Join(dir, "lnd"), filepath.Join(dir, "data")
		must(t, os.MkdirAll(lndPub, 0o700))
		must(t, os.MkdirAll(filepath.Join(data, "start9"), 0o700))
		copyFile(t, alice.TLSCertPath, filepath.Join(lndPub, "tls.cert"))
		copyFile(t, alice.AdminMacaroonPath, filepath.Join(lndPub, "admin.macaroon"))
		must(t, os.WriteFile(filepath.Join(data, "start9", "config.yaml"), []byte(
			"network: regtest\nlnd.host: alice:10009\nlnd.tlscertpath: /mnt/lnd/tls.cert\nlnd.macaroonpath: /mnt/lnd/admin.macaroon\nmax-price-sats: 1000000\n"), 0o600))
		listen := freeAddr(t)
		name := "l402d-startos-" + strings.ToLower(n.Project())
		dockerRun(t, name, "--user", uid,
			"--network", n.DockerNetwork(), "-p", listen+":8402",
			"-v", data+":/data", "-v", lndPub+":/mnt/lnd:ro",
			imageTag, "--config", "/data/start9/config.yaml")
		useImage(t, container{name: name, listen: listen, dataDir: data})
	})
}

// useImage checks a running l402d container end to end.
func useImage(t *testing.T, c container) {
	t.Helper()
	d := &daemon{t: t, name: c.name, listen: c.listen, dataDir: c.dataDir}
	waitFor(t, 60*time.Second, "the container's /healthz to report LND up", func() error {
		// The detail (LND up) needs a key; the container creates it.
		key, err := os.ReadFile(filepath.Join(c.dataDir, "api.key"))
		if err != nil {
			return err
		}
		h, err := d.api(strings.TrimSpace(string(key))).Healthz(t.Context(), false)
		if err != nil {
			return err
		}
		if h.Status != "ok" || !h.LND.Up {
			return fmt.Errorf("%+v", h)
		}
		return nil
	})
	waitFor(t, 90*time.Second, "docker to call the container healthy (HEALTHCHECK l402d healthcheck)", func() error {
		out, err := exec.Command("docker", "inspect", "-f", "{{.State.Health.Status}}", c.name).CombinedOutput()
		if s := strings.TrimSpace(string(out)); err != nil || s != "healthy" {
			return fmt.Errorf("%s %v", s, err)
		}
		return nil
	})
	fi, err := os.Stat(filepath.Join(c.dataDir, "api.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("api.key in the data volume: %v %v", fi, err)
	}
	ch := createChallenge(t, d, "/image/forecast", 21)
	pre := payInvoice(t, "bob", ch.Invoice)
	out := verifyToken(t, d, ch.Macaroon, pre, "")
	if !out.Valid || out.MerchantID != testNet(t).Node("alice").Pubkey {
		t.Fatalf("verify through the container: %v", out)
	}
	waitSettled(t, d, ch.PaymentHash, 21)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	must(t, err)
	must(t, os.WriteFile(to, b, 0o600))
}
